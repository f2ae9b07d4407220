"""Return attribution (scenarios.attribution): the pieces add up to each period's return
exactly, with signals, an overlay, costs and taxes; the policy piece is the strategic mix's
return computed independently; a hand-made two-period example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import Policy, load_case
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.attribution import PeriodData, attribute
from cvxrebalance.scenarios.backtests import backtest
from cvxrebalance.scenarios.market import load_market


def policy_with(policy: Policy, **sections) -> Policy:
    data = policy.to_dict()
    for name, changes in sections.items():
        data[name] = changes if name == "signals" else {**data[name], **changes}
    return Policy.from_dict(data)


def adds_up(attribution) -> float:
    p = attribution.periods
    return float((p.drop(columns="total").sum(axis=1) - p["total"]).abs().max())


def test_the_pieces_add_up_with_signals_and_costs():
    case = case_path("us_stocks_bonds_monthly")
    household, policy = load_case(case)
    market = load_market(case)
    tilted = policy_with(policy, trigger={"mode": "calendar", "frequency": "monthly"},
                         signals={"mom": {"kind": "momentum", "classes": ["us_equity"], "funded_by": ["bonds"],
                                          "size": 0.05},
                                  "trend": {"kind": "trend", "classes": ["us_equity"], "window": 6}})
    result = backtest(household, {"plain": policy, "tilted": tilted}, market, start="1929-06-30", end="1934-12-31")
    plain, signals = result.attribution("plain"), result.attribution("tilted")
    assert adds_up(plain) < 1e-14 and adds_up(signals) < 1e-14
    assert list(signals.periods.columns) == ["policy", "mom", "trend", "drift", "selection",
                                             "overlay", "costs", "taxes", "total"]
    assert signals.periods["costs"].sum() < 0
    # The total is the backtest's own period return.
    v = result.runs["tilted"].values
    assert signals.periods["total"].to_numpy() == pytest.approx((v["value"] / v["value"].shift() - 1).iloc[1:])
    # The policy piece is the strategic 60/38/2 mix's return, computed here from the data.
    r = market.window("1929-06-30", "1934-12-31").returns
    strategic = 0.60 * r["US_STOCKS"] + 0.38 * r["US_BONDS"] + 0.02 * r["cash"]
    assert signals.periods["policy"].to_numpy() == pytest.approx(strategic.to_numpy(), abs=1e-15)
    # Per class, each allocation piece sums to its total.
    for piece in ("mom", "trend", "drift", "selection"):
        assert signals.by_class.loc[piece].sum() == pytest.approx(signals.periods[piece].sum(), abs=1e-14)
    table = signals.table
    assert table.loc["total", "sum"] == pytest.approx(table.drop(index="total")["sum"].sum(), abs=1e-13)


def test_the_overlay_piece_and_taxes_add_up_too():
    case = case_path("overlay_monthly")
    household, policy = load_case(case)
    result = backtest(household, policy, load_market(case), end="1930-12-31")
    for name in result.runs:
        a = result.attribution(name)
        assert adds_up(a) < 1e-14
    assert result.attribution("policy").periods["overlay"].abs().sum() > 0
    assert (result.attribution("policy_cash_only").periods["overlay"] == 0).all()
    assert result.attribution("policy_cash_only").periods["taxes"].sum() < 0  # taxes paid each January


def test_a_two_period_example_by_hand():
    """Strategic 50/50 A/B, no cash. Period 1: held 60/40 with a +10% tilt from signal s;
    A +10%, B 0% (benchmark); the household's A earned 12%. Policy 5%; s: 0.1 x (0.10 - 0.05)
    - 0.1 x (0 - 0.05) = 1%; drift 0; selection 0.6 x 2% = 1.2%; cost $100 on $1,000 = -10%."""
    p = PeriodData(
        dates=pd.DatetimeIndex(["2020-01-31"]), classes=["A", "B", "cash"], periods_per_year=12,
        value_before=np.array([1000.0]), weights=np.array([[0.6, 0.4, 0.0]]), overlay=np.zeros((1, 3)),
        held_returns=np.array([[0.12, 0.0, 0.0]]), bench_returns=np.array([[0.10, 0.0, 0.0]]),
        strategic=np.array([0.5, 0.5, 0.0]), tilts={"s": np.array([[0.1, -0.1, 0.0]])},
        futures_pnl=np.zeros(1), costs=np.array([100.0]), taxes=np.zeros(1), net_return=np.array([0.072 - 0.1]))
    a = attribute(p)
    row = a.periods.iloc[0]
    assert row[["policy", "s", "drift", "selection", "costs"]].tolist() == pytest.approx([0.05, 0.01, 0.0, 0.012, -0.1])
    assert row.drop("total").sum() == pytest.approx(row["total"])
