"""Numeric view of a household under a policy: every array a fraction of household value.

Units (docs/units): ``V`` is household value after cash flows; holdings, cash, trades, costs and
taxes inside the optimizer are fractions of ``V``. Results convert back to shares and currency.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cvxrebalance.optimizer.domain import targets as target_rules
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.overlay_data import OverlayData, prepare_overlay
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.restrictions import stand_ins
from cvxrebalance.optimizer.domain.tables import CASH, days, index_of
from cvxrebalance.optimizer.domain.tickets import TicketState
from cvxrebalance.optimizer.domain.valuation import check_dates
from cvxrebalance.optimizer.domain.wash import WashState, wash_state

MIN_CONTRACT = 1e-9  # smallest contract notional, as a fraction of household value


@dataclass
class Prepared:
    """Arrays for one household and policy (shapes: A accounts, N securities, C classes,
    L tax lots of the taxable accounts, one entry per real lot)."""

    household: Household
    policy: Policy
    account_ids: list[str]
    account_types: list[str]
    security_ids: list[str]
    classes: list[str]  # non-cash asset classes
    price: np.ndarray  # (N,) currency per share
    V0: float  # value before flows
    V: float  # value after flows: the unit of everything below
    q0: np.ndarray  # (A, N) shares held
    h0: np.ndarray  # (A, N) value held / V
    cash_cur: np.ndarray  # (A,) cash before flows, currency
    flow_cur: np.ndarray  # (A,) cash flows, currency
    cash0: np.ndarray  # (A,) (cash + flow) / V
    min_cash: np.ndarray  # (A,) / V
    liquid: np.ndarray  # (N,) bool
    taxable: list[int]  # account indices of taxable accounts
    lot_account: np.ndarray  # (L,) account index of each lot
    lot_security: np.ndarray  # (L,) security index
    lot_ids: list[str]  # (L,)
    lot_q: np.ndarray  # (L,) shares
    lot_basis: np.ndarray  # (L,) cost basis per share
    lot_acquired: np.ndarray  # (L,) datetime64[D]
    lot_gain: np.ndarray  # (L,) gain per share sold, currency (negative: a loss)
    lot_rate: np.ndarray  # (L,) tax rate by term
    lot_short: np.ndarray  # (L,) bool: short term on the as-of date
    ytd_short: float  # year-to-date realized gains of the taxable accounts, currency
    ytd_long: float
    X: np.ndarray  # (N, C) security -> class membership
    class_of: np.ndarray  # (N,) class index of each security
    target: np.ndarray  # (C,) effective class targets (strategic + live tilt)
    strategic: np.ndarray  # (C,)
    tilt: np.ndarray  # (C,)
    lower: np.ndarray  # (C,) band edges
    upper: np.ndarray  # (C,)
    cash_target: float
    cash_lower: float
    cash_upper: float
    ref: np.ndarray  # (C,) class weights the tracking term pulls toward
    cash_ref: float
    bench: np.ndarray  # (N,) security-level benchmark the tracking term uses
    bench_target: np.ndarray  # (N,) the same for the targets (reported tracking error)
    # Views (targets.csv alpha): expected active return per unit of value, annual fractions.
    alpha: np.ndarray  # (N,) per security
    alpha_cash: float  # cash's, relative to the rest
    alpha_f: np.ndarray  # (J,) per unit of each contract's notional: G @ class alpha
    risk: RiskFactors
    overlay: OverlayData
    wash: WashState
    targets_detail: target_rules.Targets
    tickets: TicketState
    notes: list[str] = field(default_factory=list)
    _columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # Values derived from these arrays by the layers above, computed once (keys name their inputs).
    memo: dict = field(default_factory=dict, repr=False)

    @property
    def A(self) -> int:
        return len(self.account_ids)

    @property
    def N(self) -> int:
        return len(self.security_ids)

    @property
    def C(self) -> int:
        return len(self.classes)

    @property
    def L(self) -> int:
        return len(self.lot_q)

    @property
    def securities(self) -> pd.DataFrame:
        return self.household.securities

    @property
    def lot_position(self) -> np.ndarray:
        """(L,) flat position index ``account * N + security`` of each lot."""
        return self.lot_account * self.N + self.lot_security

    def column(self, name: str) -> np.ndarray:
        """A securities.csv column as an array in security order (read once, then cached)."""
        if name not in self._columns:
            self._columns[name] = self.household.securities[name].to_numpy()
        return self._columns[name]

    def per_security(self, column: str, default: float) -> np.ndarray:
        """(N,) a ticket column of securities.csv whose blank cells take ``default`` (a policy
        value); without ticket columns (most households) the column is not read at all."""
        if not self.household.ticket_columns:
            return np.full(self.N, float(default))
        x = self.column(column).astype(float)
        return np.where(np.isnan(x), default, x)

    @property
    def min_trade_value(self) -> np.ndarray:
        """(N,) smallest trade in currency: the larger of min_value and min_shares x price."""
        t = self.policy.trades
        return self._once("min_trade_value", lambda: np.maximum(
            self.per_security("min_value", t.min_value), self.per_security("min_shares", t.min_shares) * self.price))

    @property
    def ticket(self) -> np.ndarray:
        """(N,) fixed cost per trade, currency."""
        return self._once("ticket", lambda: self.per_security("ticket_cost", self.policy.trades.ticket_cost))

    def _once(self, key: str, make):
        """``memo[key]``, made on first use."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    @property
    def lot_size(self) -> np.ndarray:
        """(N,) shares per tradable unit."""
        return self.per_security("lot_size", 1.0)

    @property
    def has_ticket_rules(self) -> bool:
        """Whether any ticket rule applies (minimums, ticket costs, trade limits, round lots)."""
        t = self.policy.trades
        return bool(t.min_value or t.min_shares or t.ticket_cost or t.max_trades or t.max_trades_per_account
                    or self.household.ticket_columns)

    @property
    def linear_cost(self) -> np.ndarray:
        """(N,) half spread + commission: the linear cost per unit of value traded."""
        return self.column("half_spread") + self.column("commission")

    def lots_by_position(self, per_lot: np.ndarray) -> np.ndarray:
        """(A, N) sums of a per-lot quantity by position."""
        return np.bincount(self.lot_position, weights=per_lot, minlength=self.A * self.N).reshape(self.A, self.N)


