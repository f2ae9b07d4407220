"""Backtests: a household carried through a market history, rebalanced by the real pipeline.

The conventions (what users compare against) are in docs/backtests.md: a period's returns, then
the futures marked to market, the date's flows, then the decision at the period's end, whose
trades hold over the next period; decision dates from the trigger (plus flow, tax-payment and
margin-call dates); the optimizer or the textbook rule (``scenarios.rule``); lots, the year's
gains and the backtest's own trades passed to each rebalance; taxes paid annually or at the
sale; the overlay's variation margin, rolls and 60/40 taxation; and every statistic of
``STATS`` with its formula.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cvxrebalance.constraints.bands import RULE as BANDS
from cvxrebalance.constraints.wash_sales import RULE as WASH
from cvxrebalance.cost_models.tax import exact_tax
from cvxrebalance.optimizer.domain.errors import InfeasibilityError, Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.prepare import long_term, prepare
from cvxrebalance.optimizer.domain.solution import position_costs
from cvxrebalance.optimizer.domain.tables import Column, file_lines, parse_table
from cvxrebalance.optimizer.domain.targets import outside
from cvxrebalance.optimizer.pipeline import checker
from cvxrebalance.optimizer.pipeline.rebalance import decide_trigger, rebalance
from cvxrebalance.optimizer.pipeline.result import RebalanceResult
from cvxrebalance.scenarios.attribution import PeriodData, PeriodRecorder
from cvxrebalance.scenarios.market import Market
from cvxrebalance.scenarios.rule import rule_trades
from cvxrebalance.scenarios.tactical import Tactical

STATS = ["events", "final_value", "ann_return", "ann_vol", "max_drawdown", "turnover", "costs",
         "taxes_paid", "short_term_gains", "long_term_gains", "futures_pnl", "tracking_error", "after_tax_value"]
EVENT_COLUMNS = ["date", "reason", "traded", "cost", "tax"]
FLOWS = {"date": Column("date", required=True), "account_id": Column("str", required=True),
         "amount": Column("float", required=True)}


@dataclass
class PolicyRun:
    """One policy's path: ``values`` (date x value, flow, cost, tax_paid, and per class
    ``before_<class>`` / ``after_<class>`` weights), ``events`` (``EVENT_COLUMNS``), ``trades`` (every trade with its
    date), ``stats`` (``STATS`` plus ``avg_weights`` per class), ``holdings`` (the lots and
    positions held at the end, in holdings.csv's columns), ``periods`` (what the return
    attribution reads, ``scenarios.attribution``) and ``clips`` (every tilt a governance limit
    changed on a decision date, ``scenarios.governance.CLIP_COLUMNS``)."""

    values: pd.DataFrame
    events: pd.DataFrame
    trades: pd.DataFrame
    stats: dict
    holdings: pd.DataFrame | None = None
    periods: PeriodData | None = None
    clips: pd.DataFrame | None = None


@dataclass
class BacktestResult:
    """Policies run side by side over one market window.

    Attributes
    ----------
    runs : dict[str, PolicyRun]
    stats : DataFrame
        One row per policy, ``STATS`` columns.
    """

    runs: dict[str, PolicyRun]
    market: Market = field(repr=False)

    @property
    def stats(self) -> pd.DataFrame:
        out = pd.DataFrame({name: {k: run.stats[k] for k in STATS} for name, run in self.runs.items()}).T
        return out.astype(float).astype({"events": int})

    @property
    def values(self) -> pd.DataFrame:
        """date x (policy, column)."""
        return pd.concat({name: run.values for name, run in self.runs.items()}, axis=1)

    @property
    def events(self) -> pd.DataFrame:
        return pd.concat([run.events.assign(policy=name) for name, run in self.runs.items()], ignore_index=True)

    @property
    def trades(self) -> pd.DataFrame:
        return pd.concat([run.trades.assign(policy=name) for name, run in self.runs.items()], ignore_index=True)

    def attribution(self, name: str | None = None):
        """Return attribution of one policy (default: the first), ``scenarios.attribution``:
        the strategic policy's return, each signal's allocation effect, drift and rebalancing,
        selection, the overlay, costs and taxes, adding up to each period's return."""
        from cvxrebalance.scenarios.attribution import attribute

        return attribute(self.runs[name or next(iter(self.runs))].periods)

    def write(self, out_dir) -> None:
        """comparison.csv and, per policy, NAME/values.csv, events.csv, trades.csv, summary.json
        and charts (``scenarios.backtest_report``)."""
        from cvxrebalance.scenarios.backtest_report import write

        write(self, out_dir)

    def plot_values(self, ax=None):
        """Value of each policy over time (a matplotlib Axes)."""
        from cvxrebalance.scenarios.backtest_report import plot_values

        return plot_values(self, ax)

    def plot_drift(self, asset_class: str | None = None, ax=None):
        """Each policy's pre-trade weight of one class (default: the first) over time."""
        from cvxrebalance.scenarios.backtest_report import plot_drift

        return plot_drift(self, asset_class, ax)

    def plot_costs_taxes(self, ax=None):
        """Cumulative costs and taxes paid of each policy."""
        from cvxrebalance.scenarios.backtest_report import plot_costs_taxes

        return plot_costs_taxes(self, ax)


