"""Output files, summary keys, atomic writes and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cvxrebalance import load_case, rebalance
from cvxrebalance.optimizer.apps.cli import main
from cvxrebalance.optimizer.pipeline.result import FUTURES_COLUMNS, LOT_COLUMNS, TRADE_COLUMNS
from cvxrebalance.scenarios import case_path


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


def test_write_is_complete_and_keeps_other_files(example, tmp_path):
    out = tmp_path / "out"
    example.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["holdings_after.csv", "lots.csv", "summary.json", "trades.csv"]
    assert list(pd.read_csv(out / "trades.csv").columns) == TRADE_COLUMNS
    assert list(pd.read_csv(out / "lots.csv").columns) == LOT_COLUMNS
    (out / "mine.txt").write_text("the user's own file")
    example.write(out)
    assert (out / "mine.txt").read_text() == "the user's own file"
    assert sorted(p.name for p in out.iterdir()) == ["holdings_after.csv", "lots.csv", "mine.txt", "summary.json",
                                                     "trades.csv"]


def test_failed_write_leaves_the_previous_result(example, tmp_path, monkeypatch):
    out = tmp_path / "out"
    example.write(out)
    before = {p.name: p.read_text() for p in out.iterdir()}
    import cvxrebalance.optimizer.domain.output as output_module

    calls = {"n": 0}
    real_fdopen = output_module.os.fdopen

    def failing_fdopen(fd, mode):
        calls["n"] += 1
        if calls["n"] == 3:  # the disk fills while staging summary.json
            raise OSError("No space left on device")
        return real_fdopen(fd, mode)

    monkeypatch.setattr(output_module.os, "fdopen", failing_fdopen)
    with pytest.raises(OSError, match="No space"):
        example.write(out)
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # no temp files, nothing replaced


def test_write_refuses_a_file(example, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        example.write(f)
    assert f.read_text() == "x"


def test_trades_are_whole_shares(example):
    q = example.trades["quantity"]
    assert (q == q.round()).all() and (q > 0).all()


def test_cli_run_prints_drift_table_and_writes_files(tmp_path, capsys):
    assert main(["run", "example", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "Asset classes" in text and "drift" in text and "Trades" in text
    assert (tmp_path / "o" / "summary.json").exists()


def test_cli_writes_the_overlay(tmp_path, capsys):
    assert main(["run", "overlay", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "Overlay (both" in text and "With the overlay vs cash trades only" in text
    futures = pd.read_csv(tmp_path / "o" / "futures.csv")
    assert list(futures.columns) == FUTURES_COLUMNS
    assert set(futures["contract_id"]) == {"ESZ6", "ESH7", "TYH7", "6EH7"}
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    # The bundled case closes ESZ6 without rolling it: the summary says so, as the terminal does
    # (it used to list a roll the terminal called "closed, not rolled").
    assert summary["overlay"]["rolls"] == [{"from": "ESZ6", "to": "ESH7", "contracts": 4.0,
                                            "to_contracts_after": 0.0, "rolled": False}]
    assert "Closed: ESZ6 expires before the horizon; its +4 contracts were closed, not rolled" in text
    cmp = summary["cash_only_comparison"]
    assert cmp["with_overlay"]["objective"] <= cmp["cash_only"]["objective"]
    assert {"physical_after", "overlay_after", "effective_after"} <= set(summary["asset_classes"]["us_equity"])


def test_cli_reports_taxes_and_wash_sales(tmp_path, capsys):
    assert main(["run", "tax_aware", "--out", str(tmp_path / "t")]) == 0
    text = capsys.readouterr().out
    for fragment in ("Tax lots sold", "netted with year-to-date", "Lot relief", "fifo", "hifo",
                     "Wash sale       no purchase of AGG", "Wash sale       no loss sale of us_total"):
        assert fragment in text
    lots = pd.read_csv(tmp_path / "t" / "lots.csv")
    assert set(lots["term"]) <= {"short", "long"} and (lots["gain"] < 0).any()
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    relief = summary["taxes"]["relief"]
    assert relief["optimizer"]["tax"] <= min(relief["fifo"]["tax"], relief["hifo"]["tax"]) + 0.01


def test_cli_lists_cases(capsys):
    assert main(["cases"]) == 0
    assert "example" in capsys.readouterr().out


def rename_ids(case, renames: dict[str, dict[str, str]]) -> None:
    """Rename ids in a case's CSV files: {column: {old: new}} in every file that has the column."""
    for path in case.glob("*.csv"):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column, mapping in renames.items():
            if column in df.columns:
                df[column] = df[column].replace(mapping)
        df.to_csv(path, index=False)


