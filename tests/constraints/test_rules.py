"""Illiquid, ESG, location, turnover, tactical and cash rules: each holds in the optimized result,
and the independent checker catches each one when a result is tampered with."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import policy, two_account_household

from cvxrebalance import check, rebalance
from cvxrebalance.optimizer.domain.solution import Solution

BASE = {"bands": {"rule": "none"}, "objective": {"tax_weight": 1.0}}


@pytest.fixture(scope="module")
def result():
    return rebalance(two_account_household(), policy(**BASE))


def test_result_passes_checker(result):
    assert check(result.solution) == []


def test_illiquid_never_traded(result):
    assert "PE" not in set(result.trades["security_id"])


def test_esg_excluded_never_bought_and_sold_down_on_request(result):
    assert not ((result.trades["security_id"] == "SIN") & (result.trades["side"] == "buy")).any()
    sold = rebalance(two_account_household(), policy(**BASE, esg={"excluded": "sell"}))
    t = sold.trades.set_index(["security_id", "side"])
    assert t.loc[("SIN", "sell"), "quantity"] == 200


def test_esg_min_score_binds():
    # The score of held EQ/SIN/BD/... is below 6.5; EQ2 (7) must replace some of it.
    free = rebalance(two_account_household(), policy(**BASE))
    bound = rebalance(two_account_household(), policy(**BASE, esg={"min_score": 6.2}))
    w = bound.solution.weights_after()
    s = bound.solution.data.column("esg_score").astype(float)
    scored = ~np.isnan(s)
    assert np.nansum(s * w) / w[scored].sum() >= 6.2 - 1e-6
    assert bound.summary["objective"]["value"] >= free.summary["objective"]["value"] - 1e-12


def test_location_muni_only_bought_in_taxable():
    # Make MUNI the only cheap bond so the optimizer wants it; the IRA may still not buy it.
    h = two_account_household()
    sec = h.securities.copy()
    sec.loc[sec["security_id"] == "BD", "half_spread"] = 0.01
    sec.loc[sec["security_id"] == "MUNI", "half_spread"] = 0.0
    r = rebalance(replace(h, securities=sec), policy(**BASE))
    buys = r.trades.query("security_id == 'MUNI' and side == 'buy'")
    assert not buys.empty and set(buys["account_id"]) == {"tax"}


def test_turnover_limit_binds():
    free = rebalance(two_account_household(), policy(**BASE))
    limit = free.summary["turnover"] / 2
    r = rebalance(two_account_household(), policy(**BASE, limits={"turnover": limit}))
    assert r.summary["turnover"] <= limit + 1e-9
    assert r.summary["tracking_error"]["after"] > free.summary["tracking_error"]["after"]


def test_tactical_tilt_moves_target_and_expired_tilt_reverts():
    targets = [
        {"asset_class": "us_equity", "weight": 0.55, "tilt": 0.03, "max_tilt": 0.05},
        {"asset_class": "bonds", "weight": 0.35, "tilt": -0.03, "max_tilt": 0.05},
        {"asset_class": "private_equity", "weight": 0.07},
        {"asset_class": "cash", "weight": 0.03},
    ]
    tilted = rebalance(two_account_household(targets=targets), policy(**BASE))
    assert tilted.asset_classes.loc["us_equity", "target"] == pytest.approx(0.58)
    expired = [dict(t, tilt_expires="2026-10-01") for t in targets]
    reverted = rebalance(two_account_household(targets=expired), policy(**BASE))
    assert reverted.asset_classes.loc["us_equity", "target"] == pytest.approx(0.55)
    assert any("expired" in n for n in reverted.summary["notes"])
    assert tilted.asset_classes.loc["us_equity", "after"] > reverted.asset_classes.loc["us_equity", "after"]


def test_withdrawal_is_funded_and_min_cash_kept():
    h = two_account_household()
    acc = h.accounts.copy()
    acc.loc[acc["account_id"] == "tax", "cash_flow"] = -20_000.0
    r = rebalance(replace(h, accounts=acc), policy(**BASE))
    a = r.summary["accounts"]["tax"]
    assert a["cash_after"] >= 1_000 - 0.01
    assert a["value_after"] == pytest.approx(a["value_before"] - 20_000 - a["costs"], abs=0.02)


def tamper(sol: Solution, **changes) -> Solution:
    arrays = {"buy_q": sol.buy_q.copy(), "sell_q": sol.sell_q.copy(), "lot_sell_q": sol.lot_sell_q.copy()}
    for name, (index, value) in changes.items():
        arrays[name][index] = value
    return Solution(sol.data, **arrays)


@pytest.mark.parametrize(
    ("changes", "family"),
    [
        ({"buy_q": ((1, 4), 10.0)}, "illiquid"),  # buy PE in the IRA
        ({"buy_q": ((0, 5), 10.0)}, "esg"),  # buy SIN
        ({"buy_q": ((1, 3), 10.0)}, "location"),  # buy MUNI in the IRA
        ({"sell_q": ((1, 2), 5000.0)}, "holdings"),  # sell more BD than held: short
        ({"buy_q": ((0, 1), 2000.0)}, "cash"),  # spend cash the taxable account lacks
    ],
)
def test_checker_catches_tampering(result, changes, family):
    bad = tamper(result.solution, **changes)
    assert family in {v.constraint for v in check(bad)}


def test_checker_catches_oversold_lot(result):
    sol = result.solution
    d = sol.data
    lots = sol.lot_sell_q.copy()
    k = d.lot_ids.index("EQ-old")
    lots[k] = 5000  # the 1000-share lot
    sell = sol.sell_q.copy()
    sell[0, 0] = lots[(d.lot_account == 0) & (d.lot_security == 0)].sum()
    bad = Solution(d, sol.buy_q, sell, lots)
    assert any("EQ-old" in v.where and v.constraint == "holdings" for v in check(bad))


def test_checker_rejects_a_round_trip(result):
    """One share bought and one sold in the same account and security passes every other rule
    (cash and values still add up), but it only costs: the checker rejects it."""
    sol = result.solution
    d = sol.data
    a = 1  # the IRA: no lots to keep in step
    i = next(i for i in range(d.N) if sol.buy_q[a, i] >= 1 and sol.sell_q[a, i] == 0)
    bad = tamper(sol, sell_q=((a, i), 1.0))  # also sell one share of a position it buys
    found = [v for v in check(bad) if v.constraint == "holdings" and "round trip" in v.where]
    assert len(found) == 1


@pytest.mark.parametrize("case", ["example", "seed_portfolio", "overlay", "tax_aware", "four_accounts"])
def test_summary_costs_are_the_trades_costs(case):
    from cvxrebalance import load_case
    from cvxrebalance.scenarios import case_path

    r = rebalance(*load_case(case_path(case)))
    per_trade = r.trades["cost"].sum()
    futures = r.futures["cost"].sum() if len(r.futures) else 0.0
    # Each trade's cost is rounded to cents; the summary rounds the exact total.
    assert abs(r.summary["costs"] - (per_trade + futures)) <= 0.005 * (len(r.trades) + len(r.futures)) + 0.01


def test_threshold_trigger_trades_when_not_trading_breaks_another_rule():
    """No band is broken (wide bands), but the holdings miss the ESG minimum: a threshold
    trigger must still trade (it used to return the no-trade list, which the checker rejected)."""
    wide = {"bands": {"rule": "absolute", "absolute": 0.5}, "trigger": {"mode": "threshold"}}
    quiet = rebalance(two_account_household(), policy(**wide))
    assert not quiet.summary["rebalanced"]
    r = rebalance(two_account_household(), policy(**wide, esg={"min_score": 6.2}))
    assert r.summary["rebalanced"] and r.summary["checks"]["passed"]
    assert any("esg" in reason for reason in r.summary["trigger"]["reasons"])
