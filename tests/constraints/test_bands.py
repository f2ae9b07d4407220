"""Band rules, the trigger and rebalance-to-tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from builders import policy

from cvxrebalance import rebalance
from cvxrebalance.optimizer.domain.policy import Bands
from cvxrebalance.optimizer.domain.targets import band_edges


@pytest.mark.parametrize(
    ("target", "lower", "upper"),
    [
        (0.60, 0.55, 0.65),  # 5 points bind above the 20% crossover
        (0.25, 0.20, 0.30),
        (0.20, 0.15, 0.25),  # the crossover: 5 points == 25% of 20%
        (0.16, 0.12, 0.20),  # below it the 25% relative rule binds
        (0.10, 0.075, 0.125),
        (0.05, 0.0375, 0.0625),
    ],
)
def test_five_twenty_five(target, lower, upper):
    lo, hi = band_edges(np.array([target]), Bands(rule="5/25"))
    assert lo[0] == pytest.approx(lower) and hi[0] == pytest.approx(upper)


def test_absolute_relative_none_and_clipping():
    t = np.array([0.6, 0.02])
    lo, hi = band_edges(t, Bands(rule="absolute", absolute=0.05))
    assert np.allclose(lo, [0.55, 0.0]) and np.allclose(hi, [0.65, 0.07])  # clipped at 0
    lo, hi = band_edges(t, Bands(rule="relative", relative=0.10))
    assert np.allclose(lo, [0.54, 0.018]) and np.allclose(hi, [0.66, 0.022])  # seed: 60% -> 54/66
    lo, hi = band_edges(t, Bands(rule="none"))
    assert np.allclose(lo, 0) and np.allclose(hi, 1)


def test_threshold_inside_bands_means_no_trades(seed_household):
    # Stocks 63.97%, bonds 31.56%, real estate 4.47%: inside 10-point absolute bands.
    result = rebalance(seed_household, policy(bands={"rule": "absolute", "absolute": 0.10},
                                              trigger={"mode": "threshold"}))
    assert result.trades.empty and not result.summary["rebalanced"]
    assert "inside its band" in result.to_text()
    assert result.summary["checks"]["passed"]


def test_threshold_outside_band_trades(seed_household):
    # Real estate 4.47% is outside 10% +/- 5 points: the trigger fires.
    result = rebalance(seed_household, policy(bands={"rule": "absolute"}, trigger={"mode": "threshold"}))
    assert result.summary["rebalanced"] and not result.trades.empty
    assert any("real_estate" in r for r in result.summary["trigger"]["reasons"])


@pytest.mark.parametrize("inner", [0.0, 0.5, 1.0])
def test_rebalance_to_tolerance_stops_at_inner_band(seed_household, inner):
    # Real estate at 4.47% broke its lower edge 5%; target 10%. Tolerance mode pulls it to the
    # inner band edge 10% - inner * 5 points, not to target; classes inside their band may stay.
    p = policy(bands={"rule": "absolute", "absolute": 0.05, "inner": inner},
               trigger={"mode": "threshold", "rebalance_to": "tolerance"})
    result = rebalance(seed_household, p)
    after = result.asset_classes["after"]
    edge = 0.10 - inner * 0.05
    # Within a few shares of VNQ (85 / 1.9M = 4.5e-5 each): a repair may move it one share inward.
    assert after["real_estate"] == pytest.approx(edge, abs=2e-4)
    full = rebalance(seed_household, policy(bands={"rule": "absolute"}))
    assert result.summary["turnover"] <= full.summary["turnover"] + 1e-9


def test_asymmetric_band_from_targets_file(seed_household):
    from dataclasses import replace

    t = seed_household.targets.copy()
    t.loc[t["id"] == "stocks", ["lower", "upper"]] = [0.50, 0.61]
    h = replace(seed_household, targets=t)
    # Tracking would sit near 60%; with a huge cost weight the band is what forces the trade.
    result = rebalance(h, policy(bands={"rule": "none"}, objective={"risk_weight": 1e-6},
                                 trigger={"mode": "always"}))
    assert result.asset_classes.loc["stocks", "upper"] == 0.61
    assert result.asset_classes.loc["stocks", "after"] <= 0.61 + 1e-7
    assert result.asset_classes.loc["stocks", "after"] > 0.60  # trades only to the edge


def test_rule_none_lets_a_hedge_round_to_the_nearest_contract_and_exposure_floor_keeps_it_above_zero():
    """A full hedge of $1.08M of equity (target 0%) with $300,000 contracts: 4 short leave -$120,000
    (-2.9% of $4.2M), 3 short leave +$180,000 (+4.3%). With rule "none" there is no band, so the
    nearest contract wins (-4, exposure below 0, as the textbook hedge rounds); ``exposure_floor``
    keeps the class's exposure in [0, 1], so -3."""
    from builders import household

    from cvxrebalance import check

    h = household(
        securities=[{"security_id": "EQ", "asset_class": "equity", "price": 100.0},
                    {"security_id": "BD", "asset_class": "bonds", "price": 100.0}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": 120_000.0}],
        holdings=[{"account_id": "tax", "security_id": "EQ", "quantity": 10_800, "lot_id": "e",
                   "cost_basis": 10.0, "acquired": "2015-01-05"},
                  {"account_id": "tax", "security_id": "BD", "quantity": 30_000, "lot_id": "b",
                   "cost_basis": 100.0, "acquired": "2015-01-05"}],
        targets=[{"asset_class": "equity", "weight": 0.0}, {"asset_class": "bonds", "weight": 30_000 * 100 / 4.2e6},
                 {"asset_class": "cash", "weight": 1 - 30_000 * 100 / 4.2e6}],
        futures=[{"contract_id": "ES", "price": 6000.0, "multiplier": 50.0, "account_id": "tax",
                  "asset_class": "equity", "exposure": 1.0}])
    base = {"overlay": {"instruments": "overlay_only", "margin_buffer": 0.0, "compare_cash_only": False}}
    free = rebalance(h, policy(bands={"rule": "none"}, **base))
    floored = rebalance(h, policy(bands={"rule": "none", "exposure_floor": True}, **base))
    assert free.futures["contracts_after"].tolist() == [-4]
    assert floored.futures["contracts_after"].tolist() == [-3]
    assert free.asset_classes.loc["equity", "effective_after"] < 0 <= floored.asset_classes.loc["equity", "effective_after"]
    assert check(free.solution) == [] and check(floored.solution) == []


def _ira(eq: float, bd: float):
    """One IRA holding EQ ($100) and BD ($50) against 60/40 targets."""
    from builders import household

    return household([{"security_id": "EQ", "asset_class": "eq", "price": 100},
                      {"security_id": "BD", "asset_class": "fi", "price": 50}],
                     [{"account_id": "ira", "type": "tax_deferred", "cash": 0}],
                     [{"account_id": "ira", "security_id": "EQ", "quantity": eq},
                      {"account_id": "ira", "security_id": "BD", "quantity": bd}],
                     [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}])


