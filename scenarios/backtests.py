"""Backtests: a household carried through a market history, rebalanced by the real pipeline.

Conventions (what users compare against; docs/backtests.md):

- Start: at the market's start the household is as given, its prices the starting prices (with
  ``[backtest] initial = "target"`` each account is first invested at the targets, no cost).
- Period t: holdings and cash earn period t's returns (a security without a series keeps its
  price, as does one before its series starts); flows of date t arrive (``flows``: date,
  account_id, amount); then the decision at the end of period t, whose trades hold over period
  t + 1. The first decision is at the end of the first period; none on the last date.
- Decision dates: every date for ``always`` and ``threshold``, the check dates of ``[trigger]
  frequency`` for ``calendar`` and ``hybrid`` (``Market.check_dates``), none for ``never``; a
  date with a flow or a tax payment is a decision date too (the trigger then trades only what a
  rule forces: a withdrawal is funded, a contribution waits in cash for the next check date).
- The rebalancer is ``[backtest] rebalancer``: the optimizer (``rebalance``, every rule and
  cost, whole shares) or the mechanical rule (``scenarios.rule``). Every result passes the
  checker; an infeasible date is an event with its reason and no trade. The textbook rule knows
  no wash-sale rule: its wash sales are named in the result's notes and its losses count as
  realized (the optimizer never makes one).
- Lots: each buy opens a lot at its price and date (``RebalanceResult.holdings_after``); sales
  relieve lots as the rebalancer chose; the year's realized gains (by term) are passed to each
  rebalance as year-to-date gains, and the backtest's own trades as transactions (wash sales).
- Taxes: ``[backtest] tax_payment = "annual"``: the year's tax under the exact netting rules is
  paid from the first taxable account on the first date of the next year, and a net loss is
  carried forward (its character kept) into the next year's year-to-date gains; ``"at_sale"``:
  each rebalance's incremental tax is paid at once (a negative one refunded). The after-tax value
  at the end is the value less the tax still due and the tax of selling every taxable lot.
- Statistics per policy (``STATS``): period returns are (V_t - flows_t) / V_{t-1} - 1, with V
  after the date's trades; annualized return (prod(1 + r))^(P/T) - 1; volatility std(r, ddof=1)
  sqrt(P); maximum drawdown of the wealth index, the start included; turnover per year: sum over
  events of traded / (2 x pre-trade value), over T / P years; tracking error: std(r - r_target,
  ddof=1) sqrt(P), r_target the return of the target weights held constant.
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
from cvxrebalance.optimizer.domain.targets import outside
from cvxrebalance.optimizer.pipeline import checker
from cvxrebalance.optimizer.pipeline.rebalance import decide_trigger, rebalance
from cvxrebalance.optimizer.pipeline.result import RebalanceResult
from cvxrebalance.scenarios.market import Market
from cvxrebalance.scenarios.rule import rule_trades

STATS = ["events", "final_value", "ann_return", "ann_vol", "max_drawdown", "turnover", "costs",
         "taxes_paid", "short_term_gains", "long_term_gains", "tracking_error", "after_tax_value"]
EVENT_COLUMNS = ["date", "reason", "traded", "cost", "tax"]


@dataclass
class PolicyRun:
    """One policy's path: ``values`` (date x value, flow, cost, tax_paid, and per class
    ``before_<class>`` / ``after_<class>`` weights), ``events`` (``EVENT_COLUMNS``), ``trades`` (every trade with its
    date) and ``stats`` (``STATS`` plus ``avg_weights`` per class)."""

    values: pd.DataFrame
    events: pd.DataFrame
    trades: pd.DataFrame
    stats: dict


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
             start=None, end=None, flows: pd.DataFrame | None = None, progress: bool = False) -> BacktestResult:
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
    if start is not None or end is not None:
        market = market.window(start, end)
    policies = {"policy": policies} if isinstance(policies, Policy) else dict(policies)
    flow_table = _flows(flows, market, household)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(policies) * len(market.dates), unit="date", desc="backtesting", smoothing=0.1)
    try:
        runs = {name: _run(household, p, market, flow_table, bar) for name, p in policies.items()}
    finally:
        if bar is not None:
            bar.close()
    return BacktestResult(runs, market)


def _flows(flows: pd.DataFrame | None, market: Market, household: Household) -> dict[pd.Timestamp, dict[str, float]]:
    out: dict[pd.Timestamp, dict[str, float]] = {}
    if flows is None or not len(flows):
        return out
    accounts = set(household.accounts["account_id"])
    dates = set(market.dates)
    problems = []
    for line, row in zip(range(2, len(flows) + 2), flows.itertuples(index=False), strict=True):
        day = pd.Timestamp(row.date)
        if day not in dates:
            problems.append(Problem("flows.csv", line, "date", f"{day.date()} is not a date of the market data"))
        if row.account_id not in accounts:
            problems.append(Problem("flows.csv", line, "account_id", f"unknown account {row.account_id!r}"))
        out.setdefault(day, {})
        out[day][row.account_id] = out[day].get(row.account_id, 0.0) + float(row.amount)
    if problems:
        raise ValidationError(problems)
    return out


class _State:
    """The household between decisions: prices, cash, lots, the year's gains, recent trades."""

    def __init__(self, household: Household, market: Market) -> None:
        self.household = household
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
        return dataclasses.replace(h, securities=sec, accounts=acc, holdings=self.holdings, transactions=tx)

    @property
    def shares(self) -> np.ndarray:
        """(N,) shares held per security, summed over accounts and lots (cached until ``apply``)."""
        if self._shares is None:
            q = self.holdings.groupby("security_id")["quantity"].sum()
            self._shares = np.array([q.get(s, 0.0) for s in self.ids])
        return self._shares

    def value(self) -> float:
        return float(self.shares @ self.price + self.cash.sum())

    def class_weights(self, X: np.ndarray, value: float) -> np.ndarray:
        """Class weights of ``value`` (X: the (N, C) class membership)."""
        return X.T @ (self.shares * self.price) / value if value else np.zeros(X.shape[1])

    def apply(self, result: RebalanceResult, date: pd.Timestamp) -> None:
        """The result's holdings, cash and realized gains become the state; its trades join the
        transaction history (a sale's realized gain per position, for the wash-sale rule)."""
        hold = result.holdings_after.copy()
        hold["acquired"] = [pd.Timestamp(x).date() if x else None for x in hold["acquired"]]
        hold["lot_id"] = hold["lot_id"].replace("", None)
        hold["quantity"] = hold["quantity"].astype(float)
        self.holdings = hold
        self._shares = None
        # Exact cash, not the summary's cents: the cents would drift over thousands of decisions.
        self.cash = result.solution.cash_after.copy()
        taxes = result.summary["taxes"]
        self.ytd += [taxes["short_term_gain"], taxes["long_term_gain"]]
        lots = result.lots
        gain = lots.groupby(["account_id", "security_id"])["gain"].sum() if len(lots) else pd.Series(dtype=float)
        for t in result.trades.itertuples():
            self.transactions.append({
                "account_id": t.account_id, "security_id": t.security_id, "date": date.date(), "side": t.side,
                "quantity": float(t.quantity), "price": float(t.price),
                "realized_gain": float(gain.get((t.account_id, t.security_id), 0.0)) if t.side == "sell" else np.nan})


