"""The error contract for bad input: every problem is a Problem naming file, line and field.

Each test copies the bundled ``example`` case, corrupts one thing, and checks that the resulting
ValidationError reports exactly that thing: the right file, the file line (header = line 1, first
data row = line 2, None for the whole file), the right column or policy key, and a message a user
can act on.

Lines of the example case used below (see scenarios/cases/example/*.csv):
  securities.csv  2 VTI, 3 ESGV, 4 XOM, 5 VXUS, ..., 9 VTEB, 10 VNQ
  accounts.csv    2 taxable, 3 ira, 4 roth
  holdings.csv    2-13 taxable lots (2 VTI-2015-07, 3 VTI-2021-01, 4 VTI-2026-05, ...),
                  14-19 ira (14 VTI, 15 VXUS), 20-21 roth (20 ESGV)
  targets.csv     2 us_equity (0.45, tilt -0.01), 3 intl_equity (0.15, +0.01), 4 bonds (0.30),
                  5 real_estate (0.08), 6 cash (0.02); max_tilt 0.03 on every row
  covariance.csv  2 us_equity, 3 intl_equity, 4 bonds, 5 real_estate
  policy.toml     as_of = 2026-11-20
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import Household, Policy, Problem, ValidationError, load_case, rebalance
from cvxrebalance.optimizer.apps.cli import main
from cvxrebalance.optimizer.domain.case_io import read_csv
from cvxrebalance.scenarios import case_path

# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def case(tmp_path: Path) -> Path:
    """A private, writable copy of the bundled example case."""
    dst = tmp_path / "case"
    shutil.copytree(case_path("example"), dst)
    return dst


def set_cell(case: Path, file: str, line: int, column: str, value: str) -> None:
    """Write ``value`` into ``column`` on file line ``line`` (header = line 1).

    A column the file lacks is added, empty on every other row.
    """
    path = case / file
    df = read_csv(path)
    if column not in df.columns:
        df[column] = ""
    df.loc[line, column] = value  # read_csv indexes rows by file line
    df.to_csv(path, index=False)


def rename_column(case: Path, file: str, old: str, new: str) -> None:
    """Change one header name, as a typo would."""
    path = case / file
    df = read_csv(path)
    assert old in df.columns
    df.rename(columns={old: new}).to_csv(path, index=False)


def edit_text(case: Path, file: str, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in a file's text."""
    path = case / file
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {file}"
    path.write_text(text.replace(old, new))


def load_error(case: Path) -> ValidationError:
    """The ValidationError load_case raises for the case."""
    with pytest.raises(ValidationError) as info:
        load_case(case)
    return info.value


def find_problem(err: ValidationError, file: str, field: str | None, contains: str = "") -> Problem:
    """The one problem about ``file``/``field`` whose message contains ``contains``."""
    found = [
        p for p in err.problems if p.file == file and p.field == field and contains in p.message
    ]
    listing = "\n".join(f"  {p!r}" for p in err.problems)
    assert len(found) == 1, (
        f"expected one problem in {file} [{field}] containing {contains!r}, "
        f"found {len(found)} among:\n{listing}"
    )
    return found[0]


def assert_problem(
    err: ValidationError, file: str, row: int | None, field: str | None, contains: str
) -> Problem:
    """Assert ``err`` reports a problem in file/field with that message fragment, on ``row``."""
    same_row = [p for p in err.problems if p.row == row]
    if len([p for p in err.problems if p.file == file and p.field == field and contains in p.message]) > 1:
        err = ValidationError(same_row)  # several rows share the message: pick this row's
    p = find_problem(err, file, field, contains)
    assert p.row == row, f"{p} is reported on line {p.row}, expected {row}"
    return p


def test_copied_example_case_is_valid(case):
    # The control: every failure below comes from the corruption, not from the copy.
    household, policy = load_case(case)
    assert household.name == "case"
    assert policy.tax.as_of == dt.date(2026, 11, 20)


# ---------------------------------------------------------------------------------------------
# One bad cell -> one problem on that cell's line and column

UNKNOWN_REFERENCES = [
    pytest.param("holdings.csv", 14, "security_id", "VTIX", "unknown security 'VTIX'",
                 id="holdings-unknown-security"),
    pytest.param("holdings.csv", 20, "account_id", "rothh", "unknown account 'rothh'",
                 id="holdings-unknown-account"),
    pytest.param("targets.csv", 4, "asset_class", "bond", "unknown asset class 'bond'",
                 id="targets-unknown-asset-class"),
    pytest.param("accounts.csv", 3, "type", "ira", "unknown account type 'ira'",
                 id="accounts-unknown-account-type"),
    pytest.param("securities.csv", 9, "allowed_account_types", "taxable;roth",
                 "unknown account type 'roth'", id="securities-unknown-allowed-account-type"),
    pytest.param("securities.csv", 6, "asset_class", "cash", "'cash' is the accounts' cash",
                 id="securities-cash-asset-class"),
]

DUPLICATES = [
    pytest.param("securities.csv", 3, "security_id", "VTI",
                 "duplicate security_id=VTI (first on line 2)", id="security_id"),
    pytest.param("accounts.csv", 4, "account_id", "ira",
                 "duplicate account_id=ira (first on line 3)", id="account_id"),
    pytest.param("holdings.csv", 3, "lot_id", "VTI-2015-07",
                 "duplicate account_id=taxable, lot_id=VTI-2015-07 (first on line 2)",
                 id="lot_id-within-account"),
    pytest.param("targets.csv", 6, "asset_class", "bonds",
                 "duplicate asset_class=bonds (first on line 4)", id="target-asset_class"),
]

