"""Factor drift in the result: the DataFrame, summary.json, the terminal table, factor_drift.csv
(spreadsheet-safe) and a batch's shared factor_targets.csv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from factor_builders import TY, bond_household, duration_band, policy

from cvxrebalance import rebalance
from cvxrebalance.optimizer.apps.executors import run_batch
from cvxrebalance.optimizer.pipeline.result import FACTOR_COLUMNS


def test_the_table_and_the_summary_agree():
    r = rebalance(bond_household(duration_band(5.5, 5.0, None)), policy())
    fd = r.factor_drift
    assert fd.index.name == "factor" and list(fd.index) == ["duration"]
    assert list(fd.columns) == FACTOR_COLUMNS[1:]
    row = r.summary["factor_drift"]["duration"]
    assert row["upper"] is None and np.isnan(fd.loc["duration", "upper"])  # no edge: null, NaN
    assert row["after"] == fd.loc["duration", "after"] and row["before"] == 4.0


def test_the_terminal_report_shows_the_factor_table():
    h = bond_household(duration_band(), account_type="taxable", cash=1_000_000, futures=[TY])
    text = rebalance(h, policy(overlay={"instruments": "overlay_only"})).to_text()
    assert "Factor exposures (per unit of household value, in each factor's units)" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("duration"))
    assert "5.5000" in line and "5.0000 to 6.0000" in line and "3.0000" in line
    header = text.splitlines()[text.splitlines().index(line) - 2]
    assert "of which overlay" in header


def test_no_factor_table_without_factor_targets(tmp_path):
    r = rebalance(bond_household(None), policy())
    assert "factor_drift" not in r.summary and "Factor exposures" not in r.to_text()
    r.write(tmp_path)
    assert not (tmp_path / "factor_drift.csv").exists()


def test_factor_drift_csv_is_written_spreadsheet_safe(tmp_path):
    # A factor named like a formula: the CSV cell gets a leading quote, summary.json keeps it exact.
    h = bond_household([{"factor": "=duration", "target": 5.5, "lower": 5.0, "upper": ""}], name="=duration")
    r = rebalance(h, policy())
    (tmp_path / "factor_drift.csv").write_text("stale")
    r.write(tmp_path)
    text = (tmp_path / "factor_drift.csv").read_text()
    assert text.splitlines()[0] == ",".join(FACTOR_COLUMNS)
    assert text.splitlines()[1].startswith("'=duration,5.5,5.0,,4.0,")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["factor_drift"]["=duration"]["upper"] is None
    assert "factor_drift.csv" in summary["files"]
    # Written again without factor targets, the old file goes.
    rebalance(bond_household(None), policy()).write(tmp_path)
    assert not (tmp_path / "factor_drift.csv").exists()


def test_a_batch_applies_its_shared_factor_targets(tmp_path):
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    files = {
        "securities.csv": "security_id,asset_class,price\nSHORT,bonds,100\nLONG,bonds,100\n",
        "accounts.csv": "household_id,account_id,type,cash\nh1,acct,tax_exempt,0\nh2,acct,tax_exempt,0\n",
        "holdings.csv": "household_id,account_id,security_id,quantity\nh1,acct,SHORT,20000\nh1,acct,LONG,10000\n"
                        "h2,acct,SHORT,10000\nh2,acct,LONG,20000\n",
        "targets.csv": "asset_class,weight\nbonds,1.0\n",
        "factor_loadings.csv": "security_id,duration\nSHORT,2\nLONG,8\n",
        "factor_covariance.csv": "factor,duration\nduration,0.0001\n",
        "factor_targets.csv": "factor,target,lower,upper\nduration,5.5,5,6\n",
        "policy.toml": '[tax]\nas_of = 2026-11-20\n[bands]\nrule = "none"\n',
    }
    for name, text in files.items():
        (in_dir / name).write_text(text)
    run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    # h1 from 4 up to the lower edge 5; h2 from 6 (inside) to 5.75, between its benchmark and target.
    for hid, after in (("h1", 5.0), ("h2", 5.75)):
        fd = pd.read_csv(tmp_path / "out" / "households" / hid / "factor_drift.csv").set_index("factor")
        assert fd.loc["duration", "after"] == pytest.approx(after, abs=3e-4)
