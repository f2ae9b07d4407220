"""Policy sweeps: every household backtested under every policy on the batch executors, equal to
a direct backtest, resumable and exactly-once, failures isolated per household."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import ValidationError, load_case
from cvxrebalance.optimizer.apps.sweep import KEY, STATS, SUMMARY_STATS, run_sweep
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.backtests import backtest
from cvxrebalance.scenarios.market import load_market

ROOT = Path(__file__).resolve().parents[3]
CASE = case_path("us_stocks_bonds_monthly")
START, END = "1926-06-30", "1929-12-31"
THRESHOLD = '[bands]\nrule = "5/25"\n[trigger]\nmode = "threshold"\n[backtest]\nrebalancer = "rule"\n' \
            '[tax]\nas_of = 1926-06-30\n'
QUARTERLY = '[trigger]\nmode = "calendar"\nfrequency = "quarterly"\n[backtest]\nrebalancer = "rule"\n' \
            '[tax]\nas_of = 1926-06-30\n'
FLOWS = [("1927-03-31", "h001", "ira", "20000"), ("1928-06-30", "h001", "taxable", "-5000"),
         ("1935-01-31", "h001", "ira", "1")]  # the last one is after the window: left out


def household_tables(k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bundled case's accounts and holdings, scaled by household (h000 is the case itself)."""
    scale = 1 + 0.5 * k
    acc = pd.read_csv(CASE / "accounts.csv", dtype=str, keep_default_na=False)
    hol = pd.read_csv(CASE / "holdings.csv", dtype=str, keep_default_na=False)
    acc["cash"] = [str(float(c) * scale) for c in acc["cash"]]
    hol["quantity"] = [str(round(float(q) * scale)) for q in hol["quantity"]]
    return acc, hol


def make_input(tmp: Path, n: int = 3, flows: bool = True) -> Path:
    """A batch input of ``n`` households from the bundled monthly case, with its returns.csv,
    a policy.toml and flows for h001."""
    in_dir = tmp / "in"
    in_dir.mkdir(parents=True)
    for name in ("securities.csv", "targets.csv", "covariance.csv", "returns.csv"):
        shutil.copy(CASE / name, in_dir / name)
    (in_dir / "policy.toml").write_text(THRESHOLD)
    accounts, holdings = [], []
    for k in range(n):
        acc, hol = household_tables(k)
        accounts.append(acc.assign(household_id=f"h{k:03d}"))
        holdings.append(hol.assign(household_id=f"h{k:03d}"))
    pd.concat(accounts).to_csv(in_dir / "accounts.csv", index=False)
    pd.concat(holdings).to_csv(in_dir / "holdings.csv", index=False)
    if flows:
        pd.DataFrame(FLOWS, columns=["date", "household_id", "account_id", "amount"]).to_csv(
            in_dir / "flows.csv", index=False)
    return in_dir


def policy_files(tmp: Path) -> dict[str, Path]:
    (tmp / "threshold.toml").write_text(THRESHOLD)
    (tmp / "quarterly.toml").write_text(QUARTERLY)
    return {"threshold": tmp / "threshold.toml", "quarterly": tmp / "quarterly.toml"}


def sweep(in_dir: Path, out: Path, policies, **kw) -> dict:
    kw = {"start": START, "end": END, "workers": 1, **kw}
    return run_sweep(in_dir, out, policies, progress=False, **kw)