def backtest(household: Household, policies: Policy | dict[str, Policy], market: Market, *,
             start=None, end=None, flows: pd.DataFrame | None = None, signals: pd.DataFrame | None = None,
             progress: bool = False) -> BacktestResult:
    """Carry ``household`` through ``market`` under each policy (module docstring).

    Parameters
    ----------
    household : Household
        The household at the market's start.
    policies : Policy or dict of name -> Policy
        One policy (named "policy") or several, run side by side from the same start.
    market : Market
        Returns per period (``scenarios.market``); ``start``/``end`` take a window of it.
    flows : DataFrame, optional
        ``date, account_id, amount`` (positive: a contribution; negative: a withdrawal).
    signals : DataFrame, optional
        signals.csv (``date, name, value``): the user series of ``valuation`` and ``macro``
        signals. A policy's signals read the whole ``market`` up to each decision date, so
        their lookback may reach before ``start``.
    progress : bool
        A progress bar over the policies' dates (tqdm, on standard error).

    Returns
    -------
    BacktestResult

    Raises
    ------
    ValidationError
        A liquid security without a return series, or a flow on a date the data does not have
        or for an unknown account.
    """
    history = market
    if start is not None or end is not None:
        market = market.window(start, end)
    policies = _with_cash_only(household, {"policy": policies} if isinstance(policies, Policy) else dict(policies))
    _check_names(policies)
    _check_rule_rebalancer(household, policies)
    flow_table = _flows(parse_flows(flows, household, market))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(policies) * len(market.dates), unit="date", desc="backtesting", smoothing=0.1)
    try:
        runs = {name: _run(household, p, market, flow_table, bar, name, Tactical(household, p, history, signals))
                for name, p in policies.items()}
    finally:
        if bar is not None:
            bar.close()
    return BacktestResult(runs, market)


def parse_flows(part: pd.DataFrame | None, household: Household, market: Market) -> pd.DataFrame | None:
    """A household's flows (``date, account_id, amount``) checked against the market window:
    rows dated after its start and up to its end are kept (the others are left out), each on a
    date of the data before the last one (no decision is taken on the last date, so a flow there
    could be neither funded nor invested) and for one of the household's accounts.

    Raises
    ------
    ValidationError
        Naming flows.csv, the row's line and the field.
    """
    if part is None or not len(part):
        return None
    problems: list[Problem] = []
    table = parse_table(part, "flows.csv", FLOWS, problems)
    lines = file_lines(part)
    dates = set(market.dates.date)
    first, last = market.start.date(), market.dates[-1].date()
    accounts = set(household.accounts["account_id"])
    keep = []
    for j, row in enumerate(table.itertuples(index=False)):
        if row.date is None or not first < row.date <= last:
            continue  # a bad date is already a problem; a date outside the window is left out
        if row.date == last:
            problems.append(Problem("flows.csv", lines[j], "date", f"{row.date} is the last date of the data: no "
                                    "decision is taken there, so the flow could be neither funded nor invested"))
        elif row.date not in dates:
            problems.append(Problem("flows.csv", lines[j], "date", f"{row.date} is not a date of the market data "
                                    f"({market.source}, {market.frequency})"))
        if row.account_id not in accounts:
            problems.append(Problem("flows.csv", lines[j], "account_id", f"unknown account {row.account_id!r} "
                                    "of this household"))
        keep.append(j)
    if problems:
        raise ValidationError(problems)
    kept = table.iloc[keep]
    return pd.DataFrame({"date": pd.to_datetime([str(d) for d in kept["date"]]),
                         "account_id": kept["account_id"].to_numpy(object),
                         "amount": kept["amount"].to_numpy(float)})


def _check_names(policies: dict) -> None:
    """At least one policy; every one a Policy under a name that is its own directory of the
    output (``backtest_report``: letters, digits, dot, dash, underscore; not "." or "..")."""
    from cvxrebalance.scenarios.backtest_report import directory_name

    if not policies:
        raise ValidationError([Problem("policies", None, None, "no policy given")])
    problems, seen = [], {}
    for name, p in policies.items():
        if not isinstance(name, str) or not isinstance(p, Policy):
            problems.append(Problem("policies", None, str(name), "expected a name (text) and a Policy"))
            continue
        folder = directory_name(name)
        if folder in (".", "..") or folder in seen:
            why = f"writes to the same directory as {seen[folder]!r}" if folder in seen else "is not a directory name"
            problems.append(Problem("policies", None, name, f"the policy name {why}: choose another"))
        seen[folder] = name
    if problems:
        raise ValidationError(problems)