TAX_LOTS = [
    pytest.param("holdings.csv", 5, "cost_basis", "", "a tax lot in a taxable account needs a cost basis",
                 id="missing-cost-basis"),
    pytest.param("holdings.csv", 6, "acquired", "", "a tax lot in a taxable account needs an acquired date",
                 id="missing-acquired"),
    pytest.param("holdings.csv", 7, "acquired", "2018-13-01", "not a calendar date: '2018-13-01'",
                 id="bad-date"),
    pytest.param("holdings.csv", 7, "acquired", "04/16/2018", "not a date written YYYY-MM-DD: '04/16/2018'",
                 id="us-style-date"),
    pytest.param("holdings.csv", 8, "cost_basis", "-3", "must be >= 0, got -3", id="negative-cost-basis"),
    pytest.param("holdings.csv", 15, "quantity", "0", "must be > 0, got 0", id="zero-quantity"),
]

BANDS = [
    # bonds: weight 0.30, no tilt
    pytest.param("targets.csv", 4, "lower", "0.32", "band lower 0.32 excludes its own target 0.3",
                 id="lower-above-weight"),
    pytest.param("targets.csv", 4, "upper", "0.25", "band upper 0.25 excludes its own target 0.3",
                 id="upper-below-weight"),
    # us_equity: weight 0.45, tilt -0.01 -> the band must hold both 0.44 and 0.45
    pytest.param("targets.csv", 2, "lower", "0.445", "band lower 0.445 excludes its own target 0.44",
                 id="lower-above-tilted-target"),
    pytest.param("targets.csv", 2, "upper", "0.445", "band upper 0.445 excludes its own target 0.45",
                 id="upper-below-strategic-weight"),
    pytest.param("targets.csv", 5, "lower", "1.5", "must be in [0, 1], got 1.5", id="lower-out-of-range"),
]


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "message"),
    UNKNOWN_REFERENCES + DUPLICATES + TAX_LOTS + BANDS,
)
def test_bad_cell_is_reported_on_its_line_and_column(case, file, line, column, value, message):
    set_cell(case, file, line, column, value)
    assert_problem(load_error(case), file, line, column, message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("-5", "must be > 0, got -5", id="negative"),
        pytest.param("0", "must be > 0, got 0", id="zero"),
        pytest.param("", "missing value", id="empty"),
        pytest.param("  ", "missing value", id="blank"),
        pytest.param("abc", "not a number: 'abc'", id="non-numeric"),
        pytest.param("1,15", "not a number: '1,15'", id="decimal-comma"),
        pytest.param("nan", "not a finite number: 'nan'", id="nan"),
        pytest.param("NaN", "not a finite number: 'NaN'", id="NaN"),
        pytest.param("inf", "not a finite number: 'inf'", id="inf"),
        pytest.param("-inf", "not a finite number: '-inf'", id="minus-inf"),
    ],
)
def test_bad_price_is_the_only_problem(case, value, message):
    set_cell(case, "securities.csv", 4, "price", value)  # XOM
    err = load_error(case)
    assert err.problems == [Problem("securities.csv", 4, "price", message)]


def test_two_accounts_of_a_household_with_one_custodian_number_are_named(case):
    set_cell(case, "accounts.csv", 2, "account_number", "X-1")
    set_cell(case, "accounts.csv", 3, "account_number", "X-1")
    problem = find_problem(load_error(case), "accounts.csv", "account_number", "duplicate account_number=X-1")
    assert problem.row == 3 and "first on line 2" in problem.message
    set_cell(case, "accounts.csv", 3, "account_number", "X-2")
    load_case(case)  # distinct numbers (and blank ones) are fine


def test_two_accounts_whose_numbers_differ_only_in_case_are_named(case):
    """"x-1" and "X-1" are one custodian account: orders for both would reach the same one."""
    set_cell(case, "accounts.csv", 2, "account_number", "X-1")
    set_cell(case, "accounts.csv", 3, "account_number", "x-1")
    problem = find_problem(load_error(case), "accounts.csv", "account_number", "duplicate account_number=x-1")
    assert problem.row == 3 and "first on line 2" in problem.message and "X-1" in problem.message


def test_an_account_number_with_a_line_break_or_control_character_is_named(case):
    """A custodian upload file is read line by line: a number with a line break splits an order."""
    set_cell(case, "accounts.csv", 2, "account_number", "4800\n0030")
    set_cell(case, "accounts.csv", 3, "account_number", "4800\t0031")
    err = load_error(case)
    rows = {p.row for p in err.problems if p.field == "account_number"}
    assert rows == {2, 3} and all("control character" in p.message for p in err.problems)


def test_an_account_number_a_spreadsheet_wrote_in_scientific_notation_is_named(case):
    """A spreadsheet saves a long number it took for a number as 4.8E+07: its digits are gone, and
    an order sent to "4.8E+07" reaches no account (or the wrong one)."""
    set_cell(case, "accounts.csv", 2, "account_number", "4.8E+07")
    set_cell(case, "accounts.csv", 3, "account_number", "1E2")  # no sign: could be a custodian's text
    problem = find_problem(load_error(case), "accounts.csv", "account_number")
    assert problem.row == 2 and "scientific notation" in problem.message


def _example_frames() -> dict[str, pd.DataFrame]:
    case = case_path("example")
    return {n: read_csv(case / f"{n}.csv") for n in ("securities", "accounts", "holdings", "targets", "covariance")}


