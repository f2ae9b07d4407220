"""Interest-rate swaps in the overlay: duration from a receive-fixed swap, its collateral reserve and
cost, OTC counterparty limits, and the choice between a swap and a Treasury future by cost and basis."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builders import household, policy
from independent_check import independent_violations

from cvxrebalance import InfeasibilityError, check, rebalance
from cvxrebalance.constraints.overlay import RULE as OVERLAY
from cvxrebalance.optimizer.domain.swaps import swap_duration

V = 10_000_000
D_CLASS = 6.0  # the bond class's duration: a swap's exposure is its duration over this
D_SWAP = float(swap_duration(0.0425, 10))
SWAP = {"swap_id": "USD10Y", "account_id": "tax", "counterparty": "bank_a", "fixed_rate": 0.0425, "tenor": 10,
        "asset_class": "bonds", "duration": D_CLASS, "increment": 100_000}
# Treasury future: notional 110,000; CTD BPV 95 / CF 0.85 -> duration 10.16 per unit notional.
TY = {"contract_id": "TYH7", "price": 110, "multiplier": 1000, "account_id": "tax", "asset_class": "bonds",
      "ctd_bpv": 95.0, "conversion_factor": 0.85, "duration": D_CLASS, "margin": 2_000}


def bonds_short(swaps=None, futures=None, specific=None, min_cash=0.0, lower=0.0):
    """$10M: bonds (duration 6) at 90% against a 99% target after a rate spike, 10% cash;
    ``lower``: the bonds' lower band edge (none by default)."""
    bonds = 9_000_000
    return household(
        securities=[{"security_id": "BD", "asset_class": "bonds", "price": 100, "half_spread": 0.001}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": V - bonds, "min_cash": min_cash}],
        holdings=[{"account_id": "tax", "security_id": "BD", "quantity": bonds / 100, "lot_id": "b",
                   "cost_basis": 100, "acquired": "2020-01-02"}],
        targets=[{"asset_class": "bonds", "weight": 0.99, "lower": lower, "upper": 1.0},
                 {"asset_class": "cash", "weight": 0.01, "lower": 0.0, "upper": 1.0}],
        vols={"bonds": 0.06}, swaps=swaps, futures=futures, specific=specific)


OVERLAY_ONLY = {"instruments": "overlay_only", "margin_buffer": 0.0}


def test_receive_fixed_swap_restores_the_bond_exposure():
    # The 9 points short: notional = 0.09 V x D_class / D_swap (= $640,860), in $100,000 increments.
    h, p = bonds_short([SWAP]), policy(bands={"rule": "none"}, overlay=OVERLAY_ONLY)
    r = rebalance(h, p)
    assert independent_violations(h, p, r) == []
    f = r.futures.set_index("contract_id").loc["USD10Y"]
    need = 0.09 * V * D_CLASS / D_SWAP
    assert f["instrument"] == "swap" and f["counterparty"] == "bank_a"
    assert abs(f["notional_after"] - need) <= 50_000 + 1  # the nearest whole increment
    assert f["contracts_after"] == round(need / 100_000)
    assert r.trades.empty
    # Collateral reserve: the value change of a 50 bp move, D_swap x 0.005 x |notional|; no exchange margin.
    assert f["margin"] == pytest.approx(D_SWAP * 0.005 * abs(f["notional_after"]), abs=0.01)
    assert check(r.solution) == []


def test_swap_cost_is_its_rate_spread_times_duration():
    r = rebalance(bonds_short([dict(SWAP, half_spread_bp=0.5, commission=10.0)]),
                  policy(bands={"rule": "none"}, overlay=OVERLAY_ONLY))
    f = r.futures.set_index("contract_id").loc["USD10Y"]
    notional = abs(f["notional_after"])
    assert f["cost"] == pytest.approx(0.5e-4 * D_SWAP * notional + 10.0 * notional / 100_000, abs=0.01)


def test_given_collateral_is_the_reserve_and_cash_bounds_it():
    # 5% of notional must stay in cash beyond the minimum: $15,000 of spare cash carries $300,000.
    h = bonds_short([dict(SWAP, collateral=0.05)], min_cash=985_000)
    r = rebalance(h, policy(bands={"rule": "none"}, overlay=OVERLAY_ONLY))
    f = r.futures.set_index("contract_id").loc["USD10Y"]
    assert f["notional_after"] == 300_000
    assert f["margin"] == pytest.approx(15_000)
    assert any(b.startswith("margin") for b in r.summary["overlay"]["binding"])


def two_banks():
    return [SWAP, dict(SWAP, swap_id="USD10Y_B", counterparty="bank_b")]


def test_counterparty_limit_spreads_the_swaps_across_banks():
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.04})
    r = rebalance(bonds_short(two_banks()), p)
    assert independent_violations(bonds_short(two_banks()), p, r) == []
    assert independent_violations(bonds_short(two_banks()), dataclasses.replace(
        p, overlay=dataclasses.replace(p.overlay, counterparty_limit=0.03)), r) != []
    f = r.futures.set_index("contract_id")
    gross = f.groupby("counterparty")["notional_after"].apply(lambda s: s.abs().sum())
    assert (gross <= 0.04 * V + 1e-6).all()
    assert gross.sum() == pytest.approx(0.09 * V * D_CLASS / D_SWAP, abs=100_000)
    assert check(r.solution) == []
    # One bank named at zero: everything faces the other.
    p0 = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limits": {"bank_a": 0.0}})
    f0 = rebalance(bonds_short(two_banks()), p0).futures.set_index("contract_id")
    assert f0.loc["USD10Y", "notional_after"] == 0 and f0.loc["USD10Y_B", "notional_after"] > 0