def _check_rule_rebalancer(household: Household, policies: dict[str, Policy]) -> None:
    """The textbook rule (``[backtest] rebalancer = "rule"``) trades every account to target: a
    household with restrictions (no_buy, no_hold) needs the optimizer, which honors them."""
    if not len(household.restrictions):
        return
    bad = [Problem("policies", None, name, "[backtest] rebalancer = \"rule\" cannot honor the household's "
                   "restrictions (restrictions.csv): use rebalancer = \"optimizer\"")
           for name, p in policies.items() if p.backtest.rebalancer == "rule"]
    if bad:
        raise ValidationError(bad)


def _with_cash_only(household: Household, policies: dict[str, Policy]) -> dict[str, Policy]:
    """Each optimizer policy of an overlay household with ``[overlay] compare_cash_only`` (the
    default) gets a twin, ``NAME_cash_only``: the same policy with ``instruments = "cash_only"``
    (the contracts held as they are, and rolled), so the overlay's worth shows over time."""
    if not len(household.futures):
        return policies
    out = {}
    for name, p in policies.items():
        out[name] = p
        if p.overlay.instruments == "both" and p.overlay.compare_cash_only and p.backtest.rebalancer == "optimizer":
            if f"{name}_cash_only" in policies:
                raise ValidationError([Problem("policies", None, f"{name}_cash_only", f"is the name of {name!r}'s "
                                               "cash-only twin: choose another, or set [overlay] compare_cash_only "
                                               "= false")])
            out[f"{name}_cash_only"] = dataclasses.replace(
                p, overlay=dataclasses.replace(p.overlay, instruments="cash_only"))
    return out


def _flows(flows: pd.DataFrame | None) -> dict[pd.Timestamp, dict[str, float]]:
    """Checked flows (``parse_flows``) summed by date and account."""
    out: dict[pd.Timestamp, dict[str, float]] = {}
    for row in (flows.itertuples(index=False) if flows is not None else ()):
        day = out.setdefault(pd.Timestamp(row.date), {})
        day[row.account_id] = day.get(row.account_id, 0.0) + float(row.amount)
    return out