def test_an_account_number_stored_as_a_float_is_named_not_written_with_a_decimal_point():
    """A float column (Parquet or a database) would send "48000030.0" to the custodian, and a
    float's digits may not be the account's: refused, naming the cell. Whole numbers of an
    integer column are their digits; blanks are not given."""
    f = _example_frames()
    ints = f["accounts"].assign(account_number=pd.Series([48000030, None, np.int64(7)], index=f["accounts"].index,
                                                         dtype=object))
    h = Household.from_frames(f["securities"], ints, f["holdings"], f["targets"], covariance=f["covariance"])
    assert h.accounts["account_number"].tolist() == ["48000030", None, "7"]
    floats = f["accounts"].assign(account_number=[48000030.0, np.nan, 1e5])
    with pytest.raises(ValidationError) as err:
        Household.from_frames(f["securities"], floats, f["holdings"], f["targets"], covariance=f["covariance"])
    assert [(p.file, p.row, p.field) for p in err.value.problems] == [("accounts.csv", 2, "account_number"),
                                                                      ("accounts.csv", 4, "account_number")]
    assert "48000030.0" in err.value.problems[0].message and "text" in err.value.problems[0].message


def test_same_lot_id_in_different_accounts_is_allowed(case):
    set_cell(case, "holdings.csv", 14, "lot_id", "VTI-2015-07")  # ira row, taxable lot's id
    household, _ = load_case(case)
    assert (household.holdings["lot_id"] == "VTI-2015-07").sum() == 2


def test_unknown_security_in_model_portfolio_targets(case):
    (case / "targets.csv").write_text(
        "security_id,weight\nVTI,0.5\nVANGUARD_TOTAL,0.3\nBND,0.2\n"
    )
    err = load_error(case)
    assert_problem(err, "targets.csv", 3, "security_id", "unknown security 'VANGUARD_TOTAL'")


def test_targets_with_both_key_columns(case):
    set_cell(case, "targets.csv", 2, "security_id", "VTI")
    assert_problem(load_error(case), "targets.csv", 1, None, "exactly one of the columns")


# ---------------------------------------------------------------------------------------------
# Whole-file sums in targets.csv


def test_weights_not_summing_to_one(case):
    set_cell(case, "targets.csv", 4, "weight", "0.35")  # bonds 0.30 -> 0.35: total 1.05
    err = load_error(case)
    assert err.problems == [Problem("targets.csv", None, "weight", "weights sum to 1.05, not 1 (tolerance 1e-06)")]


def test_tilts_not_summing_to_zero(case):
    set_cell(case, "targets.csv", 3, "tilt", "0.02")  # -0.01 + 0.02
    err = load_error(case)
    assert err.problems == [Problem("targets.csv", None, "tilt", "tilts sum to 0.01, not 0")]


def test_tilts_larger_than_their_max_tilt(case):
    # Still summing to 0, so only the two rows' max_tilt (0.03) is broken.
    set_cell(case, "targets.csv", 2, "tilt", "-0.04")
    set_cell(case, "targets.csv", 3, "tilt", "0.04")
    err = load_error(case)
    assert err.problems == [
        Problem("targets.csv", 2, "tilt", "|tilt| 0.04 exceeds max_tilt 0.03"),
        Problem("targets.csv", 3, "tilt", "|tilt| 0.04 exceeds max_tilt 0.03"),
    ]


def test_tilt_larger_than_policy_default_max_tilt(case):
    (case / "targets.csv").write_text(
        "asset_class,weight,tilt\n"
        "us_equity,0.45,-0.08\nintl_equity,0.15,0.08\nbonds,0.3,0\nreal_estate,0.08,0\ncash,0.02,0\n"
    )
    with pytest.raises(ValidationError) as info:
        rebalance(*load_case(case))  # policy default max_tilt = 0.05
    assert_problem(info.value, "targets.csv", 2, "tilt", "exceeds max_tilt 0.05")
    assert_problem(info.value, "targets.csv", 3, "tilt", "exceeds max_tilt 0.05")


# ---------------------------------------------------------------------------------------------
# Headers


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("securities.csv", "esg_score", "esg_scor"),
        ("accounts.csv", "min_cash", "min_csh"),
        ("holdings.csv", "lot_id", "lot id"),
        ("targets.csv", "max_tilt", "max_tilts"),
        ("securities.csv", "half_spread", "Half_Spread"),  # column names are case-sensitive
    ],
)
def test_unknown_column_is_reported_on_the_header(case, file, old, new):
    rename_column(case, file, old, new)
    err = load_error(case)
    assert err.problems == [Problem(file, 1, new, "unknown column")]


def test_renamed_required_column_is_unknown_and_missing(case):
    rename_column(case, "securities.csv", "price", "prcie")
    err = load_error(case)
    assert_problem(err, "securities.csv", 1, "prcie", "unknown column")
    assert_problem(err, "securities.csv", 1, "price", "required column is missing")


# ---------------------------------------------------------------------------------------------
# Files


@pytest.mark.parametrize("file", ["securities.csv", "accounts.csv", "holdings.csv", "targets.csv"])
def test_missing_required_file(case, file):
    (case / file).unlink()
    err = load_error(case)
    assert err.problems == [Problem(file, None, None, "file is missing")]


def test_missing_risk_model(case):
    (case / "covariance.csv").unlink()
    assert_problem(load_error(case), "covariance.csv", None, None, "no risk model")


def test_empty_csv_file(case):
    (case / "accounts.csv").write_text("")
    assert_problem(load_error(case), "accounts.csv", None, None, "cannot be read as CSV")


def test_missing_case_directory(tmp_path):
    err = load_error(tmp_path / "nowhere")
    assert err.problems == [Problem(str(tmp_path / "nowhere"), None, None, "case directory not found")]


