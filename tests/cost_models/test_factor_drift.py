"""The factor drift term, factor_weight * sum_k F_kk (x_k - ref_k)^2: closed forms on the two-fund
household (tests/factor_builders.py), its reference under tolerance and partial rebalancing, and
the same answer in other units and from another solver."""

from __future__ import annotations

import pytest
from factor_builders import RATE_VARIANCE, bond_household, duration_after, duration_band, policy

from cvxrebalance import rebalance
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.pipeline.problem import declare

ONE_SHARE = 6 * 100 / 3_000_000  # the duration one share moved from SHORT to LONG adds


def test_alone_it_moves_duration_exactly_to_its_target():
    # No tracking term: the drift pulls duration from 4 to 5.5, LONG to (5.5 - 2) / 6 = 7/12 of
    # 3,000,000 at 100: 17,500 shares.
    r = rebalance(bond_household(duration_band()), policy(objective={"risk_weight": 0.0}))
    assert duration_after(r) == pytest.approx(5.5, abs=1e-9)
    assert r.solution.q_after[0].tolist() == [12_500, 17_500]
    assert r.summary["objective"]["factor_drift"] == pytest.approx(0.0, abs=1e-15)


def test_with_tracking_at_equal_weights_it_meets_the_benchmark_halfway():
    # A target without a band: tracking (benchmark duration 4) and drift (target 5.5) at the
    # default weights, 100 each, price the same factor variance: the optimum is 4.75.
    h = bond_household(duration_band(5.5, None, None))
    r = rebalance(h, policy())
    assert r.summary["rebalanced"]
    assert duration_after(r) == pytest.approx(4.75, abs=2 * ONE_SHARE)
    # The term is reported unweighted, F (x - target)^2, and enters the objective times its weight.
    x = duration_after(r)
    assert r.summary["objective"]["factor_drift"] == pytest.approx(RATE_VARIANCE * (x - 5.5) ** 2)
    o = r.summary["objective"]
    assert o["value"] == pytest.approx(100 * o["risk"] + 100 * o["factor_drift"], rel=1e-9)


def test_its_weight_sets_the_balance_with_tracking():
    # factor_weight 300 against risk_weight 100: (100 x 4 + 300 x 5.5) / 400 = 5.125.
    h = bond_household(duration_band(5.5, None, None))
    r = rebalance(h, policy(objective={"factor_weight": 300.0}))
    assert duration_after(r) == pytest.approx(5.125, abs=2 * ONE_SHARE)


def test_weight_zero_leaves_only_the_band():
    h = bond_household(duration_band())
    r = rebalance(h, policy(objective={"factor_weight": 0.0}))
    assert duration_after(r) == pytest.approx(5.0, abs=1e-9)  # tracking pulls to 4: the edge holds
    assert rebalance(bond_household(duration_band(5.5, None, None)),
                     policy(objective={"factor_weight": 0.0})).trades.empty


def test_nothing_is_declared_without_factor_targets():
    for h, p in [(bond_household(None), policy()),
                 (bond_household(duration_band(5.5, None, None)), policy(objective={"factor_weight": 0.0}))]:
        program = declare(prepare(h, p)).program
        assert "factor_exposure" not in program.blocks
        assert not [name for name, _ in program.squares if name == "factor_drift"]
    assert rebalance(bond_household(None), policy()).factor_drift.empty


@pytest.mark.parametrize(("inner", "expected"), [(0.5, 5.25), (0.0, 5.5), (1.0, 5.0)])
def test_rebalance_to_tolerance_pulls_to_the_inner_band(inner, expected):
    # Duration 4 broke the lower edge 5 of [5, 6] around 5.5: the reference is 5.5 - inner x 0.5.
    p = policy(objective={"risk_weight": 0.0}, bands={"rule": "absolute", "inner": inner},
               trigger={"rebalance_to": "tolerance"})
    r = rebalance(bond_household(duration_band()), p)
    assert duration_after(r) == pytest.approx(expected, abs=1e-9)


def test_tolerance_leaves_a_factor_inside_its_band_where_it_is():
    p = policy(objective={"risk_weight": 0.0}, bands={"rule": "absolute"}, trigger={"rebalance_to": "tolerance"})
    r = rebalance(bond_household(duration_band(4.5, 3.5, 5.5)), p)
    assert r.trades.empty


def test_partial_rebalancing_moves_a_fraction_of_the_way_and_widens_the_band():
    # fraction 0.5: from 4 halfway to 5.5 is 4.75, below the band's edge 5, which widens to it.
    r = rebalance(bond_household(duration_band()), policy(objective={"risk_weight": 0.0}, trigger={"fraction": 0.5}))
    assert duration_after(r) == pytest.approx(4.75, abs=1e-9)
    assert r.factor_drift.loc["duration", "lower"] == pytest.approx(4.75)


def trades(r) -> list[tuple]:
    return sorted((t.security_id, t.side, float(t.quantity)) for t in r.trades.itertuples())


AWKWARD = {"price_short": 83.0, "price_long": 137.0, "short": 24_097, "long": 7_300}


def test_a_daily_covariance_gives_the_same_answer():
    # Every variance / 252 and both weights x 252: the same question.
    base = rebalance(bond_household(duration_band(5.5, 4.2, None), **AWKWARD), policy())
    daily = rebalance(bond_household(duration_band(5.5, 4.2, None), variance=RATE_VARIANCE / 252, **AWKWARD),
                      policy(objective={"risk_weight": 100.0 * 252, "factor_weight": 100.0 * 252}))
    assert trades(daily) == trades(base) and trades(base)
    assert daily.summary["objective"]["value"] == pytest.approx(base.summary["objective"]["value"], rel=1e-7)


def test_money_in_cents_gives_the_same_answer():
    base = rebalance(bond_household(duration_band(5.5, 4.2, None), **AWKWARD), policy())
    cents = rebalance(bond_household(duration_band(5.5, 4.2, None), **{**AWKWARD, "price_short": 8300.0,
                                                                        "price_long": 13_700.0}), policy())
    assert trades(cents) == trades(base) and trades(base)
    assert cents.summary["objective"]["value"] == pytest.approx(base.summary["objective"]["value"], rel=1e-7)


def test_clarabel_gives_piqps_answer():
    h = bond_household(duration_band(5.5, None, None), **AWKWARD)
    base = rebalance(h, policy(solver={"name": "PIQP"}))
    other = rebalance(h, policy(solver={"name": "CLARABEL"}))
    assert other.summary["solver"]["name"] == "CLARABEL"
    assert trades(other) == trades(base) and trades(base)