def _decide(household: Household, policy: Policy) -> RebalanceResult:
    """One decision by the policy's rebalancer (raises InfeasibilityError like ``rebalance``)."""
    if policy.backtest.rebalancer == "optimizer":
        return rebalance(household, policy)
    data = prepare(household, policy)
    reasons, idle = decide_trigger(data, 0.0)
    if idle is not None:
        return idle
    sol = rule_trades(data, policy.backtest.lot_method, whole=not policy.backtest.fractional)
    found = checker.check(sol)
    # The textbook rule knows no wash-sale rule (it trades every account to target): its loss
    # sales count as realized, and the result's notes name the wash sales it made.
    washes = [v for v in found if v.constraint == WASH.name]
    checks = checker.verify(sol, [v for v in found if v.constraint not in (BANDS.name, WASH.name)])
    data.notes.extend(f"the rule made a wash sale: {v.where}" for v in washes)
    return RebalanceResult.build(data, sol, None, checks, reasons, True, 0.0)


def _on_date(policy: Policy, mode: str, as_of) -> Policy:
    return dataclasses.replace(policy, trigger=dataclasses.replace(policy.trigger, mode=mode),
                               tax=dataclasses.replace(policy.tax, as_of=as_of))


def _run(household: Household, policy: Policy, market: Market, flows: dict, bar=None) -> PolicyRun:
    state = _State(household, market)
    data0 = prepare(household, policy)
    classes = list(data0.classes)
    X = data0.X
    target_w = np.asarray(data0.bench_target, float)  # security weights of the targets
    target_cash = 1.0 - target_w.sum()
    if policy.backtest.initial == "target":
        _invest_at_target(state, data0, market.start)
    mode = policy.trigger.mode
    dates = market.dates
    if mode in ("always", "threshold"):
        checks = set(dates)
    elif mode in ("calendar", "hybrid"):
        checks = set(market.check_dates(policy.trigger.frequency))
    else:
        checks = set()
    on_check = {"calendar": "always", "hybrid": "threshold"}.get(mode, mode)

    def on_check_mode(date: pd.Timestamp) -> str:
        return on_check if date in checks else "never"

    window = policy.tax.wash_window_days
    accounts = household.accounts["account_id"].tolist()
    min_cash = household.accounts["min_cash"].to_numpy(float)
    events, trades = [], []
    tax_paid = costs = 0.0
    realized = np.zeros(2)
    year = market.start.year
    start = state.class_weights(X, state.value())
    rows = [_row(classes, market.start, state.value(), 0.0, 0.0, 0.0, start, start)]
    for t, date in enumerate(dates):
        if bar is not None:
            bar.update()
        paid_before, cost_before = tax_paid, costs
        state.price = state.price * (1 + state.returns[t]) if state.returns is not None else state.price
        state.cash = state.cash * (1 + state.cash_returns[t])
        today = dict(flows.get(date, {}))
        if date.year != year:  # a new tax year: settle the last one, carry a net loss forward
            due, state.ytd = _close_year(state.ytd, policy)
            year = date.year
            if policy.backtest.tax_payment == "annual" and due and len(state.taxable):
                payer = household.accounts["account_id"].iloc[state.taxable[0]]
                today[payer] = today.get(payer, 0.0) - due
                tax_paid += due
        external = sum(v for v in flows.get(date, {}).values())
        value_before = state.value() + sum(today.values())
        before = state.class_weights(X, value_before)
        mode_today = on_check_mode(date)
        quiet = not today and mode_today == "threshold" and _inside(state, data0, before, value_before, min_cash)
        if (date in checks or today) and t < len(dates) - 1 and not quiet:
            try:
                result = _decide(state.household_at(date, today, window), _on_date(policy, mode_today, date.date()))
            except InfeasibilityError as exc:
                events.append({"date": date, "reason": "infeasible: " + str(exc).splitlines()[0],
                               "traded": 0.0, "cost": 0.0, "tax": 0.0})
                state.cash = state.cash + [today.get(a, 0.0) for a in accounts]  # the flows, untraded
            else:
                tax = float(result.summary["taxes"]["tax_exact"])
                state.apply(result, date)
                realized += [result.summary["taxes"]["short_term_gain"], result.summary["taxes"]["long_term_gain"]]
                if policy.backtest.tax_payment == "at_sale" and tax and len(state.taxable):
                    state.cash[state.taxable[0]] -= tax
                    tax_paid += tax
                if len(result.trades):
                    costs += float(result.solution.costs.sum())
                    why = result.summary["trigger"]["reasons"]
                    if mode in ("calendar", "hybrid") and date in checks:  # the engine's calendar, not as_of's
                        why = [f"{policy.trigger.frequency} check date ({mode})",
                               *[w for w in why if not w.startswith("trigger mode")]]
                    events.append({"date": date, "reason": "; ".join(why),
                                   "traded": result.solution.traded, "cost": float(result.solution.costs.sum()),
                                   "tax": tax, "value_before": value_before})
                    trades.append(result.trades.assign(date=date))
        else:
            state.cash = state.cash + [today.get(a, 0.0) for a in accounts]
        value = state.value()
        rows.append(_row(classes, date, value, external, costs - cost_before, tax_paid - paid_before, before,
                         state.class_weights(X, value)))
    values = pd.DataFrame(rows).set_index("date")
    events_df = pd.DataFrame(events, columns=[*EVENT_COLUMNS, "value_before"])
    trades_df = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(columns=["date"])
    market_r = state.returns if state.returns is not None else np.zeros((len(dates), 0))
    target_r = market_r @ target_w + target_cash * state.cash_returns
    stats = _stats(values, events_df, market, target_r, classes)
    due_now = exact_tax(state.ytd[0], state.ytd[1], policy.tax.short_term_rate, policy.tax.long_term_rate) \
        if policy.backtest.tax_payment == "annual" else 0.0
    stats.update(costs=costs, taxes_paid=tax_paid, short_term_gains=float(realized[0]),
                 long_term_gains=float(realized[1]),
                 after_tax_value=float(values["value"].iloc[-1] - max(due_now, 0.0) - _liquidation_tax(state, policy, dates[-1])))
    return PolicyRun(values, events_df.drop(columns="value_before"), trades_df, stats)


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
        "events": int(len(events)),
        "final_value": float(v[-1]),
        "ann_return": float(wealth[-1] ** (1 / years) - 1) if years else 0.0,
        "ann_vol": float(np.std(r, ddof=1) * math.sqrt(P)) if periods > 1 else 0.0,
        "max_drawdown": float(drawdown.min()),
        "turnover": turnover,
        "tracking_error": float(np.std(r - target_r, ddof=1) * math.sqrt(P)) if periods > 1 else 0.0,
        "avg_weights": {c: float(values[f"before_{c}"].iloc[1:].mean()) for c in classes},
    }