class _State:
    """The household between decisions: prices, cash, lots, the year's gains, recent trades."""

    def __init__(self, household: Household, market: Market, margin: np.ndarray) -> None:
        self.household = household
        self.margin = margin  # (J,) initial margin or collateral reserve per contract, currency
        sec = household.securities
        self.ids = sec["security_id"].tolist()
        self.price = sec["price"].to_numpy(float).copy()
        missing = [s for s, liquid in zip(self.ids, sec["liquid"], strict=True)
                   if liquid and s not in market.returns.columns]
        if missing:
            raise ValidationError([Problem(market.source, None, s, "no return series for this liquid security")
                                   for s in missing])
        cols = [s if s in market.returns.columns else None for s in self.ids]
        self.returns = np.column_stack([np.nan_to_num(market.returns[c].to_numpy(float)) if c else
                                        np.zeros(len(market.returns)) for c in cols]) if cols else None
        self.cash_returns = market.returns["cash"].to_numpy(float)
        self.cash = household.accounts["cash"].to_numpy(float).copy()
        self.holdings = household.holdings.copy()
        self.ytd = np.array([float(household.accounts["ytd_short_gain"].sum()),
                             float(household.accounts["ytd_long_gain"].sum())])
        self.transactions: list[dict] = []
        self._shares: np.ndarray | None = None
        self.taxable = np.flatnonzero(household.accounts["type"].to_numpy() == "taxable")
        self._overlay(household, market)

    def _overlay(self, household: Household, market: Market) -> None:
        """The contracts: positions, prices (by their ``underlying``'s series), carrying accounts."""
        fut = household.futures
        self.par = (fut["source"] == "swaps.csv").to_numpy(bool)  # swaps: struck at par again once settled
        self.contracts = fut["position"].to_numpy(float).copy()
        self.fut_price = fut["price"].to_numpy(float).copy()
        self.multiplier = fut["multiplier"].to_numpy(float)
        self.roll_rate = 2 * fut["commission"].to_numpy(float), 2 * fut["half_spread"].to_numpy(float)
        index = {a: i for i, a in enumerate(household.accounts["account_id"])}
        self.fut_account = np.array([index[a] for a in fut["account_id"]], int)
        self.fut_taxable = np.isin(self.fut_account, self.taxable)
        missing = sorted({(u, par) for u, par in zip(fut["underlying"], self.par, strict=True)
                          if u not in market.returns.columns})
        if missing:
            raise ValidationError([Problem(market.source, None, u or "underlying", (
                "no return series for this swap (a swap's own column, named by its swap_id, is its return "
                "per unit notional)") if par else ("no price series for this futures underlying (futures.csv "
                "underlying names the market data column that prices a contract)")) for u, par in missing])
        self.fut_returns = np.column_stack([market.returns[u].to_numpy(float) for u in fut["underlying"]]) \
            if len(fut) else np.zeros((len(market.returns), 0))

    def mark_to_market(self, t: int) -> tuple[float, np.ndarray]:
        """Period t's futures price moves (a swap's return), settled in the carrying accounts' cash
        (variation margin). Returns the P&L in all, and the taxable accounts' short- and long-term
        gains from it (``taxed``)."""
        if not len(self.contracts):
            return 0.0, np.zeros(2)
        move = self.fut_price * np.nan_to_num(self.fut_returns[t])
        pnl = self.contracts * self.multiplier * move
        self.fut_price = np.where(self.par, 1.0, self.fut_price + move)  # a settled swap is at par again
        np.add.at(self.cash, self.fut_account, pnl)
        return float(pnl.sum()), self.taxed(pnl)

    def taxed(self, amount: np.ndarray) -> np.ndarray:
        """(2,) short- and long-term gains of per-contract ``amount`` in the taxable accounts:
        futures are Section 1256 contracts (60% long term, 40% short, marked to market); a swap's
        settlements are ordinary income, taxed here at the short-term rate."""
        split = np.where(self.par[:, None], [1.0, 0.0], SECTION_1256)
        return split[self.fut_taxable].T @ amount[self.fut_taxable]

    def roll(self) -> tuple[float, np.ndarray]:
        """Every futures position rolls into the next contract: both legs pay commission and spread
        (a swap line does not roll). Returns the cost, in all and of the taxable accounts' contracts."""
        commission, spread = self.roll_rate
        cost = np.where(self.par, 0.0, np.abs(self.contracts) * (commission + spread * self.fut_price * self.multiplier))
        np.add.at(self.cash, self.fut_account, -cost)
        return float(cost.sum()), self.taxed(cost)

    def margin_call(self, flows: dict[str, float]) -> bool:
        """Whether a carrying account's cash (after today's flows) is below its minimum plus the
        initial margin of its contracts."""
        if not len(self.contracts):
            return False
        need = np.nan_to_num(self.household.accounts["min_cash"].to_numpy(float))  # a copy
        np.add.at(need, self.fut_account, np.abs(self.contracts) * self.margin)
        flow = np.array([flows.get(a, 0.0) for a in self.household.accounts["account_id"]])
        carrying = np.unique(self.fut_account)
        return bool((self.cash + flow < need - 1e-9)[carrying].any())

    def overlay_row(self, pnl: float) -> dict:
        """The contracts' columns of a ``values`` row: notional held and the date's variation
        margin (none without contracts)."""
        if not len(self.contracts):
            return {}
        return {"futures_notional": float(self.contracts @ (self.fut_price * self.multiplier)), "futures_pnl": pnl}

    def exposure(self, G: np.ndarray) -> np.ndarray:
        """(C,) class exposure of the contracts, currency (G: (J, C) exposure per unit notional)."""
        return G.T @ (self.contracts * self.fut_price * self.multiplier) if len(self.contracts) else 0.0

    def household_at(self, date: pd.Timestamp, flows: dict[str, float], window_days: float) -> Household:
        h = self.household
        sec = h.securities.copy()
        sec["price"] = self.price
        acc = h.accounts.copy()
        acc["cash"] = self.cash
        acc["cash_flow"] = [flows.get(a, 0.0) for a in acc["account_id"]]
        first = self.taxable[0] if len(self.taxable) else 0
        ytd = np.zeros((2, len(acc)))
        ytd[:, first] = self.ytd  # the year's gains are the household's (one tax return)
        acc["ytd_short_gain"], acc["ytd_long_gain"] = ytd[0], ytd[1]
        since = (date - pd.Timedelta(days=window_days)).date()
        recent = [t for t in self.transactions if t["date"] >= since]
        tx = pd.DataFrame(recent, columns=list(h.transactions.columns)) if recent else h.transactions.iloc[:0]
        fut = h.futures
        if len(fut):
            fut = fut.copy()
            fut["price"], fut["position"] = self.fut_price, self.contracts
        return dataclasses.replace(h, securities=sec, accounts=acc, holdings=self.holdings, transactions=tx,
                                   futures=fut)

    @property
    def shares(self) -> np.ndarray:
        """(N,) shares held per security, summed over accounts and lots (cached until ``apply``)."""
        if self._shares is None:
            q = self.holdings.groupby("security_id")["quantity"].sum()
            self._shares = np.array([q.get(s, 0.0) for s in self.ids])
        return self._shares

    def value(self) -> float:
        return float(self.shares @ self.price + self.cash.sum())

    def class_weights(self, X: np.ndarray, G: np.ndarray, value: float) -> np.ndarray:
        """Class weights of ``value`` (X: the (N, C) class membership), the overlay's exposure
        included (G: (J, C) exposure per unit notional)."""
        return (X.T @ (self.shares * self.price) + self.exposure(G)) / value if value else np.zeros(X.shape[1])

    def apply(self, result: RebalanceResult, date: pd.Timestamp) -> np.ndarray:
        """The result's holdings, cash and realized gains become the state; its trades join the
        transaction history (a sale's realized gain per position, for the wash-sale rule).

        As the tax rules do, a taxable buy's costs are added to its new lot's basis and a
        taxable sale's costs are taken from its gain (split over the terms of the lots sold, by
        quantity). Returns the realized (short, long) gains so adjusted."""
        sol = result.solution
        d = sol.data
        cost = position_costs(d, sol.buy_value + sol.sell_value)  # a position is bought or sold, never both
        per_buy = np.divide(cost, sol.buy_q, out=np.zeros_like(cost), where=sol.buy_q > 0)
        per_sell = np.divide(cost, sol.sell_q, out=np.zeros_like(cost), where=sol.sell_q > 0)
        hold = result.holdings_after.copy()
        new = (hold["acquired"] == str(date.date())).to_numpy() & \
            hold["account_id"].isin([d.account_ids[a] for a in d.taxable]).to_numpy()
        if new.any():
            a_idx = {a: k for k, a in enumerate(d.account_ids)}
            i_idx = {s: k for k, s in enumerate(d.security_ids)}
            rows = [(a_idx[a], i_idx[s]) for a, s in zip(hold["account_id"][new], hold["security_id"][new], strict=True)]
            hold.loc[new, "cost_basis"] += per_buy[tuple(np.array(rows).T)]
        hold["acquired"] = [pd.Timestamp(x).date() if x else None for x in hold["acquired"]]
        hold["lot_id"] = hold["lot_id"].replace("", None)
        hold["quantity"] = hold["quantity"].astype(float)
        self.holdings = hold
        self._shares = None
        # Exact cash and gains, not the summary's cents: cents would drift over thousands of decisions.
        self.cash = sol.cash_after.copy()
        if len(self.contracts):
            self.contracts = sol.contracts_q.copy()
        gain = sol.lot_sell_q * (d.lot_gain - per_sell[d.lot_account, d.lot_security])
        realized = np.array([gain[d.lot_short].sum(), gain[~d.lot_short].sum()])
        self.ytd += realized
        by_position = np.zeros((d.A, d.N))
        np.add.at(by_position, (d.lot_account, d.lot_security), gain)
        for a, i in zip(*np.nonzero((sol.buy_q > 0) | (sol.sell_q > 0)), strict=True):
            sell = sol.sell_q[a, i] > 0
            self.transactions.append({
                "account_id": d.account_ids[a], "security_id": d.security_ids[i], "date": date.date(),
                "side": "sell" if sell else "buy", "quantity": float(sol.sell_q[a, i] if sell else sol.buy_q[a, i]),
                "price": float(d.price[i]), "realized_gain": float(by_position[a, i]) if sell else np.nan})
        return realized