def combined(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "comparison.csv").sort_values(["household_id", "policy"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One sweep of three households under two policies, shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("sweep")
    in_dir = make_input(tmp)
    files = policy_files(tmp)
    man = sweep(in_dir, tmp / "out", files)
    return tmp, in_dir, files, man


def test_each_household_s_rows_equal_a_direct_backtest(first_run, tmp_path):
    tmp, _, files, man = first_run
    out = tmp / "out"
    assert man["counts"]["succeeded"] == 3
    assert man["counts"]["comparison_rows"] == 6 and man["window"]["periods"] == 42
    from cvxrebalance import Policy

    policies = {name: Policy.from_toml(path) for name, path in files.items()}
    market = load_market(CASE)
    flows = pd.DataFrame(FLOWS[:2], columns=["date", "household_id", "account_id", "amount"])
    flows = flows.assign(date=pd.to_datetime(flows["date"]), amount=flows["amount"].astype(float))
    every = combined(out)
    for k in range(3):
        case = tmp_path / f"case{k}"
        shutil.copytree(CASE, case)
        acc, hol = household_tables(k)
        acc.to_csv(case / "accounts.csv", index=False)
        hol.to_csv(case / "holdings.csv", index=False)
        household, _ = load_case(case)
        own = flows[flows["household_id"] == f"h{k:03d}"].drop(columns="household_id") if k == 1 else None
        expected = backtest(household, policies, market, start=START, end=END, flows=own).stats
        rows = pd.read_csv(out / "households" / f"h{k:03d}" / "comparison.csv").set_index("policy")
        assert rows.index.tolist() == ["threshold", "quarterly"]
        np.testing.assert_allclose(rows[STATS].to_numpy(float), expected[STATS].to_numpy(float), rtol=1e-9)
        mine = every[every["household_id"] == f"h{k:03d}"].set_index("policy").loc[rows.index]
        np.testing.assert_allclose(mine[STATS].to_numpy(float), rows[STATS].to_numpy(float), rtol=0, atol=0)
    # The flows moved h001's result: it is not h000's scaled by 1.5.
    h0, h1 = (every[every["household_id"] == h].set_index("policy")["final_value"] for h in ("h000", "h001"))
    assert not np.allclose(h1, 1.5 * h0, rtol=1e-3)


def test_policies_table_summarizes_each_policy_across_households(first_run):
    tmp, *_ = first_run
    out = tmp / "out"
    every = pd.read_csv(out / "comparison.csv")
    assert list(every.columns) == ["household_id", "policy", *STATS]
    table = pd.read_csv(out / "policies.csv").set_index("policy")
    assert table.index.tolist() == ["threshold", "quarterly"] and (table["households"] == 3).all()
    for name in table.index:
        part = every[every["policy"] == name]
        for stat in SUMMARY_STATS:
            x = part[stat].to_numpy(float)
            got = table.loc[name, [f"{stat}_median", f"{stat}_mean", f"{stat}_p10", f"{stat}_p90"]].to_numpy(float)
            np.testing.assert_allclose(got, [np.median(x), x.mean(), np.percentile(x, 10), np.percentile(x, 90)],
                                       rtol=1e-12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"securities.csv", "accounts.csv", "holdings.csv", "returns.csv", "flows.csv"} <= set(manifest["inputs"])
    assert manifest["policies"]["quarterly"]["file"].endswith("quarterly.toml")
    assert manifest["window"] == {"source": "returns.csv", "start": START, "end": END, "periods": 42,
                                  "frequency": "monthly"}
    assert pd.read_csv(out / "errors.csv").empty


def test_a_rerun_skips_finished_households_and_a_changed_policy_reruns_all(tmp_path):
    in_dir = make_input(tmp_path)
    files = policy_files(tmp_path)
    out = tmp_path / "out"
    first = sweep(in_dir, out, files)
    text = (out / "comparison.csv").read_text()
    again = sweep(in_dir, out, files)
    assert again["counts"]["run"] == 0 and again["counts"]["skipped_finished"] == 3
    assert (out / "comparison.csv").read_text() == text  # rebuilt from the files, the same
    assert again["counts"]["comparison_rows"] == first["counts"]["comparison_rows"] == 6
    assert combined(out).query("policy == 'quarterly'")["events"].tolist() == [13] * 3
    files["quarterly"].write_text(QUARTERLY.replace("quarterly", "annual"))  # a changed policy file
    changed = sweep(in_dir, out, files)
    assert changed["counts"]["run"] == 3 and changed["counts"]["comparison_rows"] == 6
    # 1926, 1927 and 1928 year ends (none on the last date): the new policy's rows, not stale ones
    assert combined(out).query("policy == 'quarterly'")["events"].tolist() == [3] * 3
    assert sweep(in_dir, out, files, end="1928-12-31")["counts"]["run"] == 3  # a changed window reruns too
    assert sweep(in_dir, out, files, end="1928-12-31")["counts"]["run"] == 0
    # A flow of h002 added above h001's rows (their lines move): only h002 reruns.
    flows = pd.read_csv(in_dir / "flows.csv", dtype=str, keep_default_na=False)
    new = pd.DataFrame([["1927-06-30", "h002", "ira", "1000"]], columns=flows.columns)
    pd.concat([new, flows]).to_csv(in_dir / "flows.csv", index=False)
    # Market data after the window changed: nothing the backtests see.
    returns = (in_dir / "returns.csv").read_text().splitlines()
    returns[-1] = returns[-1].rsplit(",", 1)[0] + ",0.0001"
    (in_dir / "returns.csv").write_text("\n".join(returns) + "\n")
    man = sweep(in_dir, out, files, end="1928-12-31")
    assert man["counts"]["run"] == 1 and man["counts"]["skipped_finished"] == 2


def test_resume_after_a_simulated_kill_reruns_only_the_torn_households(tmp_path):
    in_dir = make_input(tmp_path, 4)
    files = policy_files(tmp_path)
    out = tmp_path / "out"
    sweep(in_dir, out, files)
    clean = (out / "comparison.csv").read_text()
    households = out / "households"
    (households / "h001" / "summary.json").unlink()  # killed between the renames: comparison, no summary
    shutil.rmtree(households / "h002")  # killed before it was written
    (households / "h003" / ".comparison.csv.abc123.tmp").write_text("half a fi")  # killed mid-write
    (households / "h000" / "comparison.csv").write_text("household_id,policy\n")  # damaged after the fact
    (out / "comparison.csv").write_text(clean[: len(clean) // 2])
    (out / "manifest.json").unlink()
    man = sweep(in_dir, out, files)
    assert man["counts"]["run"] == 3 and man["counts"]["skipped_finished"] == 1  # h000, h001, h002
    assert not list(out.rglob("*.tmp"))
    assert (out / "comparison.csv").read_text() == clean
    every = pd.read_csv(out / "comparison.csv")
    assert len(every) == 8 and not every.duplicated(["household_id", "policy"]).any()


def test_a_killed_sweep_resumes_with_every_household_exactly_once(tmp_path):
    in_dir = make_input(tmp_path, 8, flows=False)
    files = policy_files(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cvxrebalance.optimizer.apps.cli", "sweep", str(in_dir), str(out),
           "--policy", f"threshold={files['threshold']}", "--policy", f"quarterly={files['quarterly']}",
           "--start", START, "--end", END, "--workers", "1", "--chunk-size", "1", "--no-progress"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "households").glob("*/summary.json"))) < 2:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list((out / "households").glob("*/summary.json")))
    assert 2 <= partial < 8  # killed mid-run
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"]["skipped_finished"] == partial and man["counts"]["run"] == 8 - partial
    every = pd.read_csv(out / "comparison.csv")
    assert len(every) == 16 and not every.duplicated(["household_id", "policy"]).any()
    assert not list(out.rglob("*.tmp"))


def test_two_local_workers_give_the_same_tables_as_one(first_run, tmp_path):
    tmp, in_dir, files, _ = first_run
    man = sweep(in_dir, tmp_path / "two", files, workers=2, chunk_size=1)
    assert man["workers"] == 2 and man["counts"]["succeeded"] == 3
    for name in ("comparison.csv", "policies.csv"):
        assert (tmp_path / "two" / name).read_text() == (tmp / "out" / name).read_text()


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="the dask extra is not installed")
def test_dask_local_cluster_gives_the_same_tables(first_run, tmp_path):
    tmp, in_dir, files, _ = first_run
    man = sweep(in_dir, tmp_path / "dask", files, executor="dask", workers=2, chunk_size=2)
    assert man["executor"] == "dask" and man["counts"]["succeeded"] == 3
    for name in ("comparison.csv", "policies.csv"):
        assert (tmp_path / "dask" / name).read_text() == (tmp / "out" / name).read_text()


