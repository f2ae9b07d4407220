"""A stale illiquid valuation rolled forward counts in value, drift and bands, and the summary
and the report show the reported and the adjusted value (optimizer/domain/valuation.py).

The household is ``builders.lagged_fund_household``: $10,000,000 as reported (EQ 5,400,000 =
54%, BD 3,600,000 = 36%, the fund PE 1,000,000 = 10%), targets 56/34/10, equity's band 53.75-60%.
With ``LAGGED`` the fund is 1,096,000 (reported 2026-09-30, EQ +8% since, beta 1.2).
"""

from __future__ import annotations

import pytest
from builders import LAGGED, lagged_fund_household, policy
from independent_check import independent_violations

from cvxrebalance import rebalance

THRESHOLD = policy(trigger={"mode": "threshold"})


def trade_list(result) -> list[tuple]:
    return sorted((t.account_id, t.security_id, t.side, float(t.quantity)) for t in result.trades.itertuples())


def test_a_band_breached_only_once_the_adjustment_counts_triggers_a_rebalance():
    # As reported, equity is 5,400,000 / 10,000,000 = 54.00%, inside 53.75-60%: no trade.
    reported = rebalance(lagged_fund_household(), THRESHOLD)
    assert not reported.summary["rebalanced"] and reported.trades.empty
    assert reported.asset_classes.loc["equity", "before"] == pytest.approx(0.54)

    # Adjusted, the household is 10,096,000 and equity 5,400,000 / 10,096,000 = 53.4865%: below
    # 53.75%, so the threshold trigger fires.
    h = lagged_fund_household(**LAGGED)
    result = rebalance(h, THRESHOLD)
    s = result.summary
    assert s["household_value"] == 10_096_000.0
    assert s["rebalanced"] and s["trigger"]["reasons"] == ["equity at 53.49% outside 53.75% to 60.00%"]
    ac = result.asset_classes
    assert ac.loc["equity", "before"] == pytest.approx(5_400_000 / 10_096_000)
    assert ac.loc["private_equity", "before"] == pytest.approx(1_096_000 / 10_096_000)
    # Where it goes (no costs, equal variances 0.15^2 and one correlation, cash target 0): the
    # fund's 86,400 over its 10% target (1,096,000 - 1,009,600) cannot be sold, and with equal
    # variances the tracking term splits it evenly, 43,200 under target in each liquid class:
    # equity 0.56 x 10,096,000 - 43,200 = 5,610,560, a buy of 210,560 / 108 = 1,949.6 EQ;
    # bonds 0.34 x 10,096,000 - 43,200 = 3,389,440, a sale of 210,560 / 100 = 2,105.6 BD.
    t = result.trades.set_index("security_id")
    assert t.loc["EQ", "side"] == "buy" and t.loc["EQ", "quantity"] in (1949, 1950)
    assert t.loc["BD", "side"] == "sell" and t.loc["BD", "quantity"] in (2105, 2106)
    assert "PE" not in t.index  # the fund is never traded
    assert abs(ac.loc["equity", "after"] * 10_096_000 - 5_610_560) <= 108
    assert ac.loc["private_equity", "after"] == pytest.approx(1_096_000 / 10_096_000)
    assert independent_violations(h, THRESHOLD, result) == []


def test_the_summary_and_the_report_show_reported_and_adjusted_values():
    result = rebalance(lagged_fund_household(**LAGGED), THRESHOLD)
    assert result.summary["illiquid_valuations"] == {"PE": {
        "quantity": 1000.0, "reported_price": 1000.0, "adjusted_price": pytest.approx(1096.0, abs=1e-9),
        "reported_value": 1_000_000.0, "adjusted_value": 1_096_000.0, "adjustment": 96_000.0,
        "adjustment_pct": 9.6, "valuation_date": "2026-09-30", "days_stale": 51,  # to 2026-11-20
        "proxy": "EQ", "proxy_return": pytest.approx(0.08, abs=1e-15), "beta": 1.2}}
    text = result.to_text()
    assert "Illiquid valuations (adjusted = reported x (1 + beta x proxy return); in value and bands: " \
           "+96,000.00)" in text
    row = next(line for line in text.splitlines() if line.startswith("PE "))
    assert row.split() == ["PE", "2026-09-30", "51", "EQ", "+8.00%", "1.2", "1,000,000.00", "1,096,000.00",
                           "+96,000.00", "(+9.60%)"]


def test_a_date_without_a_proxy_is_reported_and_changes_nothing():
    base = rebalance(lagged_fund_household(), policy())
    dated = rebalance(lagged_fund_household(valuation_date="2026-06-30"), policy())
    assert trade_list(dated) == trade_list(base)
    assert dated.summary["objective"]["value"] == base.summary["objective"]["value"]
    assert dated.summary["illiquid_valuations"]["PE"] == {
        "quantity": 1000.0, "reported_price": 1000.0, "adjusted_price": 1000.0, "reported_value": 1_000_000.0,
        "adjusted_value": 1_000_000.0, "adjustment": 0.0, "adjustment_pct": 0.0, "valuation_date": "2026-06-30",
        "days_stale": 143, "proxy": None, "proxy_return": None, "beta": None}


def test_without_valuation_dates_the_result_is_unchanged():
    # The valuation columns present but blank give exactly the result of a table without them,
    # and the summary has no illiquid_valuations section.
    base = rebalance(lagged_fund_household(), policy())
    blank = rebalance(lagged_fund_household(valuation_date="", proxy="", proxy_price=None, proxy_beta=None),
                      policy())
    assert "illiquid_valuations" not in base.summary and "illiquid_valuations" not in blank.summary
    assert trade_list(blank) == trade_list(base)
    drop = ("time_ms", "solver")
    assert {k: v for k, v in blank.summary.items() if k not in drop} == \
           {k: v for k, v in base.summary.items() if k not in drop}


def test_prices_in_cents_give_the_same_shares():
    # Every price and the proxy's price on the valuation date x 100: the proxy's return, the
    # adjusted weights and so the share quantities are the same; the values are x 100.
    dollars = rebalance(lagged_fund_household(**LAGGED), THRESHOLD)
    cents = rebalance(lagged_fund_household(scale=100.0, **{**LAGGED, "proxy_price": 10_000.0}), THRESHOLD)
    assert trade_list(cents) == trade_list(dollars) and len(trade_list(dollars)) == 2
    assert cents.summary["household_value"] == pytest.approx(100 * dollars.summary["household_value"])
    a, b = (r.summary["illiquid_valuations"]["PE"] for r in (dollars, cents))
    assert b["adjusted_value"] == pytest.approx(100 * a["adjusted_value"]) == 109_600_000.0
    assert b["adjustment_pct"] == a["adjustment_pct"] and b["proxy_return"] == pytest.approx(a["proxy_return"])