def _decide(household: Household, policy: Policy) -> RebalanceResult:
    """One decision by the policy's rebalancer (raises InfeasibilityError like ``rebalance``)."""
    if policy.backtest.rebalancer == "optimizer":
        return rebalance(household, policy)
    data = prepare(household, policy)
    reasons, words, idle = decide_trigger(data, 0.0)
    if idle is not None:
        return idle
    sol = rule_trades(data, policy.backtest.lot_method, whole=not policy.backtest.fractional)
    found = checker.check(sol)
    # The textbook rule knows no wash-sale rule (it trades every account to target): its loss
    # sales count as realized, and the result's notes name the wash sales it made.
    washes = [v for v in found if v.constraint == WASH.name]
    checks = checker.verify(sol, [v for v in found if v.constraint not in (BANDS.name, WASH.name)])
    data.notes.extend(f"the rule made a wash sale: {v.where}" for v in washes)
    return RebalanceResult.build(data, sol, None, checks, reasons, True, 0.0, words)


def _on_date(policy: Policy, mode: str, as_of, fraction: float) -> Policy:
    return dataclasses.replace(policy, trigger=dataclasses.replace(policy.trigger, mode=mode, fraction=fraction),
                               tax=dataclasses.replace(policy.tax, as_of=as_of))


SECTION_1256 = np.array([0.4, 0.6])  # US futures gains: 40% short term, 60% long term