def test_counterparty_limit_binding_is_reported_and_checked():
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.03})
    r = rebalance(bonds_short([SWAP]), p)
    assert r.futures["notional_after"].abs().sum() == 300_000
    assert any(b.startswith("counterparty_limit") for b in r.summary["overlay"]["binding"])
    # The checker, not the solver, holds the limit: the same result under a tighter policy fails.
    data = dataclasses.replace(r.solution.data, policy=policy(bands={"rule": "none"},
                                                               overlay={**OVERLAY_ONLY, "counterparty_limit": 0.02}))
    violations = OVERLAY.check(dataclasses.replace(r.solution, data=data))
    assert [v.where for v in violations] == ["counterparty_limit[bank_a]"]
    assert violations[0].amount == pytest.approx(0.01, abs=1e-4)


def test_exchange_cleared_futures_count_for_no_counterparty():
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.001})
    r = rebalance(bonds_short([SWAP], futures=[TY]), p)
    f = r.futures.set_index("contract_id")
    assert f.loc["USD10Y", "notional_after"] == 0  # one increment is 1% of V, above the 0.1% cap
    assert f.loc["TYH7", "contracts_after"] > 0 and f.loc["TYH7", "counterparty"] == ""


def test_a_band_the_counterparty_limit_cannot_reach_is_infeasible_and_named():
    # Bonds must be at least 97% by exposure; the only instrument is one bank's swap, capped at 2%.
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.02})
    with pytest.raises(InfeasibilityError) as err:
        rebalance(bonds_short([SWAP], lower=0.97), p)
    assert "overlay.counterparty_limit[bank_a]" in [n for n, _ in err.value.conflicts]
    assert rebalance(bonds_short([SWAP], lower=0.97), policy(bands={"rule": "none"}, overlay=OVERLAY_ONLY))


@pytest.mark.parametrize(("swap_basis", "ty_basis", "swap_bp", "chosen"), [
    # A corporate bond portfolio: a Treasury future carries the credit spread as basis (3% a year),
    # a swap less (swap spreads, 1%): the swap, though its 0.25 bp of rate costs more per duration.
    (0.01 ** 2, 0.03 ** 2, 0.25, "USD10Y"),
    # A Treasury portfolio: now the swap has the basis, and 2 bp of rate to trade: the future.
    (0.03 ** 2, 0.01 ** 2, 2.0, "TYH7"),
])
def test_picks_swap_or_future_by_cost_and_basis(swap_basis, ty_basis, swap_bp, chosen):
    # A fine swap increment ($25,000), so whole units do not decide the choice for the optimizer.
    h = bonds_short([dict(SWAP, half_spread_bp=swap_bp, increment=25_000)], futures=[dict(TY, half_spread=0.00005)],
                    specific={"USD10Y": swap_basis, "TYH7": ty_basis})
    r = rebalance(h, policy(bands={"rule": "none"}, overlay=OVERLAY_ONLY))
    f = r.futures.set_index("contract_id")
    duration = f["notional_after"] * np.where(f.index == "USD10Y", D_SWAP, 95 / 0.85 / 110_000 * 1e4)
    # Independent bases diversify, so the other instrument may keep a small part (a contract).
    assert duration[chosen] > 0.75 * duration.abs().sum()
    assert duration.sum() == pytest.approx(0.09 * V * D_CLASS, rel=0.1)


def test_piqp_and_clarabel_agree_on_a_swap_overlay():
    h = bonds_short(two_banks(), futures=[TY], specific={"USD10Y": 1e-5, "USD10Y_B": 2e-5, "TYH7": 4e-5})
    pols = {s: policy(bands={"rule": "none"}, overlay={"counterparty_limit": 0.03}, solver={"name": s})
            for s in ("piqp", "clarabel")}
    a, b = (rebalance(h, p) for p in pols.values())
    assert a.futures["contracts_after"].tolist() == b.futures["contracts_after"].tolist()
    assert a.summary["objective"] == pytest.approx(b.summary["objective"], rel=1e-5, abs=1e-9)