@pytest.mark.parametrize("as_of, mode, trades", [
    ("2026-09-30", "calendar", True),  # a Wednesday, the quarter's last weekday
    ("2026-09-29", "calendar", False),
    ("2026-09-30", "hybrid", True),  # a check date, and equity is outside its band
    ("2026-09-29", "hybrid", False),
    ("2026-09-30", "never", False),
])
def test_calendar_hybrid_and_never_triggers(as_of, mode, trades):
    h = _ira(eq=700, bd=600)
    p = policy(trigger={"mode": mode, "frequency": "quarterly"}, tax={"as_of": as_of})
    r = rebalance(h, p)
    assert r.summary["rebalanced"] is trades
    assert (len(r.trades) > 0) is trades
    reason = r.summary["trigger"]["reasons"][0]
    if mode == "never":
        assert reason == "trigger mode is 'never' (buy and hold)"
    elif not trades:
        assert reason == f"{as_of} is not a quarterly check date (trigger '{mode}')"
        assert f"No rebalance: {reason}" in r.to_text()
    elif mode == "calendar":
        assert reason == "2026-09-30 is a quarterly check date (trigger 'calendar')"
    else:
        assert reason.startswith("eq at 70.00% outside")


def test_a_hybrid_check_date_inside_the_bands_does_not_trade():
    h = _ira(eq=620, bd=760)
    r = rebalance(h, policy(trigger={"mode": "hybrid"}, tax={"as_of": "2026-09-30"}))
    assert not r.summary["rebalanced"]
    assert r.summary["trigger"]["reasons"] == ["every asset class is inside its band (trigger 'hybrid')"]