def test_a_household_s_error_is_its_row_and_the_others_run(tmp_path):
    in_dir = make_input(tmp_path, 4)
    hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
    hol.loc[hol["household_id"] == "h000", "security_id"] = "NOPE"  # unknown security
    hol.to_csv(in_dir / "holdings.csv", index=False)
    flows = pd.read_csv(in_dir / "flows.csv", dtype=str, keep_default_na=False)
    flows.loc[len(flows)] = ["1927-02-15", "h002", "ira", "100"]  # not a month end of the data (line 5)
    flows.loc[len(flows)] = ["1927-02-28", "h003", "brokerage", "x"]  # unknown account, bad amount (line 6)
    flows.to_csv(in_dir / "flows.csv", index=False)
    out = tmp_path / "out"
    man = sweep(in_dir, out, policy_files(tmp_path))
    assert man["counts"]["succeeded"] == 1 and man["counts"]["failed"] == 3
    errors = pd.read_csv(out / "errors.csv").set_index("household_id")
    assert set(errors.index) == {"h000", "h002", "h003"}
    assert "unknown security 'NOPE'" in errors.loc["h000", "reason"]
    assert "flows.csv line 5 [date]" in errors.loc["h002", "reason"]
    assert "flows.csv line 6 [amount]" in errors.loc["h003", "reason"]
    assert "flows.csv line 6 [account_id]: unknown account 'brokerage'" in errors.loc["h003", "reason"]
    assert set(pd.read_csv(out / "comparison.csv")["household_id"]) == {"h001"}
    assert pd.read_csv(out / "policies.csv")["households"].tolist() == [1, 1]
    # Fixed and retried: the failures run again, the finished household does not.
    hol.loc[hol["household_id"] == "h000", "security_id"] = pd.read_csv(CASE / "holdings.csv")["security_id"].to_numpy()
    hol.to_csv(in_dir / "holdings.csv", index=False)
    again = sweep(in_dir, out, policy_files(tmp_path), retry_errors=True)
    assert again["counts"]["run"] == 3 and again["counts"]["succeeded"] == 1  # h000 fixed, its digest changed


