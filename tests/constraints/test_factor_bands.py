"""Factor bands (factor_targets.csv lower/upper): the rows, the checker, the trigger, the overlay
counted in the exposure, and an infeasible band named by the elastic re-solve."""

from __future__ import annotations

import numpy as np
import pytest
from factor_builders import (
    TY,
    TY_DURATION,
    bond_household,
    duration_after,
    duration_band,
    long_weight,
    policy,
)

from cvxrebalance import InfeasibilityError, rebalance
from cvxrebalance.constraints.factor_bands import RULE
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.domain.solution import Solution
from cvxrebalance.optimizer.pipeline.problem import Solver


def test_a_breached_band_moves_duration_exactly_to_its_edge():
    # Tracking (benchmark duration 4) and drift (target 5.5) at equal weights meet at 4.75, inside
    # the breached lower edge 5: the optimum is the edge, LONG at (5 - 2) / 6 = 50% (15,000 shares).
    r = rebalance(bond_household(duration_band()), policy())
    assert r.summary["checks"]["passed"]
    assert duration_after(r) == pytest.approx(5.0, abs=1e-9)
    q = r.solution.q_after[0]
    assert q.tolist() == [15_000, 15_000]
    assert r.solution.weights_after()[1] == pytest.approx(long_weight(5.0))
    assert r.summary["factor_drift"]["duration"] == {"target": 5.5, "lower": 5.0, "upper": 6.0, "before": 4.0,
                                                     "after": pytest.approx(5.0), "overlay_before": 0.0,
                                                     "overlay_after": 0.0}


def test_an_upper_edge_binds_from_above():
    # 10,000 SHORT and 20,000 LONG: duration 6.0; band [4, 5] around 4.5, benchmark duration 6:
    # tracking and drift meet at 5.25, so the upper edge 5 binds. Cash (duration 0) may take part
    # of the cut, so the mix is the tie-break's; the duration is the edge, to the nearest shares.
    h = bond_household(duration_band(4.5, 4.0, 5.0), short=10_000, long=20_000)
    r = rebalance(h, policy())
    one_share = 8 * 100 / 3_000_000
    assert 5.0 - 3 * one_share <= duration_after(r) <= 5.0
    assert r.summary["checks"]["passed"]


def test_a_one_sided_band_binds_only_its_side():
    h = bond_household(duration_band(5.5, 5.0, None))
    assert duration_after(rebalance(h, policy())) == pytest.approx(5.0, abs=1e-9)
    assert np.isnan(rebalance(h, policy()).factor_drift.loc["duration", "upper"])


def test_the_overlay_counts_in_the_exposure():
    # $3M of bonds (duration 4 on the bonds, 3 on the household) and $1M cash in a taxable
    # account; only the overlay may trade. Each TY contract adds 10.16 x 110,000 / 4,000,000 = 0.2794
    # years. Tracking pulls to 3 and drift to 5.5 (4.25 between them), so the lower edge 5 binds:
    # the fewest contracts that reach it, ceil(2 / 0.2794) = 8, with no cash trade.
    h = bond_household(duration_band(), account_type="taxable", cash=1_000_000, futures=[TY])
    r = rebalance(h, policy(overlay={"instruments": "overlay_only"}))
    per_contract = TY_DURATION * 110_000 / 4_000_000
    assert r.trades.empty
    assert r.futures.set_index("contract_id").loc["TYH7", "contracts_after"] == 8
    fd = r.factor_drift.loc["duration"]
    assert fd["before"] == pytest.approx(3.0)
    assert fd["after"] == pytest.approx(3.0 + 8 * per_contract)
    assert fd["overlay_after"] == pytest.approx(8 * per_contract)
    assert r.summary["checks"]["passed"]


def test_the_checker_catches_a_violated_factor_band():
    data = prepare(bond_household(duration_band()), policy())
    stay = Solution.no_trade(data)
    (v,) = RULE.check(stay)
    assert (v.constraint, v.where, v.unit) == ("factor_bands", "lower[duration]", "factor")
    assert v.amount == pytest.approx(1.0)  # duration 4 against the lower edge 5
    # 12,000 SHORT sold for 12,000 LONG: 8,000 and 22,000, duration 6.4, above the upper edge 6;
    # 10,000 for 10,000: duration 6.0, on the edge (inside).
    buy, sell = np.zeros((1, 2)), np.zeros((1, 2))
    buy[0, 1], sell[0, 0] = 12_000, 12_000
    (v,) = RULE.check(Solution(data, buy, sell, np.zeros(0)))
    assert v.where == "upper[duration]" and v.amount == pytest.approx(0.4)
    buy[0, 1], sell[0, 0] = 10_000, 10_000
    assert RULE.check(Solution(data, buy, sell, np.zeros(0))) == []