# ---------------------------------------------------------------------------------------------
# Covariance


def write_covariance(case: Path, matrix: np.ndarray, ids: list[str]) -> None:
    df = pd.DataFrame(matrix, index=ids, columns=ids).reset_index(names="asset_class")
    df.to_csv(case / "covariance.csv", index=False)


CLASSES = ["us_equity", "intl_equity", "bonds", "real_estate"]


def test_covariance_not_symmetric(case):
    set_cell(case, "covariance.csv", 2, "intl_equity", "0.03")  # its mirror stays 0.02304
    err = load_error(case)
    assert err.problems == [Problem("covariance.csv", None, None, "matrix is not symmetric")]


def test_covariance_not_positive_semidefinite(case):
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = 1.5  # a "correlation" above 1: eigenvalue 1 - 1.5 = -0.5
    write_covariance(case, corr, CLASSES)
    p = assert_problem(load_error(case), "covariance.csv", None, None, "not positive semidefinite")
    assert "-0.5" in p.message


def test_covariance_missing_asset_class(case):
    cov = pd.read_csv(case_path("example") / "covariance.csv", index_col=0)
    kept = CLASSES[:3]
    write_covariance(case, cov.loc[kept, kept].to_numpy(), kept)
    err = load_error(case)
    assert err.problems == [
        Problem("covariance.csv", None, "real_estate", "asset class 'real_estate' has no row")
    ]


def test_covariance_missing_only_a_row(case):
    path = case / "covariance.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # drop real_estate row
    assert_problem(load_error(case), "covariance.csv", 1, None, "must list the same ids")


def test_covariance_non_numeric_cell(case):
    set_cell(case, "covariance.csv", 4, "bonds", "x")
    err = load_error(case)
    assert_problem(err, "covariance.csv", 4, "bonds", "not a finite number: 'x'")


# ---------------------------------------------------------------------------------------------
# policy.toml (no line numbers: row is None, field is "section.key")

POLICY_EDITS = [
    pytest.param('rule = "5/25"', 'rules = "5/25"', "bands.rules", "unknown key", id="unknown-key"),
    pytest.param("[limits]", "[limit]", "limit", "unknown section", id="unknown-section"),
    pytest.param("risk_weight = 100.0", 'risk_weight = "high"', "objective.risk_weight",
                 "expected a number, got 'high'", id="string-for-number"),
    pytest.param('rule = "5/25"', "rule = 5", "bands.rule", "expected a string, got 5",
                 id="number-for-string"),
    pytest.param("as_of = 2026-11-20", 'as_of = "20/11/2026"', "tax.as_of", "20/11/2026",
                 id="bad-date"),
    pytest.param('rule = "5/25"', 'rule = "weird"', "bands.rule", "'weird' is not one of",
                 id="bad-choice"),
    pytest.param('mode = "always"', 'mode = "sometimes"', "trigger.mode", "'sometimes' is not one of",
                 id="bad-trigger-mode"),
    pytest.param("turnover = 0.25", "turnover = -0.1", "limits.turnover", "must be >= 0",
                 id="out-of-range"),
    pytest.param("[limits]", '[trades]\nspread = "evenly"\n\n[limits]', "trades.spread",
                 "'evenly' is not one of one_per_class, pro_rata", id="bad-spread"),
    pytest.param('rule = "5/25"', "rule = 5/25", None, "not valid TOML", id="invalid-toml"),
]


@pytest.mark.parametrize(("old", "new", "field", "message"), POLICY_EDITS)
def test_bad_policy(case, old, new, field, message):
    edit_text(case, "policy.toml", old, new)
    err = load_error(case)
    assert len(err.problems) == 1
    # A syntax error names its line; key and value problems name the key.
    line = None
    if field is None:
        line = 1 + (case / "policy.toml").read_text().splitlines().index(new)
    assert_problem(err, "policy.toml", line, field, message)


def test_policy_reports_key_and_choice_problems_together(case):
    edit_text(case, "policy.toml", 'rule = "5/25"', 'rules = "5/25"')
    edit_text(case, "policy.toml", 'mode = "always"', 'mode = "sometimes"')
    err = load_error(case)
    assert_problem(err, "policy.toml", None, "bands.rules", "unknown key")
    assert_problem(err, "policy.toml", None, "trigger.mode", "'sometimes' is not one of")


# ---------------------------------------------------------------------------------------------
# Problems that need household and policy together (raised by rebalance via prepare)


def test_lot_acquired_after_as_of(case):
    set_cell(case, "holdings.csv", 4, "acquired", "2026-12-01")  # as_of is 2026-11-20
    household, policy = load_case(case)  # each file is fine on its own
    with pytest.raises(ValidationError) as info:
        rebalance(household, policy)
    assert info.value.problems == [
        Problem("holdings.csv", 4, "acquired", "lot acquired 2026-12-01 after the as-of date 2026-11-20")
    ]


# ---------------------------------------------------------------------------------------------
# Several problems: all reported in one ValidationError


def test_problems_in_several_files_are_reported_together(case):
    set_cell(case, "securities.csv", 3, "price", "-100")  # ESGV
    set_cell(case, "holdings.csv", 15, "security_id", "VXUX")  # ira
    set_cell(case, "targets.csv", 4, "weight", "0.35")  # bonds: weights sum to 1.05
    edit_text(case, "policy.toml", 'rule = "5/25"', 'rule = "weird"')
    err = load_error(case)
    assert {(p.file, p.row, p.field) for p in err.problems} == {
        ("securities.csv", 3, "price"),
        ("holdings.csv", 15, "security_id"),
        ("targets.csv", None, "weight"),
        ("policy.toml", None, "bands.rule"),
    }
    assert len(err.problems) == 4
    text = str(err)
    assert text.startswith("4 problem(s) in the input:")
    assert "securities.csv line 3 [price]: must be > 0, got -100" in text
    assert "holdings.csv line 15 [security_id]: unknown security 'VXUX'" in text


