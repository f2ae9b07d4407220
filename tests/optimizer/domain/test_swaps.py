"""swaps.csv: a swap's duration against bump-and-reprice, and bad rows named by file, line, field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import household

from cvxrebalance import Household, ValidationError
from cvxrebalance.optimizer.domain.swaps import swap_duration


def reprice_duration(rate: float, tenor: float, m: int, mf: int) -> float:
    """Receive-fixed swap at par, priced from its cash flows at a flat yield y (compounded m times
    a year for the fixed leg, mf for the floating leg that has just reset), duration by a +-0.01 bp
    central difference: -(dP/dy) / notional."""
    def value(y: float) -> float:
        times = np.arange(1, int(round(m * tenor)) + 1) / m
        fixed = (rate / m) * (1 + y / m) ** (-m * times)
        fixed_leg = fixed.sum() + (1 + y / m) ** (-m * tenor)
        floating_leg = (1 + rate / mf) / (1 + y / mf)  # next coupon set at the par rate, then par
        return fixed_leg - floating_leg
    h = 1e-6
    return -(value(rate + h) - value(rate - h)) / (2 * h)


@pytest.mark.parametrize(("rate", "tenor", "m", "mf"), [(0.04, 5, 2, 4), (0.0425, 10, 2, 4), (0.03, 30, 1, 2),
                                                        (0.05, 2, 4, 4), (0.001, 7, 2, 4)])
def test_swap_duration_matches_bump_and_reprice(rate, tenor, m, mf):
    assert swap_duration(rate, tenor, m, mf) == pytest.approx(reprice_duration(rate, tenor, m, mf), rel=1e-6)


def test_zero_rate_is_the_limit():
    # c -> 0: the annuity is the tenor, the floating leg 1 / mf.
    assert swap_duration(0.0, 5.0) == pytest.approx(5.0 - 0.25)
    assert swap_duration(1e-9, 5.0) == pytest.approx(5.0 - 0.25, rel=1e-6)


def bond_household(swaps, futures=None):
    return household(
        securities=[{"security_id": "BD", "asset_class": "bonds", "price": 100}],
        accounts=[{"account_id": "tax", "type": "taxable", "cash": 100_000}],
        holdings=[{"account_id": "tax", "security_id": "BD", "quantity": 99_000, "lot_id": "b",
                   "cost_basis": 100, "acquired": "2020-01-02"}],
        targets=[{"asset_class": "bonds", "weight": 0.99}, {"asset_class": "cash", "weight": 0.01}],
        vols={"bonds": 0.06}, swaps=swaps, futures=futures)


SWAP = {"swap_id": "USD10Y", "account_id": "tax", "counterparty": "bank_a", "fixed_rate": 0.0425,
        "tenor": 10, "asset_class": "bonds", "duration": 6.0}


def test_swap_rows_join_the_overlay_table():
    h = bond_household([dict(SWAP, position=2_000_000, half_spread_bp=0.25, increment=1_000_000)])
    row = h.futures.set_index("contract_id").loc["USD10Y"]
    d = float(swap_duration(0.0425, 10))
    assert row["source"] == "swaps.csv" and row["counterparty"] == "bank_a"
    assert row["price"] == 1.0 and row["multiplier"] == 1_000_000 and row["position"] == 2
    assert row["futures_duration"] == pytest.approx(d)
    assert row["exposure"] == pytest.approx(d / 6.0)  # the swap's duration over the bond class's
    assert row["half_spread"] == pytest.approx(0.25e-4 * d)  # a quarter bp of rate, per unit notional


def test_dv01_overrides_the_computed_duration():
    h = bond_household([dict(SWAP, dv01=800.0, increment=1_000_000)])
    assert h.futures["futures_duration"].iloc[0] == pytest.approx(800 / (1e6 * 1e-4))


def test_bad_swap_rows_are_named():
    bad = [dict(SWAP, swap_id="A", fixed_rate=1.5), dict(SWAP, swap_id="B", tenor=0),
           dict(SWAP, swap_id="C", position=150_000), dict(SWAP, swap_id="D", account_id="nope"),
           dict(SWAP, swap_id="E", counterparty=""), dict(SWAP, swap_id="A", collateral=2.0)]
    with pytest.raises(ValidationError) as exc:
        bond_household(bad)
    got = {(p.file, p.row, p.field) for p in exc.value.problems}
    assert {("swaps.csv", 2, "fixed_rate"), ("swaps.csv", 3, "tenor"), ("swaps.csv", 4, "position"),
            ("swaps.csv", 5, "account_id"), ("swaps.csv", 6, "counterparty"), ("swaps.csv", 7, "collateral"),
            ("swaps.csv", 7, "swap_id")} <= got


def test_a_swap_id_may_not_repeat_a_futures_contract():
    fut = [{"contract_id": "USD10Y", "price": 110, "multiplier": 1000, "account_id": "tax"}]
    with pytest.raises(ValidationError) as exc:
        bond_household([SWAP], futures=fut)
    assert any(p.file == "swaps.csv" and p.field == "swap_id" for p in exc.value.problems)


def test_unknown_column_and_rate_factor_name_swaps_csv():
    with pytest.raises(ValidationError) as exc:
        bond_household([dict(SWAP, notional=5)])
    assert any(p.file == "swaps.csv" and p.field == "notional" for p in exc.value.problems)
    with pytest.raises(ValidationError) as exc:
        bond_household([dict(SWAP, asset_class="credit")])
    assert any(p.file == "swaps.csv" and p.field == "asset_class" and p.row == 2 for p in exc.value.problems)


def test_futures_csv_instrument_column():
    fut = [{"contract_id": "EURUSD", "price": 1.1, "multiplier": 125_000, "account_id": "tax",
            "instrument": "option"}]
    with pytest.raises(ValidationError) as exc:
        bond_household(None, futures=fut)
    assert any(p.file == "futures.csv" and p.field == "instrument" for p in exc.value.problems)
    pd.testing.assert_index_equal(bond_household(None).futures.columns,
                                  bond_household([SWAP]).futures.columns)


def test_a_factor_loadings_row_of_no_contract_is_named_with_its_line():
    """The duration_overlay case without its swaps.csv: the swaps' rows of factor_loadings.csv
    belong to nothing, and each problem names its line (the error contract's file, line, field)."""
    import shutil
    import tempfile
    from pathlib import Path

    from cvxrebalance import load_case
    from cvxrebalance.scenarios import case_path

    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "c"
        shutil.copytree(case_path("duration_overlay"), case)
        (case / "swaps.csv").unlink()
        with pytest.raises(ValidationError) as exc:
            load_case(case)
    got = {(p.file, p.row, p.field) for p in exc.value.problems}
    assert got == {("factor_loadings.csv", 5, "USD10Y"), ("factor_loadings.csv", 6, "USD10Y_B")}


@pytest.mark.parametrize(("row", "field"), [
    # A dv01 that implies a duration longer than the tenor is in the wrong units (the solver
    # failed on it instead of the reader naming it).
    ({"dv01": 1e12, "increment": 1_000_000}, "dv01"),
    # A half spread beyond 100 percentage points of rate (the solver failed on 1e9 bp).
    ({"half_spread_bp": 1e9}, "half_spread_bp"),
    # Payments a year are whole; a fresh par swap's tenor is a whole number of fixed periods
    # (9.9 years semiannual is not: the optimizer and the independent checker disagreed on it).
    ({"fixed_frequency": 0.001}, "fixed_frequency"),
    ({"float_frequency": 2.5}, "float_frequency"),
    ({"tenor": 9.9}, "tenor"),
])
def test_swap_terms_no_par_swap_has_are_named(row, field):
    with pytest.raises(ValidationError) as exc:
        bond_household([dict(SWAP, **row)])
    assert [(p.file, p.row, p.field) for p in exc.value.problems] == [("swaps.csv", 2, field)]


@pytest.mark.parametrize("row", [{"fixed_frequency": 0}, {"float_frequency": 0}, {"tenor": -5}, {"dv01": -5.0}])
def test_a_bad_term_is_one_problem_without_warnings(row, recwarn):
    # The duration check does not repeat a cell already reported (it said "give dv01" to a
    # negative dv01), and a zero frequency divides nothing.
    with pytest.raises(ValidationError) as exc:
        bond_household([dict(SWAP, **row)])
    assert [(p.row, p.field) for p in exc.value.problems] == [(2, next(iter(row)))]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_swap_id_repeating_a_security_id_names_swap_id():
    with pytest.raises(ValidationError) as exc:
        bond_household([dict(SWAP, swap_id="BD")])
    assert ("swaps.csv", 2, "swap_id") in {(p.file, p.row, p.field) for p in exc.value.problems}


def test_an_asset_class_no_security_has_is_named_with_a_factor_model():
    # With a factor model a contract's asset_class only adds its exposure to that class's band;
    # a class no security has (a typo) was dropped silently, leaving the swap out of the bands.
    def with_class(c: str):
        return Household.from_frames(
            pd.DataFrame([{"security_id": "BD", "asset_class": "bonds", "price": 100}]),
            pd.DataFrame([{"account_id": "tax", "type": "tax_exempt", "cash": 100_000}]),
            pd.DataFrame([{"account_id": "tax", "security_id": "BD", "quantity": 9_900}]),
            pd.DataFrame([{"asset_class": "bonds", "weight": 0.99}, {"asset_class": "cash", "weight": 0.01}]),
            factor_loadings=pd.DataFrame({"id": ["BD", "USD10Y"], "rates": [6.0, 0.0]}),
            factor_covariance=pd.DataFrame({"factor": ["rates"], "rates": [1e-4]}),
            swaps=pd.DataFrame([dict(SWAP, account_id="tax", asset_class=c, rate_factor="rates")]))

    assert with_class("bonds").futures["asset_class"].tolist() == ["bonds"]
    with pytest.raises(ValidationError) as exc:
        with_class("bondz")
    assert [(p.file, p.row, p.field) for p in exc.value.problems] == [("swaps.csv", 2, "asset_class")]