def test_a_rounding_that_crosses_the_edge_is_repaired():
    # Prices that put the edge between whole shares: LONG at 137, SHORT at 83. The edge 5 needs a
    # LONG weight of 0.5 exactly, which no whole-share list gives; the result sits just inside.
    h = bond_household(duration_band(), price_short=83.0, price_long=137.0, short=24_097, long=7_300)
    r = rebalance(h, policy())
    assert r.summary["checks"]["passed"]
    assert r.summary["solver"]["solves"] >= 2  # rounded below the edge, re-solved with it moved in
    after = duration_after(r)
    assert 5.0 <= after < 5.0 + 6 * 137 / r.summary["household_value_after"] * 3


def test_threshold_trigger_fires_on_a_factor_outside_its_band():
    r = rebalance(bond_household(duration_band()), policy(bands={"rule": "absolute"}, trigger={"mode": "threshold"}))
    assert r.summary["rebalanced"]
    assert r.summary["trigger"]["reasons"] == ["duration at 4.00 outside 5.00 to 6.00"]


def test_threshold_trigger_is_quiet_inside_the_band():
    h = bond_household(duration_band(4.2, 3.5, 4.5))
    r = rebalance(h, policy(bands={"rule": "absolute"}, trigger={"mode": "threshold"}))
    assert not r.summary["rebalanced"] and r.trades.empty
    assert r.summary["trigger"]["reasons"] == ["every asset class and factor is inside its band (trigger 'threshold')"]


def test_a_one_sided_breach_is_worded_by_its_side():
    h = bond_household(duration_band(5.5, 5.0, None))
    r = rebalance(h, policy(bands={"rule": "absolute"}, trigger={"mode": "threshold"}))
    assert r.summary["trigger"]["reasons"] == ["duration at 4.00 below 5.00"]


def test_a_trigger_that_says_no_leaves_factor_drift_as_it_is():
    # Not a check date: the breached factor band does not force a trade, the checks say so.
    r = rebalance(bond_household(duration_band()), policy(trigger={"mode": "calendar", "frequency": "annual"}))
    assert not r.summary["rebalanced"] and r.trades.empty
    assert r.summary["checks"]["not_applied"] == {"factor_bands": "no rebalance was triggered: the drift is left as it is"}


def test_an_infeasible_factor_band_is_named():
    # Duration at least 5 and credit at most 0.3, with LONG the only fund carrying both (credit 1):
    # fully invested, duration <= 2 x 0.7 + 8 x 0.3 = 3.8. Borrowing would cost far more cash than
    # the bands' own shortfalls, so the elastic re-solve names the factor bands.
    h = bond_household(duration_band() + [{"factor": "credit", "target": 0.2, "lower": 0.0, "upper": 0.3}],
                       extra_factor={"LONG": 1.0})
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, policy())
    names = [name for name, _ in err.value.conflicts]
    assert names and all(n.startswith("factor_bands.") for n in names)
    assert set(names) <= {"factor_bands.lower[duration]", "factor_bands.upper[credit]"}


@pytest.mark.parametrize("solver", ["CLARABEL", "OSQP"])
def test_the_cvxpy_solvers_give_piqps_answer(solver):
    h = bond_household(duration_band(), price_short=83.0, price_long=137.0, short=24_097, long=7_300)
    base = rebalance(h, policy(solver={"name": "PIQP"}))
    other = rebalance(h, policy(solver={"name": solver}))
    assert other.summary["solver"]["name"] == solver
    assert other.solution.q_after.tolist() == base.solution.q_after.tolist()


def test_a_band_is_not_met_by_spending_cash_on_round_trips():
    # Duration at most 3.87 + 2 Treasury futures x 0.36 = 4.59 (overlay only, max 2 contracts)
    # against a lower edge of 4.65. Over the value after trading, costs lower the value and so
    # raise the exposure per unit of it: buying and selling the future over and over (fbuy and
    # fsell both large) met the band in the convex program, and the verdict then claimed the
    # policy feasible in fractional shares. It is infeasible, and the program says so itself.
    h = bond_household(duration_band(5.0, 4.65, 6.0), cash=100_000,
                       futures=[dict(TY, commission=2.0, half_spread=0.002, max_contracts=2)])
    p = policy(overlay={"instruments": "overlay_only", "accounts": ["tax_exempt"]})
    assert Solver(prepare(h, p)).solve({}) is None
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, p)
    assert [name for name, _ in err.value.conflicts] == ["factor_bands.lower[duration]"]
    assert "fractional shares" not in str(err.value)
