"""Output files, summary keys, atomic writes and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from optimizer import load_case, rebalance
from optimizer.cli import main
from optimizer.result import LOT_COLUMNS, TRADE_COLUMNS
from scenarios import case_path


@pytest.fixture(scope="module")
def example():
    return rebalance(*load_case(case_path("example")))


def test_summary_has_the_documented_keys(example):
    s = example.summary
    for key in ("household_value", "asset_classes", "tracking_error", "costs", "taxes", "accounts",
                "solver", "checks"):
        assert key in s
    assert s["checks"]["passed"] is True
    for cls in s["asset_classes"].values():
        assert {"target", "lower", "upper", "before", "after"} <= set(cls)
    assert {"short_term_gain", "long_term_gain", "tax"} <= set(s["taxes"])
    assert {"name", "status", "time_ms"} <= set(s["solver"])
    for acc in s["accounts"].values():
        assert {"value_before", "value_after", "cash_after"} <= set(acc)
    json.dumps(s)  # serializable


def test_write_is_complete_and_replaces_atomically(example, tmp_path):
    out = tmp_path / "out"
    example.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["lots.csv", "summary.json", "trades.csv"]
    assert list(pd.read_csv(out / "trades.csv").columns) == TRADE_COLUMNS
    assert list(pd.read_csv(out / "lots.csv").columns) == LOT_COLUMNS
    (out / "stale.txt").write_text("from an earlier run")
    example.write(out)
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary directories left


def test_trades_are_whole_shares(example):
    q = example.trades["quantity"]
    assert (q == q.round()).all() and (q > 0).all()


def test_cli_run_prints_drift_table_and_writes_files(tmp_path, capsys):
    assert main(["run", "example", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "Asset classes" in text and "drift" in text and "Trades" in text
    assert (tmp_path / "o" / "summary.json").exists()


def test_cli_lists_cases(capsys):
    assert main(["cases"]) == 0
    assert "example" in capsys.readouterr().out