@dataclass
class RiskFactors:
    """S = B F B' + diag(d^2) over securities, contracts and cash, with F = L L'.

    ``B`` (N, r) is sparse for class and security covariances; ``b_f`` (J, r) the contracts'
    rows, ``b_cash`` (r,) cash's; ``shift`` (r,) moves the benchmark's exposure for currency
    hedges. ``factor_variance`` (N,) is each security's factor variance, diag(B F B').
    """

    B: sp.csr_matrix
    b_f: np.ndarray
    b_cash: np.ndarray
    L: np.ndarray
    d: np.ndarray  # (N,) specific volatility
    d_f: np.ndarray  # (J,) contracts' specific (basis) volatility
    shift: np.ndarray
    factor_variance: np.ndarray


def long_term(acquired, as_of: dt.date) -> np.ndarray:
    """Held more than one year on the trade date (IRS: from the day after the anniversary; a lot
    bought on Feb 29 has its anniversary on Mar 1), for a date or an array of dates.

    Examples
    --------
    >>> d = np.array(["2025-11-20", "2025-11-19", "2024-02-29"], dtype="datetime64[D]")
    >>> long_term(d, dt.date(2026, 11, 20)).tolist(), long_term(d[2:], dt.date(2025, 3, 1)).tolist()
    ([False, True, True], [False])
    """
    acquired = np.asarray(acquired, dtype="datetime64[D]")
    month = acquired.astype("datetime64[M]")
    day = (acquired - month.astype("datetime64[D]")).astype(int)
    anniversary = (month + 12).astype("datetime64[D]") + day  # day 29 of a 28-day Feb: Mar 1
    return np.datetime64(as_of, "D") > anniversary