def test_bad_input_is_one_error_naming_file_line_and_field(tmp_path):
    in_dir = make_input(tmp_path)
    returns = (in_dir / "returns.csv").read_text().splitlines()
    returns[3] = returns[3].replace(returns[3].split(",")[1], "abc", 1)  # line 4, US_STOCKS
    (in_dir / "returns.csv").write_text("\n".join(returns) + "\n")
    flows = pd.read_csv(in_dir / "flows.csv", dtype=str, keep_default_na=False)
    flows.loc[len(flows)] = ["1927-02-28", "h999", "ira", "100"]  # a household that does not exist
    flows.to_csv(in_dir / "flows.csv", index=False)
    with pytest.raises(ValidationError) as info:
        run_sweep(in_dir, tmp_path / "out", {"a": tmp_path / "missing.toml"}, workers=1, progress=False)
    found = {(p.file, p.row, p.field) for p in info.value.problems}
    assert found == {("returns.csv", 4, "US_STOCKS"), ("flows.csv", 5, "household_id"), ("missing.toml", None, None)}
    assert not (tmp_path / "out").exists()
    (in_dir / "returns.csv").write_text("date,US_STOCKS,cash\n1926-07-31,0.01,0.0\n1926-08-31,0.02,0.0\n")
    with pytest.raises(ValidationError) as info:  # every household would fail on it: the sweep stops
        run_sweep(in_dir, tmp_path / "out", workers=1, progress=False)
    assert [(p.file, p.field) for p in info.value.problems] == [("returns.csv", "US_BONDS"), ("flows.csv", KEY)]
    (in_dir / "returns.csv").unlink()
    with pytest.raises(ValidationError, match="neither prices.csv nor returns.csv"):
        run_sweep(in_dir, tmp_path / "out", workers=1, progress=False)


def test_cells_are_spreadsheet_safe_and_read_back_exactly(tmp_path):
    from cvxrebalance.optimizer.apps.sweep import combine

    in_dir = make_input(tmp_path, 2, flows=False)
    for name in ("accounts.csv", "holdings.csv"):
        df = pd.read_csv(in_dir / name, dtype=str, keep_default_na=False)
        df["household_id"] = df["household_id"].replace({"h000": "-h0", "h001": "NA"})
        df.to_csv(in_dir / name, index=False)
    files = policy_files(tmp_path)
    out = tmp_path / "out"
    sweep(in_dir, out, {"=SUM(A1)": files["threshold"], "@q": files["quarterly"]})
    text = {name: (out / name).read_text() for name in ("comparison.csv", "policies.csv")}
    every = pd.read_csv(out / "comparison.csv", dtype=str, keep_default_na=False)
    assert set(every["policy"]) == {"'=SUM(A1)", "'@q"} and set(every["household_id"]) == {"'-h0", "NA"}
    assert pd.read_csv(out / "policies.csv", dtype=str)["policy"].tolist() == ["'=SUM(A1)", "'@q"]
    ids = ["-h0", "NA"]
    combine(out, ids, ["=SUM(A1)", "@q"])  # every household read back from its files
    assert {name: (out / name).read_text() for name in text} == text


def test_cli_sweep_with_the_in_dir_policy_and_with_named_policies(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import EXIT_OUTPUT, main

    in_dir = make_input(tmp_path, 2)
    assert main(["sweep", str(in_dir), str(tmp_path / "one"), "--end", END, "--workers", "1", "--no-progress"]) == 0
    assert pd.read_csv(tmp_path / "one" / "policies.csv")["policy"].tolist() == ["policy"]
    printed = capsys.readouterr().out
    assert "households                 2" in printed and "median of" in printed
    files = policy_files(tmp_path)
    args = ["sweep", str(in_dir), str(tmp_path / "two"), "--end", END, "--workers", "1", "--no-progress",
            "--policy", f"t={files['threshold']}", "--policy", f"q={files['quarterly']}"]
    assert main(args) == 0
    assert pd.read_csv(tmp_path / "two" / "comparison.csv")["policy"].tolist() == ["t", "q"] * 2
    assert main([*args[:-2], "--policy", "t=x.toml"]) == 2  # the same name twice
    assert "given twice" in capsys.readouterr().err
    assert main(["sweep", str(in_dir), str(tmp_path / "three"), "--policy", "nofile"]) == 2
    assert "expected NAME=FILE" in capsys.readouterr().err
    (tmp_path / "afile").write_text("not a directory")
    assert main(["sweep", str(in_dir), str(tmp_path / "afile"), "--end", END, "--no-progress"]) == EXIT_OUTPUT
    assert "OutputError" in capsys.readouterr().err
