"""restrictions.csv and securities.csv's ``tag`` column: parsed into the household, and every bad
row reported in one ValidationError naming file, line and field.

The case written by ``write_case`` (directory ``jones``):
  securities.csv  2 LMT (equity; tags defense;aerospace), 3 VTI (equity), 4 BND (bonds),
                  5 MUB (muni_bonds)
  accounts.csv    2 tax (taxable), 3 ira (tax_deferred)
  targets.csv     2 equity 0.6, 3 bonds 0.4
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cvxrebalance import ValidationError, load_case
from cvxrebalance.optimizer.domain.restrictions import stand_ins

SECURITIES = """security_id,asset_class,price,tag
LMT,equity,100,defense;aerospace
VTI,equity,200,
BND,bonds,50,
MUB,muni_bonds,100,
"""
ACCOUNTS = "account_id,type,cash\ntax,taxable,0\nira,tax_deferred,1000\n"
HOLDINGS = """account_id,security_id,quantity,lot_id,cost_basis,acquired
tax,LMT,100,l1,80,2020-01-02
tax,VTI,200,v1,150,2020-01-02
ira,BND,800,,,
"""
TARGETS = "asset_class,weight\nequity,0.6\nbonds,0.4\n"
COVARIANCE = "asset_class,equity,bonds,muni_bonds\nequity,0.0225,0,0\nbonds,0,0.0036,0.003\nmuni_bonds,0,0.003,0.0036\n"


def write_case(root: Path, restrictions: str, **files: str) -> Path:
    case = root / "jones"
    case.mkdir(exist_ok=True)
    texts = {"securities.csv": SECURITIES, "accounts.csv": ACCOUNTS, "holdings.csv": HOLDINGS,
             "targets.csv": TARGETS, "covariance.csv": COVARIANCE, "restrictions.csv": restrictions}
    texts.update({name.replace("_", "."): text for name, text in files.items()})
    for name, text in texts.items():
        (case / name).write_text(text)
    return case


def problems(case: Path) -> list[tuple[str, int | None, str | None, str]]:
    with pytest.raises(ValidationError) as info:
        load_case(case)
    return [(p.file, p.row, p.field, p.message) for p in info.value.problems]


def has(found, file: str, row: int | None, field: str | None, contains: str) -> bool:
    return any(f == file and r == row and fd == field and contains in m for f, r, fd, m in found)


def test_a_case_reads_its_restrictions_and_tags(tmp_path):
    case = write_case(tmp_path, "household_id,account_type,tag,asset_class,rule,substitute\n"
                                "jones,,defense,,no_hold,\n"
                                "jones,taxable,,bonds,no_buy,muni_bonds\n")
    household, _ = load_case(case)
    res = household.restrictions
    assert res.index.tolist() == [2, 3]  # file lines
    assert res["rule"].tolist() == ["no_hold", "no_buy"]
    assert res["tag"].tolist() == ["defense", None]
    assert "household_id" not in res.columns
    assert household.securities["tag"].tolist() == [("defense", "aerospace"), (), (), ()]
    assert stand_ins(res) == {"muni_bonds": "bonds"}


def test_household_id_is_optional_in_a_case(tmp_path):
    household, _ = load_case(write_case(tmp_path, "security_id,rule\nLMT,no_buy\n"))
    assert household.restrictions["security_id"].tolist() == ["LMT"]


def test_every_bad_row_is_reported_with_its_line_and_field(tmp_path):
    case = write_case(tmp_path, "household_id,account_id,account_type,security_id,tag,asset_class,rule\n"
                                "smith,,,LMT,,,no_buy\n"          # 2: another household
                                ",brokerage,,LMT,,,no_buy\n"      # 3: unknown account
                                ",,savings,LMT,,,no_buy\n"        # 4: unknown account type
                                ",tax,taxable,LMT,,,no_buy\n"     # 5: both account columns
                                ",,,NOPE,,,no_buy\n"              # 6: unknown security
                                ",,,,defence,,no_buy\n"           # 7: unknown tag
                                ",,,,,munis,no_buy\n"             # 8: unknown class
                                ",,,VTI,,,sell\n"                 # 9: bad rule
                                ",,,VTI,defense,,no_buy\n"        # 10: two targets
                                ",,,,,,no_buy\n"                  # 11: no target
                                ",,,LMT,,,no_hold\n"              # 12: repeats line 2 (all accounts, LMT)
                                ",,,BND,,,\n")                    # 13: no rule
    found = problems(case)
    f = "restrictions.csv"
    assert has(found, f, 2, "household_id", "for household 'smith', not this one ('jones')")
    assert has(found, f, 3, "account_id", "unknown account 'brokerage'")
    assert has(found, f, 4, "account_type", "unknown account type 'savings'")
    assert has(found, f, 5, "account_type", "give account_id or account_type, not both")
    assert has(found, f, 6, "security_id", "unknown security 'NOPE'")
    assert has(found, f, 7, "tag", "unknown tag 'defence': no security carries it (tags: aerospace, defense)")
    assert has(found, f, 8, "asset_class", "unknown asset class 'munis'")
    assert has(found, f, 9, "rule", "'sell' is not one of no_buy, no_hold")
    assert has(found, f, 10, "tag", "give exactly one of security_id, tag or asset_class (this row gives security_id, tag)")
    assert has(found, f, 11, "security_id", "give exactly one of security_id, tag or asset_class")
    assert has(found, f, 12, "security_id", "repeats the restriction on line 2")
    assert has(found, f, 13, "rule", "missing value")
    assert len(found) == 12


def test_bad_substitutes_are_reported(tmp_path):
    targets = "asset_class,weight\nequity,0.5\nbonds,0.4\nmuni_bonds,0.1\n"
    case = write_case(tmp_path, "account_type,security_id,asset_class,rule,substitute\n"
                                "taxable,,bonds,no_buy,muni_bonds\n"   # 2: muni_bonds has a target of its own
                                "taxable,,bonds,no_buy,equity\n"       # 3: repeats 2; bonds already has a substitute
                                "taxable,LMT,,no_buy,muni_bonds\n"     # 4: substitute without asset_class
                                "tax_deferred,,equity,no_buy,gold\n"   # 5: gold is no class
                                "tax_exempt,,equity,no_buy,equity\n",  # 6: itself
                        targets_csv=targets)
    found = problems(case)
    f = "restrictions.csv"
    assert has(found, f, 2, "substitute", "'muni_bonds' has a target of its own (targets.csv line 4)")
    assert has(found, f, 3, "substitute", "'bonds' already has the substitute 'muni_bonds' (line 2)")
    assert has(found, f, 3, "asset_class", "repeats the restriction on line 2")
    assert has(found, f, 4, "substitute", "a substitute stands in for an asset_class")
    assert has(found, f, 5, "substitute", "'gold' is the asset class of no security")
    assert has(found, f, 6, "substitute", "a class cannot stand in for itself")


def test_a_substitute_is_not_replaced_and_stands_in_for_one_class(tmp_path):
    case = write_case(tmp_path, "account_type,asset_class,rule,substitute\n"
                                "taxable,bonds,no_buy,muni_bonds\n"
                                "tax_deferred,equity,no_buy,muni_bonds\n"
                                "taxable,muni_bonds,no_buy,equity\n")
    found = problems(case)
    assert has(found, "restrictions.csv", 3, "substitute", "'muni_bonds' already stands in for 'bonds'")
    assert has(found, "restrictions.csv", 2, "substitute", "'muni_bonds' is itself replaced (line 4)")
    assert has(found, "restrictions.csv", 4, "asset_class", "'muni_bonds' has no row in targets.csv")


def test_a_held_substitute_class_needs_no_target_row(tmp_path):
    held = HOLDINGS + "tax,MUB,50,m1,100,2020-01-02\n"
    with_sub = write_case(tmp_path, "account_type,asset_class,rule,substitute\ntaxable,bonds,no_buy,muni_bonds\n",
                          holdings_csv=held)
    household, _ = load_case(with_sub)
    assert len(household.holdings) == 4
    (with_sub / "restrictions.csv").write_text("security_id,rule\nLMT,no_buy\n")
    assert has(problems(with_sub), "targets.csv", None, "asset_class", "'muni_bonds' is held but has no row")


def test_a_substitute_needs_class_targets(tmp_path):
    model = "security_id,weight\nVTI,0.6\nBND,0.4\n"
    case = write_case(tmp_path, "asset_class,rule,substitute\nbonds,no_buy,muni_bonds\n", targets_csv=model)
    assert has(problems(case), "restrictions.csv", 2, "substitute", "needs asset_class targets")


def test_tags_are_separated_by_semicolons(tmp_path):
    case = write_case(tmp_path, "tag,rule\ndefense,no_buy\n",
                      securities_csv=SECURITIES.replace("defense;aerospace", "defense|aerospace"))
    found = problems(case)
    assert has(found, "securities.csv", 2, "tag", "tag 'defense|aerospace': separate tags with ';'")
    assert has(found, "restrictions.csv", 2, "tag", "unknown tag 'defense'")


def test_restrictions_are_known_to_the_library_path():
    """Household.from_frames takes the same table (lines counted from 2)."""
    from cvxrebalance import Household

    sec = pd.DataFrame([{"security_id": "LMT", "asset_class": "equity", "price": 100, "tag": "defense"}])
    acc = pd.DataFrame([{"account_id": "ira", "type": "tax_deferred", "cash": 0}])
    hol = pd.DataFrame([{"account_id": "ira", "security_id": "LMT", "quantity": 10}])
    tgt = pd.DataFrame([{"asset_class": "equity", "weight": 1.0}])
    cov = pd.DataFrame({"id": ["equity"], "equity": [0.04]})
    with pytest.raises(ValidationError) as info:
        Household.from_frames(sec, acc, hol, tgt, covariance=cov,
                              restrictions=pd.DataFrame([{"tag": "defense", "rule": "no_sell"}]))
    assert [str(p) for p in info.value.problems] == [
        "restrictions.csv line 2 [rule]: 'no_sell' is not one of no_buy, no_hold"]
