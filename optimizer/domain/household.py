"""The household: securities, accounts, holdings (tax lots), targets and a risk model.

``Household.from_frames`` validates everything and collects every problem into one
ValidationError. Frames may hold strings (as read from CSV) or typed values.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.factor_targets import empty_factor_targets, parse_factor_targets
from cvxrebalance.optimizer.domain.futures import empty_futures, parse_futures
from cvxrebalance.optimizer.domain.restrictions import (
    class_targets,
    empty_restrictions,
    parse_restrictions,
    stand_ins,
)
from cvxrebalance.optimizer.domain.risk_model import RiskModel, build_risk_model
from cvxrebalance.optimizer.domain.tables import (
    CASH,
    Column,
    above_minus_one,
    duplicates,
    fraction,
    has_problem,
    nonneg,
    one_line,
    parse_table,
    positive,
    unit_magnitude,
    whole_positive,
)
from cvxrebalance.optimizer.domain.transactions import parse_transactions
from cvxrebalance.optimizer.domain.valuation import Valuations, check_valuations, roll_forward

ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")
# How a spreadsheet saves a long number it took for a number: 48000030 as 4.8E+07.
_SCIENTIFIC = re.compile(r"\d+(\.\d+)?[eE]\+\d+")


def custodian_number(text: str) -> str | None:
    """What is wrong with a custodian account number (None: nothing): a line break or control
    character (an upload file is read line by line) or a spreadsheet's scientific notation
    (``4.8E+07``: the digits are gone).

    Examples
    --------
    >>> custodian_number("0048000030"), custodian_number("4.8E+07")[:22]
    (None, 'a number in scientific')
    """
    if _SCIENTIFIC.fullmatch(text):
        return ("a number in scientific notation, as a spreadsheet saves a long number: its digits are "
                "lost; format the column as text and enter the numbers again")
    return one_line(text)

SECURITIES = {
    "security_id": Column("str", required=True),
    "asset_class": Column("str", required=True),
    "price": Column("float", required=True, check=positive),
    "liquid": Column("bool", default=True),
    "esg_excluded": Column("bool", default=False),
    "esg_score": Column("float", default=np.nan),
    "half_spread": Column("float", default=0.0, check=fraction),
    "commission": Column("float", default=0.0, check=fraction),
    "impact": Column("float", default=0.0, check=nonneg),
    "allowed_account_types": Column("list", default=ACCOUNT_TYPES),
    "drag_taxable": Column("float", default=0.0),
    "drag_tax_deferred": Column("float", default=0.0),
    "drag_tax_exempt": Column("float", default=0.0),
    "currency": Column("str", default=""),
    "wash_group": Column("str", default=""),
    "substitute_group": Column("str", default=""),
    # Labels restrictions.csv may name (``defense``, ``tobacco``), several separated by ``;``.
    "tag": Column("list", default=()),
    # Ticket rules (blank: the policy's [trades] value): the smallest trade in currency and in
    # shares, a fixed cost per trade, and the shares per tradable unit.
    "min_value": Column("float", default=np.nan, check=nonneg),
    "min_shares": Column("float", default=np.nan, check=nonneg),
    "ticket_cost": Column("float", default=np.nan, check=nonneg),
    "lot_size": Column("float", default=1.0, check=whole_positive),
    # 1 = the class's primary buy; higher numbers are bought only where the better ones may not be.
    "priority": Column("float", default=np.nan, check=whole_positive),
    # A stale valuation (illiquid securities only; optimizer/domain/valuation.py): ``price`` is the
    # value on valuation_date, rolled forward by the proxy's return times proxy_beta (blank: 1).
    "valuation_date": Column("date"),
    "proxy": Column("str", default=""),
    "proxy_price": Column("float", default=np.nan, check=positive),
    "proxy_return": Column("float", default=np.nan, check=above_minus_one),
    "proxy_beta": Column("float", default=np.nan),
}
ACCOUNTS = {
    "account_id": Column("str", required=True),
    "type": Column("str", required=True),
    "cash": Column("float", required=True, check=nonneg),
    "min_cash": Column("float", default=0.0, check=nonneg),
    "cash_flow": Column("float", default=0.0),
    "ytd_short_gain": Column("float", default=0.0),
    "ytd_long_gain": Column("float", default=0.0),
    "gain_budget": Column("float", default=np.nan),
    # The custodian's account number, carried to orders and upload files (account ids such as
    # "ira" name an account within its household; a custodian needs its own number).
    # Text: a float column's "48000030.0" is refused (``custodian_number``).
    "account_number": Column("text", check=custodian_number),
}
HOLDINGS = {
    "account_id": Column("str", required=True),
    "security_id": Column("str", required=True),
    "quantity": Column("float", required=True, check=positive),
    "lot_id": Column("str"),
    "cost_basis": Column("float", default=np.nan, check=nonneg),
    "acquired": Column("date"),
}
TARGETS = {
    "asset_class": Column("str"),
    "security_id": Column("str"),
    "weight": Column("float", required=True, check=fraction),
    "lower": Column("float", default=np.nan, check=fraction),
    "upper": Column("float", default=np.nan, check=fraction),
    "tilt": Column("float", default=0.0),
    "max_tilt": Column("float", default=np.nan, check=nonneg),
    "tilt_expires": Column("date"),
    # A view: the row's expected active return (annual, a fraction: 0.02 = 2%/yr), priced by
    # [objective] alpha_weight (cost_models.alpha).
    "alpha": Column("float", default=0.0, check=unit_magnitude),
}
SUM_TOL = 1e-6


@dataclass(frozen=True)
class Household:
    """A validated household.

    Build with :meth:`from_frames` (library use) or :func:`optimizer.load_case` (files).
    ``targets`` always has a ``target_by`` of "asset_class" or "security_id". ``factor_targets``
    (``factor, target, lower, upper``; empty without factor targets) sets targets and bands on
    factor exposures (``optimizer.domain.factor_targets``). ``restrictions`` (restrictions.csv;
    empty without) holds the client's no_buy / no_hold rules and class substitutes
    (``optimizer.domain.restrictions``).
    """

    securities: pd.DataFrame
    accounts: pd.DataFrame
    holdings: pd.DataFrame
    targets: pd.DataFrame
    target_by: str
    risk: RiskModel
    futures: pd.DataFrame = field(default_factory=empty_futures)
    transactions: pd.DataFrame = field(default_factory=lambda: parse_transactions(None, None, None, []))
    name: str = "household"
    factor_targets: pd.DataFrame = field(default_factory=empty_factor_targets)
    restrictions: pd.DataFrame = field(default_factory=empty_restrictions)

    @functools.cached_property
    def priorities(self) -> bool:
        """Whether securities.csv gives any buy priority (read once per household)."""
        return bool(self.securities["priority"].notna().any())

    @functools.cached_property
    def ticket_columns(self) -> bool:
        """Whether securities.csv sets any ticket rule (min_value, min_shares, ticket_cost, or a
        lot_size other than 1); read once per household, as the pipeline asks on every solve."""
        sec = self.securities  # numpy, not a DataFrame reduction: ten times faster, and every batch household asks
        return bool(any(np.isfinite(sec[c].to_numpy(float)).any() for c in ("min_value", "min_shares", "ticket_cost"))
                    or (sec["lot_size"].to_numpy(float) != 1).any())

    @functools.cached_property
    def valuations(self) -> Valuations:
        """Reported and adjusted prices: a stale illiquid valuation rolled forward by its proxy
        (``optimizer.domain.valuation``); the adjusted price is the price everywhere downstream."""
        return roll_forward(self.securities)

    @classmethod
    def from_frames(
        cls,
        securities: pd.DataFrame,
        accounts: pd.DataFrame,
        holdings: pd.DataFrame,
        targets: pd.DataFrame,
        covariance: pd.DataFrame | None = None,
        factor_loadings: pd.DataFrame | None = None,
        factor_covariance: pd.DataFrame | None = None,
        specific_variance: pd.DataFrame | None = None,
        futures: pd.DataFrame | None = None,
        transactions: pd.DataFrame | None = None,
        name: str = "household",
        swaps: pd.DataFrame | None = None,
        factor_targets: pd.DataFrame | None = None,
        restrictions: pd.DataFrame | None = None,
    ) -> Household:
        """Validate input frames and build a household.

        ``covariance`` and the factor frames use the CSV layout: the id in the first column.
        ``factor_targets`` (factor_targets.csv: ``factor, target`` and optional ``lower, upper,
        band``) needs the factor frames. ``restrictions`` (restrictions.csv: ``rule`` on a
        ``security_id``, ``tag`` or ``asset_class``, optional ``account_id`` or ``account_type``,
        ``substitute`` and ``household_id``, which must be ``name``).

        Raises
        ------
        ValidationError
            Listing every problem found, each with file, line and field.
        """
        problems: list[Problem] = []
        sec = parse_table(securities, "securities.csv", SECURITIES, problems)
        acc = parse_table(accounts, "accounts.csv", ACCOUNTS, problems)
        hol = parse_table(holdings, "holdings.csv", HOLDINGS, problems)
        tgt = parse_table(targets, "targets.csv", TARGETS, problems)
        _check_securities(sec, problems)
        _check_accounts(acc, problems)
        _check_holdings(hol, sec, acc, problems)
        target_by = _check_targets(tgt, targets, sec, problems)
        by_class = class_targets(tgt, "asset_class") if target_by == "asset_class" else None
        res = parse_restrictions(restrictions, sec, acc, by_class, name, problems)
        _check_target_coverage(tgt, target_by, sec, hol, problems, stand_in=stand_ins(res))
        fut = parse_futures(futures, sec, acc, problems, swaps)
        tx = parse_transactions(transactions, sec, acc, problems)
        risk = build_risk_model(
            sec, fut, covariance, factor_loadings, factor_covariance, specific_variance, problems
        )
        fac = parse_factor_targets(factor_targets, risk, covariance is None and factor_loadings is not None, problems)
        if problems:
            raise ValidationError(problems)
        tgt = tgt.rename(columns={target_by: "id"}).drop(
            columns=[c for c in ("asset_class", "security_id") if c != target_by]
        )
        return cls(sec, acc, hol, tgt, target_by, risk, fut, tx, name, fac, res)

    def with_accounts(self, accounts: pd.DataFrame, holdings: pd.DataFrame,
                      transactions: pd.DataFrame | None = None, name: str = "household",
                      restrictions: pd.DataFrame | None = None) -> Household:
        """Another household sharing this one's securities, targets and risk model (already
        validated): only its accounts, holdings, transactions and restrictions are read and checked. This is
        the batch path; a household with futures of its own goes through :meth:`from_frames`.

        Raises
        ------
        ValidationError
            Listing every problem in the new tables.
        """
        problems: list[Problem] = []
        acc = parse_table(accounts, "accounts.csv", ACCOUNTS, problems)
        hol = parse_table(holdings, "holdings.csv", HOLDINGS, problems)
        _check_accounts(acc, problems)
        _check_holdings(hol, self.securities, acc, problems)
        by_class = class_targets(self.targets, "id") if self.target_by == "asset_class" else None
        res = parse_restrictions(restrictions, self.securities, acc, by_class, name, problems)
        _check_target_coverage(self.targets, self.target_by, self.securities, hol, problems, key="id",
                               stand_in=stand_ins(res))
        tx = parse_transactions(transactions, self.securities, acc, problems)
        if problems:
            raise ValidationError(problems)
        return Household(self.securities, acc, hol, self.targets, self.target_by, self.risk,
                         empty_futures(), tx, name, self.factor_targets, res)

    @property
    def value(self) -> float:
        """Household value before trades and cash flows (stale valuations rolled forward)."""
        price = pd.Series(self.valuations.price, index=self.securities["security_id"])
        held = (self.holdings["quantity"] * self.holdings["security_id"].map(price)).sum()
        return float(held + self.accounts["cash"].sum())


def _check_securities(sec: pd.DataFrame, problems: list[Problem]) -> None:
    f = "securities.csv"
    duplicates(sec, ["security_id"], f, problems)
    for i, cls, types in zip(sec.index.tolist(), sec["asset_class"].tolist(),
                             sec["allowed_account_types"].tolist(), strict=True):
        if cls == CASH:
            problems.append(
                Problem(f, i, "asset_class", "'cash' is the accounts' cash, not a security")
            )
        if types is not None and not types:
            problems.append(Problem(f, i, "allowed_account_types", "lists no account type (the security could "
                                    "be bought nowhere); leave the cell empty to allow every type"))
        for t in types or ():
            if t not in ACCOUNT_TYPES:
                problems.append(
                    Problem(f, i, "allowed_account_types", f"unknown account type {t!r}")
                )
    for i, tags in zip(sec.index.tolist(), sec["tag"].tolist(), strict=True):
        for t in tags or ():
            if any(c in t for c in "|,"):
                problems.append(Problem(f, i, "tag", f"tag {t!r}: separate tags with ';'"))
    check_valuations(sec, problems)


def _check_accounts(acc: pd.DataFrame, problems: list[Problem]) -> None:
    f = "accounts.csv"
    duplicates(acc, ["account_id"], f, problems)
    _unique_numbers(acc, problems)
    if acc.empty:
        problems.append(Problem(f, None, None, "no accounts"))
    for i, row in acc.iterrows():
        if row["type"] is not None and row["type"] not in ACCOUNT_TYPES:
            problems.append(
                Problem(f, i, "type", f"unknown account type {row['type']!r}; "
                        f"use one of {', '.join(ACCOUNT_TYPES)}")
            )


def _unique_numbers(acc: pd.DataFrame, problems: list[Problem]) -> None:
    """A problem per account whose custodian number an earlier account of the household has,
    ignoring case ("x-1" is the custodian's "X-1": orders for both would reach one account);
    blank numbers are not given."""
    first: dict[str, tuple[int, str]] = {}
    for line, number in zip(acc.index.tolist(), acc["account_number"].tolist(), strict=True):
        if not number:
            continue
        seen = first.setdefault(number.casefold(), (int(line), number))
        if seen[0] != line:
            spelled = "" if seen[1] == number else f", as {seen[1]}"
            problems.append(Problem("accounts.csv", int(line), "account_number",
                                    f"duplicate account_number={number} (first on line {seen[0]}{spelled})"))


def _check_holdings(
    hol: pd.DataFrame, sec: pd.DataFrame, acc: pd.DataFrame, problems: list[Problem]
) -> None:
    f = "holdings.csv"
    known_sec = set(sec["security_id"].tolist())
    types = dict(zip(acc["account_id"].tolist(), acc["type"].tolist(), strict=True))
    lines = hol.index.tolist()
    accounts, securities = hol["account_id"].tolist(), hol["security_id"].tolist()
    for i, account, security in zip(lines, accounts, securities, strict=True):
        if account is not None and account not in types:
            problems.append(Problem(f, i, "account_id", f"unknown account {account!r}"))
        if security is not None and security not in known_sec:
            problems.append(Problem(f, i, "security_id", f"unknown security {security!r}"))
    lot_ids = [f"L{i}" if lot is None else lot for i, lot in zip(lines, hol["lot_id"].tolist(), strict=True)]
    # A tax lot in a taxable account needs its basis and date (one problem per cell).
    taxable = np.array([types.get(a) == "taxable" for a in accounts], bool)
    missing = {"cost_basis": pd.isna(hol["cost_basis"].to_numpy(float)),
               "acquired": np.array([d is None for d in hol["acquired"].tolist()], bool)}
    what = {"cost_basis": "a cost basis", "acquired": "an acquired date"}
    for field_name, gap in missing.items():
        for j in np.flatnonzero(taxable & gap):
            if not has_problem(problems, f, lines[j], field_name):
                problems.append(Problem(f, lines[j], field_name,
                                        f"a tax lot in a taxable account needs {what[field_name]}"))
    hol["lot_id"] = pd.Series(lot_ids, index=hol.index, dtype=object)
    duplicates(hol, ["account_id", "lot_id"], f, problems)


def _check_target_coverage(tgt, by, sec, hol, problems, key: str | None = None,
                           stand_in: dict[str, str] | None = None) -> None:
    """Class targets must name every held asset class (an explicit 0 is fine), so a forgotten
    row is never silently read as "sell all of it"; model portfolios take bands from the policy.
    ``key``: the column holding the class or security (default ``by``); ``stand_in``: substitute
    classes of restrictions.csv, which count toward the target of the class they stand in for."""
    f = "targets.csv"
    if by == "asset_class":
        named = set(tgt[key or "asset_class"]) | set(stand_in or {})
        cls_of = dict(zip(sec["security_id"], sec["asset_class"], strict=True))
        held = {cls_of[s] for s in hol["security_id"] if s in cls_of}
        for c in sorted(held - named - {None}):
            problems.append(Problem(f, None, "asset_class",
                                    f"asset class {c!r} is held but has no row (give it a weight, 0 to sell it)"))
    else:
        for col in ("lower", "upper"):
            for i, v in tgt[col].items():
                if not pd.isna(v):
                    problems.append(Problem(f, i, col, "band edges apply to asset_class targets; a model "
                                            "portfolio's class bands come from the policy's [bands] rule"))


def _check_targets(
    tgt: pd.DataFrame, raw: pd.DataFrame, sec: pd.DataFrame, problems: list[Problem]
) -> str:
    f = "targets.csv"
    has_class, has_sec = "asset_class" in raw.columns, "security_id" in raw.columns
    if has_class == has_sec:
        problems.append(
            Problem(f, 1, None, "give exactly one of the columns asset_class or security_id")
        )
        return "asset_class"
    by = "asset_class" if has_class else "security_id"
    known = set(sec["asset_class"]) | {CASH} if has_class else set(sec["security_id"]) | {CASH}
    for i, key in tgt[by].items():
        if key is None:
            problems.append(Problem(f, i, by, "missing value"))
        elif key not in known:
            what = "asset class" if has_class else "security"
            problems.append(Problem(f, i, by, f"unknown {what} {key!r}"))
    duplicates(tgt, [by], f, problems)
    # Exact sums (fsum), rounded below the tolerance, so 1 - 1e-6 and 1 + 1e-6 get the same verdict.
    total = math.fsum(tgt["weight"].tolist())
    if tgt["weight"].notna().all() and abs(round(total - 1, 12)) > SUM_TOL:
        problems.append(Problem(f, None, "weight", f"weights sum to {total:.9g}, not 1 (tolerance {SUM_TOL:g})"))
    tilt_total = math.fsum(tgt["tilt"].tolist())
    if abs(round(tilt_total, 12)) > SUM_TOL:
        problems.append(Problem(f, None, "tilt", f"tilts sum to {tilt_total:.6g}, not 0"))
    for i, row in tgt.iterrows():
        w, lo, hi = row["weight"], row["lower"], row["upper"]
        if w is None or pd.isna(w):
            continue
        eff = w + row["tilt"]
        if not -1e-12 <= eff <= 1 + 1e-12:
            problems.append(Problem(f, i, "tilt", f"weight + tilt = {eff:.6g} is outside [0, 1]"))
        if not pd.isna(row["max_tilt"]) and abs(row["tilt"]) > row["max_tilt"] + 1e-12:
            problems.append(
                Problem(f, i, "tilt", f"|tilt| {abs(row['tilt']):.6g} exceeds max_tilt "
                        f"{row['max_tilt']:.6g}")
            )
        if not pd.isna(lo) and lo > min(w, eff) + 1e-12:
            problems.append(Problem(f, i, "lower", f"band lower {lo:g} excludes its own target {min(w, eff):g}"))
        if not pd.isna(hi) and hi < max(w, eff) - 1e-12:
            problems.append(Problem(f, i, "upper", f"band upper {hi:g} excludes its own target {max(w, eff):g}"))
    return by
