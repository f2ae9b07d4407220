"""The drift scan: per household, without solving, what calls for a rebalance, ranked; checked
against the rebalance's own band edges and weights (``prepare``) household by household."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvxrebalance.constraints.bands import banded_before
from cvxrebalance.optimizer.apps.batch import household_and_policy, read_batch
from cvxrebalance.optimizer.apps.bench import write_batch_input
from cvxrebalance.optimizer.apps.scan import scan
from cvxrebalance.optimizer.domain.errors import ValidationError
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.scenarios.synthetic import synthetic_universe


def test_the_breach_is_the_rebalance_s_own_band_distance(tmp_path):
    """Independent of the scan's vectorized arithmetic: each household built as the batch builds
    it and prepared as the rebalance prepares it; the largest distance outside a band (cash
    included) must be the scan's."""
    root = tmp_path / "in"
    write_batch_input(root, synthetic_universe(12, 0, seed=5), 25, 2, 6)
    result = scan(root, min_breach=0.0).set_index("household_id")
    batch = read_batch(root)
    for hid, frames in batch.households.items():
        household, policy, _ = household_and_policy(hid, frames, batch.shared, batch.policy, {})
        d = prepare(household, policy)
        w = np.append(banded_before(d), d.cash0.sum())
        lo, hi = np.append(d.lower, d.cash_lower), np.append(d.upper, d.cash_upper)
        gap = np.maximum(lo - w, w - hi).clip(0)
        assert result.loc[hid, "breach"] == pytest.approx(gap.max(), abs=1e-12)
        assert result.loc[hid, "value"] == pytest.approx(d.V)
        if gap.max() > 0:
            assert result.loc[hid, "breach_class"] == [*d.classes, "cash"][int(gap.argmax())]


def small_book(tmp: Path) -> Path:
    """Seven households on one 60/38/2 target (5/25 bands), each with one thing to see."""
    root = tmp / "in"
    root.mkdir(parents=True)
    (root / "securities.csv").write_text("security_id,asset_class,price\nEQ,equity,100\nBD,bonds,100\n")
    (root / "targets.csv").write_text("asset_class,weight\nequity,0.60\nbonds,0.38\ncash,0.02\n")
    (root / "covariance.csv").write_text("asset_class,equity,bonds\nequity,0.0256,0\nbonds,0,0.0025\n")
    (root / "policy.toml").write_text("[tax]\nas_of = 2026-11-20\n")
    acc = ["household_id,account_id,type,cash,cash_flow,min_cash",
           "calm,a,tax_deferred,2000,,",
           "drifted,a,tax_deferred,1000,,",  # equity 70%: 5 points above its 65% edge (bonds 4 below)
           "short,a,tax_deferred,2000,,5000",  # 3,000 below its minimum cash
           "leaving,a,tax_deferred,12000,-10000,",
           "adding,a,tax_deferred,2000,8000,",
           "losses,t,taxable,2000,,",
           "idle,a,tax_deferred,12000,,"]
    (root / "accounts.csv").write_text("\n".join(acc) + "\n")
    hol = ["household_id,account_id,security_id,quantity,lot_id,cost_basis,acquired",
           "calm,a,EQ,600,,,", "calm,a,BD,380,,,",
           "drifted,a,EQ,700,,,", "drifted,a,BD,290,,,",
           "short,a,EQ,600,,,", "short,a,BD,380,,,",
           "leaving,a,EQ,600,,,", "leaving,a,BD,380,,,",
           "adding,a,EQ,600,,,", "adding,a,BD,380,,,",
           "losses,t,EQ,600,l1,150,2024-01-02", "losses,t,BD,380,l2,90,2024-01-02",
           "idle,a,EQ,550,,,", "idle,a,BD,330,,,"]
    (root / "holdings.csv").write_text("\n".join(hol) + "\n")
    return root


def test_each_reason_by_hand_and_the_urgency_order(tmp_path):
    r = scan(small_book(tmp_path), harvest=10_000, idle_cash=0.05).set_index("household_id")
    assert not r.loc["calm", "needs_rebalance"] and r.loc["calm", "rank"] == 0
    assert r.loc["drifted", "reason"] == "band_breach" and r.loc["drifted", "breach_class"] == "equity"
    assert r.loc["drifted", "breach"] == pytest.approx(0.70 - 0.65)
    assert r.loc["short", "reason"] == "cash_short" and r.loc["short", "cash_short"] == 3000
    assert r.loc["leaving", "reason"] == "withdrawal" and r.loc["leaving", "withdrawal"] == 10_000
    assert "contribution" in r.loc["adding", "reasons"] and r.loc["adding", "contribution"] == 8000
    assert r.loc["losses", "reason"] == "harvest" and r.loc["losses", "harvestable"] == 600 * 50
    # 12% cash against 2%: 10 points idle; the cash band (5/25: 1.5% to 2.5%) is breached too.
    assert r.loc["idle", "idle_cash"] == pytest.approx(0.12 - 0.02)
    assert r.loc["idle", "reason"] == "band_breach" and r.loc["idle", "breach_class"] == "cash"
    order = scan(small_book(tmp_path / "again"), harvest=10_000)["household_id"].tolist()
    assert order[:2] == ["short", "leaving"] and order[-1] == "calm"
    ranked = r[r["needs_rebalance"]].sort_values("rank")
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))


