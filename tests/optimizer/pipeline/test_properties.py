"""Property tests: random households; every returned result passes the independent checker."""

from __future__ import annotations

import numpy as np
import pytest
from builders import household, policy
from golden_cases import random_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvxrebalance import InfeasibilityError, check, rebalance


@st.composite
def households(draw):
    h = random_tables(draw(st.integers(0, 2**32 - 1)), spreads=(0.0, 0.0005, 0.002), flows=(-0.5, 0.5))
    rule = draw(st.sampled_from(["none", "5/25", "absolute"]))
    pol = {
        "bands": {"rule": rule},
        "objective": {"tax_weight": draw(st.sampled_from([0.0, 1.0, 5.0])),
                      "risk_weight": draw(st.sampled_from([1.0, 100.0, 1e4]))},
        "esg": {"excluded": draw(st.sampled_from(["hold", "sell"]))},
        "limits": {"turnover": draw(st.sampled_from([1.0, 0.05]))},
        # "tolerance" needs bands (with rule "none" it is a rejected policy).
        "trigger": {"rebalance_to": draw(st.sampled_from(["target", "tolerance"] if rule != "none" else ["target"]))},
    }
    return h, policy(**pol)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households())
def test_every_result_passes_the_checker(case):
    h, p = case
    try:
        result = rebalance(h, p)
    except InfeasibilityError as exc:
        # Allowed only with binding policy constraints, and always with a named conflict.
        assert exc.conflicts
        return
    sol = result.solution
    assert check(sol) == []
    assert (sol.q_after >= -1e-9).all()
    assert (sol.buy_q == np.round(sol.buy_q)).all()
    # Account values move only by flows and costs.
    d = sol.data
    before = (d.q0 * d.price).sum(1) + d.cash_cur + d.flow_cur
    after = (sol.q_after * d.price).sum(1) + sol.cash_after
    assert np.allclose(after, before - sol.costs, atol=0.01)


@settings(max_examples=30, deadline=None)
@given(households())
def test_without_policy_limits_always_feasible(case):
    h, p = case
    p = p.replace(bands={"rule": "none"}, limits={"turnover": 1.0}, esg={"excluded": "hold"},
                  trigger={"rebalance_to": "target"})  # "tolerance" needs bands
    try:
        result = rebalance(h, p)
    except InfeasibilityError as exc:
        # Only min cash can still conflict: a withdrawal larger than what the account can raise.
        assert all(name.startswith("cash.") for name, _ in exc.conflicts)
        return
    assert result.summary["checks"]["passed"]


@pytest.mark.parametrize("seed", range(3))
def test_no_trade_when_already_on_target(seed):
    h = household(
        securities=[{"security_id": "E", "asset_class": "eq", "price": 10, "half_spread": 0.001},
                    {"security_id": "F", "asset_class": "fi", "price": 10, "half_spread": 0.001}],
        accounts=[{"account_id": "x", "type": "tax_exempt", "cash": 0}],
        holdings=[{"account_id": "x", "security_id": "E", "quantity": 600},
                  {"account_id": "x", "security_id": "F", "quantity": 400}],
        targets=[{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}],
    )
    assert rebalance(h, policy()).trades.empty
