"""Lot choice, holding-period terms, realized tax, and the transaction-cost formula."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import household, policy

from optimizer import rebalance
from optimizer.prepare import long_term


@pytest.mark.parametrize(
    ("acquired", "as_of", "expected"),
    [
        ("2025-11-20", "2026-11-20", False),  # exactly one year: still short term
        ("2025-11-19", "2026-11-20", True),  # one year and a day
        ("2024-02-29", "2025-03-01", False),  # leap day: the anniversary is March 1
        ("2024-02-29", "2025-03-02", True),
    ],
)
def test_holding_period(acquired, as_of, expected):
    assert long_term(dt.date.fromisoformat(acquired), dt.date.fromisoformat(as_of)) is expected


def lots_household(lots):
    return household(
        securities=[{"security_id": "EQ", "asset_class": "eq", "price": 100},
                    {"security_id": "BD", "asset_class": "fi", "price": 100}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": 0}],
        holdings=[{"account_id": "tax", "security_id": "EQ", "quantity": q, "lot_id": lid,
                   "cost_basis": basis, "acquired": acq} for lid, q, basis, acq in lots],
        targets=[{"asset_class": "eq", "weight": 0.5}, {"asset_class": "fi", "weight": 0.5}],
    )


def test_lot_choice_prefers_cheapest_tax_and_matches_hand_arithmetic():
    # 1000 shares @100 in three lots; reaching 50/50 needs selling 500 shares.
    # Tax per share: old long lot (basis 20) 0.20*80 = 16; short lot (basis 90) 0.37*10 = 3.7;
    # long lot (basis 98) 0.20*2 = 0.4; loss lot (basis 130): 0. Cheapest first: loss (200),
    # long-98 (200), short-90 (100 of 300) -> tax = 200*0.4 + 100*3.7 = 450.
    lots = [("old", 300, 20, "2010-01-04"), ("short", 300, 90, "2026-06-01"),
            ("long98", 200, 98, "2020-01-06"), ("loss", 200, 130, "2022-01-03")]
    r = rebalance(lots_household(lots), policy(bands={"rule": "absolute"}, objective={"risk_weight": 1e4}))
    sold = r.lots.set_index("lot_id")["quantity"].to_dict()
    assert sold == {"loss": 200, "long98": 200, "short": 100}
    assert r.summary["taxes"]["tax"] == pytest.approx(200 * 0.2 * 2 + 100 * 0.37 * 10)
    assert r.summary["taxes"]["long_term_gain"] == pytest.approx(200 * 2 - 200 * 30)
    assert r.summary["taxes"]["short_term_gain"] == pytest.approx(100 * 10)
    # HIFO on the same 500 shares would sell loss (200) + long98 (200) + short (100): the same
    # lots; FIFO (old first) would realize 300 * 80 long + 200 * 10 short = 0.2*24000 + 0.37*2000.
    fifo_tax = 0.2 * 300 * 80 + 0.37 * 200 * 10
    assert r.summary["taxes"]["tax"] < fifo_tax


def test_high_tax_weight_keeps_gains_unrealized():
    # All in EQ (target 50/50, vols 15%, corr 0.3). Selling x of value: the risk term's slope at
    # x = 0 is 100 * 2 * (0.5 * 2) * 0.0225 * (1 - 0.3) = 3.15 per unit; the tax is
    # 0.20 * 80 / 100 = 0.16 per unit, times tax_weight 50 = 8 > 3.15: no sale pays.
    lots = [("old", 1000, 20, "2010-01-04")]
    r = rebalance(lots_household(lots), policy(bands={"rule": "none"}, objective={"tax_weight": 50.0}))
    assert r.trades.empty
    # At tax_weight 10 (1.6 < 3.15) selling pays until the slopes meet.
    assert not rebalance(lots_household(lots), policy(bands={"rule": "none"},
                                                      objective={"tax_weight": 10.0})).trades.empty


def test_transaction_cost_formula():
    h = household(
        securities=[{"security_id": "EQ", "asset_class": "eq", "price": 100, "half_spread": 0.001,
                     "commission": 0.0005, "impact": 2.0},
                    {"security_id": "BD", "asset_class": "fi", "price": 50, "half_spread": 0.0002}],
        accounts=[{"account_id": "ira", "type": "tax_deferred", "cash": 0}],
        holdings=[{"account_id": "ira", "security_id": "EQ", "quantity": 800},
                  {"account_id": "ira", "security_id": "BD", "quantity": 400}],
        targets=[{"asset_class": "eq", "weight": 0.5}, {"asset_class": "fi", "weight": 0.5}],
    )
    r = rebalance(h, policy(bands={"rule": "none"}))
    V = 100_000.0
    for row in r.trades.itertuples():
        lin = 0.0015 if row.security_id == "EQ" else 0.0002
        imp = 2.0 if row.security_id == "EQ" else 0.0
        assert row.cost == pytest.approx(lin * row.value + imp * row.value**2 / V, abs=0.006)
    assert r.summary["costs"] == pytest.approx(r.trades["cost"].sum(), abs=0.02)
