"""What-if shocks (scenarios.shocks): prices moved by class or security, the contracts' variation
margin, the rebalance beside no shock, named historical shocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import load_case
from cvxrebalance.optimizer.domain.errors import ValidationError
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.market import load_market
from cvxrebalance.scenarios.shocks import historical, shock, shocked_household


@pytest.fixture(scope="module")
def four():
    return load_case(case_path("four_accounts"))


def test_a_shock_of_zero_changes_nothing(four):
    h, p = four
    r = shock(h, {"stocks": 0.0, "bonds": 0.0}, p)
    assert (r.comparison["difference"] == 0).all()
    pd.testing.assert_frame_equal(r.shocked.trades, r.base.trades)
    assert r.returns == {}


def test_a_class_shock_moves_every_security_of_the_class_and_the_value_by_hand(four):
    """-34% on stocks: the value falls by 34% of the stocks held (70.148% of $3,000,800)."""
    h, p = four
    r = shock(h, {"stocks": -0.34}, p)
    stocks = h.securities.loc[h.securities["asset_class"] == "stocks", "security_id"]
    assert r.returns == {s: -0.34 for s in stocks}
    held = h.holdings.groupby("security_id")["quantity"].sum()
    price = h.securities.set_index("security_id")["price"]
    stock_value = sum(held.get(s, 0.0) * price[s] for s in stocks)
    assert r.comparison.loc["household_value", "difference"] == pytest.approx(-0.34 * stock_value, abs=0.01)
    before = r.comparison.loc["before_stocks", "shock"]
    assert before == pytest.approx(0.66 * stock_value / (h.value - 0.34 * stock_value), abs=1e-8)
    assert r.shocked.summary["checks"]["passed"] and r.base.summary["checks"]["passed"]
    # The shocked household is rebalanced back inside its bands.
    assert abs(r.comparison.loc["after_stocks", "shock"] - 0.65) < 0.05


def test_a_security_s_own_shock_overrides_its_class_s(four):
    h, _ = four
    first = h.securities.loc[h.securities["asset_class"] == "stocks", "security_id"].iloc[0]
    shocked, returns = shocked_household(h, {"stocks": -0.2, first: 0.1})
    assert returns[first] == 0.1
    assert shocked.securities.set_index("security_id").loc[first, "price"] == pytest.approx(
        1.1 * h.securities.set_index("security_id").loc[first, "price"])


def test_contracts_move_with_their_class_and_settle_variation_margin():
    """The overlay case holds 4 ESZ6 (multiplier 50, price 6,000): -34% on us_equity pays
    4 x 50 x 6,000 x 0.34 = $408,000 of variation margin from the taxable account's cash."""
    h, _ = load_case(case_path("overlay"))
    shocked, returns = shocked_household(h, {"us_equity": -0.34})
    assert returns["ESZ6"] == -0.34 and "TYH7" not in returns
    cash = dict(zip(h.accounts["account_id"], h.accounts["cash"], strict=True))
    after = dict(zip(shocked.accounts["account_id"], shocked.accounts["cash"], strict=True))
    assert after["taxable"] - cash["taxable"] == pytest.approx(-408_000.0)
    assert after["ira"] == cash["ira"]


@pytest.mark.parametrize("shocks, field", [({"gold": -0.1}, "gold"), ({"stocks": -1.0}, "stocks"),
                                           ({"bonds": float("nan")}, "bonds")])
def test_bad_shocks_are_named(four, shocks, field):
    h, p = four
    with pytest.raises(ValidationError) as err:
        shock(h, shocks, p)
    assert err.value.problems[0].field == field


def test_historical_shocks_are_measured_on_the_bundled_data():
    levels = load_market(case_path("us_stocks_bonds_monthly")).levels
    stocks = levels.loc["2009-02-28", "US_STOCKS"] / levels.loc["2008-08-31", "US_STOCKS"] - 1
    assert historical("2008")["us_equity"] == pytest.approx(stocks, rel=1e-12)
    march = historical("2020-03")["us_equity"]
    prices = pd.read_csv(case_path("sp500_daily") / "prices.csv", index_col="date")
    growth = prices.loc["2020-03-23"] / prices.loc["2020-02-19"]
    assert march == pytest.approx(float(np.mean(growth) - 1), rel=1e-9)
    assert -0.45 < march < -0.25
    with pytest.raises(ValidationError):
        historical("1987")