def test_ids_that_look_like_formulas_are_safe_in_csv_and_exact_elsewhere(tmp_path):
    """OWASP's rule for CSV injection: a text cell starting with = + - @ gets a leading quote in
    every CSV written; DataFrames and summary.json keep the ids exact."""
    import shutil

    case = tmp_path / "case"
    shutil.copytree(case_path("example"), case)
    rename_ids(case, {"security_id": {"VTI": "=HYPERLINK(\"x\")", "VXUS": "+VXUS"},
                      "account_id": {"taxable": "@taxable", "ira": "-ira"}})
    result = rebalance(*load_case(case))
    out = result.write(tmp_path / "out")
    ids = set(result.trades["security_id"]) | set(result.trades["account_id"])
    assert {"=HYPERLINK(\"x\")", "@taxable"} <= ids | set(result.lots["security_id"])
    assert "@taxable" in json.loads((out / "summary.json").read_text())["accounts"]
    for name in ("trades.csv", "lots.csv"):
        raw = pd.read_csv(out / name, dtype=str, keep_default_na=False)
        text = [c for c in raw.columns if c in ("account_id", "security_id", "lot_id", "side", "term")]
        cells = [v for c in text for v in raw[c]]
        assert cells and not [v for v in cells if v[:1] in ("=", "+", "-", "@")], name
    trades = pd.read_csv(out / "trades.csv", dtype=str, keep_default_na=False)
    assert "'@taxable" in set(trades["account_id"])


def test_no_negative_zero_in_the_summary():
    """A tax of -0.0 (a zero loss times a rate) printed as "-0.0" in summary.json and the terminal."""
    import json

    from golden_cases import random_household

    from cvxrebalance import InfeasibilityError, rebalance

    for seed in range(12):
        try:
            r = rebalance(*random_household(seed))
        except InfeasibilityError:
            continue
        assert "-0.0," not in json.dumps(r.summary) and "-0.0}" not in json.dumps(r.summary)


@pytest.mark.parametrize("name", ["example", "tax_aware", "four_accounts"])
def test_holdings_after_is_the_next_rebalance_s_holdings(tmp_path, name):
    """holdings_after.csv has holdings.csv's columns: with each account's cash after, the case
    loads again as the household after the trades. Its value is the summary's value after
    trading; every buy in a taxable account is a new lot at the trade price on the as-of date; and
    the household after the trades rebalances again (its own checks pass)."""
    import shutil

    household, policy = load_case(case_path(name))
    r = rebalance(household, policy)
    r.write(tmp_path / "out")
    after = pd.read_csv(tmp_path / "out" / "holdings_after.csv", dtype={"lot_id": str, "acquired": str},
                        keep_default_na=False)
    assert list(after.columns) == ["account_id", "security_id", "quantity", "lot_id", "cost_basis", "acquired"]
    case = tmp_path / "case"
    shutil.copytree(case_path(name), case)
    shutil.copy(tmp_path / "out" / "holdings_after.csv", case / "holdings.csv")
    acc = pd.read_csv(case / "accounts.csv", dtype=str, keep_default_na=False)
    acc["cash"] = [str(r.summary["accounts"][a]["cash_after"]) for a in acc["account_id"]]
    acc["cash_flow"] = "0"
    acc.to_csv(case / "accounts.csv", index=False)
    (case / "transactions.csv").unlink(missing_ok=True)
    h2, p2 = load_case(case)
    price = h2.securities.set_index("security_id")["price"]
    value = float((h2.holdings["quantity"] * price.reindex(h2.holdings["security_id"]).to_numpy()).sum()
                  + h2.accounts["cash"].sum())
    assert value == pytest.approx(r.summary["household_value_after"], abs=0.02)
    buys = r.trades[r.trades["side"] == "buy"]
    taxable = set(household.accounts.loc[household.accounts["type"] == "taxable", "account_id"])
    new = after[after["lot_id"].str.startswith("buy-")]
    assert len(new) == sum(a in taxable for a in buys["account_id"])
    assert (new["acquired"] == str(policy.tax.as_of)).all()
    prices = dict(zip(buys["security_id"], buys["price"], strict=False))
    assert all(float(b) == prices[s] for s, b in zip(new["security_id"], new["cost_basis"], strict=True))
    assert rebalance(h2, p2).summary["checks"]["passed"]


def test_lots_give_basis_and_proceeds_per_share_and_in_total():
    """lots.csv used to give cost_basis per share beside total proceeds. Both are now given both
    ways, named so, and the gain is the totals' difference (the tax_aware case, to the cent)."""
    r = rebalance(*load_case(case_path("tax_aware")))
    lots = r.lots
    assert len(lots)
    assert ((lots["cost_basis_per_share"] * lots["quantity"]).round(2) == lots["cost_basis_total"]).all()
    assert ((lots["proceeds_per_share"] * lots["quantity"]).round(2) == lots["proceeds_total"]).all()
    assert ((lots["proceeds_total"] - lots["cost_basis_total"] - lots["gain"]).abs() <= 0.011).all()