def test_a_bad_frequency_and_a_bandless_hybrid_are_named():
    from cvxrebalance import Policy, ValidationError

    with pytest.raises(ValidationError, match="trigger.frequency"):
        Policy.from_dict({"trigger": {"mode": "calendar", "frequency": "fortnightly"}})
    bandless = Policy.from_dict({"trigger": {"mode": "hybrid"}, "bands": {"rule": "none"}, "tax": {"as_of": "2026-09-30"}})
    with pytest.raises(ValidationError, match='"hybrid" needs a band rule'):  # no edge anywhere to cross
        rebalance(_ira(eq=620, bd=760), bandless)


def test_a_threshold_trigger_fires_on_the_household_s_own_edges_without_a_band_rule():
    """Bands rule "none" with explicit targets.csv edges (eq 55-65%): 70% equity crosses its own
    edge and trades; 62% does not. The policy alone used to be refused."""
    from builders import household

    from cvxrebalance import Policy

    def ira(eq, bd):
        return household([{"security_id": "EQ", "asset_class": "eq", "price": 100},
                          {"security_id": "BD", "asset_class": "fi", "price": 50}],
                         [{"account_id": "ira", "type": "tax_deferred", "cash": 0}],
                         [{"account_id": "ira", "security_id": "EQ", "quantity": eq},
                          {"account_id": "ira", "security_id": "BD", "quantity": bd}],
                         [{"asset_class": "eq", "weight": 0.6, "lower": 0.55, "upper": 0.65},
                          {"asset_class": "fi", "weight": 0.4}])

    p = Policy.from_dict({"trigger": {"mode": "threshold"}, "bands": {"rule": "none"}})
    assert rebalance(ira(700, 600), p).summary["rebalanced"]  # 70,000 / 100,000
    assert not rebalance(ira(620, 760), p).summary["rebalanced"]  # 62,000 / 100,000


def test_volatility_bands_scale_with_each_class_s_volatility():
    """Equity at 18% volatility and bonds at 6%, reference 15%, absolute 5 points: equity gets
    5 x 18/15 = 6 points, bonds 5 x 6/15 = 2; cash (no volatility) relative 25% of its 2%."""
    from builders import household, policy

    h = household([{"security_id": "EQ", "asset_class": "eq", "price": 100},
                   {"security_id": "BD", "asset_class": "fi", "price": 50}],
                  [{"account_id": "ira", "type": "tax_deferred", "cash": 2_000}],
                  [{"account_id": "ira", "security_id": "EQ", "quantity": 600},
                   {"account_id": "ira", "security_id": "BD", "quantity": 760}],
                  [{"asset_class": "eq", "weight": 0.58}, {"asset_class": "fi", "weight": 0.40},
                   {"asset_class": "cash", "weight": 0.02}],
                  vols={"eq": 0.18, "fi": 0.06})
    r = rebalance(h, policy(bands={"rule": "volatility"}, trigger={"mode": "threshold"}))
    ac = r.asset_classes
    assert ac.loc["eq", ["lower", "upper"]].tolist() == pytest.approx([0.52, 0.64])
    assert ac.loc["fi", ["lower", "upper"]].tolist() == pytest.approx([0.38, 0.42])
    assert ac.loc["cash", ["lower", "upper"]].tolist() == pytest.approx([0.015, 0.025])
    # Equity at 60% is inside its 52-64% band; bonds at 38% sit on the edge of 38-42%: no trade.
    assert not r.summary["rebalanced"]
    tighter = rebalance(h, policy(bands={"rule": "volatility", "reference_vol": 0.30}, trigger={"mode": "threshold"}))
    assert tighter.asset_classes.loc["fi", "lower"] == pytest.approx(0.39)  # 5 x 6/30 = 1 point
    assert tighter.summary["rebalanced"]
