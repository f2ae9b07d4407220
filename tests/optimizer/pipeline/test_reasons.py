"""Every trade says why it is there (``optimizer.pipeline.reasons``), derived from the solution:
hand-checked households for each reason, the bundled cases, and random households."""

from __future__ import annotations

import pandas as pd
import pytest
from builders import household, policy

from cvxrebalance import InfeasibilityError, load_case, rebalance
from cvxrebalance.optimizer.pipeline.reasons import FUTURES_REASONS, REASONS
from cvxrebalance.scenarios import case_path

SECURITIES = [{"security_id": "EQ", "asset_class": "us_equity", "price": 100},
              {"security_id": "BD", "asset_class": "bonds", "price": 50},
              {"security_id": "SIN", "asset_class": "us_equity", "price": 80, "esg_excluded": True}]
TARGETS = [{"asset_class": "us_equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4}]


def ira(eq: float, bd: float, flow: float = 0.0, sin: float = 0.0, targets=TARGETS):
    """One IRA holding EQ and BD (and SIN), no costs: trades go exactly to target."""
    holdings = [{"account_id": "ira", "security_id": "EQ", "quantity": eq},
                {"account_id": "ira", "security_id": "BD", "quantity": bd}]
    if sin:
        holdings.append({"account_id": "ira", "security_id": "SIN", "quantity": sin})
    return household(SECURITIES, [{"account_id": "ira", "type": "tax_deferred", "cash": 0, "cash_flow": flow}],
                     holdings, targets)


def why(result) -> list[tuple]:
    return [(t.security_id, t.side, t.quantity, t.reason, t.reason_detail) for t in result.trades.itertuples()]


def test_a_withdrawal_is_funded_by_cash_raises():
    # $60,000 EQ + $40,000 BD, $10,000 out: 60/40 of $90,000 sells 60 EQ and 80 BD.
    r = rebalance(ira(600, 800, flow=-10_000), policy())
    detail = "funds the withdrawal of 10,000.00 from ira"
    assert why(r) == [("EQ", "sell", 60, "cash_raise", detail), ("BD", "sell", 80, "cash_raise", detail)]


def test_a_contribution_is_invested():
    # $54,000 EQ + $36,000 BD, $10,000 in: 60/40 of $100,000 buys 60 EQ and 80 BD.
    r = rebalance(ira(540, 720, flow=10_000), policy())
    detail = "invests the 10,000.00 contributed to ira"
    assert why(r) == [("EQ", "buy", 60, "contribution", detail), ("BD", "buy", 80, "contribution", detail)]


def test_a_band_breach_names_the_class_and_its_band():
    # 70/30 against 60/40 with 5-point bands: equity above 55-65%, bonds below 35-45%.
    r = rebalance(ira(700, 600), policy(bands={"rule": "absolute", "absolute": 0.05}))
    assert why(r) == [("EQ", "sell", 100, "band_breach", "us_equity 70.00% above its band 55.00% to 65.00%"),
                      ("BD", "buy", 200, "band_breach", "bonds 30.00% below its band 35.00% to 45.00%")]


def test_drift_inside_the_bands_names_the_class_before_after_and_target():
    r = rebalance(ira(620, 760), policy(bands={"rule": "absolute", "absolute": 0.05}))
    assert why(r) == [("EQ", "sell", 20, "drift", "us_equity 62.00% -> 60.00% (target 60.00%)"),
                      ("BD", "buy", 40, "drift", "bonds 38.00% -> 40.00% (target 40.00%)")]


def test_a_tilt_is_a_tactical_trade_when_only_the_tilt_asks_for_it():
    targets = [{"asset_class": "us_equity", "weight": 0.6, "tilt": 0.05, "max_tilt": 0.1},
               {"asset_class": "bonds", "weight": 0.4, "tilt": -0.05, "max_tilt": 0.1}]
    r = rebalance(ira(600, 800, targets=targets), policy(bands={"rule": "none"}))
    assert why(r) == [
        ("BD", "sell", 100, "tactical_tilt", "bonds tilt -5.00%: target 35.00% (strategic 40.00%), 40.00% before"),
        ("EQ", "buy", 50, "tactical_tilt", "us_equity tilt +5.00%: target 65.00% (strategic 60.00%), 60.00% before")]


def test_an_esg_sell_down_comes_first_and_its_replacement_says_what_it_replaces():
    # $8,000 of SIN must go; EQ replaces it (same class, same loadings: a swap).
    r = rebalance(ira(520, 800, sin=100), policy(esg={"excluded": "sell"}, bands={"rule": "none"}))
    assert why(r) == [("SIN", "sell", 100, "esg_sell_down", "SIN is excluded by the ESG screen"),
                      ("EQ", "buy", 80, "substitution",
                       "replaces SIN sold in ira (esg_sell_down: SIN is excluded by the ESG screen)")]


def test_a_harvest_names_its_loss_and_the_substitutes_name_the_sale():
    # tax_aware: VXUS-2021, 1,500 shares bought at 71 and sold at 64: a loss of 10,500.
    r = rebalance(*load_case(case_path("tax_aware")))
    t = r.trades.set_index(["account_id", "security_id"])
    assert t.loc[("brokerage", "VXUS"), "reason"] == "tax_loss_harvest"
    assert t.loc[("brokerage", "VXUS"), "reason_detail"] == "realizes a loss of 10,500.00; substitute bought: IXUS"
    for account in ("brokerage", "ira", "roth"):
        assert t.loc[(account, "IXUS"), "reason"] == "tax_loss_harvest"
        assert t.loc[(account, "IXUS"), "reason_detail"] == (
            "substitute for VXUS sold in brokerage (realizes a loss of 10,500.00)")
    assert t.loc[("ira", "VTI"), "reason"] == "band_breach"


def test_a_location_move_names_the_account_types_and_the_drag_saved():
    # example: taxable sells $74,000 of BND (drag 0.4% a year in taxable, 0 elsewhere): $296 a year.
    r = rebalance(*load_case(case_path("example")))
    t = r.trades.set_index(["account_id", "security_id"])
    assert t.loc[("taxable", "BND"), "reason"] == "asset_location"
    assert t.loc[("taxable", "BND"), "reason_detail"] == (
        "bonds from taxable to tax_deferred and tax_exempt; the moves save 296.00 a year of tax drag")
    assert t.loc[("ira", "VTI"), "reason_detail"] == "us_equity 51.77% above its band 39.00% to 49.00%"


def test_overlay_contracts_say_expiry_and_currency_hedge_and_currencies_are_shown():
    r = rebalance(*load_case(case_path("overlay")))
    f = r.futures.set_index("contract_id")
    assert f.loc["ESZ6", ["reason", "reason_detail"]].tolist() == [
        "expiry", "expires before the horizon 2027-01-15; closed"]
    assert f.loc["ESH7", "reason"] == "" and f.loc["TYH7", "reason"] == ""  # not traded
    assert f.loc["6EH7", "reason"] == "currency_hedge"
    eur = r.summary["currency_exposure"]["EUR"]
    # VGK is the household's EUR (14.85% of value); the benchmark's 15% half hedged: 7.5%.
    assert eur["before"] == pytest.approx(r.asset_classes.loc["intl_equity", "before"])
    assert eur["target"] == pytest.approx(0.5 * 0.15)
    # -10 contracts x 1.08 x 125,000 = -1,350,000 of notional over the value after trading.
    assert eur["overlay_after"] == pytest.approx(-1_350_000 / r.summary["household_value_after"])
    assert eur["after"] == pytest.approx(r.asset_classes.loc["intl_equity", "after"] + eur["overlay_after"])
    assert f.loc["6EH7", "reason_detail"] == (
        f"EUR exposure {100 * eur['before']:.2f}% -> {100 * eur['after']:.2f}% (hedge ratio 0.5: target 7.50%)")
    text = r.to_text()
    assert "Currency exposures" in text and "EUR" in text
    assert "currency_hedge: EUR exposure" in text


def test_reasons_are_written_and_spreadsheet_safe(tmp_path):
    r = rebalance(*load_case(case_path("example")))
    r.write(tmp_path)
    written = pd.read_csv(tmp_path / "trades.csv", keep_default_na=False)
    assert written["reason"].tolist() == r.trades["reason"].tolist()
    assert written["reason_detail"].tolist() == r.trades["reason_detail"].tolist()
    assert not written["reason_detail"].str.match(r"^[=+\-@]").any()


@pytest.mark.parametrize("seed", range(25))
def test_random_households_give_every_trade_a_known_reason(seed):
    from golden_cases import overlay_variant, random_household

    for h, p in (random_household(seed), overlay_variant(seed)):
        try:
            r = rebalance(h, p)
        except InfeasibilityError:
            continue
        assert set(r.trades["reason"]) <= set(REASONS)
        assert (r.trades["reason_detail"] != "").all()
        traded = r.futures["trade"] != 0 if len(r.futures) else []
        if len(r.futures):
            assert set(r.futures.loc[traded, "reason"]) <= set(FUTURES_REASONS)
            assert (r.futures.loc[~traded, "reason"] == "").all()


def test_every_reason_has_plain_words_and_is_documented():
    from pathlib import Path

    from cvxrebalance.optimizer.pipeline.reasons import REASON_WORDS

    assert set(REASON_WORDS) == set(REASONS)
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    listed = readme[readme.index("- `trades.csv`"):readme.index("- `lots.csv`")]
    assert [r for r in REASONS if f"`{r}`" not in listed] == []


def test_each_trade_says_why_in_plain_words_for_the_client():
    """summary["trade_words"]: the reason of each trade for the proposal page, without codes."""
    def words(result) -> list[tuple]:
        return [(w["security_id"], w["side"], w["words"]) for w in result.summary["trade_words"]]

    r = rebalance(ira(600, 800, flow=-10_000), policy())
    assert words(r) == [("EQ", "sell", "Raises cash for the withdrawal of 10,000.00 from ira"),
                        ("BD", "sell", "Raises cash for the withdrawal of 10,000.00 from ira")]
    r = rebalance(ira(700, 600), policy(bands={"rule": "absolute", "absolute": 0.05}))
    assert words(r) == [
        ("EQ", "sell", "Brings us_equity back inside its allowed range of 55.00% to 65.00% (it was at 70.00%)"),
        ("BD", "buy", "Brings bonds back inside its allowed range of 35.00% to 45.00% (it was at 30.00%)")]
    r = rebalance(ira(520, 800, sin=100), policy(esg={"excluded": "sell"}, bands={"rule": "none"}))
    assert words(r) == [("SIN", "sell", "Excluded by the portfolio's ESG screen"),
                        ("EQ", "buy", "Bought in place of the SIN sold in ira \u2014 excluded by the portfolio's "
                                      "ESG screen")]
    assert [w["account_id"] for w in r.summary["trade_words"]] == r.trades["account_id"].tolist()


def test_the_trigger_says_why_in_plain_words():
    bands = {"rule": "absolute", "absolute": 0.05}
    r = rebalance(ira(700, 600), policy(trigger={"mode": "threshold"}, bands=bands))
    assert r.summary["trigger"]["reasons"] == ["bonds at 30.00% outside 35.00% to 45.00%",
                                               "us_equity at 70.00% outside 55.00% to 65.00%"]
    assert r.summary["trigger"]["words"] == [
        "bonds is at 30.00%, outside its allowed range of 35.00% to 45.00%",
        "us_equity is at 70.00%, outside its allowed range of 55.00% to 65.00%"]
    r = rebalance(ira(610, 780), policy(trigger={"mode": "threshold"}, bands=bands))
    assert not r.summary["rebalanced"]
    assert r.summary["trigger"]["words"] == ["every asset class is inside its allowed range"]
    assert rebalance(ira(610, 780), policy()).summary["trigger"]["words"] == ["the policy rebalances at every review"]


def test_a_position_sold_whole_at_a_loss_into_the_class_s_fund_reads_as_a_harvest():
    """The advisor book's h031 sells all 5,983 BND ($436,759) at a $7,538.58 loss and buys $397,485
    of AGG, its class's ranked fund: bonds net only a tenth of the sale. The sale read `drift`,
    credited with the whole class's trim; it is a harvest, and AGG its substitute."""
    from cvxrebalance.optimizer.apps.batch import household_and_policy, read_batch
    from cvxrebalance.scenarios import book_path

    batch = read_batch(book_path("advisor"))
    household, policy, _ = household_and_policy("h031", batch.households["h031"], batch.shared, batch.policy, {})
    trades = rebalance(household, policy).trades.set_index(["security_id", "side"])
    assert trades.loc[("BND", "sell"), "reason"] == "tax_loss_harvest"
    assert "realizes a loss of 7,538.58" in trades.loc[("BND", "sell"), "reason_detail"]
    assert trades.loc[("AGG", "buy"), "reason"] == "tax_loss_harvest"
    assert trades.loc[("VXUS", "sell"), "reason"] == "drift"  # a trade of its class's net: as before