def _run(household: Household, policy: Policy, market: Market, flows: dict, bar, name: str,
         tactical: Tactical) -> PolicyRun:
    policy = tactical.plain  # a decision's signals are written into its household's targets
    signals = bool(tactical.specs)
    data0 = tactical.data  # prepare(household, policy), done once by the Tactical
    ov = data0.overlay  # a future's initial margin; a swap's collateral reserve (domain.overlay_data)
    state = _State(household, market, np.where(household.futures["source"] == "swaps.csv",
                                                ov.margin_rate * ov.notional, household.futures["margin"]))
    classes = list(data0.classes)
    X, G = data0.X, data0.overlay.G
    target_w = np.asarray(data0.bench_target, float)  # security weights of the targets
    target_cash = 1.0 - target_w.sum()
    decision = tactical.at(market.start)  # the signals' values at the start (before it: none)
    if policy.backtest.initial == "target":
        _invest_at_target(state, prepare(tactical.household(household, decision), policy) if signals else data0,
                          market.start)
    periods = PeriodRecorder(tactical, market, X, G)
    periods.decided(decision)
    # The contracts are continuously rolled series: no expiry inside the data, rolls paid on
    # the roll dates; each decision's own cash-only comparison is not needed (the backtest runs
    # its own, over time).
    decide_with = dataclasses.replace(policy, overlay=dataclasses.replace(policy.overlay, horizon=None,
                                                                          compare_cash_only=False))
    mode = policy.trigger.mode
    dates = market.dates
    if mode in ("always", "threshold"):
        checks = set(dates)
    elif mode in ("calendar", "hybrid"):
        checks = set(market.check_dates(policy.trigger.frequency))
    else:
        checks = set()
    on_check = {"calendar": "always", "hybrid": "threshold"}.get(mode, mode)
    rolls = set(market.check_dates(policy.backtest.roll_frequency)) if len(state.contracts) else set()
    phases = policy.backtest.phases
    phase = 0  # the next phase of a phased schedule (0: none under way)

    window = policy.tax.wash_window_days
    accounts = household.accounts["account_id"].tolist()
    min_cash = household.accounts["min_cash"].to_numpy(float)
    events, trades = [], []
    tax_paid = costs = futures_pnl = 0.0
    realized = np.zeros(2)
    year = market.start.year
    start = state.class_weights(X, G, state.value())
    rows = [_row(classes, market.start, state.value(), 0.0, 0.0, 0.0, start, start) | state.overlay_row(0.0)]
    for t, date in enumerate(dates):
        if bar is not None:
            bar.update()
        paid_before, cost_before = tax_paid, costs
        periods.start(state)
        state.price = state.price * (1 + state.returns[t]) if state.returns is not None else state.price
        state.cash = state.cash * (1 + state.cash_returns[t])
        periods.returns(state, t)
        today = dict(flows.get(date, {}))
        if date.year != year:  # a new tax year: settle the last one, carry a net loss forward
            due, state.ytd = _close_year(state.ytd, policy)
            year = date.year
            if policy.backtest.tax_payment == "annual" and due and len(state.taxable):
                payer = household.accounts["account_id"].iloc[state.taxable[0]]
                today[payer] = today.get(payer, 0.0) - due
                tax_paid += due
        pnl, taxed = state.mark_to_market(t)
        futures_pnl += pnl
        if date in rolls and t < len(dates) - 1:
            cost, taxed_cost = state.roll()
            costs += cost
            taxed -= taxed_cost
        state.ytd += taxed  # marked to market: realized as it accrues
        realized += taxed
        external = sum(v for v in flows.get(date, {}).values())
        value_before = state.value() + sum(today.values())
        before = state.class_weights(X, G, value_before)
        called = state.margin_call(today)
        mode_today = on_check if date in checks else "never"
        fraction = policy.trigger.fraction
        phased = phases != (1.0,) and date in checks
        if phased:  # phase k moves phases[k] of the original way: phases[k] / (1 - sum(phases[:k])) of what is left
            fraction = min(1.0, phases[phase] / (1 - sum(phases[:phase])))
            mode_today = "always" if phase else mode_today
        quiet = not today and not called and mode_today == "threshold" and not signals and \
            _inside(state, data0, before, value_before, min_cash)
        if (date in checks or today or called) and t < len(dates) - 1 and not quiet:
            traded = False
            if tactical.active:
                decision = tactical.at(date)
                periods.decided(decision)
            now = state.household_at(date, today, window)
            try:
                result = _decide(tactical.household(now, decision) if signals else now,
                                 _on_date(decide_with, mode_today, date.date(), fraction))
            except ValidationError as exc:  # the simulated household, not the input: say whose and when
                raise ValidationError([Problem("backtest", None, f"{name} on {date.date()}", (
                    f"the household as the backtest carried it cannot be rebalanced: {p.message}"
                    + (" (a flow that day)" if today else ""))) for p in exc.problems]) from exc
            except InfeasibilityError as exc:
                lines = str(exc).splitlines()  # the verdict, then "  - constraint (short by x)" lines
                why = "; ".join(line.strip(" -") for line in lines if line.startswith("  -")) or lines[0]
                events.append({"date": date, "reason": "infeasible: " + why,
                               "traded": 0.0, "cost": 0.0, "tax": 0.0})
                state.cash = state.cash + [today.get(a, 0.0) for a in accounts]  # the flows, untraded
            else:
                tax = float(result.summary["taxes"]["tax_exact"])
                realized += state.apply(result, date)
                if len(state.contracts):  # the contracts' trading costs reduce their taxed gain
                    ov = result.solution.data.overlay
                    taxed_cost = state.taxed(ov.cost_rate * ov.notional * np.abs(result.solution.contracts_traded))
                    state.ytd -= taxed_cost
                    realized -= taxed_cost
                if policy.backtest.tax_payment == "at_sale" and tax and len(state.taxable):
                    state.cash[state.taxable[0]] -= tax
                    tax_paid += tax
                traded = bool(len(result.trades) or np.any(result.solution.contracts_traded))
                if traded:
                    costs += float(result.solution.costs.sum())
                    why = result.summary["trigger"]["reasons"]
                    if mode in ("calendar", "hybrid") and date in checks:  # the engine's calendar, not as_of's
                        why = [f"{policy.trigger.frequency} check date ({mode})",
                               *[w for w in why if not w.startswith("trigger mode")]]
                    if phased:
                        why = [f"phase {phase + 1} of {len(phases)} ({fraction:.0%} of the way left)", *why]
                    if called:
                        why = ["margin call", *why]
                    events.append({"date": date, "reason": "; ".join(why),
                                   "traded": result.solution.traded, "cost": float(result.solution.costs.sum()),
                                   "tax": tax, "value_before": value_before})
                    trades.append(result.trades.assign(date=date))
                    if len(state.contracts):
                        trades.append(_contract_trades(result, state, date))
            if phased and (phase or traded):  # a schedule starts with a trade and runs its phases
                phase = (phase + 1) % len(phases)
        else:
            state.cash = state.cash + [today.get(a, 0.0) for a in accounts]
        value = state.value()
        rows.append(_row(classes, date, value, external, costs - cost_before, tax_paid - paid_before, before,
                         state.class_weights(X, G, value)) | state.overlay_row(pnl))
        periods.end(pnl, costs - cost_before, tax_paid - paid_before)
    values = pd.DataFrame(rows).set_index("date")
    events_df = pd.DataFrame(events, columns=[*EVENT_COLUMNS, "value_before"])
    trades_df = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(columns=["date"])
    market_r = state.returns if state.returns is not None else np.zeros((len(dates), 0))
    target_r = market_r @ target_w + target_cash * state.cash_returns
    stats = _stats(values, events_df, market, target_r, classes)
    due_now = exact_tax(state.ytd[0], state.ytd[1], policy.tax.short_term_rate, policy.tax.long_term_rate) \
        if policy.backtest.tax_payment == "annual" else 0.0
    stats.update(costs=costs, taxes_paid=tax_paid, short_term_gains=float(realized[0]),
                 long_term_gains=float(realized[1]), futures_pnl=futures_pnl,
                 after_tax_value=float(values["value"].iloc[-1] - max(due_now, 0.0) - _liquidation_tax(state, policy, dates[-1])))
    return PolicyRun(values, events_df.drop(columns="value_before"), trades_df, stats, state.holdings,
                     periods.data(values), periods.clip_table)


