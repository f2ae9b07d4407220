"""The futures/forwards overlay, solved with the cash trades: seed numbers and the decisions the
objective makes between futures and stock."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import household, policy
from hypothesis import given, settings
from hypothesis import strategies as st
from independent_check import independent_violations

from cvxrebalance import Household, check, rebalance

ES = {"contract_id": "ESZ6", "price": 5000, "multiplier": 50, "account_id": "tax",
      "asset_class": "equity", "exposure": 1.0, "underlying": "S&P 500", "expiry": "2026-12-18"}


def equity_bond(eq_value, bd_value, cash, *, basis_frac=1.0, future=None, specific=None,
                eq_spread=0.0005, corr=0.0):
    """One taxable account: EQ (equity, price 100) in one long-term lot with basis
    ``basis_frac`` x price, BD (bonds, price 100), cash; target 60/40 (+ cash if any)."""
    cash_w = cash / (eq_value + bd_value + cash)
    targets = [{"asset_class": "equity", "weight": 0.6 * (1 - cash_w)},
               {"asset_class": "bonds", "weight": 0.4 * (1 - cash_w)}]
    if cash:
        targets.append({"asset_class": "cash", "weight": cash_w})
    return household(
        securities=[{"security_id": "EQ", "asset_class": "equity", "price": 100, "half_spread": eq_spread},
                    {"security_id": "BD", "asset_class": "bonds", "price": 100, "half_spread": 0.0005}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": cash}],
        holdings=[{"account_id": "tax", "security_id": "EQ", "quantity": eq_value / 100, "lot_id": "eq1",
                   "cost_basis": 100 * basis_frac, "acquired": "2015-01-05"},
                  {"account_id": "tax", "security_id": "BD", "quantity": bd_value / 100, "lot_id": "bd1",
                   "cost_basis": 100, "acquired": "2015-01-05"}],
        targets=targets, vols={"equity": 0.16, "bonds": 0.05}, corr=corr,
        futures=[future] if future else None, specific=specific,
    )


def test_seed_002_overlay_only_sells_32_contracts():
    # $100M at 68% equity against 60%: sell $8M of exposure = 32 contracts of $250,000 notional.
    h = equity_bond(68e6, 32e6, 0, future=ES)
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"instruments": "overlay_only", "margin_buffer": 0.0}))
    f = r.futures.set_index("contract_id")
    assert f.loc["ESZ6", "contracts_after"] == -32
    assert f.loc["ESZ6", "notional_after"] == -8_000_000
    assert r.trades.empty
    assert r.asset_classes.loc["equity", "effective_after"] == pytest.approx(0.60, abs=1e-6)
    assert r.asset_classes.loc["equity", "physical_after"] == pytest.approx(0.68, abs=1e-6)


def test_case_study_1_embedded_gains_short_futures_instead_of_selling():
    # 60/40 drifted to 67/33 on $100M; the stock's basis is 20% of its price (large gains).
    h = equity_bond(65.66e6, 32.34e6, 2e6, basis_frac=0.2, specific={"ESZ6": 0.02**2},
                    future=dict(ES, commission=2.5, half_spread=0.0001, margin=15_000))
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"margin_buffer": 0.05}))
    contracts = r.futures.set_index("contract_id").loc["ESZ6", "contracts_after"]
    assert contracts <= -20  # about 7% of $100M is 28 contracts
    sold_eq = r.trades.query("security_id == 'EQ' and side == 'sell'")["value"].sum()
    assert sold_eq < 0.1 * abs(contracts) * 250_000
    assert r.summary["taxes"]["tax"] < 0.05 * 0.2 * 0.8 * 7e6  # far below selling $7M of stock
    cmp = r.summary["cash_only_comparison"]
    assert cmp["with_overlay"]["objective"] < cmp["cash_only"]["objective"]
    assert cmp["with_overlay"]["tax"] < cmp["cash_only"]["tax"]


def test_case_study_1_no_gains_and_a_noisy_costly_proxy_sells_stock():
    h = equity_bond(65.66e6, 32.34e6, 2e6, basis_frac=1.0, specific={"ESZ6": 0.15**2},
                    future=dict(ES, commission=25.0, half_spread=0.005, margin=15_000))
    r = rebalance(h, policy(bands={"rule": "none"}))
    contracts = r.futures.set_index("contract_id").loc["ESZ6", "contracts_after"]
    assert abs(contracts) <= 2
    sold_eq = r.trades.query("security_id == 'EQ' and side == 'sell'")["value"].sum()
    assert sold_eq > 5e6
    assert r.asset_classes.loc["equity", "physical_after"] == pytest.approx(0.60 * 0.98, abs=0.01)


def test_treasury_future_raises_duration_to_target():
    # Factor model: bonds load on "rates" by duration. Held: a short bond fund (duration 2) at 40%;
    # the model portfolio's bond (duration 6) would give 0.4 * 6 = 2.4 years of exposure.
    # TY: price 110, multiplier 1000 (notional 110,000); CTD BPV 95, conversion factor 0.85:
    # BPV 111.76 per contract, duration 111.76 / (110,000 * 1e-4) = 10.16 per unit notional.
    sec = [{"security_id": "EQ", "asset_class": "equity", "price": 100},
           {"security_id": "SHORTB", "asset_class": "bonds", "price": 100},
           {"security_id": "LONGB", "asset_class": "bonds", "price": 100}]
    loadings = pd.DataFrame({"security_id": ["EQ", "SHORTB", "LONGB", "TYH7"],
                             "equity": [1.0, 0, 0, 0], "rates": [0, 2.0, 6.0, 0]})
    fcov = pd.DataFrame({"factor": ["equity", "rates"], "equity": [0.0256, 0.0], "rates": [0.0, 1e-4]})
    h = Household.from_frames(
        pd.DataFrame(sec), pd.DataFrame([{"account_id": "tax", "type": "taxable", "cash": 500_000}]),
        pd.DataFrame([{"account_id": "tax", "security_id": "EQ", "quantity": 57_000, "lot_id": "e",
                       "cost_basis": 100, "acquired": "2020-01-02"},
                      {"account_id": "tax", "security_id": "SHORTB", "quantity": 38_000, "lot_id": "b",
                       "cost_basis": 100, "acquired": "2020-01-02"}]),
        pd.DataFrame([{"security_id": "EQ", "weight": 0.57}, {"security_id": "LONGB", "weight": 0.38},
                      {"security_id": "cash", "weight": 0.05}]),
        factor_loadings=loadings, factor_covariance=fcov,
        futures=pd.DataFrame([{"contract_id": "TYH7", "price": 110, "multiplier": 1000, "account_id": "tax",
                               "ctd_bpv": 95.0, "conversion_factor": 0.85, "rate_factor": "rates",
                               "margin": 2_000}]),
    )
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"instruments": "overlay_only"}))
    q = r.futures.set_index("contract_id").loc["TYH7", "contracts_after"]
    duration_per_contract = 95 / 0.85 / (110_000 * 1e-4) * 110_000  # duration x notional
    exposure = 0.38 * 2.0 + q * duration_per_contract / 10_000_000
    assert q > 0
    assert exposure == pytest.approx(0.38 * 6.0, abs=duration_per_contract / 10_000_000)


def test_currency_forward_hedges_to_target_ratio():
    # EU equity ($4M, currency EUR) and US equity; the benchmark hedges 50% of its EUR exposure.
    # EURUSD forward: price 1.10, multiplier 125,000 (notional 137,500): hedge 2M -> about -14.5.
    h = household(
        securities=[{"security_id": "US", "asset_class": "us_equity", "price": 100},
                    {"security_id": "EU", "asset_class": "eu_equity", "price": 100, "currency": "EUR"}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": 200_000}],
        holdings=[{"account_id": "tax", "security_id": "US", "quantity": 58_000, "lot_id": "u",
                   "cost_basis": 100, "acquired": "2020-01-02"},
                  {"account_id": "tax", "security_id": "EU", "quantity": 40_000, "lot_id": "e",
                   "cost_basis": 100, "acquired": "2020-01-02"}],
        targets=[{"asset_class": "us_equity", "weight": 0.58}, {"asset_class": "eu_equity", "weight": 0.40},
                 {"asset_class": "cash", "weight": 0.02}],
        vols={"us_equity": 0.16, "eu_equity": 0.14, "EUR": 0.08}, corr=0.0, extra_factors=["EUR"],
        futures=[{"contract_id": "EURUSD", "price": 1.10, "multiplier": 125_000, "account_id": "tax",
                  "currency": "EUR", "half_spread": 0.0001}],
    )
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"hedge_ratio": {"EUR": 0.5}, "margin_buffer": 0.05}))
    q = r.futures.set_index("contract_id").loc["EURUSD", "contracts_after"]
    assert q in (-14, -15)  # 2,000,000 / 137,500 = 14.5
    # On target already: the forward does the hedge (a whole-contract remainder may be topped up).
    assert r.trades["value"].sum() < 0.005 * 10_000_000
    unhedged = rebalance(h, policy(bands={"rule": "none"}))
    assert unhedged.futures["contracts_after"].abs().sum() == 0


def test_margin_limits_the_overlay_and_says_why():
    # Only $300,000 of cash and no cash trades: at $15,000 margin + 10% of $250,000 buffer =
    # $40,000 per contract, the account can carry 7 contracts, not the 23 the drift asks for.
    h = equity_bond(65.7e6, 34e6, 0.3e6, basis_frac=0.2, future=dict(ES, margin=15_000))
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"instruments": "overlay_only"}))
    contracts = r.futures.set_index("contract_id").loc["ESZ6", "contracts_after"]
    assert contracts == -7
    assert any(b.startswith("margin") for b in r.summary["overlay"]["binding"])
    assert check(r.solution) == []


def test_expiring_contract_is_rolled():
    h = equity_bond(68e6, 32e6, 3e6, future=None)
    fut = pd.DataFrame([dict(ES, position=-20, margin=10_000), dict(ES, contract_id="ESH7", expiry="2027-03-19", margin=10_000)])
    h = Household.from_frames(h.securities, h.accounts, h.holdings, pd.DataFrame(
        [{"asset_class": "equity", "weight": 0.58}, {"asset_class": "bonds", "weight": 0.39},
         {"asset_class": "cash", "weight": 0.03}]),
        covariance=pd.DataFrame({"id": ["equity", "bonds"], "equity": [0.0256, 0.0], "bonds": [0.0, 0.0025]}),
        futures=fut)
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"horizon": "2027-01-15"}))
    f = r.futures.set_index("contract_id")
    assert f.loc["ESZ6", "contracts_after"] == 0 and f.loc["ESZ6", "roll_to"] == "ESH7"
    assert f.loc["ESH7", "contracts_after"] < 0
    [roll] = r.summary["overlay"]["rolls"]
    assert roll == {"from": "ESZ6", "to": "ESH7", "contracts": -20.0,
                    "to_contracts_after": float(f.loc["ESH7", "contracts_after"]), "rolled": True}
    assert "Roll: ESZ6 -> ESH7" in r.to_text()
    assert "of which overlay" in r.to_text()


def test_cash_only_leaves_contracts_alone():
    h = equity_bond(68e6, 32e6, 0, future=dict(ES, position=-4))
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={"instruments": "cash_only"}))
    assert (r.futures["trade"] == 0).all()
    assert not r.trades.empty


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31))
def test_random_overlays_round_to_checked_whole_contracts(seed):
    rng = np.random.default_rng(seed)
    eq = rng.uniform(0.5e6, 5e6)
    h = equity_bond(eq, rng.uniform(0.5e6, 5e6), rng.uniform(2e4, 4e5), basis_frac=rng.uniform(0.2, 1.2),
                    specific={"ESZ6": rng.uniform(0, 0.05) ** 2},
                    future=dict(ES, price=float(rng.uniform(1000, 6000)), multiplier=float(rng.choice([5, 10, 50])),
                                margin=float(rng.uniform(1000, 20000)), position=float(rng.integers(-5, 5)),
                                commission=2.0, half_spread=0.0002, max_contracts=float(rng.integers(5, 60))))
    p = policy(bands={"rule": str(rng.choice(["none", "5/25"]))},
               overlay={"gross_limit": float(rng.uniform(0.05, 0.5)), "net_limit": float(rng.uniform(0.05, 0.5))})
    try:
        r = rebalance(h, p)
    except Exception as exc:  # an infeasible policy must still name its conflicts
        from cvxrebalance import InfeasibilityError
        assert isinstance(exc, InfeasibilityError) and exc.conflicts
        return
    q = r.futures["contracts_after"].to_numpy()
    assert (q == np.round(q)).all()
    assert check(r.solution) == []


@pytest.mark.parametrize("limit", ["gross_limit", "net_limit"])
def test_a_binding_gross_or_net_limit_is_read_over_the_value_at_decision(limit):
    # 68/32 against 60/40 with costly stock (1% half spread): the overlay shorts as much as the
    # limit allows (2% of $100M: 8 contracts of $250,000) and stock is sold for the rest. The
    # program holds the limit over the value at decision (as the counterparty limits); the
    # checker read it over the value after trading, which the costs lower, and the rebalance
    # ended in a CheckError.
    h = equity_bond(68e6, 32e6, 0, future=ES, eq_spread=0.01)
    p = policy(bands={"rule": "none"}, overlay={limit: 0.02, "margin_buffer": 0.0})
    r = rebalance(h, p)
    assert r.summary["checks"]["passed"] and check(r.solution) == []
    assert r.futures["contracts_after"].tolist() == [-8] and r.summary["costs"] > 0
    assert independent_violations(h, p, r) == []
