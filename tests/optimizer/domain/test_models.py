"""models.csv and households.csv in a single case: the case names its model, its policy file and
its overrides (optimizer.domain.models)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cvxrebalance import ValidationError, load_case, rebalance
from cvxrebalance.scenarios import case_path

MODELS = """model_id,asset_class,weight
conservative,us_equity,0.30
conservative,intl_equity,0.05
conservative,bonds,0.58
conservative,real_estate,0.05
conservative,cash,0.02
growth,us_equity,0.55
growth,intl_equity,0.25
growth,bonds,0.10
growth,real_estate,0.08
growth,cash,0.02
"""


def modelled(tmp: Path, households: str) -> Path:
    """The example case with its targets.csv replaced by two models and a households.csv row."""
    root = tmp / "case"
    shutil.copytree(case_path("example"), root)
    (root / "targets.csv").unlink()
    (root / "models.csv").write_text(MODELS)
    (root / "households.csv").write_text(households)
    (root / "policies").mkdir()
    (root / "policies" / "tight.toml").write_text((root / "policy.toml").read_text().replace("turnover = 0.25",
                                                                                             "turnover = 0.5"))
    return root


def test_a_case_names_its_model_its_policy_file_and_overrides(tmp_path):
    root = modelled(tmp_path, "model_id,policy,short_term_rate\ngrowth,tight,0.45\n")
    household, policy = load_case(root)
    targets = household.targets.set_index("id")["weight"]
    assert targets["us_equity"] == 0.55 and targets["bonds"] == 0.10
    assert policy.tax.short_term_rate == 0.45 and policy.limits.turnover == 0.5  # the override; tight.toml's
    result = rebalance(household, policy)
    assert result.asset_classes.loc["us_equity", "strategic"] == pytest.approx(0.55)
    assert result.summary["checks"]["passed"]


@pytest.mark.parametrize(("households", "where"), [
    ("model_id\nbalanced\n", ("households.csv", 2, "model_id")),
    ("model_id,policy\ngrowth,nope\n", ("households.csv", 2, "policy")),
    ("model_id,turnover\ngrowth,-1\n", ("households.csv", 2, "turnover")),
    ("model_id\ngrowth\nconservative\n", ("households.csv", 3, "household_id")),
])
def test_a_bad_assignment_names_its_cell(tmp_path, households, where):
    with pytest.raises(ValidationError) as err:
        load_case(modelled(tmp_path, households))
    assert where in {(p.file, p.row, p.field) for p in err.value.problems}


def test_a_bad_model_names_models_csv_and_the_model(tmp_path):
    root = modelled(tmp_path, "model_id\ngrowth\n")
    (root / "models.csv").write_text(MODELS.replace("growth,bonds,0.10", "growth,bonds,0.30"))
    with pytest.raises(ValidationError) as err:
        load_case(root)
    assert any(p.file == "models.csv" and "model 'growth'" in p.message and "sum" in p.message
               for p in err.value.problems)
    (root / "targets.csv").write_text("asset_class,weight\nus_equity,1\n")
    with pytest.raises(ValidationError, match="targets.csv or models.csv, not both"):
        load_case(root)


def test_a_gain_budget_binds_within_a_whole_share_of_it():
    """1,930.12 realized of a 2,000 budget, selling a position whose lots gain up to $120 a
    share: one more share would pass the budget, so it binds. Lots gaining $40 a share would
    have left room for one more: it does not."""
    import pandas as pd

    from cvxrebalance import Policy
    from cvxrebalance.optimizer.domain.models import transition

    row = pd.Series({"model_id": "aggressive", "previous_model_id": "moderate"})
    summary = {"taxes": {"short_term_gain": 0.0, "long_term_gain": 1930.12},
               "asset_classes": {"eq": {"after": 0.55, "target": 0.62}}, "tracking_error": {"after": 0.01}}
    policy = Policy.from_dict({"tax": {"gain_budget": 2000.0}, "bands": {"rule": "5/25"}})

    def lots(per_share):
        return pd.DataFrame({"account_id": ["t", "t"], "security_id": ["EQ", "EQ"], "quantity": [10.0, 6.0],
                             "gain": [10 * per_share, 6 * (per_share - 5)]})

    moving = transition(row, policy, summary, lots=lots(120.0))
    assert moving["budget_binds"] and not moving["complete"]
    assert not transition(row, policy, summary, lots=lots(40.0))["budget_binds"]
