"""Property tests: random households; every returned result passes the independent checker."""

from __future__ import annotations

import numpy as np
import pytest
from builders import household, policy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvxrebalance import InfeasibilityError, check, rebalance

CLASSES = ["eq", "fi", "re"]
TYPES = ["taxable", "tax_deferred", "tax_exempt"]


@st.composite
def households(draw):
    n_sec = draw(st.integers(2, 7))
    n_acc = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    securities = []
    for i in range(n_sec):
        securities.append({
            "security_id": f"S{i}",
            "asset_class": CLASSES[i % 3] if i < 3 else CLASSES[int(rng.integers(3))],
            "price": float(np.round(rng.uniform(5, 500), 2)),
            "liquid": bool(i == 0 or rng.random() > 0.15),
            "esg_excluded": bool(i > 0 and rng.random() < 0.15),
            "esg_score": float(np.round(rng.uniform(0, 10), 1)),
            "half_spread": float(rng.choice([0.0, 0.0005, 0.002])),
            "impact": float(rng.choice([0.0, 0.0, 0.05])),
            "allowed_account_types": ";".join(TYPES if rng.random() > 0.2 else ["taxable"]),
        })
    accounts, holdings = [], []
    for a in range(n_acc):
        kind = TYPES[int(rng.integers(3))] if a else "taxable"
        cash = float(np.round(rng.uniform(0, 20_000), 2))
        accounts.append({"account_id": f"A{a}", "type": kind, "cash": cash,
                         "min_cash": float(np.round(rng.uniform(0, 0.5) * cash, 2)),
                         "cash_flow": float(np.round(rng.uniform(-0.5, 0.5) * cash, 2))})
        for i in range(n_sec):
            if rng.random() < 0.6:
                for k in range(int(rng.integers(1, 4)) if kind == "taxable" else 1):
                    row = {"account_id": f"A{a}", "security_id": f"S{i}",
                           "quantity": float(rng.integers(1, 400))}
                    if kind == "taxable":
                        price = securities[i]["price"]
                        row |= {"lot_id": f"L{a}-{i}-{k}", "cost_basis": float(np.round(price * rng.uniform(0.3, 1.5), 2)),
                                "acquired": f"20{int(rng.integers(15, 26))}-0{int(rng.integers(1, 10))}-1{int(rng.integers(0, 9))}"}
                    holdings.append(row)
    if not holdings:
        holdings.append({"account_id": "A0", "security_id": "S0", "quantity": 10.0, "lot_id": "x",
                         "cost_basis": 1.0, "acquired": "2020-01-01"})
    present = sorted({s["asset_class"] for s in securities})
    w = rng.dirichlet(np.ones(len(present) + 1))
    targets = [{"asset_class": c, "weight": float(x)} for c, x in zip(present, w, strict=False)]
    targets.append({"asset_class": "cash", "weight": float(1 - sum(t["weight"] for t in targets))})
    pol = {
        "bands": {"rule": draw(st.sampled_from(["none", "5/25", "absolute"]))},
        "objective": {"tax_weight": draw(st.sampled_from([0.0, 1.0, 5.0])),
                      "risk_weight": draw(st.sampled_from([1.0, 100.0, 1e4]))},
        "esg": {"excluded": draw(st.sampled_from(["hold", "sell"]))},
        "limits": {"turnover": draw(st.sampled_from([1.0, 0.05]))},
        "trigger": {"rebalance_to": draw(st.sampled_from(["target", "tolerance"]))},
    }
    return household(securities, accounts, holdings, targets, corr=0.2), policy(**pol)


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
    p = p.replace(bands={"rule": "none"}, limits={"turnover": 1.0}, esg={"excluded": "hold"})
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