def _contract_trades(result: RebalanceResult, state: _State, date: pd.Timestamp) -> pd.DataFrame:
    """The decision's futures trades as rows of the trades table (the contract in ``security_id``,
    contracts in ``quantity``, the futures price in ``price``, notional in ``value``)."""
    fut = result.futures
    fut = fut[fut["trade"] != 0]
    j = [state.household.futures["contract_id"].tolist().index(c) for c in fut["contract_id"]]
    price = state.fut_price[j]
    return pd.DataFrame({"account_id": fut["account_id"].to_numpy(), "security_id": fut["contract_id"].to_numpy(),
                         "side": np.where(fut["trade"] > 0, "buy", "sell"),
                         "quantity": np.abs(fut["trade"].to_numpy(float)), "price": price,
                         "value": np.abs(fut["trade"].to_numpy(float)) * price * state.multiplier[j],
                         "cost": fut["cost"].to_numpy(float), "reason": fut["reason"].to_numpy(),
                         "reason_detail": fut["reason_detail"].to_numpy(), "date": date})


def _row(classes: list[str], date, value: float, flow: float, cost: float, tax_paid: float,
         before: np.ndarray, after: np.ndarray) -> dict:
    """One line of ``values``: the date's figures and the class weights before and after trading."""
    return {"date": date, "value": value, "flow": flow, "cost": cost, "tax_paid": tax_paid,
            **{f"before_{c}": w for c, w in zip(classes, before, strict=True)},
            **{f"after_{c}": w for c, w in zip(classes, after, strict=True)}}


