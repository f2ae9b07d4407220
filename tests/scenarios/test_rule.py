"""The mechanical rule rebalancer (scenarios.rule): exact to target on the post-cost value,
to the band edge under rebalance_to = "tolerance", lots by FIFO/HIFO/average, and the same trades
as the optimizer where the two should agree."""

from __future__ import annotations

import numpy as np
import pytest
from builders import household, policy

from cvxrebalance import check, rebalance
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.scenarios.rule import post_cost_value, rule_trades

SECURITIES = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0, "half_spread": 0.01},
              {"security_id": "BD", "asset_class": "fi", "price": 50.0, "half_spread": 0.01}]
TARGETS = [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}]


def toy(eq=700.0, bd=600.0, kind="tax_deferred", securities=SECURITIES, lots=None):
    holdings = lots or [{"account_id": "a", "security_id": "EQ", "quantity": eq},
                        {"account_id": "a", "security_id": "BD", "quantity": bd}]
    return household(securities, [{"account_id": "a", "type": kind, "cash": 0.0}], holdings, TARGETS)


def test_a_60_40_with_a_1pct_cost_lands_exactly_on_target_after_costs():
    """$70,000 / $30,000 to 60/40 with 1% costs: 0.998 V' + 400 = 100,000 (by hand), so
    V' = 99,600 / 0.998; EQ is sold down to 0.6 V' and BD bought up to 0.4 V'."""
    data = prepare(toy(), policy(bands={"rule": "none"}))
    sol = rule_trades(data, whole=False)
    v = 99_600 / 0.998
    assert sol.sell_q[0, 0] == pytest.approx((70_000 - 0.6 * v) / 100, rel=1e-12)
    assert sol.buy_q[0, 1] == pytest.approx((0.4 * v - 30_000) / 50, rel=1e-12)
    assert sol.costs.sum() == pytest.approx(0.01 * (70_000 - 0.6 * v + 0.4 * v - 30_000), rel=1e-12)
    assert sol.value_after == pytest.approx(v, rel=1e-12)
    assert sol.weights_after() == pytest.approx([0.6, 0.4], abs=1e-12)
    assert sol.cash_after == pytest.approx([0.0], abs=1e-8)


def test_post_cost_value_solves_its_equation_on_random_portfolios():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 8))
        h = rng.uniform(0, 100, n) * (rng.random(n) > 0.2)
        w = rng.dirichlet(np.ones(n + 1))[:n]
        c = rng.uniform(0, 0.05, n)
        total = h.sum() + rng.uniform(0, 50)
        v = post_cost_value(h, w, c, total)
        assert v + (c * np.abs(w * v - h)).sum() == pytest.approx(total, rel=1e-12)


def test_to_the_band_edge_under_tolerance_with_inner_one():
    """70/30 with 5-point bands: equity goes to 65% (the edge), bonds to 35%, no costs."""
    free = [{**s, "half_spread": 0.0} for s in SECURITIES]
    data = prepare(toy(securities=free), policy(bands={"rule": "absolute", "absolute": 0.05, "inner": 1.0},
                                                trigger={"rebalance_to": "tolerance"}))
    sol = rule_trades(data)
    assert sol.sell_q[0, 0] == 50 and sol.buy_q[0, 1] == 100
    assert sol.weights_after() == pytest.approx([0.65, 0.35])


@pytest.mark.parametrize("method, gain", [("fifo", 100 * (100 - 40)), ("hifo", 100 * (100 - 130)),
                                           ("average", 100 * (100 - (300 * 40 + 100 * 130 + 300 * 90) / 700))])
def test_lots_are_relieved_by_the_rule_s_method(method, gain):
    lots = [{"account_id": "a", "security_id": "EQ", "quantity": 300, "lot_id": "old", "cost_basis": 40.0,
             "acquired": "2015-01-05"},
            {"account_id": "a", "security_id": "EQ", "quantity": 100, "lot_id": "high", "cost_basis": 130.0,
             "acquired": "2021-01-05"},
            {"account_id": "a", "security_id": "EQ", "quantity": 300, "lot_id": "mid", "cost_basis": 90.0,
             "acquired": "2023-01-05"},
            {"account_id": "a", "security_id": "BD", "quantity": 600, "lot_id": "bd", "cost_basis": 50.0,
             "acquired": "2020-01-05"}]
    free = [{**s, "half_spread": 0.0} for s in SECURITIES]
    data = prepare(toy(kind="taxable", securities=free, lots=lots), policy(bands={"rule": "none"}))
    sol = rule_trades(data, lot_method=method)
    assert sol.sell_q[0, 0] == 100
    assert (sol.lot_sell_q * data.lot_gain).sum() == pytest.approx(gain)
    assert check(sol) == []


@pytest.mark.parametrize("seed", range(10))
def test_the_optimizer_trades_as_the_rule_without_costs_taxes_or_bands(seed):
    rng = np.random.default_rng(seed)
    securities = [{"security_id": f"S{i}", "asset_class": c, "price": float(rng.uniform(20, 200))}
                  for i, c in enumerate(["eq", "fi", "re"])]
    w = rng.dirichlet(np.ones(3))
    targets = [{"asset_class": c, "weight": float(x)} for c, x in zip(["eq", "fi", "re"], w, strict=True)]
    holdings = [{"account_id": "a", "security_id": f"S{i}", "quantity": float(rng.integers(100, 2000))}
                for i in range(3)]
    h = household(securities, [{"account_id": "a", "type": "tax_deferred", "cash": 0.0}], holdings, targets)
    p = policy(bands={"rule": "none"})
    rule = rule_trades(prepare(h, p), whole=False)
    opt = rebalance(h, p).solution
    net_rule = rule.buy_q - rule.sell_q
    net_opt = opt.buy_q - opt.sell_q
    assert np.abs(net_opt - net_rule).max() <= 1.0  # the optimizer rounds to whole shares


@pytest.mark.parametrize("rebalancer", ["rule", "optimizer"])
def test_partial_rebalancing_moves_half_way(rebalancer):
    """70/30 against 60/40 with [trigger] fraction = 0.5 and no costs: to 65/35, both ways; the
    5-point band (55-65%) widens to hold the partial step."""
    free = [{**s, "half_spread": 0.0} for s in SECURITIES]
    p = policy(trigger={"fraction": 0.5}, bands={"rule": "absolute", "absolute": 0.03})
    h = toy(securities=free)
    if rebalancer == "rule":
        sol = rule_trades(prepare(h, p))
    else:
        r = rebalance(h, p)
        sol = r.solution
        assert r.asset_classes.loc["eq", ["target", "upper"]].tolist() == pytest.approx([0.6, 0.65])
    assert sol.sell_q[0, 0] == 50 and sol.buy_q[0, 1] == 100
    assert sol.weights_after() == pytest.approx([0.65, 0.35])


def test_a_fraction_outside_zero_to_one_is_named():
    from cvxrebalance import Policy, ValidationError

    with pytest.raises(ValidationError, match="trigger.fraction"):
        Policy.from_dict({"trigger": {"fraction": 0.0}})
