"""Which lots are sold (optimizer.pipeline.lot_choice): exact tax first, then the loss carried
forward; never worse than HIFO under the exact rules."""

from __future__ import annotations

import numpy as np
import pytest
from builders import household, policy

from cvxrebalance import check, rebalance

TARGETS = [{"asset_class": "eq", "weight": 0.5}, {"asset_class": "fi", "weight": 0.5}]


def test_a_year_that_nets_to_a_loss_sells_the_loss_lot():
    """The issue's case: the year already nets to a loss (-$20,000 long-term), so every lot choice
    is taxed 0 and the convex model cannot tell them apart. EQ ($100) has a short-term gain lot
    (basis $80) and a long-term loss lot (basis $130); 50/50 targets on $54,000 ask for selling
    $7,000 of EQ, 70 shares. Selling them from the loss lot carries forward 20,000 + 70 x 30 =
    $22,100; from the gain lot only 20,000 - 70 x 20 = $18,600. The loss lot is sold."""
    h = household(
        [{"security_id": "EQ", "asset_class": "eq", "price": 100.0},
         {"security_id": "BD", "asset_class": "fi", "price": 50.0}],
        [{"account_id": "tax", "type": "taxable", "cash": 0.0, "ytd_long_gain": -20_000.0}],
        [{"account_id": "tax", "security_id": "EQ", "quantity": 140, "lot_id": "gain", "cost_basis": 80.0,
          "acquired": "2026-06-01"},
         {"account_id": "tax", "security_id": "EQ", "quantity": 200, "lot_id": "loss", "cost_basis": 130.0,
          "acquired": "2023-06-01"},
         {"account_id": "tax", "security_id": "BD", "quantity": 400, "lot_id": "bd", "cost_basis": 50.0,
          "acquired": "2020-01-02"}],
        TARGETS)
    r = rebalance(h, policy(bands={"rule": "none"}, objective={"risk_weight": 1e4}))
    sold = dict(zip(r.lots["lot_id"], r.lots["quantity"], strict=True))
    assert sold == {"loss": 70}
    assert r.lots["gain"].sum() == -2100.0
    assert r.summary["taxes"]["tax_exact"] == 0.0
    # Carried forward: $22,100, worth 0.5 (loss_value) x 20% (long-term rate) x 22,100 = $2,210.
    assert r.summary["taxes"]["loss_carried_forward"] == 22_100.0
    assert r.summary["taxes"]["loss_carried_forward_value"] == 2_210.0
    assert "Carried forward a net loss of 22,100.00 (worth 2,210.00 now at loss_value)" in r.to_text()


def random_lots(seed: int):
    """One taxable account, three securities with 2-6 lots each (random bases around the price,
    short and long term), year-to-date gains of either sign, and targets far from the holdings."""
    rng = np.random.default_rng(seed)
    securities, holdings = [], []
    for i in range(3):
        price = float(np.round(rng.uniform(20, 200), 2))
        securities.append({"security_id": f"S{i}", "asset_class": ["eq", "fi", "re"][i], "price": price})
        for k in range(int(rng.integers(2, 7))):
            holdings.append({"account_id": "tax", "security_id": f"S{i}", "lot_id": f"L{i}{k}",
                             "quantity": float(rng.integers(10, 300)),
                             "cost_basis": float(np.round(price * rng.uniform(0.5, 1.6), 2)),
                             "acquired": str(rng.choice(["2019-03-04", "2024-02-01", "2026-03-02", "2026-08-14"]))})
    w = rng.dirichlet(np.ones(3)) * 0.98
    targets = [{"asset_class": c, "weight": float(x)} for c, x in zip(["eq", "fi", "re"], w, strict=True)]
    targets.append({"asset_class": "cash", "weight": 0.02})
    ytd = float(rng.choice([-30_000.0, -2_000.0, 0.0, 5_000.0]))
    h = household(securities, [{"account_id": "tax", "type": "taxable", "cash": 1000.0,
                                "ytd_long_gain": ytd, "ytd_short_gain": float(rng.choice([0.0, -3000.0, 2000.0]))}],
                  holdings, targets)
    return h, policy(bands={"rule": "none"}, objective={"tax_weight": float(rng.choice([0.2, 1.0]))})


@pytest.mark.parametrize("seed", range(40))
def test_never_taxed_more_than_hifo_and_no_gain_lot_before_a_loss_lot(seed):
    h, p = random_lots(seed)
    r = rebalance(h, p)
    assert check(r.solution) == []
    taxes = r.summary["taxes"]
    if "relief" in taxes:
        assert taxes["tax_exact"] <= taxes["relief"]["hifo"]["tax_exact"] + 0.01
    d, sold = r.solution.data, r.solution.lot_sell_q
    for k in np.flatnonzero((sold > 0) & (d.lot_gain > 0)):
        same = (d.lot_position == d.lot_position[k]) & (d.lot_short == d.lot_short[k]) & (d.lot_gain < 0)
        assert (sold[same] >= d.lot_q[same] - 1e-9).all(), f"gain lot {d.lot_ids[k]} sold before a loss lot"
