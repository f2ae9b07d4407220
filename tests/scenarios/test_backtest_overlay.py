"""The overlay over time (scenarios.backtests): contracts marked to market by their underlying's
series, variation margin in the carrying account's cash, rolls, the 60/40 rule, margin calls,
and the cash-only twin; and phased schedules."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from builders import household, policy

from cvxrebalance import load_case, rebalance
from cvxrebalance.cost_models.tax import exact_tax
from cvxrebalance.optimizer.domain.errors import ValidationError
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.backtests import backtest
from cvxrebalance.scenarios.market import Market, load_market

SECURITIES = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0},
              {"security_id": "BD", "asset_class": "fi", "price": 100.0}]
TARGETS = [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}]
LOTS = [{"account_id": "a", "security_id": "EQ", "quantity": 600.0, "lot_id": "eq", "cost_basis": 100.0,
         "acquired": "2015-01-02"},
        {"account_id": "a", "security_id": "BD", "quantity": 400.0, "lot_id": "bd", "cost_basis": 100.0,
         "acquired": "2015-01-02"}]


def _future(position: float, margin: float, commission: float = 0.0, half_spread: float = 0.0) -> dict:
    return {"contract_id": "F", "price": 1000.0, "multiplier": 10.0, "account_id": "a", "position": position,
            "margin": margin, "commission": commission, "half_spread": half_spread, "underlying": "FUT",
            "asset_class": "eq", "exposure": 1.0}


def _market(fut: dict[str, float], months: int, first: str = "2020-01-31") -> Market:
    dates = pd.date_range(first, periods=months, freq="ME")
    frame = pd.DataFrame({"EQ": 0.0, "BD": 0.0, "FUT": 0.0}, index=dates)
    for day, r in fut.items():
        frame.loc[day, "FUT"] = r
    return Market.from_returns(frame)


def test_contracts_are_marked_to_market_rolled_and_taxed_60_40_by_hand():
    """3 contracts of 10 x $1,000 held, never traded. January +10%: 3 x 10 x 100 = +$3,000 of
    variation margin in cash; February -5% of 1,100: -$1,650. Each quarter end of 2020 the
    position rolls: both legs, 3 x (2 x $2 + 2 x 0.001 x 1,045 x 10) = $74.70. 2020's futures
    gain, 1,350 - 4 x 74.70 = $1,051.20, is 40% short term and 60% long term: its tax,
    0.37 x 420.48 + 0.20 x 630.72 = $281.7216, is paid on 2021-01-31."""
    h = household(SECURITIES, [{"account_id": "a", "type": "taxable", "cash": 200_000.0}], LOTS, TARGETS,
                  futures=[_future(3, 500.0, commission=2.0, half_spread=0.001)])
    market = _market({"2020-01-31": 0.10, "2020-02-29": -0.05}, months=14)
    p = policy(trigger={"mode": "never"}, bands={"rule": "none"})
    r = backtest(h, p, market)
    run = r.runs["policy"]
    # Its cash-only twin holds the same contracts; buy and hold trades none in either.
    pd.testing.assert_frame_equal(r.runs["policy_cash_only"].values, run.values)
    roll = 3 * (2 * 2.0 + 2 * 0.001 * 1045.0 * 10)
    gain = 1350.0 - 4 * roll
    tax = 0.37 * 0.4 * gain + 0.20 * 0.6 * gain
    assert run.values["futures_pnl"].iloc[1:3].tolist() == pytest.approx([3000.0, -1650.0])
    assert run.values["value"].iloc[1:3].tolist() == pytest.approx([303_000.0, 301_350.0])
    assert run.values["futures_notional"].iloc[2] == pytest.approx(3 * 10 * 1045.0)
    assert run.values["cost"][run.values["cost"] > 0].index.strftime("%Y-%m-%d").tolist() == [
        "2020-03-31", "2020-06-30", "2020-09-30", "2020-12-31"]
    assert run.values.loc["2021-01-31", "tax_paid"] == pytest.approx(tax)
    stats = run.stats
    assert stats["futures_pnl"] == pytest.approx(1350.0)
    assert stats["costs"] == pytest.approx(4 * roll)
    assert stats["short_term_gains"] == pytest.approx(0.4 * gain)
    assert stats["long_term_gains"] == pytest.approx(0.6 * gain)
    assert stats["final_value"] == pytest.approx(300_000 + 1350.0 - 4 * roll - tax)
    assert stats["after_tax_value"] == pytest.approx(stats["final_value"])  # marked: nothing left to tax


def test_a_margin_call_forces_a_sale_that_funds_the_margin():
    """2 long contracts of $10,000, $1,000 initial margin each, $3,000 of cash. March -20%:
    -$4,000 of variation margin leaves -$1,000, below the $2,000 of initial margin: a margin
    call on a buy-and-hold policy, which must sell securities to hold initial margin plus the
    10% buffer on $16,000 of notional ($3,600)."""
    h = household(SECURITIES, [{"account_id": "a", "type": "tax_deferred", "cash": 3_000.0}],
                  [{"account_id": "a", "security_id": "EQ", "quantity": 600.0},
                   {"account_id": "a", "security_id": "BD", "quantity": 400.0}], TARGETS,
                  futures=[_future(2, 1000.0)])
    market = _market({"2020-03-31": -0.20}, months=5)
    p = policy(trigger={"mode": "never"}, bands={"rule": "none"},
               overlay={"instruments": "cash_only", "accounts": ["tax_deferred"]})
    run = backtest(h, p, market).runs["policy"]
    assert run.events["date"].tolist() == [pd.Timestamp("2020-03-31")]
    assert run.events["reason"].iloc[0].startswith("margin call")
    sold = run.trades[run.trades["side"] == "sell"]
    assert len(sold) and set(sold["date"]) == {pd.Timestamp("2020-03-31")}
    assert run.values.loc["2020-03-31", "futures_notional"] == pytest.approx(16_000.0)
    cash = run.values.loc["2020-03-31", "value"] - 100 * 1000 + sold["quantity"].sum() * 100
    assert cash >= 3_600.0 - 1e-6


def test_the_overlay_household_runs_beside_its_cash_only_twin():
    case = case_path("overlay_monthly")
    h, p = load_case(case)
    r = backtest(h, p, load_market(case), end="1928-12-31")
    assert list(r.runs) == ["policy", "policy_cash_only"]
    both, cash_only = r.runs["policy"], r.runs["policy_cash_only"]
    contracts = {"US_EQ_FUT", "US_BD_FUT"}
    assert not cash_only.trades["security_id"].isin(contracts).any()
    assert (cash_only.values["futures_notional"] == 0).all()
    futures = both.trades[both.trades["security_id"].isin(contracts)]
    # The overlay is used: equity exposure sold short instead of the taxable account's 1921
    # lot, and bond exposure bought with it...
    assert {("US_EQ_FUT", "sell"), ("US_BD_FUT", "buy")} <= set(zip(futures["security_id"], futures["side"],
                                                                     strict=True))
    assert both.stats["taxes_paid"] < cash_only.stats["taxes_paid"]  # ...to realize fewer gains
    assert r.stats.loc["policy_cash_only", "futures_pnl"] == 0.0


def test_a_contract_without_a_series_for_its_underlying_is_named():
    h = household(SECURITIES, [{"account_id": "a", "type": "taxable", "cash": 1_000.0}], LOTS, TARGETS,
                  futures=[{**_future(0, 0.0), "underlying": "ES_ROLLED"}])
    with pytest.raises(ValidationError) as err:
        backtest(h, policy(), _market({}, months=3))
    assert err.value.problems[0].field == "ES_ROLLED" and "underlying" in err.value.problems[0].message


def test_a_phased_schedule_moves_half_then_a_quarter_then_a_quarter_of_the_way():
    """EQ +50% in January: 90,000 / 130,000 = 69.23%. Monthly checks with phases [0.5, 0.25,
    0.25] and the rule (no cost, fractional): January half way to 60% (64.62%), February a
    quarter of the original way more (62.31%, half of what is left), March the rest (60%).
    April starts a new schedule with nothing to do: no event."""
    h = household(SECURITIES, [{"account_id": "a", "type": "tax_deferred", "cash": 0.0}],
                  [{"account_id": "a", "security_id": "EQ", "quantity": 600.0},
                   {"account_id": "a", "security_id": "BD", "quantity": 400.0}], TARGETS)
    dates = pd.date_range("2020-01-31", periods=6, freq="ME")
    frame = pd.DataFrame({"EQ": 0.0, "BD": 0.0}, index=dates)
    frame.loc["2020-01-31", "EQ"] = 0.5
    p = policy(bands={"rule": "none"}, trigger={"mode": "calendar", "frequency": "monthly"},
               backtest={"rebalancer": "rule", "fractional": True, "phases": [0.5, 0.25, 0.25]})
    run = backtest(h, p, Market.from_returns(frame)).runs["policy"]
    w0 = 90 / 130
    gap = 0.6 - w0
    assert run.values["after_eq"].iloc[1:4].tolist() == pytest.approx([w0 + 0.5 * gap, w0 + 0.75 * gap, 0.6])
    assert run.events["date"].dt.month.tolist() == [1, 2, 3]
    assert [r.split(" (")[0] for r in run.events["reason"]] == ["phase 1 of 3", "phase 2 of 3", "phase 3 of 3"]


@pytest.mark.parametrize("phases, message", [([0.6, 0.6], "at most 1"), ([0.0, 1.0], "(0, 1]"),
                                             ("half", "list of numbers")])
def test_bad_phases_are_named(phases, message):
    with pytest.raises(ValidationError) as err:
        policy(backtest={"phases": phases})
    assert err.value.problems[0].field == "backtest.phases" and message in err.value.problems[0].message


def test_a_year_s_futures_loss_offsets_the_year_s_gains():
    """$5,000 of long-term gains realized earlier in 2020 (accounts.csv ytd_long_gain; the
    household starts on 2020-01-31). The 3 contracts lose 10% in February: -$3,000, i.e. -$1,200 short term and -$1,800 long term. The
    year nets to $2,000 of long-term gain (3,200 long less the 1,200 short-term loss): $400 of
    tax paid on 2021-01-31 instead of $1,000."""
    h = household(SECURITIES, [{"account_id": "a", "type": "taxable", "cash": 200_000.0,
                                "ytd_long_gain": 5_000.0}], LOTS, TARGETS, futures=[_future(3, 500.0)])
    market = _market({"2020-02-29": -0.10}, months=12, first="2020-02-29")
    run = backtest(h, policy(trigger={"mode": "never"}, bands={"rule": "none"}), market).runs["policy"]
    assert run.stats["futures_pnl"] == pytest.approx(-3_000.0)
    assert run.values.loc["2021-01-31", "tax_paid"] == pytest.approx(0.2 * 2_000.0)
    assert exact_tax(-1_200.0, 3_200.0, 0.37, 0.2) == pytest.approx(400.0)


def test_a_decision_whose_rounding_spends_the_margin_reserve_is_repaired_not_a_check_error():
    """Regression: the overlay case's household on 1936-02-29 (saved in tests/data). Whole-share
    rounding left the taxable account $60.91 short of its margin reserve; the pipeline did not
    know how to move that limit in (it now raises the account's cash floor, as for minimum cash)
    and the exact whole-share search did not count margin as a limit, so the backtest stopped on
    a CheckError."""
    h, p = load_case(Path(__file__).parents[1] / "data" / "margin_rounding")
    result = rebalance(h, p)
    assert result.summary["checks"]["passed"]
    assert result.futures["contracts_after"].tolist() == [-2, 1]


def test_a_swap_is_settled_on_its_return_struck_at_par_never_rolled_and_taxed_as_ordinary_income():
    """A $200,000 receive-fixed swap line held ($100,000 increments), never traded. Its own
    series SW is its return per unit notional: January +2% settles +$4,000 in cash; the line is
    struck at par again, so February's -1% is -$2,000 (on $200,000, not $204,000); May +0.3%,
    +$600. Swaps do not roll (no cost on the quarter ends). 2020's $2,600 is ordinary income, taxed
    at the short-term rate: $962, paid on 2021-01-31 (a flow, so that date decides; the line is
    held until then). Independent: P&L_t = notional x r_t."""
    swap = {"swap_id": "SW", "account_id": "a", "counterparty": "bank", "fixed_rate": 0.04, "tenor": 10,
            "position": 200_000.0, "asset_class": "fi", "duration": 6.0, "half_spread_bp": 0.5}
    h = household(SECURITIES, [{"account_id": "a", "type": "taxable", "cash": 200_000.0}], LOTS, TARGETS,
                  swaps=[swap])
    returns = {"2020-01-31": 0.02, "2020-02-29": -0.01, "2020-05-31": 0.003}
    dates = pd.date_range("2020-01-31", periods=14, freq="ME")
    frame = pd.DataFrame({"EQ": 0.0, "BD": 0.0, "SW": 0.0}, index=dates)
    for day, r in returns.items():
        frame.loc[day, "SW"] = r
    run = backtest(h, policy(trigger={"mode": "never"}, bands={"rule": "none"}),
                   Market.from_returns(frame)).runs["policy"]
    pnl = 200_000.0 * frame["SW"].to_numpy()  # the line is at par every period
    assert run.values["futures_pnl"].iloc[1:].to_numpy() == pytest.approx(pnl)
    assert run.values["futures_notional"].iloc[1:13].to_numpy() == pytest.approx(200_000.0)
    assert run.values["value"].iloc[1:13].to_numpy() == pytest.approx(300_000.0 + pnl[:12].cumsum())
    assert run.stats["costs"] == 0.0
    assert run.stats["short_term_gains"] == pytest.approx(pnl[:12].sum())
    assert run.stats["long_term_gains"] == 0.0
    assert run.values.loc["2021-01-31", "tax_paid"] == pytest.approx(0.37 * pnl[:12].sum())


def test_a_swap_without_its_return_series_is_named():
    swap = {"swap_id": "SW", "account_id": "a", "counterparty": "bank", "fixed_rate": 0.04, "tenor": 10}
    h = household(SECURITIES, [{"account_id": "a", "type": "taxable", "cash": 200_000.0}], LOTS, TARGETS,
                  swaps=[swap])
    with pytest.raises(ValidationError) as err:
        backtest(h, policy(trigger={"mode": "never"}), _market({}, months=3))
    [problem] = err.value.problems
    assert problem.field == "SW" and "swap" in problem.message