def test_rounding_up_never_passes_a_counterparty_cap_by_a_few_dollars():
    """$9,999,980 of value, a 6% cap: $599,998.80. Six $100,000 units pass it by $1.20, less than
    the solver's tolerance but more than the checker's: the whole-unit search must stop at five."""
    h = bonds_short([SWAP], min_cash=0.0)
    acc = h.accounts.assign(cash=h.accounts["cash"] - 20.0)
    h = household(securities=h.securities.to_dict("records"), accounts=acc.to_dict("records"),
                  holdings=h.holdings.to_dict("records"),
                  targets=h.targets.rename(columns={"id": "asset_class"})[["asset_class", "weight", "lower", "upper"]]
                  .to_dict("records"), vols={"bonds": 0.06}, swaps=[SWAP])
    r = rebalance(h, policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.06}))
    assert r.summary["household_value"] == pytest.approx(9_999_980.0)
    assert r.futures.set_index("contract_id").loc["USD10Y", "contracts_after"] == 5
    assert check(r.solution) == []


def test_a_counterparty_limit_naming_no_counterparty_of_the_contracts_is_a_note():
    """One policy serves a book whose households face different dealers, so a named limit no
    contract of this household faces is a note (where a typo shows beside the real dealer), not
    an error; a name with a stray space is the dealer's (keys are trimmed like cells)."""
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limits": {"bank_x": 0.01}})
    r = rebalance(bonds_short(two_banks()), p)
    assert any("counterparty_limits names 'bank_x'" in n and "bank_a, bank_b" in n for n in r.summary["notes"])
    spaced = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limits": {"bank_a ": 0.0}})
    f = rebalance(bonds_short(two_banks()), spaced).futures.set_index("contract_id")
    assert f.loc["USD10Y", "notional_after"] == 0 and f.loc["USD10Y_B", "notional_after"] > 0
    assert rebalance(bonds_short(), p).summary["checks"]["passed"]  # no OTC contracts: nothing to say


@pytest.mark.parametrize("overlay", [{"counterparty_limits": {"bank_a": 0.0}}, {"counterparty_limit": 0.02}])
def test_a_band_a_cap_blocks_names_the_cap_whichever_is_cheaper_to_relax(overlay):
    # The bonds' class duration is 9, so a unit of swap notional adds only 7.83 / 9 = 0.87 of bond
    # exposure: relaxing the band costs the elastic program less than relaxing the cap, and the
    # verdict named the band alone, as if nothing stopped the swap.
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, **overlay})
    with pytest.raises(InfeasibilityError) as err:
        rebalance(bonds_short([dict(SWAP, duration=9.0)], lower=0.97), p)
    names = [n for n, _ in err.value.conflicts]
    assert names[0] == "bands.lower[bonds]" and "overlay.counterparty_limit[bank_a]" in names
    # The cap's amount is how far it would have to give for the band to hold: 7 points of bond
    # exposure over 0.87 per unit of notional, less what the cap already allows.
    cap = dict(err.value.conflicts)["overlay.counterparty_limit[bank_a]"]
    allowed = overlay.get("counterparty_limit", 0.0)
    assert cap == pytest.approx((0.97 - 0.90) * 9.0 / D_SWAP - allowed, rel=0.05)


def test_a_cap_smaller_than_the_one_increment_the_band_needs_is_named():
    # The band needs half an increment ($50,000 of a $100,000 unit); the cap allows $95,000. In
    # fractional units the policy holds; rounding down breaks the band and rounding up the cap,
    # so no whole-unit candidate was feasible and the verdict named the band alone.
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.0095})
    with pytest.raises(InfeasibilityError) as err:
        rebalance(bonds_short([SWAP], lower=0.90 + 0.005 * D_SWAP / D_CLASS), p)
    conflicts = dict(err.value.conflicts)
    assert conflicts["overlay.counterparty_limit[bank_a]"] == pytest.approx(0.0005, rel=1e-3)  # one unit past it
    assert "whole" in str(err.value)


def test_both_checkers_read_a_counterparty_cap_of_the_value_after_flows():
    # A $1M deposit: the cap (4.75% of $11M after the flow, $522,500) allows five $100,000 units;
    # the independent checker read it of the $10M before the flow ($475,000) and failed a result
    # the program and the package's checker hold to it.
    h = bonds_short([SWAP])
    acc = h.accounts.assign(cash_flow=1_000_000.0)
    h = household(securities=h.securities.to_dict("records"), accounts=acc.to_dict("records"),
                  holdings=h.holdings.to_dict("records"),
                  targets=h.targets.rename(columns={"id": "asset_class"})[["asset_class", "weight", "lower", "upper"]]
                  .to_dict("records"), vols={"bonds": 0.06}, swaps=[SWAP])
    p = policy(bands={"rule": "none"}, overlay={**OVERLAY_ONLY, "counterparty_limit": 0.0475})
    r = rebalance(h, p)
    assert r.futures.set_index("contract_id").loc["USD10Y", "contracts_after"] == 5
    assert check(r.solution) == [] and independent_violations(h, p, r) == []