def prepare(household: Household, policy: Policy) -> Prepared:
    """Turn a validated household and policy into the optimizer's arrays.

    Raises
    ------
    ValidationError
        For problems that need both the household and the policy (e.g. lots acquired after the
        as-of date, withdrawals larger than the household).
    """
    problems: list[Problem] = []
    if policy.signals:  # signals read market data: scenarios.tactical writes them into the targets first
        problems.extend(Problem("policy.toml", None, f"signals.{s.name}", (
            "a signal needs market data: rebalance with cvxrebalance.scenarios.tactical_rebalance(household, "
            "policy, market) or `cvxrebalance run` on a case with prices.csv or returns.csv")) for s in policy.signals)
    sec, acc, hol = household.securities, household.accounts, household.holdings
    sids = sec["security_id"].tolist()
    aids = acc["account_id"].tolist()
    A, N = len(aids), len(sids)
    # An illiquid security's stale valuation rolled forward by its proxy (valuation.py):
    # price = reported price * (1 + proxy_beta * proxy return). This one array prices the household
    # value, class weights, bands and tracking error, and the checker reads the same.
    price = household.valuations.price
    liquid = sec["liquid"].to_numpy(bool)
    as_of = policy.tax.as_of
    if household.valuations.dated.any():
        check_dates(sec, as_of, problems)

    h_acc = index_of(aids, hol["account_id"].to_numpy())
    h_sec = index_of(sids, hol["security_id"].to_numpy())
    quantity = hol["quantity"].to_numpy(float)
    q0 = np.bincount(h_acc * N + h_sec, weights=quantity, minlength=A * N).reshape(A, N)
    cash_cur = acc["cash"].to_numpy(float)
    flow_cur = acc["cash_flow"].to_numpy(float)
    V0 = float((q0 * price).sum() + cash_cur.sum())
    V = V0 + float(flow_cur.sum())
    liquid_value = (q0 * price * liquid).sum(1)
    for i in np.flatnonzero((cash_cur + flow_cur < 0) & ~(liquid_value >= -(cash_cur + flow_cur))):
        problems.append(Problem("accounts.csv", int(acc.index[i]), "cash_flow",
                                f"withdrawal {-flow_cur[i]:,.2f} exceeds the account's liquid value"))
    if V <= 0:
        problems.append(Problem("accounts.csv", None, "cash_flow", "household value after flows is not positive"))

    # Tax lots of taxable accounts, one entry per real lot.
    types = acc["type"].tolist()
    taxable = [i for i, t in enumerate(types) if t == "taxable"]
    in_taxable = np.isin(h_acc, taxable)
    lot_rows = np.flatnonzero(in_taxable)
    acquired = days(hol["acquired"].to_numpy()[lot_rows])
    late = acquired > np.datetime64(as_of, "D")
    for r in lot_rows[late]:
        problems.append(Problem("holdings.csv", int(hol.index[r]), "acquired",
                                f"lot acquired {hol['acquired'].iat[r]} after the as-of date {as_of}"))
    # Trades after the as-of date have not happened yet; a contract held past its expiry cannot be.
    tx = household.transactions
    for line, when in zip(tx.index.tolist(), tx["date"].tolist(), strict=True):
        if when is not None and when > as_of:
            problems.append(Problem("transactions.csv", int(line), "date",
                                    f"trade dated {when}, after the as-of date {as_of}"))
    fut = household.futures
    for line, when, held in zip(fut.index.tolist(), fut["expiry"].tolist(), fut["position"].tolist(), strict=True):
        if when is not None and when < as_of and held:  # (swaps have no expiry)
            problems.append(Problem("futures.csv", int(line), "expiry",
                                    f"expired {when}, before the as-of date {as_of}, yet {held:g} contracts are held"))
    # Contract counts are whole numbers the search enumerates: a contract worth less than
    # MIN_CONTRACT of the household would need more than a billion of them per unit of exposure.
    notional = fut["price"].to_numpy(float) * fut["multiplier"].to_numpy(float)
    for r in np.flatnonzero(np.abs(notional) < MIN_CONTRACT * abs(V)):
        problems.append(Problem(fut["source"].iat[r], int(fut.index[r]),
                                "multiplier" if fut["source"].iat[r] == "futures.csv" else "increment",
                                f"one contract's notional (price x multiplier = {notional[r]:.6g}) is below "
                                f"{MIN_CONTRACT:g} x household value, {MIN_CONTRACT * abs(V):.6g}; check the multiplier's units"))
    # Tilts without their own max_tilt are held to the policy's default.
    default_max = policy.tactical.max_tilt
    tgt = household.targets
    over = np.isnan(tgt["max_tilt"].to_numpy(float)) & (np.abs(tgt["tilt"].to_numpy(float)) > default_max + 1e-12)
    for r in np.flatnonzero(over):
        problems.append(Problem("targets.csv", int(tgt.index[r]), "tilt",
                                f"|tilt| {abs(tgt['tilt'].iat[r]):.6g} exceeds max_tilt {default_max:.6g} "
                                "(the policy's [tactical] default)"))
    # A hedge ratio names a currency the household holds and the risk model prices; any other
    # key (a typo, an asset class) would be ignored and leave the currency unhedged.
    hedged = policy.overlay.hedge_ratio
    currencies = ({c for c in household.securities["currency"].tolist() + household.futures["currency"].tolist() if c}
                  if hedged else set())
    for key in hedged:
        if key not in currencies or key not in household.risk.loadings.columns:
            problems.append(Problem("policy.toml", None, f"overlay.hedge_ratio.{key}",
                                    f"{key!r} is not a currency of the household's securities or contracts "
                                    f"with a risk factor (currencies: {', '.join(sorted(currencies)) or 'none'})"))
    # A threshold trigger fires on an edge crossed: the band rule's, or the household's own
    # (targets.csv lower/upper, factor_targets.csv bands); with neither it would never fire.
    own_edges = household.targets[["lower", "upper"]].notna().to_numpy().any() or \
        household.factor_targets[["lower", "upper"]].notna().to_numpy().any()
    if policy.trigger.mode in ("threshold", "hybrid") and policy.bands.rule == "none" and not own_edges:
        problems.append(Problem("policy.toml", None, "trigger.mode", (
            f'"{policy.trigger.mode}" needs a band rule other than "none", or band edges of the household\'s '
            "own (targets.csv lower/upper, factor_targets.csv lower/upper/band)")))
    # A named counterparty limit that none of the household's OTC contracts face binds nothing
    # here: a note, not an error, since one policy serves a book whose households face different
    # dealers (a typo shows as this note beside the real dealer under the general limit).
    facing = sorted({c for c in fut["counterparty"].tolist() if c})
    unused = [key for key in policy.overlay.counterparty_limits if facing and key not in facing]
    if problems:
        raise ValidationError(problems)
    lot_security = h_sec[lot_rows]
    lot_basis = hol["cost_basis"].to_numpy(float)[lot_rows]
    lot_short = ~long_term(acquired, as_of)
    lot_rate = np.where(lot_short, policy.tax.short_term_rate, policy.tax.long_term_rate)

    # Asset classes, targets, bands. A substitute class of restrictions.csv counts as the class
    # it stands in for (its securities keep their own risk-model rows).
    stand_in = stand_ins(household.restrictions)
    sec_class = [stand_in.get(c, c) for c in sec["asset_class"].tolist()]
    tgt_classes = [c for c in tgt["id"] if c != CASH] if household.target_by == "asset_class" else []
    classes = sorted(set(sec_class) | set(tgt_classes))
    class_of = index_of(classes, sec_class)
    X = np.zeros((N, len(classes)))
    X[np.arange(N), class_of] = 1.0
    h0 = q0 * price / V
    cash0 = (cash_cur + flow_cur) / V
    x_now = X.T @ h0.sum(0)
    cash_now = float(cash0.sum())
    targets = target_rules.effective_targets(household, policy, classes, sids)
    notes = list(targets.notes)
    notes += [f"[overlay] counterparty_limits names {key!r}, which none of the household's contracts face "
              f"(they face {', '.join(facing)})" for key in unused]
    vol = _class_vols(household, sids, X, targets, h0.sum(0)) if policy.bands.rule == "volatility" else None
    lower, upper, cash_lower, cash_upper = target_rules.class_edges(targets, policy.bands, classes, vol)

    ref, cash_ref = target_rules.reference(
        policy, targets.target, lower, upper, x_now, targets.cash_target, cash_lower, cash_upper,
        cash_now,
    )
    if policy.trigger.fraction < 1:  # partial rebalancing: part of the way, bands widened to it
        f = policy.trigger.fraction
        ref, cash_ref = x_now + f * (ref - x_now), cash_now + f * (cash_ref - cash_now)
        lower, upper = np.minimum(lower, ref), np.maximum(upper, ref)
        cash_lower, cash_upper = min(cash_lower, cash_ref), max(cash_upper, cash_ref)
    bench = _benchmark(targets, ref, targets.target, X, h0.sum(0))
    bench_target = _benchmark(targets, targets.target, targets.target, X, h0.sum(0))
    overlay = prepare_overlay(household, policy, aids, types, classes, V)
    alpha, alpha_cash, alpha_f = _alphas(household, classes, sids, X, bench_target, overlay.G)
    risk = _risk_factors(household, sids, overlay.ids, bench, cash_ref, policy.overlay.hedge_ratio)
    ytd = [float(acc[c].to_numpy(float)[taxable].sum()) for c in ("ytd_short_gain", "ytd_long_gain")]
    return Prepared(
        household=household, policy=policy, account_ids=aids, account_types=types,
        security_ids=sids, classes=classes, price=price, V0=V0, V=V, q0=q0, h0=h0,
        cash_cur=cash_cur, flow_cur=flow_cur, cash0=cash0,
        min_cash=acc["min_cash"].to_numpy(float) / V, liquid=liquid, taxable=taxable,
        lot_account=h_acc[lot_rows], lot_security=lot_security,
        lot_ids=[str(x) for x in hol["lot_id"].to_numpy()[lot_rows]], lot_q=quantity[lot_rows],
        lot_basis=lot_basis, lot_acquired=acquired, lot_gain=price[lot_security] - lot_basis,
        lot_rate=lot_rate, lot_short=lot_short, ytd_short=float(ytd[0]), ytd_long=float(ytd[1]),
        X=X, class_of=class_of, target=targets.target, strategic=targets.strategic, tilt=targets.tilt,
        lower=lower, upper=upper, cash_target=targets.cash_target, cash_lower=cash_lower,
        cash_upper=cash_upper, ref=ref, cash_ref=cash_ref, bench=bench,
        bench_target=bench_target, alpha=alpha, alpha_cash=alpha_cash, alpha_f=alpha_f, risk=risk, overlay=overlay, notes=notes, tickets=TicketState.empty(A, N),
        wash=wash_state(household, policy, sids, {aids[a] for a in taxable}), targets_detail=targets,
    )


