"""factor_targets.csv: reading, the error contract (file, line, field for every problem), and the
exposures and references the optimizer is given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factor_builders import TY, TY_DURATION, bond_household, duration_band, policy

from cvxrebalance import Household, Policy, ValidationError, load_case, rebalance
from cvxrebalance.optimizer.domain.factor_targets import factor_targets
from cvxrebalance.optimizer.domain.prepare import prepare

FILE = "factor_targets.csv"


def problems(rows: list[dict] | pd.DataFrame, **kwargs) -> set[tuple]:
    with pytest.raises(ValidationError) as err:
        bond_household(rows, **kwargs)
    return {(p.file, p.row, p.field) for p in err.value.problems}


def test_every_problem_is_named_by_file_line_and_field():
    # Lines: 2 unknown factor, 3 lower above target, 4 upper below target, 5 not a number,
    # 6 a repeat of line 3's factor, 7 band with both edges, 8 negative band, 9 no target.
    rows = pd.DataFrame({
        "factor": ["durration", "duration", "credit", "duration", "duration", "credit", "credit", "credit"],
        "target": ["5", "5", "0.2", "six", "5", "0.2", "0.2", ""],
        "lower": ["", "5.5", "", "", "", "0.1", "", ""],
        "upper": ["", "", "0.1", "", "", "0.3", "", ""],
        "band": ["", "", "", "", "", "0.05", "-1", ""],
    })
    found = problems(rows, extra_factor={"LONG": 1.0})
    assert found >= {(FILE, 2, "factor"), (FILE, 3, "lower"), (FILE, 4, "upper"), (FILE, 5, "target"),
                     (FILE, 6, "factor"), (FILE, 7, "band"), (FILE, 8, "band"), (FILE, 9, "target")}


def test_messages_say_what_is_wrong():
    with pytest.raises(ValidationError) as err:
        bond_household([{"factor": "durration", "target": 5.5}, {"factor": "duration", "target": 5, "lower": 5.5}])
    text = str(err.value)
    assert "unknown factor 'durration' (not a column of factor_loadings.csv); did you mean 'duration'?" in text
    assert "lower 5.5 is above the target 5" in text


def test_factor_targets_need_a_factor_model():
    with pytest.raises(ValidationError) as err:
        Household.from_frames(pd.DataFrame([{"security_id": "B", "asset_class": "bonds", "price": 100}]),
                              pd.DataFrame([{"account_id": "a", "type": "tax_exempt", "cash": 100}]),
                              pd.DataFrame([{"account_id": "a", "security_id": "B", "quantity": 10}]),
                              pd.DataFrame([{"asset_class": "bonds", "weight": 1.0}]),
                              covariance=pd.DataFrame({"asset_class": ["bonds"], "bonds": [0.01]}),
                              factor_targets=pd.DataFrame(duration_band()))
    (p,) = err.value.problems
    assert (p.file, p.row, p.field) == (FILE, None, None)
    assert "factor risk model" in p.message


def test_an_unknown_column_is_named_on_the_header():
    assert (FILE, 1, "weight") in problems([{"factor": "duration", "target": 5.5, "weight": 1}])


def test_band_fills_the_blank_edges():
    h = bond_household([{"factor": "duration", "target": 5.5, "band": 0.5},
                        {"factor": "credit", "target": 0.2, "lower": 0.0, "band": 0.05}], extra_factor={"LONG": 1.0})
    ft = h.factor_targets.set_index("factor")
    assert ft.loc["duration", ["lower", "upper"]].tolist() == [5.0, 6.0]
    assert ft.loc["credit", ["lower", "upper"]].tolist() == pytest.approx([0.0, 0.25])


def test_no_file_means_no_factor_targets():
    h = bond_household(None)
    assert h.factor_targets.empty and list(h.factor_targets.columns) == ["factor", "target", "lower", "upper"]
    assert factor_targets(prepare(h, policy())).T == 0


def test_a_target_alone_has_no_band():
    ft = factor_targets(prepare(bond_household(duration_band(5.5, None, None)), policy()))
    assert ft.lower.tolist() == [-np.inf] and ft.upper.tolist() == [np.inf] and not ft.banded.any()


def test_exposure_before_counts_securities_cash_and_the_overlay():
    # 3,000,000 of bonds at duration 4, 1,000,000 cash, 5 TY contracts held (notional 550,000):
    # (3,000,000 x 4 + 550,000 x 10.16) / 4,000,000.
    h = bond_household(duration_band(), account_type="taxable", cash=1_000_000,
                       futures=[{**TY, "position": 5}])
    ft = factor_targets(prepare(h, policy()))
    assert ft.before[0] == pytest.approx((3_000_000 * 4 + 550_000 * TY_DURATION) / 4_000_000)
    assert ft.scale[0] == pytest.approx(TY_DURATION)  # the largest loading: the future's
    assert ft.variance.tolist() == [1e-4]


def test_the_factor_weight_is_a_policy_key_with_a_range():
    assert Policy().objective.factor_weight == 100.0
    with pytest.raises(ValidationError) as err:
        Policy.from_dict({"objective": {"factor_weight": -1.0}})
    assert [(p.file, p.field) for p in err.value.problems] == [("policy.toml", "objective.factor_weight")]


def write_case(root: Path, factor_targets: str) -> Path:
    root.mkdir()
    files = {
        "securities.csv": "security_id,asset_class,price\nSHORT,bonds,100\nLONG,bonds,100\n",
        "accounts.csv": "account_id,type,cash\nacct,tax_exempt,0\n",
        "holdings.csv": "account_id,security_id,quantity\nacct,SHORT,20000\nacct,LONG,10000\n",
        "targets.csv": "asset_class,weight\nbonds,1.0\n",
        "factor_loadings.csv": "security_id,duration\nSHORT,2\nLONG,8\n",
        "factor_covariance.csv": "factor,duration\nduration,0.0001\n",
        "policy.toml": '[tax]\nas_of = 2026-11-20\n[bands]\nrule = "none"\n',
        "factor_targets.csv": factor_targets,
    }
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_case_reads_factor_targets_csv(tmp_path):
    case = write_case(tmp_path / "case", "factor,target,lower,upper\nduration,5.5,5,6\n")
    household, p = load_case(case)
    assert household.factor_targets.to_dict("records") == [
        {"factor": "duration", "target": 5.5, "lower": 5.0, "upper": 6.0}]
    assert rebalance(household, p).factor_drift.loc["duration", "after"] == pytest.approx(5.0)


def test_a_case_names_the_file_line_of_a_bad_row(tmp_path):
    # A blank line (line 3) is skipped but counted.
    case = write_case(tmp_path / "case", "factor,target,lower,upper\nduration,5.5,5,6\n\nduration,5,,x\n")
    with pytest.raises(ValidationError) as err:
        load_case(case)
    found = {(p.file, p.row, p.field) for p in err.value.problems}
    assert found == {(FILE, 4, "upper"), (FILE, 4, "factor")}


def test_a_misspelled_file_name_is_named(tmp_path):
    case = write_case(tmp_path / "case", "factor,target\nduration,5.5\n")
    (case / "factor_target.csv").write_text("factor,target\nduration,5.5\n")
    with pytest.raises(ValidationError) as err:
        load_case(case)
    (p,) = err.value.problems
    assert p.file == "factor_target.csv" and "did you mean factor_targets.csv?" in p.message


def test_households_built_for_a_batch_keep_the_shared_factor_targets():
    h = bond_household(duration_band())
    other = h.with_accounts(h.accounts, h.holdings, name="other")
    pd.testing.assert_frame_equal(other.factor_targets, h.factor_targets)


@pytest.mark.parametrize("row", [{"target": 1e14, "lower": 4, "upper": 1e15}, {"target": 5, "lower": -1e9},
                                 {"target": 9000}])
def test_a_target_or_edge_beyond_any_reachable_exposure_is_named(row):
    # No fund loads more than 8 on the factor: an exposure of 1e14 per unit of value is a unit
    # error, and the drift term's squares then overflowed the solvers (a SolverError).
    found = problems([{"factor": "duration", **row}])
    assert found == {(FILE, 2, k) for k, v in row.items() if abs(v) > 8000}  # 1000 x the largest loading