def test_line_numbers_count_blank_lines(case):
    path = case / "securities.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",100,", ",-100,")  # ESGV, line 3
    lines.insert(2, "")  # now ESGV is on line 4
    path.write_text("\n".join(lines) + "\n")
    assert_problem(load_error(case), "securities.csv", 4, "price", "must be > 0")


# ---------------------------------------------------------------------------------------------
# Library use: Household.from_frames with DataFrames (typed values, no files)


def frames(**changes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A small valid household as typed frames; keyword arguments replace one frame."""
    out = {
        "securities": pd.DataFrame(
            {"security_id": ["AAA", "BBB"], "asset_class": ["stocks", "bonds"], "price": [100.0, 50.0]}
        ),
        "accounts": pd.DataFrame(
            {"account_id": ["brokerage", "ira"], "type": ["taxable", "tax_deferred"],
             "cash": [1000.0, 0.0]}
        ),
        "holdings": pd.DataFrame(
            {"account_id": ["brokerage", "ira"], "security_id": ["AAA", "BBB"],
             "quantity": [10.0, 20.0], "cost_basis": [80.0, np.nan],
             "acquired": [dt.date(2020, 1, 2), None]}
        ),
        "targets": pd.DataFrame({"asset_class": ["stocks", "bonds"], "weight": [0.6, 0.4]}),
        "covariance": pd.DataFrame(
            {"asset_class": ["stocks", "bonds"], "stocks": [0.04, 0.001], "bonds": [0.001, 0.0025]}
        ),
    }
    out.update(changes)
    return out


def test_from_frames_accepts_typed_frames():
    household = Household.from_frames(**frames())
    assert household.value == 1000 + 10 * 100 + 20 * 50
    assert household.holdings["acquired"].tolist() == [dt.date(2020, 1, 2), None]


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (-5.0, "must be > 0, got -5"),
        (np.nan, "missing value"),
        (np.inf, "not a finite number: inf"),
    ],
)
def test_from_frames_reports_bad_securities_frame(price, message):
    sec = frames()["securities"].assign(price=[100.0, price])
    with pytest.raises(ValidationError) as info:
        Household.from_frames(**frames(securities=sec))
    assert info.value.problems == [Problem("securities.csv", 3, "price", message)]


def test_from_frames_reports_nat_acquired_date():
    hol = frames()["holdings"]
    hol["acquired"] = pd.to_datetime(pd.Series([pd.NaT, pd.NaT]))
    with pytest.raises(ValidationError) as info:
        Household.from_frames(**frames(holdings=hol))
    assert_problem(info.value, "holdings.csv", 2, "acquired", "needs an acquired date")


# ---------------------------------------------------------------------------------------------
# The command line: exit code 2, problems on stderr, nothing written


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        pytest.param(
            lambda case: set_cell(case, "securities.csv", 3, "price", "abc"),
            "securities.csv line 3 [price]: not a number: 'abc'",
            id="load-stage",
        ),
        pytest.param(
            lambda case: set_cell(case, "holdings.csv", 4, "acquired", "2026-12-01"),
            "holdings.csv line 4 [acquired]: lot acquired 2026-12-01 after the as-of date",
            id="prepare-stage",
        ),
    ],
)
def test_cli_bad_case_exits_2_and_writes_nothing(case, tmp_path, capsys, corrupt, expected):
    corrupt(case)
    out = tmp_path / "out"
    assert main(["run", str(case), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "ValidationError" in captured.err
    assert expected in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_cli_prints_every_problem(case, tmp_path, capsys):
    set_cell(case, "accounts.csv", 3, "type", "ira")
    set_cell(case, "holdings.csv", 14, "security_id", "VTIX")
    out = tmp_path / "out"
    assert main(["run", str(case), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "accounts.csv line 3 [type]: unknown account type 'ira'" in err
    assert "holdings.csv line 14 [security_id]: unknown security 'VTIX'" in err
    assert not out.exists()


def test_held_asset_class_without_target_row(case):
    targets = pd.read_csv(case / "targets.csv")
    targets = targets[targets["asset_class"] != "intl_equity"]
    targets.loc[targets["asset_class"] == "us_equity", "weight"] += 0.15
    targets.loc[targets["asset_class"] == "us_equity", "tilt"] = 0.0
    targets.loc[targets["asset_class"] == "cash", "tilt"] = 0.0
    targets.to_csv(case / "targets.csv", index=False)
    err = load_error(case)
    assert_problem(err, "targets.csv", None, "asset_class", "'intl_equity' is held but has no row")


def test_model_portfolio_band_edges_are_rejected(tmp_path):
    case = tmp_path / "model"
    shutil.copytree(case_path("seed_portfolio"), case)
    (case / "targets.csv").write_text(
        "security_id,weight,lower,upper\nVTI,0.5,0.45,0.55\nVXUS,0.1,,\nBND,0.3,,\nVNQ,0.1,,\n")
    err = load_error(case)
    assert_problem(err, "targets.csv", 2, "lower", "band edges apply to asset_class targets")
    assert_problem(err, "targets.csv", 2, "upper", "band edges apply to asset_class targets")


def test_policy_replace_validates_like_the_file():
    policy = Policy()
    with pytest.raises(ValidationError) as info:
        policy.replace(objective={"tax_wieght": 2.0}, limits={"turnover": "0.1"})
    fields = {p.field for p in info.value.problems}
    assert fields == {"objective.tax_wieght", "limits.turnover"}


def test_misspelled_case_file_is_an_error(case):
    (case / "transaction.csv").write_text("account_id,security_id,date,side,quantity,price\n")
    err = load_error(case)
    assert_problem(err, "transaction.csv", None, None, "did you mean transactions.csv?")


# ---------------------------------------------------------------------------------------------
# The reader: field counts, encodings, things that are not files


def test_a_line_with_more_fields_than_the_header_is_named(case):
    text = (case / "accounts.csv").read_text().splitlines()
    text[2] += ",EXTRA"  # line 3 gets one field too many
    (case / "accounts.csv").write_text("\n".join(text) + "\n")
    err = load_error(case)
    assert_problem(err, "accounts.csv", 3, None, "more than the header's")


def test_a_line_with_fewer_fields_than_the_header_is_named_not_padded(case):
    # A withdrawal in the last column that a short line would silently drop.
    lines = (case / "accounts.csv").read_text().splitlines()
    lines.append("extra_acct,taxable")  # line 5: two fields
    (case / "accounts.csv").write_text("\n".join(lines) + "\n")
    err = load_error(case)
    assert_problem(err, "accounts.csv", 5, None, "fewer than the header's")


def test_a_comment_line_before_the_header_is_named(case):
    path = case / "securities.csv"
    path.write_text("# exported from the desk\n" + path.read_text())
    err = load_error(case)
    assert any(p.file == "securities.csv" and p.row == 3 and "more than the header's" in p.message
               for p in err.problems)


def test_other_problems_are_still_listed_beside_a_bad_line(case):
    lines = (case / "accounts.csv").read_text().splitlines()
    lines[1] += ",EXTRA"
    (case / "accounts.csv").write_text("\n".join(lines) + "\n")
    set_cell(case, "securities.csv", 2, "price", "-5")
    err = load_error(case)
    assert_problem(err, "accounts.csv", 2, None, "more than the header's")
    assert_problem(err, "securities.csv", 2, "price", "must be > 0")


def test_a_csv_with_a_utf8_byte_order_mark_reads(case):
    path = case / "securities.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    household, _ = load_case(case)
    assert "security_id" in household.securities.columns


def test_a_csv_in_latin1_names_the_line(case):
    path = case / "accounts.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"ira", b"ir\xe9", 1)
    path.write_bytes(b"\n".join(lines))
    err = load_error(case)
    assert_problem(err, "accounts.csv", 3, None, "not UTF-8")


def test_a_csv_in_utf16_is_named(case):
    path = case / "accounts.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    assert_problem(load_error(case), "accounts.csv", None, None, "UTF-16")


def test_a_case_file_that_is_a_directory_is_named(case):
    (case / "transactions.csv").mkdir()
    assert_problem(load_error(case), "transactions.csv", None, None, "is a directory")


def test_a_header_with_a_repeated_column_is_named(case):
    path = case / "accounts.csv"
    lines = path.read_text().splitlines()
    lines[0] += ",cash"
    lines[1:] = [line + ",0" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    assert_problem(load_error(case), "accounts.csv", 1, "cash", "more than once")


# ---------------------------------------------------------------------------------------------
# policy.toml: encodings, non-finite and out-of-range numbers


def test_policy_with_a_utf8_byte_order_mark_reads(case):
    path = case / "policy.toml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    _, policy = load_case(case)
    assert policy.esg.min_score == 5.0


def test_policy_in_latin1_names_the_line(case):
    path = case / "policy.toml"
    path.write_bytes(path.read_bytes().replace(b"# The flagship", b"# The fl\xe4gship", 1))
    assert_problem(load_error(case), "policy.toml", 1, None, "not UTF-8")


def test_policy_in_utf16_is_named(case):
    path = case / "policy.toml"
    path.write_bytes(path.read_text().encode("utf-16"))
    assert_problem(load_error(case), "policy.toml", None, None, "UTF-16")


def test_policy_syntax_error_names_its_line(case):
    edit_text(case, "policy.toml", "turnover = 0.25", "turnover = ")
    p = find_problem(load_error(case), "policy.toml", None, "not valid TOML")
    assert p.row == 1 + (case / "policy.toml").read_text().splitlines().index("turnover = ")


@pytest.mark.parametrize("section,key,old,new", [
    ("tactical", "max_tilt", None, "nan"),
    ("tax", "gain_budget", None, "nan"),
    ("esg", "min_score", "min_score = 5.0", "min_score = nan"),
    ("objective", "risk_weight", "risk_weight = 100.0", "risk_weight = inf"),
    ("objective", "cost_weight", "cost_weight = 1.0", "cost_weight = 1e300"),
    ("limits", "turnover", "turnover = 0.25", "turnover = -inf"),
])
def test_policy_numbers_must_be_finite(case, section, key, old, new):
    if old is None:
        path = case / "policy.toml"
        path.write_text(path.read_text() + f"\n[{section}]\n{key} = {new}\n" if section not in
                        path.read_text() else path.read_text().replace(f"[{section}]", f"[{section}]\n{key} = {new}"))
    else:
        edit_text(case, "policy.toml", old, new)
    assert_problem(load_error(case), "policy.toml", None, f"{section}.{key}", "finite number")


def test_negative_wash_window_is_an_error_and_zero_turns_the_rule_off(case):
    edit_text(case, "policy.toml", "as_of = 2026-11-20", "as_of = 2026-11-20\nwash_window_days = -30")
    assert_problem(load_error(case), "policy.toml", None, "tax.wash_window_days", "in [0, 3660]")
    edit_text(case, "policy.toml", "wash_window_days = -30", "wash_window_days = 0")
    _, policy = load_case(case)
    assert policy.tax.wash_window_days == 0


def test_hedge_ratio_must_be_finite():
    with pytest.raises(ValidationError) as info:
        Policy.from_dict({"overlay": {"hedge_ratio": {"EUR": float("nan")}}})
    assert any(p.field == "overlay.hedge_ratio" and "finite" in p.message for p in info.value.problems)


# ---------------------------------------------------------------------------------------------
# Numbers in the tables: finite and of a sane size


@pytest.mark.parametrize("file,line,column,value", [
    ("securities.csv", 2, "price", "1e300"),
    ("holdings.csv", 2, "quantity", "1e-300"),
    ("holdings.csv", 3, "cost_basis", "1e300"),
    ("accounts.csv", 2, "cash", "1e300"),
    ("accounts.csv", 3, "cash_flow", "-1e300"),
])
def test_numbers_beyond_the_documented_limits_are_named(case, file, line, column, value):
    set_cell(case, file, line, column, value)
    assert_problem(load_error(case), file, line, column, "out of range")


@pytest.mark.parametrize("rewrite", [
    pytest.param(lambda text: "\n".join(line.split(",")[0] for line in text.splitlines()) + "\n", id="no-variance"),
    pytest.param(lambda text: text.replace(",", ";"), id="semicolons"),
])
def test_specific_variance_without_its_variance_column_is_named(tmp_path, rewrite):
    case = tmp_path / "overlay"
    shutil.copytree(case_path("overlay"), case)
    path = case / "specific_variance.csv"
    path.write_text(rewrite(path.read_text()))
    set_cell(case, "securities.csv", 2, "price", "-1")  # another problem, still listed
    err = load_error(case)
    assert_problem(err, "specific_variance.csv", 1, None, "needs two comma-separated columns")
    assert_problem(err, "securities.csv", 2, "price", "must be > 0")


def test_covariance_with_a_header_only_is_named(case):
    path = case / "covariance.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    assert find_problem(load_error(case), "covariance.csv", None).file == "covariance.csv"


@pytest.mark.parametrize("delta,ok", [(1e-6, True), (-1e-6, True), (2e-6, False), (-2e-6, False)])
def test_weight_sum_tolerance_is_symmetric(case, delta, ok):
    """Weights off by the same amount above or below 1 get the same verdict."""
    targets = pd.read_csv(case / "targets.csv", dtype=str, keep_default_na=False)
    weight = float(targets.loc[targets["asset_class"] == "bonds", "weight"].iloc[0])
    targets.loc[targets["asset_class"] == "bonds", "weight"] = repr(weight + delta)
    targets.to_csv(case / "targets.csv", index=False)
    if ok:
        load_case(case)
    else:
        assert_problem(load_error(case), "targets.csv", None, "weight", "weights sum to")


@pytest.mark.parametrize("value", ["20150706", "2015-W28-1", "2015-187", " 2015-7-6"])
def test_dates_are_only_accepted_as_yyyy_mm_dd(case, value):
    set_cell(case, "holdings.csv", 2, "acquired", value)
    assert_problem(load_error(case), "holdings.csv", 2, "acquired", "not a date written YYYY-MM-DD")


def test_policy_dates_are_only_accepted_as_yyyy_mm_dd(case):
    edit_text(case, "policy.toml", "as_of = 2026-11-20", 'as_of = "2026-W47-5"')
    assert_problem(load_error(case), "policy.toml", None, "tax.as_of", "YYYY-MM-DD")


def test_a_covariance_with_only_its_id_column_is_named(case):
    (case / "covariance.csv").write_text("asset_class\n")
    assert_problem(load_error(case), "covariance.csv", None, None, "empty")


def test_factor_files_with_headers_only_are_named(case):
    (case / "covariance.csv").unlink()
    (case / "factor_loadings.csv").write_text("security_id\n")
    (case / "factor_covariance.csv").write_text("factor\n")
    err = load_error(case)
    assert any(p.file == "factor_covariance.csv" and "empty" in p.message for p in err.problems)


def test_tolerance_rebalancing_without_bands_is_rejected(case):
    edit_text(case, "policy.toml", 'rule = "5/25"', 'rule = "none"')
    edit_text(case, "policy.toml", 'rebalance_to = "target"', 'rebalance_to = "tolerance"')
    assert_problem(load_error(case), "policy.toml", None, "trigger.rebalance_to", "needs a band rule")


def test_an_all_cash_household_without_securities_rebalances(tmp_path):
    """No securities at all (an all-cash client): a result, not a ValueError from an empty max."""
    case = tmp_path / "cash_only"
    case.mkdir()
    (case / "securities.csv").write_text("security_id,asset_class,price\n")
    (case / "holdings.csv").write_text("account_id,security_id,quantity\n")
    (case / "accounts.csv").write_text("account_id,type,cash\nira,tax_deferred,1000\n")
    (case / "targets.csv").write_text("asset_class,weight\ncash,1\n")
    (case / "covariance.csv").write_text("asset_class,cash\ncash,0.0001\n")
    result = rebalance(*load_case(case))
    assert result.summary["checks"]["passed"] and len(result.trades) == 0


def test_a_tilt_expiring_while_its_offsetting_leg_lives_is_named(tmp_path):
    """Only the stocks leg of a +0.03/-0.03 tilt expired: the live tilts no longer net to zero and
    the targets would sum to 0.97 (it ran, leaving 3% in cash unasked)."""
    case = tmp_path / "seed"
    shutil.copytree(case_path("seed_portfolio"), case)
    (case / "targets.csv").write_text("asset_class,weight,tilt,tilt_expires\nstocks,0.6,0.03,2026-01-01\n"
                                      "bonds,0.3,-0.03,\nreal_estate,0.1,0,\n")
    household, policy = load_case(case)
    with pytest.raises(ValidationError) as info:
        rebalance(household, policy)
    assert_problem(info.value, "targets.csv", 2, "tilt_expires", "the tilts it offset are still live")


def test_a_tilt_expiring_on_every_leg_reverts_quietly(tmp_path):
    case = tmp_path / "seed"
    shutil.copytree(case_path("seed_portfolio"), case)
    (case / "targets.csv").write_text("asset_class,weight,tilt,tilt_expires\nstocks,0.6,0.03,2026-01-01\n"
                                      "bonds,0.3,-0.03,2026-01-01\nreal_estate,0.1,0,\n")
    result = rebalance(*load_case(case))
    assert any("expired" in n for n in result.summary["notes"])
    assert result.asset_classes.loc["stocks", "target"] == pytest.approx(0.6)


def test_a_contract_currency_without_a_risk_row_is_named(tmp_path):
    case = tmp_path / "overlay"
    shutil.copytree(case_path("overlay"), case)
    text = (case / "futures.csv").read_text()
    assert ",EUR" in text
    (case / "futures.csv").write_text(text.replace(",EUR", ",JPY"))
    err = load_error(case)
    assert any(p.file == "futures.csv" and p.field == "currency" and "JPY" in p.message for p in err.problems)


@pytest.mark.parametrize("key", ["JPY", "us_equity"])
def test_a_hedge_ratio_for_no_held_currency_is_named(tmp_path, key):
    case = tmp_path / "overlay"
    shutil.copytree(case_path("overlay"), case)
    household, policy = load_case(case)
    with pytest.raises(ValidationError) as info:
        rebalance(household, policy.replace(overlay={"hedge_ratio": {key: 0.5}}))
    assert_problem(info.value, "policy.toml", None, f"overlay.hedge_ratio.{key}", "is not a currency")


def test_a_trade_dated_after_the_as_of_date_is_named(tmp_path):
    case = tmp_path / "tax_aware"
    shutil.copytree(case_path("tax_aware"), case)
    path = case / "transactions.csv"
    lines = path.read_text().splitlines() if path.exists() else ["account_id,security_id,date,side,quantity,price"]
    header = lines[0].split(",")
    row = dict.fromkeys(header, "")
    row |= {"account_id": "brokerage", "security_id": "VXUS", "date": "2030-12-01", "side": "buy",
            "quantity": "10", "price": "60"}
    path.write_text("\n".join([*lines, ",".join(row[c] for c in header)]) + "\n")
    household, policy = load_case(case)
    with pytest.raises(ValidationError) as info:
        rebalance(household, policy)
    assert_problem(info.value, "transactions.csv", len(lines) + 1, "date", "after the as-of date")


def test_a_held_contract_past_its_expiry_is_named(tmp_path):
    case = tmp_path / "overlay"
    shutil.copytree(case_path("overlay"), case)
    fut = read_csv(case / "futures.csv")
    line = next(i for i in fut.index if float(fut.loc[i, "position"] or 0) != 0)
    fut.loc[line, "expiry"] = "2020-01-01"
    fut.to_csv(case / "futures.csv", index=False)
    household, policy = load_case(case)
    with pytest.raises(ValidationError) as info:
        rebalance(household, policy)
    assert_problem(info.value, "futures.csv", line, "expiry", "before the as-of date")


def test_allowed_account_types_listing_none_is_named(case):
    set_cell(case, "securities.csv", 3, "allowed_account_types", ";")
    assert_problem(load_error(case), "securities.csv", 3, "allowed_account_types", "lists no account type")


def test_wash_window_must_be_whole_days(case):
    edit_text(case, "policy.toml", "as_of = 2026-11-20", "as_of = 2026-11-20\nwash_window_days = 30.5")
    assert_problem(load_error(case), "policy.toml", None, "tax.wash_window_days", "whole number of days")


def test_a_contract_too_small_to_count_in_whole_units_is_named(tmp_path):
    """A multiplier of 1e-12 (a unit slip) made a contract worth 6e-9 of currency: the whole-contract
    search ended in the solver's iteration limit. The row is named instead."""
    case = tmp_path / "overlay"
    shutil.copytree(case_path("overlay"), case)
    fut = read_csv(case / "futures.csv")
    fut.loc[fut.index[0], "multiplier"] = "1e-12"
    fut.to_csv(case / "futures.csv", index=False)
    household, policy = load_case(case)
    with pytest.raises(ValidationError) as info:
        rebalance(household, policy)
    assert_problem(info.value, "futures.csv", int(fut.index[0]), "multiplier", "below 1e-09 x household value")


def test_run_on_a_case_that_does_not_exist_is_bad_input_not_an_output_failure(capsys):
    """Exit 2 naming the argument, not exit 3 "cannot write the results" (a FileNotFoundError
    is an OSError, which run once took for its --out failing)."""
    assert main(["run", "no_such_case_dir"]) == 2
    err = capsys.readouterr().err
    assert "'no_such_case_dir' is neither a case directory nor a bundled case" in err
    assert "cannot write" not in err