def _inside(state: _State, data, weights: np.ndarray, value: float, min_cash: np.ndarray) -> bool:
    """Whether a threshold rule would not trade: the trigger's own test (``targets.outside`` of
    every class and cash, and each account's minimum cash, in currency) on the state's arrays,
    so a quiet date costs no household and no ``prepare``. Only without an overlay or a tilt
    that could expire, whose band edges move."""
    if data.overlay.J or data.tilt.any():
        return False
    x = np.append(weights, float(state.cash.sum()) / value)
    lo, hi = np.append(data.lower, data.cash_lower), np.append(data.upper, data.cash_upper)
    return bool(not outside(x, lo, hi).any() and (state.cash >= min_cash - 1e-9).all())


def _close_year(ytd: np.ndarray, policy: Policy) -> tuple[float, np.ndarray]:
    """The year's exact tax, and the carry-forward that starts the next year: a net loss keeps
    its character (both terms negative carry both; otherwise the net of the two, in the term of
    the larger loss)."""
    short, long = float(ytd[0]), float(ytd[1])
    tax = exact_tax(short, long, policy.tax.short_term_rate, policy.tax.long_term_rate)
    if short < 0 and long < 0:
        carry = np.array([short, long])
    elif short + long < 0:
        carry = np.array([short + long, 0.0]) if short < 0 else np.array([0.0, short + long])
    else:
        carry = np.zeros(2)
    return tax, carry


def _liquidation_tax(state: _State, policy: Policy, date: pd.Timestamp) -> float:
    """The tax of selling every taxable lot at the end, netted with the year's gains (the part
    beyond the tax those gains owe alone)."""
    hol = state.holdings
    if not len(state.taxable) or not len(hol):
        return 0.0
    taxable_ids = set(state.household.accounts["account_id"].iloc[state.taxable])
    lots = hol[hol["account_id"].isin(taxable_ids)]
    if not len(lots):
        return 0.0
    price = dict(zip(state.ids, state.price, strict=True))
    gain = lots["quantity"].to_numpy(float) * (lots["security_id"].map(price).to_numpy(float)
                                               - lots["cost_basis"].fillna(0.0).to_numpy(float))
    acquired = np.array([np.datetime64(a) if a is not None else np.datetime64(date.date()) for a in lots["acquired"]],
                        dtype="datetime64[D]")
    short = ~long_term(acquired, date.date())
    t = policy.tax
    s, lg = float(gain[short].sum()), float(gain[~short].sum())
    return (exact_tax(state.ytd[0] + s, state.ytd[1] + lg, t.short_term_rate, t.long_term_rate)
            - exact_tax(state.ytd[0], state.ytd[1], t.short_term_rate, t.long_term_rate))


def _invest_at_target(state: _State, data, start: pd.Timestamp) -> None:
    """Each account's value invested at the target weights at the start prices, no cost: new
    lots acquired on the start date at the start price (fractional shares)."""
    rows = []
    weights = np.asarray(data.bench_target, float)
    total = (data.q0 * data.price).sum(1) + data.cash_cur
    for a, aid in enumerate(data.account_ids):
        q = weights * total[a] / data.price
        for i in np.flatnonzero(q > 0):
            taxable = a in data.taxable
            rows.append({"account_id": aid, "security_id": data.security_ids[i], "quantity": float(q[i]),
                         "lot_id": f"start-{data.security_ids[i]}" if taxable else None,
                         "cost_basis": float(data.price[i]) if taxable else np.nan,
                         "acquired": start.date() if taxable else None})
    state.holdings = pd.DataFrame(rows, columns=list(state.household.holdings.columns))
    state._shares = None
    state.cash = total * (1 - weights.sum())


def _stats(values: pd.DataFrame, events: pd.DataFrame, market: Market, target_r: np.ndarray,
           classes: list[str]) -> dict:
    v = values["value"].to_numpy(float)
    flow = values["flow"].to_numpy(float)
    r = (v[1:] - flow[1:]) / v[:-1] - 1
    periods = len(r)
    P = market.periods_per_year
    years = periods / P
    wealth = np.r_[1.0, np.cumprod(1 + r)]
    drawdown = wealth / np.maximum.accumulate(wealth) - 1
    turnover = float((events["traded"] / (2 * events["value_before"])).sum() / years) if len(events) else 0.0
    return {
        "events": int((~events["reason"].str.startswith("infeasible")).sum()) if len(events) else 0,
        "final_value": float(v[-1]),
        "ann_return": float(wealth[-1] ** (1 / years) - 1) if years else 0.0,
        "ann_vol": float(np.std(r, ddof=1) * math.sqrt(P)) if periods > 1 else 0.0,
        "max_drawdown": float(drawdown.min()),
        "turnover": turnover,
        "tracking_error": float(np.std(r - target_r, ddof=1) * math.sqrt(P)) if periods > 1 else 0.0,
        "avg_weights": {c: float(values[f"before_{c}"].iloc[1:].mean()) for c in classes},
    }
