"""Batch runs: failures isolated per household, resumable after a kill, same results on Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cvxrebalance import ValidationError
from cvxrebalance.optimizer.apps.bench import write_batch_input
from cvxrebalance.optimizer.apps.executors import run_batch
from cvxrebalance.scenarios.synthetic import synthetic_universe

ROOT = Path(__file__).resolve().parents[3]


def make_input(tmp: Path, n: int, corrupt: bool = False) -> Path:
    in_dir = tmp / "in"
    write_batch_input(in_dir, synthetic_universe(20, 0, seed=3), n, 2, 30)
    if corrupt:
        hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
        hol.loc[hol["household_id"] == "h00001", "security_id"] = "NOPE"  # unknown security
        hol.to_csv(in_dir / "holdings.csv", index=False)
        acc = pd.read_csv(in_dir / "accounts.csv", dtype=str, keep_default_na=False)
        acc.loc[acc["household_id"] == "h00002", "min_cash"] = ""
        acc.loc[acc["household_id"] == "h00002", "type"] = "savings"  # unknown account type
        acc.loc[acc["household_id"] == "h00004", "min_cash"] = "1e12"  # infeasible policy
        acc.to_csv(in_dir / "accounts.csv", index=False)
    return in_dir


def edit_input(in_dir: Path, name: str, column: str, change) -> None:
    """Replace ``column`` of an input CSV (read as text) by ``change(column)``."""
    df = pd.read_csv(in_dir / name, dtype=str, keep_default_na=False)
    df[column] = change(df[column])
    df.to_csv(in_dir / name, index=False)


def outcome(out: Path) -> tuple[set[str], set[str]]:
    done = {p.parent.name for p in (out / "households").glob("*/summary.json")}
    failed = set(pd.read_csv(out / "errors.csv")["household_id"]) if (out / "errors.csv").exists() else set()
    return done, failed


def test_corrupt_households_end_in_the_errors_table(tmp_path):
    man = run_batch(make_input(tmp_path, 8, corrupt=True), tmp_path / "out", workers=1, progress=False)
    done, failed = outcome(tmp_path / "out")
    assert failed == {"h00001", "h00002", "h00004"}
    assert done == {f"h{k:05d}" for k in range(8)} - failed
    errors = pd.read_csv(tmp_path / "out" / "errors.csv").set_index("household_id")
    assert "unknown security 'NOPE'" in errors.loc["h00001", "reason"]
    assert "unknown account type 'savings'" in errors.loc["h00002", "reason"]
    assert errors.loc["h00004", "error"] == "InfeasibilityError"
    assert man["counts"]["failed"] == 3 and man["counts"]["succeeded"] == 5
    trades = pd.read_csv(tmp_path / "out" / "trades.csv")
    assert set(trades["household_id"]) <= done
    # One block per security and side, never netted across clients; allocations add up to it.
    block = pd.read_csv(tmp_path / "out" / "block_trades.csv").set_index("block_id")
    by_side = trades.groupby(["security_id", "side"])["quantity"].sum()
    assert len(block) == len(by_side)
    for (sid, side), q in by_side.items():
        assert block.loc[f"{side}-{sid}", "quantity"] == q
    alloc = pd.read_csv(tmp_path / "out" / "allocations.csv")
    assert (alloc.groupby("block_id")["quantity"].sum() == block["quantity"]).all()
    orders = pd.read_csv(tmp_path / "out" / "orders.csv")
    assert len(orders) == len(trades) and orders["order_id"].is_unique
    assert set(alloc["order_id"]) == set(orders["order_id"])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {"securities.csv", "accounts.csv", "holdings.csv"} <= set(manifest["inputs"])
    assert manifest["versions"]["cvxpy"]


def test_rerun_skips_finished_households(tmp_path):
    in_dir = make_input(tmp_path, 6)
    first = run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    again = run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert first["counts"]["run"] == 6 and again["counts"]["run"] == 0
    assert again["counts"]["skipped_finished"] == 6
    assert again["counts"]["trades"] == first["counts"]["trades"]


def test_killed_batch_resumes_with_every_household_exactly_once(tmp_path):
    in_dir = make_input(tmp_path, 120)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cvxrebalance.optimizer.apps.cli", "batch", str(in_dir), str(out), "--workers", "1",
           "--chunk-size", "5", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "households").glob("*/summary.json"))) < 10:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list((out / "households").glob("*/summary.json")))
    assert 10 <= partial < 120  # killed mid-run
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    done, failed = outcome(out)
    assert len(done) + len(failed) == 120 and not done & failed
    trades = pd.read_csv(out / "trades.csv")
    assert not trades.duplicated(["household_id", "account_id", "security_id", "side"]).any()
    per_household = {p.parent.name: len(pd.read_csv(p)) for p in (out / "households").glob("*/trades.csv")}
    assert trades.groupby("household_id").size().to_dict() == {k: v for k, v in per_household.items() if v}
    assert not list(out.rglob("*.tmp"))  # no half-written files survive a resumed run


def test_local_processes_match_one_process(tmp_path):
    in_dir = make_input(tmp_path, 10)
    run_batch(in_dir, tmp_path / "one", workers=1, progress=False)
    run_batch(in_dir, tmp_path / "two", workers=2, chunk_size=3, progress=False)
    a = pd.read_csv(tmp_path / "one" / "trades.csv").sort_values(["household_id", "account_id", "security_id"])
    b = pd.read_csv(tmp_path / "two" / "trades.csv").sort_values(["household_id", "account_id", "security_id"])
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_dask_local_cluster_matches_local_executor(tmp_path):
    pytest.importorskip("dask.distributed")
    in_dir = make_input(tmp_path, 8)
    run_batch(in_dir, tmp_path / "local", workers=1, progress=False)
    man = run_batch(in_dir, tmp_path / "dask", executor="dask", workers=2, chunk_size=2, progress=False)
    assert man["executor"] == "dask" and man["counts"]["succeeded"] == 8
    for name in ("trades.csv", "lots.csv", "block_trades.csv"):
        a = pd.read_csv(tmp_path / "local" / name)
        b = pd.read_csv(tmp_path / "dask" / name)
        keys = [c for c in ("household_id", "account_id", "security_id", "lot_id", "side") if c in a.columns]
        pd.testing.assert_frame_equal(a.sort_values(keys).reset_index(drop=True),
                                      b.sort_values(keys).reset_index(drop=True))


def test_parquet_input_gives_the_same_result(tmp_path):
    pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    in_dir = make_input(tmp_path, 4)
    run_batch(in_dir, tmp_path / "csv", workers=1, progress=False)
    for name in ("accounts", "holdings"):
        pd.read_csv(in_dir / f"{name}.csv").to_parquet(in_dir / f"{name}.parquet")
        (in_dir / f"{name}.csv").unlink()
    run_batch(in_dir, tmp_path / "parquet", workers=1, progress=False)
    a = pd.read_csv(tmp_path / "csv" / "trades.csv")
    b = pd.read_csv(tmp_path / "parquet" / "trades.csv")
    pd.testing.assert_frame_equal(a, b)


def test_bad_shared_table_stops_the_batch_with_its_file_and_line(tmp_path):
    from cvxrebalance import ValidationError

    in_dir = make_input(tmp_path, 3)
    sec = pd.read_csv(in_dir / "securities.csv", dtype=str, keep_default_na=False)
    sec.loc[2, "price"] = "-1"
    sec.to_csv(in_dir / "securities.csv", index=False)
    with pytest.raises(ValidationError) as err:
        run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert [(p.file, p.row, p.field) for p in err.value.problems] == [("securities.csv", 4, "price")]
    assert not (tmp_path / "out" / "households").exists()


def test_rerun_redoes_households_whose_input_changed(tmp_path):
    in_dir = make_input(tmp_path, 4)
    run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
    first = hol.index[hol["household_id"] == "h00002"][0]
    hol.loc[first, "quantity"] = str(float(hol.loc[first, "quantity"]) * 5)
    hol.to_csv(in_dir / "holdings.csv", index=False)
    again = run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert again["counts"]["run"] == 1 and again["counts"]["skipped_finished"] == 3
    (in_dir / "policy.toml").write_text('[tax]\nas_of = 2026-11-20\n[objective]\nrisk_weight = 50.0\n')
    assert run_batch(in_dir, tmp_path / "out", workers=1, progress=False)["counts"]["run"] == 4


def test_all_cash_household_without_holdings(tmp_path):
    in_dir = make_input(tmp_path, 3)
    hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
    hol[hol["household_id"] != "h00001"].to_csv(in_dir / "holdings.csv", index=False)
    man = run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert man["counts"]["succeeded"] == 3
    trades = pd.read_csv(tmp_path / "out" / "trades.csv")
    assert set(trades.query("household_id == 'h00001'")["side"]) == {"buy"}  # invests its cash


def test_combined_tables_from_memory_match_those_read_back(tmp_path):
    """The driver combines this run's tables in memory; rebuilding them from the households'
    files (what a resumed run does for earlier households) writes the same combined files."""
    from cvxrebalance.optimizer.apps.batch import combine, read_batch

    out = tmp_path / "out"
    man = run_batch(make_input(tmp_path, 6), out, workers=1, progress=False)
    assert man["counts"]["trades"] > 0
    names = ["trades.csv", "lots.csv", "futures.csv", "block_trades.csv", "allocations.csv", "errors.csv"]
    in_memory = {n: (out / n).read_text() for n in names}
    ids = sorted(p.name for p in (out / "households").iterdir())
    combine(out, ids, numbers=read_batch(tmp_path / "in").account_numbers)  # no fresh tables: every
    # household read from its files
    assert {n: (out / n).read_text() for n in names} == in_memory


def test_a_bad_cell_fails_only_its_household_naming_file_line_and_field(tmp_path):
    """The driver types each per-household file once for all households; a bad cell is still
    its own household's error, with the cell's line in the file."""
    in_dir = make_input(tmp_path, 5)
    hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
    row = hol.index[hol["household_id"] == "h00003"][1]
    edit_input(in_dir, "holdings.csv", "quantity", lambda col: col.where(col.index != row, "12x"))
    run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    done, failed = outcome(tmp_path / "out")
    assert failed == {"h00003"} and len(done) == 4
    reason = pd.read_csv(tmp_path / "out" / "errors.csv").set_index("household_id").loc["h00003", "reason"]
    assert f"holdings.csv line {row + 2}" in reason and "quantity" in reason and "12x" in reason


def test_combined_files_keep_ids_exact_and_spreadsheet_safe(tmp_path):
    """Ids like NA, 0012, 1E2 stay text through combining (also when read back for a resumed
    run), and ids that look like formulas are quoted in every combined CSV."""
    from cvxrebalance.optimizer.apps.batch import combine, read_batch

    in_dir = make_input(tmp_path, 4)
    renames = {f"SEC{k:04d}": new for k, new in enumerate(["NA", "0012", "1E2", "=1+1", "None", "-5"])}
    for name in ("securities.csv", "holdings.csv"):
        edit_input(in_dir, name, "security_id", lambda col: col.replace(renames))
    out = tmp_path / "out"
    run_batch(in_dir, out, workers=1, progress=False)
    files = ["trades.csv", "lots.csv", "block_trades.csv", "allocations.csv"]
    first = {n: (out / n).read_text() for n in files}
    combine(out, sorted(p.name for p in (out / "households").iterdir()),  # read back from files
            numbers=read_batch(in_dir).account_numbers)
    assert {n: (out / n).read_text() for n in files} == first
    trades = pd.read_csv(out / "trades.csv", dtype=str, keep_default_na=False)
    written = set(trades["security_id"]) | set(pd.read_csv(out / "lots.csv", dtype=str,
                                                           keep_default_na=False)["security_id"])
    assert written & {"NA", "0012", "1E2", "'=1+1", "None", "'-5"}  # some renamed ids traded
    assert not written & {"12.0", "100.0", "", "12", "100", "=1+1", "-5", "-5.0"}
    block = pd.read_csv(out / "block_trades.csv", dtype=str, keep_default_na=False)
    assert not [v for v in block["security_id"] if v[:1] in "=+-@"]


def test_any_household_id_gets_its_own_place_inside_out_dir(tmp_path):
    in_dir = make_input(tmp_path, 4)
    renames = {"h00000": "../../escape", "h00001": ".", "h00002": "..", "h00003": "a b/c"}
    for name in ("accounts.csv", "holdings.csv"):
        edit_input(in_dir, name, "household_id", lambda col: col.replace(renames))
    out = tmp_path / "deep" / "out"
    man = run_batch(in_dir, out, workers=1, progress=False)
    assert man["counts"]["succeeded"] == 4
    assert not list(tmp_path.rglob("escape*")) and not (tmp_path / "deep" / "households").exists()
    assert len(list((out / "households").glob("*/summary.json"))) == 4
    trades = pd.read_csv(out / "trades.csv", dtype=str, keep_default_na=False)
    assert set(trades["household_id"]) <= set(renames.values())
    # A rerun finds every household finished, whatever its id.
    again = run_batch(in_dir, out, workers=1, progress=False)
    assert again["counts"]["skipped_finished"] == 4


def test_a_row_without_household_id_is_named_not_a_phantom_household(tmp_path):
    in_dir = make_input(tmp_path, 3)
    edit_input(in_dir, "holdings.csv", "household_id", lambda col: col.where(col.index != 4, ""))
    with pytest.raises(ValidationError) as info:
        run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert [(p.file, p.row, p.field) for p in info.value.problems] == [("holdings.csv", 6, "household_id")]


def test_an_unwritable_out_dir_is_a_named_error_with_its_own_exit_code(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import EXIT_OUTPUT, main

    in_dir = make_input(tmp_path, 2)
    out = tmp_path / "out"
    out.write_text("a file, not a directory")
    assert main(["batch", str(in_dir), str(out), "--workers", "1", "--no-progress"]) == EXIT_OUTPUT
    err = capsys.readouterr().err
    assert "OutputError" in err and "Traceback" not in err


def test_a_full_disk_while_combining_leaves_no_stale_manifest(tmp_path, monkeypatch):
    from cvxrebalance import OutputError
    from cvxrebalance.optimizer.apps import batch

    in_dir = make_input(tmp_path, 3)
    out = tmp_path / "out"
    run_batch(in_dir, out, workers=1, progress=False)
    assert (out / "manifest.json").exists()
    real = batch._write_atomic

    def full(path, text):
        if path.name == "block_trades.csv":
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(batch, "_write_atomic", full)
    with pytest.raises(OutputError):
        run_batch(in_dir, out, workers=1, progress=False)
    assert not (out / "manifest.json").exists()  # no manifest vouches for the half-written tables


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        run_batch(make_input(tmp_path, 2), out, workers=1, progress=False)
    finally:
        os.umask(old)
    files = [out / "trades.csv", out / "manifest.json", *(out / "households").glob("*/trades.csv")]
    assert {f.stat().st_mode & 0o777 for f in files} == {mode}


def test_damaged_household_files_are_redone_not_combined(tmp_path):
    """A truncated or garbage per-household file fails its checksum (recorded in summary.json),
    so the rerun redoes that household instead of folding the damage into the combined tables."""
    in_dir = make_input(tmp_path, 4)
    out = tmp_path / "out"
    run_batch(in_dir, out, workers=1, progress=False)
    clean = (out / "trades.csv").read_text()
    trades = out / "households" / "h00001" / "trades.csv"
    trades.write_text(trades.read_text()[: len(trades.read_text()) // 2])  # truncated
    (out / "households" / "h00002" / "lots.csv").write_bytes(b"\x00\xff\xfegarbage\n")
    (out / "households" / "h00003" / "summary.json").write_bytes(b"\x89PNG\r\n")
    man = run_batch(in_dir, out, workers=1, progress=False)
    assert man["counts"]["run"] == 3 and man["counts"]["skipped_finished"] == 1
    assert (out / "trades.csv").read_text() == clean


def test_a_null_household_id_in_parquet_is_named_not_dropped(tmp_path):
    pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    in_dir = make_input(tmp_path, 3)
    hol = pd.read_csv(in_dir / "holdings.csv")
    hol.loc[3, "household_id"] = None
    hol.to_parquet(in_dir / "holdings.parquet")
    (in_dir / "holdings.csv").unlink()
    with pytest.raises(ValidationError) as info:
        run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert [(p.file, p.row, p.field) for p in info.value.problems] == [("holdings.csv", 5, "household_id")]


def test_parquet_with_a_saved_index_reads(tmp_path):
    pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    in_dir = make_input(tmp_path, 2)
    run_batch(in_dir, tmp_path / "csv", workers=1, progress=False)
    cov = pd.read_csv(in_dir / "covariance.csv")
    cov.set_index(cov.columns[0]).to_parquet(in_dir / "covariance.parquet")
    (in_dir / "covariance.csv").unlink()
    run_batch(in_dir, tmp_path / "parquet", workers=1, progress=False)
    assert (tmp_path / "csv" / "trades.csv").read_text() == (tmp_path / "parquet" / "trades.csv").read_text()


def test_household_ids_are_trimmed_like_other_text(tmp_path):
    in_dir = make_input(tmp_path, 2)
    first = pd.read_csv(in_dir / "holdings.csv")["household_id"].eq("h00000").idxmax()
    edit_input(in_dir, "holdings.csv", "household_id", lambda col: col.where(col.index != first, "h00000 "))
    man = run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert man["counts"]["households"] == 2 and man["counts"]["failed"] == 0


def test_ids_differing_only_in_case_get_places_distinct_on_any_file_system():
    from cvxrebalance.optimizer.apps.batch import dir_name

    names = [dir_name(h) for h in ("h1", "H1", "Smith", "smith", "SMITH")]
    assert len({n.lower() for n in names}) == len(names)
    assert dir_name("h00017") == "h00017"


def test_a_table_given_as_both_csv_and_parquet_is_named_not_chosen_silently(tmp_path):
    """holdings.csv beside a holdings.parquet (a stale export, say) used to be read alone, and the
    households of the other file were silently dropped or run on old rows."""
    pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    in_dir = make_input(tmp_path, 3)
    pd.read_csv(in_dir / "holdings.csv").head(4).to_parquet(in_dir / "holdings.parquet")
    with pytest.raises(ValidationError) as info:
        run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    [problem] = info.value.problems
    assert problem.file == "holdings.parquet" and "both holdings.csv and holdings.parquet" in problem.message
    assert not (tmp_path / "out" / "households").exists()


def overlay_batch(tmp: Path) -> Path:
    """duration_overlay's shared tables (its factor loadings and specific variances carry rows for
    the contracts) and four households of its accounts and holdings: h1 with its future and swaps,
    h2 the same with a bad swap cell (line 5 of swaps.csv), h3 with the future only, h4 with none."""
    case = ROOT / "scenarios" / "cases" / "duration_overlay"
    in_dir = tmp / "in"
    in_dir.mkdir()
    for name in ("securities", "targets", "factor_loadings", "factor_covariance", "specific_variance",
                 "factor_targets"):
        (in_dir / f"{name}.csv").write_text((case / f"{name}.csv").read_text())
    (in_dir / "policy.toml").write_text((case / "policy.toml").read_text())
    read = {n: pd.read_csv(case / f"{n}.csv", dtype=str) for n in ("accounts", "holdings", "futures", "swaps")}
    tables = {n: [] for n in read}
    for hid, parts in (("h1", ("futures", "swaps")), ("h2", ("futures", "swaps")), ("h3", ("futures",)), ("h4", ())):
        for n in ("accounts", "holdings", *parts):
            tables[n].append(read[n].assign(household_id=hid))
    swaps = pd.concat(tables["swaps"], ignore_index=True)
    swaps.loc[3, "fixed_rate"] = "abc"  # h2's second swap: line 5 of swaps.csv
    tables["swaps"] = [swaps]
    for n, parts in tables.items():
        pd.concat(parts).to_csv(in_dir / f"{n}.csv", index=False)
    return in_dir


def test_households_with_their_own_swaps_share_the_contracts_risk_rows(tmp_path):
    # The shared factor_loadings.csv needs the contracts' rows (each household with a swap needs
    # its row), but they were checked against a household without contracts: "unknown security
    # or contract 'USD10Y'" stopped the whole batch. Each household now reads the rows of its own
    # contracts, and a bad swap fails only its household.
    man = run_batch(overlay_batch(tmp_path), tmp_path / "out", workers=1, progress=False)
    done, failed = outcome(tmp_path / "out")
    assert (done, failed) == ({"h1", "h3", "h4"}, {"h2"})
    reason = pd.read_csv(tmp_path / "out" / "errors.csv").set_index("household_id").loc["h2", "reason"]
    assert "swaps.csv line 5 [fixed_rate]: not a number: 'abc'" in reason
    fut = pd.read_csv(tmp_path / "out" / "futures.csv")
    assert set(fut.loc[fut["household_id"] == "h1", "instrument"]) == {"future", "swap"}
    assert set(fut.loc[fut["household_id"] == "h3", "contract_id"]) == {"TYH7"}
    assert man["counts"]["succeeded"] == 3


def test_a_risk_row_naming_no_security_or_contract_still_stops_the_batch(tmp_path):
    in_dir = overlay_batch(tmp_path)
    with (in_dir / "factor_loadings.csv").open("a") as f:
        f.write("USD10YY,0,7.8,0\n")
    with pytest.raises(ValidationError, match="unknown security or contract 'USD10YY'"):
        run_batch(in_dir, tmp_path / "out", workers=1, progress=False)


def test_orders_lots_versus_purchase_blocks_by_side_and_full_headers(tmp_path):
    """Two households trade the same security in opposite ways: two blocks, not a net one; each
    taxable sell lists the lots it relieves with their acquisition dates; a batch without
    contracts writes futures.csv with its full header."""
    from cvxrebalance.optimizer.pipeline.result import FUTURES_COLUMNS

    root = tmp_path / "in"
    root.mkdir()
    (root / "securities.csv").write_text("security_id,asset_class,price\nEQ,equity,100\nBD,bonds,100\n")
    (root / "targets.csv").write_text("asset_class,weight\nequity,0.60\nbonds,0.40\n")
    (root / "covariance.csv").write_text("asset_class,equity,bonds\nequity,0.0256,0\nbonds,0,0.0025\n")
    (root / "policy.toml").write_text("[tax]\nas_of = 2026-11-20\n")
    (root / "accounts.csv").write_text("household_id,account_id,type,cash\nrich,t,taxable,0\npoor,t,taxable,0\n")
    (root / "holdings.csv").write_text(
        "household_id,account_id,security_id,quantity,lot_id,cost_basis,acquired\n"
        "rich,t,EQ,500,e1,90,2019-03-04\nrich,t,EQ,200,e2,95,2024-02-01\nrich,t,BD,300,b1,100,2020-01-02\n"
        "poor,t,EQ,500,e3,100,2020-01-02\npoor,t,BD,500,b2,100,2020-01-02\n")
    out = tmp_path / "out"
    run_batch(root, out, workers=1, progress=False)
    orders = pd.read_csv(out / "orders.csv")
    assert orders["order_id"].tolist() == [f"{h}-000{k}" for h, k in zip(orders["household_id"],
                                                                          orders.groupby("household_id").cumcount() + 1,
                                                                          strict=True)]
    sides = orders.set_index(["household_id", "security_id"])["side"]
    assert sides["rich", "EQ"] == "sell" and sides["poor", "EQ"] == "buy"
    block = pd.read_csv(out / "block_trades.csv").set_index("block_id")
    assert {"sell-EQ", "buy-EQ"} <= set(block.index)  # not netted across the two clients
    assert block.loc["sell-EQ", "allocations"] == 1 and block.loc["sell-EQ", "price"] == 100
    lots = pd.read_csv(out / "order_lots.csv", dtype={"acquired": str})
    sell = orders.query("household_id == 'rich' and security_id == 'EQ'")
    relieved = lots[lots["order_id"] == sell["order_id"].iloc[0]]
    assert relieved["quantity"].sum() == sell["quantity"].iloc[0]
    assert set(relieved["acquired"]) <= {"2019-03-04", "2024-02-01"}
    assert pd.read_csv(out / "futures.csv").columns.tolist() == ["household_id", *FUTURES_COLUMNS]


def test_a_custodian_account_number_of_two_households_stops_the_batch_naming_both_lines(tmp_path):
    """One number is one custodian account: under two clients, orders would reach the wrong one."""
    from cvxrebalance.optimizer.apps.batch import read_batch

    src = make_input(tmp_path, 3)
    accounts = pd.read_csv(src / "accounts.csv", dtype=str, keep_default_na=False)
    accounts["account_number"] = [f"N{i:03d}" for i in range(len(accounts))]
    first, other = accounts.index[0], accounts.index[accounts["household_id"] != accounts.loc[0, "household_id"]][0]
    accounts.loc[other, "account_number"] = " N000"  # trimmed like every cell
    accounts.to_csv(src / "accounts.csv", index=False)
    with pytest.raises(ValidationError) as err:
        read_batch(src)
    [problem] = err.value.problems
    assert (problem.file, problem.row, problem.field) == ("accounts.csv", other + 2, "account_number")
    assert f"line {first + 2}" in problem.message
    accounts.loc[other, "account_number"] = ""  # blank numbers are simply not given
    accounts.to_csv(src / "accounts.csv", index=False)
    assert len(read_batch(src).account_numbers) == len(accounts) - 1


def test_an_account_number_under_two_households_is_found_whatever_its_case(tmp_path):
    """"n000" and "N000" are one custodian account: under two clients, orders would reach the wrong one."""
    from cvxrebalance.optimizer.apps.batch import read_batch

    src = make_input(tmp_path, 3)
    accounts = pd.read_csv(src / "accounts.csv", dtype=str, keep_default_na=False)
    accounts["account_number"] = [f"N{i:03d}" for i in range(len(accounts))]
    other = accounts.index[accounts["household_id"] != accounts.loc[0, "household_id"]][0]
    accounts.loc[other, "account_number"] = "n000"
    accounts.to_csv(src / "accounts.csv", index=False)
    with pytest.raises(ValidationError) as err:
        read_batch(src)
    [problem] = err.value.problems
    assert (problem.file, problem.row, problem.field) == ("accounts.csv", other + 2, "account_number")
    assert "line 2" in problem.message and "N000" in problem.message


def test_parquet_account_numbers_of_an_integer_column_with_blanks_keep_their_digits(tmp_path):
    """pandas reads a Parquet integer column with nulls as floats: 48000030 reached orders.csv
    (and the custodian's file) as 48000030.0."""
    pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    import pyarrow as pa
    import pyarrow.parquet as pq

    in_dir = make_input(tmp_path, 3)
    accounts = pd.read_csv(in_dir / "accounts.csv", dtype=str, keep_default_na=False)
    numbers = [None if i == 1 else 48000000 + i for i in range(len(accounts))]
    table = pa.Table.from_pandas(accounts.drop(columns="account_number"), preserve_index=False).append_column(
        "account_number", pa.array(numbers, pa.int64()))
    pq.write_table(table, in_dir / "accounts.parquet")
    (in_dir / "accounts.csv").unlink()
    run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    orders = pd.read_csv(tmp_path / "out" / "orders.csv", dtype=str, keep_default_na=False)
    given = {(h, a): str(n) for h, a, n in zip(accounts["household_id"], accounts["account_id"], numbers,
                                               strict=True) if n is not None}
    assert len(orders) and set(orders["account_number"]) <= {*given.values(), ""}
    assert orders["account_number"].tolist() == [given.get((h, a), "") for h, a in
                                                 zip(orders["household_id"], orders["account_id"], strict=True)]


@pytest.mark.parametrize(("given", "suggested"), [("sqlite:/book.db", "sqlite:///book.db"),
                                                  ("duckdb:book.duckdb", "duckdb:///book.duckdb"),
                                                  ("postgresql:/host/db", "postgresql://")])
def test_a_mistyped_database_url_is_named_not_four_missing_tables(tmp_path, monkeypatch, capsys, given, suggested):
    """`batch sqlite:/book.db OUT` (one slash) was read as a directory: four "missing from IN_DIR"
    problems and no word of the URL."""
    from cvxrebalance.optimizer.apps.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as err:
        run_batch(given, tmp_path / "out", workers=1, progress=False)
    [problem] = err.value.problems
    assert given in str(problem) and suggested in problem.message and "missing" not in problem.message
    assert main(["batch", given, str(tmp_path / "out2"), "--no-progress"]) == 2
    assert suggested in capsys.readouterr().err


def test_a_missing_in_dir_is_named_once(tmp_path):
    with pytest.raises(ValidationError) as err:
        run_batch(tmp_path / "nope", tmp_path / "out", workers=1, progress=False)
    [problem] = err.value.problems
    assert "nope" in str(problem) and "no such directory" in problem.message


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """`cvxrebalance batch ... | head` ended in a BrokenPipeError traceback."""
    code = "import sys; from cvxrebalance.optimizer.apps.cli import main; sys.exit(main(['cases']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_a_broken_pipe_that_is_not_stdout_is_not_hidden(monkeypatch):
    """Only a closed stdout ends the command quietly: a worker's broken pipe is a failure."""
    from cvxrebalance.optimizer.apps import cli

    def broken(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_main", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["cases"])


def test_bad_shared_input_leaves_no_out_dir_behind(tmp_path):
    in_dir = make_input(tmp_path, 2)
    (in_dir / "securities.csv").write_text("security_id,asset_class,price\nSEC0000,equity,abc\n")
    with pytest.raises(ValidationError):
        run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()