def test_the_cli_prints_the_comparison_and_writes_it(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    out = tmp_path / "shock"
    assert main(["shock", "four_accounts", "--shock", "stocks=-0.34", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stocks -34.00%" in text and "household_value" in text
    table = pd.read_csv(out / "comparison.csv", index_col="figure")
    assert table.loc["household_value", "difference"] < 0
    assert (out / "trades.csv").exists()
    assert main(["shock", "four_accounts", "--shock", "stocks"]) == 2
    assert main(["shock", "four_accounts"]) == 2
    assert main(["shock", "four_accounts", "--shock", "gold=-0.1"]) == 2
    assert main(["shock", "us_stocks_bonds_monthly", "--historical", "2008"]) == 0


def test_a_historical_shock_applies_to_the_household_s_own_class_names(capsys):
    from cvxrebalance.optimizer.apps.cli import main

    assert main(["shock", "four_accounts", "--historical", "2008"]) == 2
    assert "its classes: bonds, stocks" in capsys.readouterr().err
    assert main(["shock", "four_accounts", "--historical", "2008", "--apply-to", "us_equity=stocks"]) == 0
    text = capsys.readouterr().out
    r = historical("2008")
    assert f"stocks {r['us_equity']:+.2%}" in text and f"bonds {r['bonds']:+.2%}" in text
    assert "before_stocks" in text and "%" in text.split("before_stocks")[1].splitlines()[0]
    assert main(["shock", "four_accounts", "--historical", "2008", "--apply-to", "nope=stocks"]) == 2


def test_a_swap_moves_by_its_duration_ratio_and_is_at_par_again():
    """A $2,000,000 receive-fixed swap (duration D_swap) hedging a duration-6 bond class: bonds
    -3% move it by -3% x D_swap / 6 of notional, settled in cash; the line is then at par. A
    Treasury future of the class moves by its own duration ratio likewise; a shock named by a
    contract's id is its return as given."""
    from builders import household

    from cvxrebalance.optimizer.domain.swaps import swap_duration
    h = household(
        securities=[{"security_id": "BD", "asset_class": "bonds", "price": 100}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": 1_000_000}],
        holdings=[{"account_id": "tax", "security_id": "BD", "quantity": 90_000, "lot_id": "b", "cost_basis": 100,
                   "acquired": "2020-01-02"}],
        targets=[{"asset_class": "bonds", "weight": 0.9}, {"asset_class": "cash", "weight": 0.1}],
        swaps=[{"swap_id": "SW", "account_id": "tax", "counterparty": "bank", "fixed_rate": 0.04, "tenor": 10,
                "position": 2_000_000, "asset_class": "bonds", "duration": 6.0}],
        futures=[{"contract_id": "TY", "price": 110, "multiplier": 1000, "account_id": "tax", "position": 5,
                  "asset_class": "bonds", "ctd_bpv": 95.0, "conversion_factor": 0.85, "duration": 6.0}])
    shocked, returns = shocked_household(h, {"bonds": -0.03})
    d_swap, d_ty = float(swap_duration(0.04, 10)), 95 / 0.85 / (110_000 * 1e-4)
    assert returns["SW"] == pytest.approx(-0.03 * d_swap / 6) and returns["TY"] == pytest.approx(-0.03 * d_ty / 6)
    pnl = 2_000_000 * returns["SW"] + 5 * 110_000 * returns["TY"]
    assert shocked.accounts["cash"].iloc[0] - 1_000_000 == pytest.approx(pnl)
    prices = shocked.futures.set_index("contract_id")["price"]
    assert prices["SW"] == 1.0 and prices["TY"] == pytest.approx(110 * (1 + returns["TY"]))
    assert shocked_household(h, {"bonds": -0.03, "SW": -0.1})[1]["SW"] == -0.1
