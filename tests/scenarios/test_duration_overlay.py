"""The bundled case `duration_overlay` (the derivatives seed's case study 2): a bond portfolio under
its duration target after a rate spike, restored with a receive-fixed swap or Treasury futures,
chosen by cost and basis."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from independent_check import independent_violations

from cvxrebalance import Household, load_case, rebalance
from cvxrebalance.optimizer.domain.swaps import swap_duration
from cvxrebalance.scenarios import case_path

D_SWAP = float(swap_duration(0.0425, 10))
D_TY = 72.0 / 0.82 / (110_500 * 1e-4)  # CTD BPV / conversion factor / (notional x 1e-4)


@pytest.fixture(scope="module")
def case():
    return load_case(case_path("duration_overlay"))


def rate_duration(h: Household, r) -> tuple[float, float]:
    """Portfolio duration (the rates factor exposure) before and after, from the case's own
    loadings, the result's trades and contracts: sum of value x duration over value."""
    load = pd.read_csv(case_path("duration_overlay") / "factor_loadings.csv", index_col="id")["rates"]
    price = h.securities.set_index("security_id")["price"]
    held = h.holdings.groupby("security_id")["quantity"].sum()
    traded = r.trades.assign(q=r.trades["quantity"].where(r.trades["side"] == "buy", -r.trades["quantity"]))
    after = held.add(traded.groupby("security_id")["q"].sum(), fill_value=0.0)
    V = r.summary["household_value"]
    f = r.futures.set_index("contract_id")["notional_after"]
    overlay = f.get("TYH7", 0.0) * D_TY + (f.get("USD10Y", 0.0) + f.get("USD10Y_B", 0.0)) * D_SWAP
    return ((held * price * load.reindex(held.index)).sum() / V,
            ((after * price * load.reindex(after.index)).sum() + overlay) / V)


def test_the_case_s_swap_loadings_are_the_swap_s_duration():
    load = pd.read_csv(case_path("duration_overlay") / "factor_loadings.csv", index_col="id")
    assert load.loc["USD10Y", "swap_spread"] == pytest.approx(D_SWAP, abs=1e-6)
    assert load.loc["USD10Y_B", "swap_spread"] == pytest.approx(D_SWAP, abs=1e-6)


def test_a_corporate_portfolio_receives_fixed_on_swaps_within_the_counterparty_limit(case):
    h, p = case
    r = rebalance(h, p)
    assert independent_violations(h, p, r) == []
    f = r.futures.set_index("contract_id")
    assert f.loc["TYH7", "contracts_after"] == 0  # no swap-spread exposure: basis against corporates
    assert f.loc["USD10Y", "notional_after"] == 6_000_000  # dealer_a at its 6% limit
    assert f.loc["USD10Y_B", "notional_after"] >= 1_000_000  # the rest faces dealer_b
    before, after = rate_duration(h, r)
    target = 0.40 * 2.5 + 0.58 * 9.0
    assert before == pytest.approx(5.39, abs=0.01)
    # factor_targets.csv: duration 6.22 in [6.0, 6.5]; the portfolio was below its minimum.
    assert r.summary["trigger"]["reasons"] == ["rates at 5.39 outside 6.00 to 6.50"]
    drift = r.factor_drift.loc["rates"]
    assert drift["before"] == pytest.approx(before, abs=1e-6)
    assert drift["after"] == pytest.approx(after, abs=2e-3)  # over the value after costs, not at decision
    assert 6.0 <= drift["after"] <= 6.5 and abs(drift["after"] - target) < 0.05
    assert drift["overlay_after"] == pytest.approx(7_000_000 * D_SWAP / r.summary["household_value"], rel=2e-3)
    assert set(r.futures.query("trade != 0")["reason"]) == {"band_breach"}
    assert r.futures.set_index("contract_id").loc["USD10Y", "reason_detail"].startswith("rates 5.39 -> 6.2")
    # Most of the duration comes from the swaps, not from reshuffling the bonds (50 bp a side).
    assert r.summary["turnover"] < 0.03
    cmp = r.summary["cash_only_comparison"]
    assert cmp["with_overlay"]["objective"] < cmp["cash_only"]["objective"]


def test_a_treasury_portfolio_buys_treasury_futures_instead(case):
    h, p = case
    load = pd.read_csv(case_path("duration_overlay") / "factor_loadings.csv")
    load.loc[load["id"].str.startswith("CORP"), ["swap_spread", "credit"]] = 0.0  # Treasuries now
    fcov = pd.read_csv(case_path("duration_overlay") / "factor_covariance.csv")
    spec = pd.read_csv(case_path("duration_overlay") / "specific_variance.csv")
    t = Household.from_frames(h.securities, h.accounts, h.holdings, pd.read_csv(case_path("duration_overlay") /
                              "targets.csv"), factor_loadings=load, factor_covariance=fcov,
                              specific_variance=spec, futures=pd.read_csv(case_path("duration_overlay") / "futures.csv"),
                              swaps=pd.read_csv(case_path("duration_overlay") / "swaps.csv"))
    r = rebalance(t, p)
    f = r.futures.set_index("contract_id")
    assert f.loc["TYH7", "contracts_after"] > 40
    assert f.loc[["USD10Y", "USD10Y_B"], "notional_after"].abs().sum() <= 1_000_000


def test_a_duration_cut_shorts_futures_and_the_swaps_kept_for_tracking_say_so(case, tmp_path):
    """A band of 4.6 to 5.0, below the benchmark's 6.22: Treasury futures are shorted for the
    band; swaps received for the swap-spread gap raise duration, so their reason is the tracking
    term (drift), not the band they move against."""
    import shutil

    from cvxrebalance import load_case as load

    shutil.copytree(case_path("duration_overlay"), tmp_path / "c")
    (tmp_path / "c" / "factor_targets.csv").write_text("factor,target,lower,upper\nrates,4.8,4.6,5.0\n")
    r = rebalance(*load(tmp_path / "c"))
    f = r.futures.set_index("contract_id")
    assert f.loc["TYH7", "contracts_after"] < 0 and f.loc["TYH7", "reason"] == "band_breach"
    assert r.factor_drift.loc["rates", "after"] == pytest.approx(5.0, abs=0.01)
    for swap in ("USD10Y", "USD10Y_B"):
        if f.loc[swap, "trade"] > 0:
            assert f.loc[swap, "reason"] == "drift"
            assert f.loc[swap, "reason_detail"].startswith("tracking error against the benchmark; moves against rates")
    assert any(b.startswith("margin: account pension") and "one more TYH7 needs" in b
               for b in r.summary["overlay"]["binding"])


def test_a_threshold_trigger_fires_on_the_duration_band_alone(case):
    """The case has no class band rule ("none"): a threshold trigger on it fires on the factor
    band it breaches (rates 5.39 outside 6.00-6.50), and not once the band is met."""
    h, p = case
    threshold = p.replace(trigger={"mode": "threshold"})
    r = rebalance(h, threshold)
    assert r.summary["rebalanced"]
    assert any("rates" in reason for reason in r.summary["trigger"]["reasons"])
    met = dataclasses.replace(h, factor_targets=h.factor_targets.assign(lower=5.0))  # 5.39 is inside 5.0-6.5
    assert not rebalance(met, threshold).summary["rebalanced"]