def _class_shares(X: np.ndarray, held: np.ndarray, k: int) -> np.ndarray:
    """(N,) each security's share of class k: by current value, equal when the class holds nothing."""
    members = X[:, k] > 0
    value = held * members
    return value / value.sum() if value.sum() > 0 else members / max(members.sum(), 1)


def _benchmark(targets, ref, target, X, held) -> np.ndarray:
    """Security-level benchmark weights whose class sums are ``ref``.

    Model portfolios give security weights directly (scaled per class when ``ref`` differs from the
    target, as in rebalance-to-tolerance). Class targets are spread over the class's securities in
    proportion to current value, or equally when the class holds nothing.
    """
    N, C = X.shape
    if targets.security_weights is not None:
        base = targets.security_weights.copy()
    else:
        base = sum((target[k] * _class_shares(X, held, k) for k in range(C)), np.zeros(N))
    class_base = X.T @ base
    scale = np.divide(ref, class_base, out=np.zeros(C), where=class_base > 1e-15)
    bench = base * (X @ scale)
    # A class with a reference but no base weight (target 0, out-of-band holdings): spread by value.
    for k in np.flatnonzero((class_base <= 1e-15) & (ref > 0)):
        bench += ref[k] * _class_shares(X, held, k)
    return bench


def _alphas(household: Household, classes: list[str], sids: list[str], X: np.ndarray,
            bench: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The views of targets.csv ``alpha`` (annual expected active returns, fractions).

    Returns
    -------
    alpha : ndarray (N,)
        Per security: its class row's alpha (class targets), X @ alpha_class, or its own row's
        (a model portfolio).
    alpha_cash : float
        The ``cash`` row's.
    alpha_f : ndarray (J,)
        Per unit of each contract's notional, G @ alpha_class; a model portfolio's class alpha is
        its members' mean weighted by the benchmark ``bench`` (equally where it has none).
    """
    tgt = household.targets
    given = tgt["alpha"].to_numpy(float)
    if not given.any():  # no views (most households)
        return np.zeros(len(sids)), 0.0, np.zeros(G.shape[0])
    by_id = dict(zip(tgt["id"].tolist(), given.tolist(), strict=True))
    alpha_cash = float(by_id.pop(CASH, 0.0))
    if household.target_by == "asset_class":
        by_class = np.array([by_id.get(c, 0.0) for c in classes])
        alpha = X @ by_class
    else:
        alpha = np.array([by_id.get(s, 0.0) for s in sids])
        w = X * bench[:, None]
        w = np.where(w.sum(0) > 0, w, X)  # a class without benchmark weight: its members equally
        by_class = np.divide(w.T @ alpha, w.sum(0), out=np.zeros(len(classes)), where=w.sum(0) > 0)
    return alpha, alpha_cash, G @ by_class


def _risk_factors(household: Household, sids: list[str], cids: list[str], bench: np.ndarray,
                  cash_ref: float, hedge_ratio: dict[str, float]) -> RiskFactors:
    """Factor form of the covariance over securities, contracts and cash: S = B F B' + diag(d^2)
    with F = L L' (an eigen square root, so a semidefinite F is fine).

    ``shift`` moves the benchmark's factor exposure for currency hedges: the benchmark keeps
    (1 - hedge ratio) of its exposure to a hedged currency c, so its exposure B'bench loses
    h_c * (B'bench)_c, i.e. the active exposure gains that amount.
    """
    rm = household.risk
    F = rm.factor_cov.to_numpy(float)
    w, U = np.linalg.eigh((F + F.T) / 2)
    L = U * np.sqrt(np.clip(w, 0, None))
    N, J = len(sids), len(cids)
    B = _take_rows(rm.loadings.to_numpy(float), index_of(rm.loadings.index, sids + cids + [CASH]))
    spec = np.sqrt(_take_rows(rm.specific.to_numpy(float), index_of(rm.specific.index, sids + cids)))
    shift = np.zeros(B.shape[1])
    for k, factor in enumerate(rm.loadings.columns):
        h = hedge_ratio.get(factor, 0.0)
        if h:
            shift[k] = h * (B[:N, k] @ bench + B[-1, k] * cash_ref)
    return RiskFactors(B=sp.csr_matrix(B[:N]), b_f=B[N:N + J], b_cash=B[-1], L=L, d=spec[:N],
                       d_f=spec[N:], shift=shift, factor_variance=((B[:N] @ L) ** 2).sum(1))


def _class_vols(household: Household, sids: list[str], X: np.ndarray, targets, held: np.ndarray) -> np.ndarray:
    """(C,) each class's volatility under the risk model: sqrt(v' S v) for v the class's
    securities weighted as the benchmark spreads its target (equal weights for a class with no
    target), normalized to one."""
    rm = household.risk
    at = index_of(rm.loadings.index, sids)
    B = _take_rows(rm.loadings.to_numpy(float), at)
    spec = _take_rows(rm.specific.to_numpy(float), index_of(rm.specific.index, sids))
    F = rm.factor_cov.to_numpy(float)
    w = _benchmark(targets, np.ones(X.shape[1]), np.ones(X.shape[1]), X, held)
    out = np.zeros(X.shape[1])
    for k in range(X.shape[1]):
        v = np.where(X[:, k] > 0, w, 0.0)
        v = v / v.sum() if v.sum() > 0 else X[:, k] / max(X[:, k].sum(), 1.0)
        out[k] = np.sqrt(max(float(v @ B @ F @ B.T @ v + (spec * v**2).sum()), 0.0))
    return out


def _take_rows(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Rows ``at`` of ``values``, zero where ``at`` is -1 (an id the risk model does not name)."""
    out = values[np.maximum(at, 0)] if len(values) else np.zeros((len(at), *values.shape[1:]))
    out[at < 0] = 0.0
    return np.nan_to_num(out, nan=0.0)