def test_a_cell_that_is_no_number_flags_its_household_and_spares_the_rest(tmp_path):
    root = small_book(tmp_path)
    hol = pd.read_csv(root / "holdings.csv", dtype=str, keep_default_na=False)
    hol.loc[(hol["household_id"] == "calm") & (hol["security_id"] == "EQ"), "quantity"] = "lots"
    hol.to_csv(root / "holdings.csv", index=False)
    r = scan(root).set_index("household_id")
    assert r.loc["calm", "reason"] == "input" and r.loc["calm", "rank"] == 1
    assert r.loc["drifted", "reason"] == "band_breach"


def test_the_cli_prints_the_ranking_writes_it_and_batch_runs_only_the_needed(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main
    from cvxrebalance.optimizer.apps.executors import run_batch

    root = small_book(tmp_path)
    assert main(["scan", str(root), "--out", str(tmp_path / "scan.csv"), "--harvest", "10000"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("6 of 7 households need a rebalance")
    written = pd.read_csv(tmp_path / "scan.csv")
    assert written["household_id"].tolist()[:2] == ["short", "leaving"]
    assert main(["scan", str(tmp_path / "nothing")]) == 2
    man = run_batch(root, tmp_path / "out", workers=1, progress=False, only_needed=True)
    assert man["counts"]["not_needed"] == 1 and man["counts"]["run"] == 6
    assert not (tmp_path / "out" / "households" / "calm").exists()
    assert (tmp_path / "out" / "households" / "drifted" / "summary.json").exists()


def test_a_database_book_scans_as_its_files_do(tmp_path):
    """The advisor book loaded into SQLite with pandas' own types (blank cells become NULLs, read
    back as NaN): the scan ranks the same households, Jones's and Smith's restrictions first."""
    sa = pytest.importorskip("sqlalchemy", reason="the db extra (SQLAlchemy) is not installed")
    from cvxrebalance.scenarios import book_path

    root = book_path("advisor")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'book.db'}")
    for f in root.glob("*.csv"):
        pd.read_csv(f).to_sql(f.stem, engine, index=False)
    pd.DataFrame({"toml": [(root / "policy.toml").read_text()]}).to_sql("policy", engine, index=False)
    pd.DataFrame({"name": [p.stem for p in (root / "policies").glob("*.toml")],
                  "toml": [p.read_text() for p in (root / "policies").glob("*.toml")]}).to_sql("policies", engine,
                                                                                              index=False)
    from_db = scan(f"sqlite:///{tmp_path / 'book.db'}")
    from_files = scan(root)
    assert from_db["household_id"].tolist() == from_files["household_id"].tolist()
    assert from_db["reason"].tolist() == from_files["reason"].tolist()
    assert from_db["household_id"].tolist()[:2] == ["jones", "smith"]


def test_a_household_with_an_unknown_model_is_flagged_and_the_rest_run(tmp_path):
    import shutil

    from cvxrebalance.optimizer.apps.executors import run_batch
    from cvxrebalance.scenarios import book_path

    root = tmp_path / "book"
    shutil.copytree(book_path("advisor"), root)
    hh = pd.read_csv(root / "households.csv", dtype=str, keep_default_na=False)
    hh.loc[hh["household_id"] == "h015", "model_id"] = "Moderate"
    hh.to_csv(root / "households.csv", index=False)
    r = scan(root).set_index("household_id")
    assert r.loc["h015", "reason"] == "input"
    man = run_batch(root, tmp_path / "out", workers=1, progress=False, only_needed=True)
    errors = pd.read_csv(tmp_path / "out" / "errors.csv").set_index("household_id")
    assert list(errors.index) == ["h015"] and "unknown model 'Moderate'" in errors.loc["h015", "reason"]
    assert man["counts"]["succeeded"] == 40


def test_an_unknown_model_or_policy_flags_its_household_and_spares_the_rest(tmp_path):
    root = small_book(tmp_path)
    (root / "models.csv").write_text("model_id,asset_class,weight\nm,equity,0.60\nm,bonds,0.38\nm,cash,0.02\n")
    (root / "targets.csv").unlink()
    ids = ["calm", "drifted", "short", "leaving", "adding", "losses", "idle"]
    rows = [f"{h},m," for h in ids]
    rows[0] = "calm,nope,"  # no such model
    rows[1] = "drifted,m,../policy"  # no such policy file
    (root / "households.csv").write_text("household_id,model_id,policy\n" + "\n".join(rows) + "\n")
    r = scan(root).set_index("household_id")
    assert r.loc["calm", "reason"] == "input" and r.loc["drifted", "reason"] == "input"
    assert r.loc["short", "reason"] == "cash_short"


def test_a_household_worth_nothing_or_with_negative_cash_is_an_input_problem(tmp_path):
    root = small_book(tmp_path)
    acc = (root / "accounts.csv").read_text().replace("calm,a,tax_deferred,2000", "calm,a,tax_deferred,0") \
        .replace("idle,a,tax_deferred,12000", "idle,a,tax_deferred,-12000")
    (root / "accounts.csv").write_text(acc)
    hol = [line for line in (root / "holdings.csv").read_text().splitlines() if not line.startswith("calm,")]
    (root / "holdings.csv").write_text("\n".join(hol) + "\n")
    r = scan(root).set_index("household_id")
    assert r.loc["calm", "reason"] == "input" and r.loc["idle", "reason"] == "input"
    assert r.loc["drifted", "reason"] == "band_breach"


def test_a_bad_horizon_is_named_by_its_option(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    assert main(["scan", str(small_book(tmp_path)), "--horizon", "2026-02-30"]) == 2
    assert "--horizon" in capsys.readouterr().err


def test_a_contract_row_the_rebalance_refuses_flags_its_household(tmp_path):
    root = small_book(tmp_path)
    (root / "futures.csv").write_text(
        "household_id,contract_id,account_id,position,price,multiplier,expiry,asset_class\n"
        "calm,ESZ6,a,0,5000,50,2026-13-45,equity\n"  # no such date
        "short,ESH7,a,0,5000,-50,2027-03-19,equity\n")  # a negative multiplier
    r = scan(root).set_index("household_id")
    assert r.loc["calm", "reason"] == "input" and "input" in r.loc["short", "reasons"]
    assert r.loc["drifted", "reason"] == "band_breach"


def test_households_csv_rows_the_batch_refuses_are_flagged_or_named_as_the_batch_does(tmp_path):
    root = small_book(tmp_path)
    (root / "models.csv").write_text("model_id,asset_class,weight\nm,equity,0.60\nm,bonds,0.38\nm,cash,0.02\n")
    (root / "targets.csv").unlink()
    rows = ["household_id,model_id,short_term_rate", "calm,m,abc", "drifted,m,-0.3", "ghost,m,",
            *(f"{h},m," for h in ("short", "leaving", "adding", "losses", "idle"))]
    (root / "households.csv").write_text("\n".join(rows) + "\n")
    r = scan(root).set_index("household_id")
    assert r.loc["calm", "reason"] == "input" and r.loc["drifted", "reason"] == "input"
    assert r.loc["ghost", "reason"] == "input"  # listed, but no accounts: the batch fails it
    assert r.loc["short", "reason"] == "cash_short"
    (root / "households.csv").write_text("\n".join([*rows, ",m,"]) + "\n")
    with pytest.raises(ValidationError) as err:  # a row of no household stops the batch: and the scan
        scan(root)
    assert [(p.file, p.row, p.field) for p in err.value.problems] == [("households.csv", 10, "household_id")]


def test_out_into_a_missing_folder_names_the_file_not_a_temporary_one(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    target = tmp_path / "no" / "such" / "scan.csv"
    assert main(["scan", str(small_book(tmp_path)), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and ".tmp" not in err


def test_a_household_moving_to_another_model_is_a_transition_not_a_band_breach(tmp_path):
    """drifted holds 70/29 on m (60/38, bands 55-65): a breach. Moving to it from model old, the
    same distance is a transition: the rebalance trades with its bands off until it is inside."""
    root = small_book(tmp_path)
    (root / "models.csv").write_text("model_id,asset_class,weight\nm,equity,0.60\nm,bonds,0.38\nm,cash,0.02\n"
                                     "old,equity,0.70\nold,bonds,0.28\nold,cash,0.02\n")
    (root / "targets.csv").unlink()
    ids = ["calm", "drifted", "short", "leaving", "adding", "losses", "idle"]
    rows = [f"{h},m," for h in ids]
    rows[1] = "drifted,m,old"
    rows[0] = "calm,m,old"  # moved, and already inside the new model's bands: done
    (root / "households.csv").write_text("household_id,model_id,previous_model_id\n" + "\n".join(rows) + "\n")
    r = scan(root).set_index("household_id")
    assert r.loc["drifted", "reason"] == "transition" and r.loc["drifted", "breach"] == 0.0
    assert r.loc["drifted", "transition"] == pytest.approx(0.05, abs=1e-9)
    assert r.loc["drifted", "breach_class"] == "equity"
    assert not r.loc["calm", "needs_rebalance"] and r.loc["calm", "transition"] == 0.0
    # Ranked after a withdrawal and before any band breach.
    order = r[r["needs_rebalance"]]["reason"].tolist()
    assert order.index("transition") == order.index("withdrawal") + 1
    rows[1] = "drifted,m,gone"  # a move from no such model: the batch names it
    (root / "households.csv").write_text("household_id,model_id,previous_model_id\n" + "\n".join(rows) + "\n")
    assert scan(root).set_index("household_id").loc["drifted", "reason"] == "input"


def test_a_household_flagged_for_its_row_shows_the_model_its_row_names(tmp_path):
    root = small_book(tmp_path)
    (root / "models.csv").write_text("model_id,asset_class,weight\nm,equity,0.60\nm,bonds,0.38\nm,cash,0.02\n")
    (root / "targets.csv").unlink()
    ids = ["calm", "drifted", "short", "leaving", "adding", "losses", "idle"]
    rows = [f"{h},m," for h in ids]
    rows[0] = "calm,Moderate,"
    rows[1] = "drifted,m,../policy"
    (root / "households.csv").write_text("household_id,model_id,policy\n" + "\n".join(rows) + "\n")
    r = scan(root).set_index("household_id")
    assert r.loc["calm", ["reason", "model_id"]].tolist() == ["input", "Moderate"]
    assert r.loc["drifted", ["reason", "model_id"]].tolist() == ["input", "m"]


@pytest.mark.parametrize(("trigger", "needed"), [
    ("always", {"drifted", "short", "leaving", "adding", "losses", "idle"}),
    # A threshold trigger acts on breaches (adding's and idle's cash is above its band) and on
    # what not trading would break (cash to keep or pay out), not on losses to harvest: those stay
    # listed in `reasons`, not needed.
    ("threshold", {"drifted", "short", "leaving", "adding", "idle"}),
    # Not a quarterly check date (2026-11-20): only what cannot wait.
    ("calendar", {"short", "leaving"}),
    ("never", {"short", "leaving"}),
])
def test_a_household_needs_a_rebalance_when_its_trigger_acts_on_a_reason(tmp_path, trigger, needed):
    root = small_book(tmp_path)
    (root / "policy.toml").write_text(f'[tax]\nas_of = 2026-11-20\n[bands]\nrule = "5/25"\n'
                                      f'[trigger]\nmode = "{trigger}"\nfrequency = "quarterly"\n')
    r = scan(root, harvest=10_000, idle_cash=0.05).set_index("household_id")
    assert set(r.index[r["needs_rebalance"]]) == needed
    assert r.loc["losses", "reasons"] == "harvest" and r.loc["losses", "needs_rebalance"] == (trigger == "always")


def test_a_household_the_batch_refuses_is_input_alone_with_no_figures(tmp_path):
    """An unknown account type ("taxible") was ranked cash_short though the batch fails it; a
    quantity of "12x" was flagged input but showed the breach of a holding read as 0."""
    root = small_book(tmp_path)
    acc = (root / "accounts.csv").read_text().replace("short,a,tax_deferred", "short,a,taxible")
    (root / "accounts.csv").write_text(acc)
    (root / "holdings.csv").write_text((root / "holdings.csv").read_text().replace("drifted,a,BD,290", "drifted,a,BD,29x"))
    r = scan(root).set_index("household_id")
    for hid in ("short", "drifted"):
        assert r.loc[hid, "reason"] == "input" and r.loc[hid, "reasons"] == "input"
        assert r.loc[hid, ["value", "breach", "cash_short"]].isna().all() and r.loc[hid, "breach_class"] == ""
    assert r.loc["leaving", "reason"] == "withdrawal"  # the others as before


def test_households_csv_without_models_csv_is_flagged_as_the_batch_fails_it_not_a_traceback(tmp_path):
    """Without models.csv the batch refuses every households.csv row (its model_id names no model,
    or is missing); the scan crashed with KeyError on a row naming a model, and ranked a row
    without one as if it would run."""
    root = small_book(tmp_path)
    (root / "households.csv").write_text("household_id,model_id,previous_model_id\ndrifted,m,\nshort,,\n"
                                         "adding,,old\n")
    r = scan(root).set_index("household_id")
    assert r.loc[["drifted", "short", "adding"], "reason"].tolist() == ["input"] * 3
    assert r.loc["drifted", "model_id"] == "m"
    assert r.loc["leaving", "reason"] == "withdrawal"  # no row: the shared targets and policy, as the batch
    batch = read_batch(root)
    for hid in ("drifted", "short", "adding"):
        with pytest.raises(ValidationError):
            household_and_policy(hid, batch.households[hid], batch.shared, batch.policy, {})
