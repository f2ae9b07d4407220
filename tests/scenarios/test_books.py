"""The bundled advisor's book: four models, 200 clients, Jones's and Smith's restrictions; the
scan, the batch of the households that need it, and the desk's files."""

from __future__ import annotations

import pandas as pd
import pytest

from cvxrebalance.optimizer.apps.executors import run_batch
from cvxrebalance.optimizer.apps.scan import scan
from cvxrebalance.scenarios import book_path


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    manifest = run_batch(book_path("advisor"), out, workers=1, progress=False, only_needed=True)
    return out, manifest


def test_the_book_has_four_models_200_clients_and_the_seed_s_restrictions():
    root = book_path("advisor")
    assert pd.read_csv(root / "models.csv")["model_id"].nunique() == 4
    assert len(pd.read_csv(root / "households.csv")) == 200
    rules = pd.read_csv(root / "restrictions.csv", keep_default_na=False).set_index("household_id")
    assert rules.loc["jones", "tag"] == "defense" and rules.loc["smith", "substitute"] == "muni_bonds"


def test_the_scan_finds_the_households_that_need_it():
    r = scan(book_path("advisor"))
    needed = r[r["needs_rebalance"]]
    assert len(needed) == 40
    assert needed["reason"].value_counts().to_dict() == {"band_breach": 29, "cash_short": 9, "restriction": 2}
    # Losses to harvest, which the house policy's threshold trigger does not act on: listed, not needed.
    waiting = r[~r["needs_rebalance"] & (r["reasons"] != "")]
    assert waiting["reasons"].tolist() == ["harvest"] * 6 and (waiting["rank"] == 0).all()
    # Jones's inherited NOC and Smith's taxable BND are what her rules say to sell: the most urgent.
    assert r["household_id"].tolist()[:2] == ["jones", "smith"]
    assert r.set_index("household_id").loc["jones", "restricted"] == 923 * 520.0


def test_only_the_needed_run_and_jones_and_smith_follow_their_rules(book):
    out, manifest = book
    assert manifest["counts"]["run"] == 40 and manifest["counts"]["not_needed"] == 160
    assert manifest["counts"]["failed_total"] == 0
    orders = pd.read_csv(out / "orders.csv")
    assert set(orders["household_id"]) <= set(scan(book_path("advisor")).query("needs_rebalance")["household_id"])
    jones = orders[orders["household_id"] == "jones"].set_index("security_id")
    assert jones.loc["NOC", "side"] == "sell" and jones.loc["NOC", "quantity"] == 923
    assert jones.loc["NOC", "reason"] == "restriction"
    assert not ({"LMT", "NOC", "RTX"} & set(jones[jones["side"] == "buy"].index))
    smith = orders[orders["household_id"] == "smith"]
    taxable = smith[smith["account_id"] == "brokerage"].set_index("security_id")
    assert taxable.loc["BND", "side"] == "sell" and taxable.loc["MUB", "side"] == "buy"
    blocks = pd.read_csv(out / "block_trades.csv")
    assert not blocks.duplicated(["security_id", "side"]).any()
    lots = pd.read_csv(out / "order_lots.csv")
    sells = orders[(orders["side"] == "sell") & (orders["account_id"] == "brokerage")]
    assert set(sells["order_id"]) == set(lots["order_id"])


def test_every_order_names_its_custodian_account_and_no_ticket_is_tiny(book):
    """Account ids (brokerage, ira, roth) repeat across clients; a desk sends the custodian's
    number, from accounts.csv, and the house policy's $500 minimum leaves no one-share tickets."""
    out, _ = book
    text = {"account_number": str}
    orders = pd.read_csv(out / "orders.csv", dtype=text)
    accounts = pd.read_csv(book_path("advisor") / "accounts.csv", dtype=text)
    expected = orders.merge(accounts, on=["household_id", "account_id"], suffixes=("", "_in"))
    assert len(expected) == len(orders) and (expected["account_number"] == expected["account_number_in"]).all()
    assert orders["value"].min() >= 500.0
    for name in ("order_lots", "allocations"):
        table = pd.read_csv(out / f"{name}.csv", dtype=text)
        by_order = table.merge(orders[["order_id", "account_number"]], on="order_id", suffixes=("", "_order"))
        assert (by_order["account_number"] == by_order["account_number_order"]).all()


def test_the_bundled_templates_make_upload_files_of_the_book_s_orders(book, tmp_path):
    import datetime as dt

    from cvxrebalance.optimizer.apps.batch import read_result_csv
    from cvxrebalance.optimizer.apps.trade_file import trade_file
    from cvxrebalance.optimizer.apps.trade_template import read_template
    from cvxrebalance.scenarios import trade_file_template

    out, _ = book
    orders = read_result_csv(out / "orders.csv")
    text = trade_file(orders, read_template(trade_file_template("example_a")), dt.date(2026, 11, 23))
    lines = text.splitlines()
    assert len(lines) == len(orders) + 1
    jones_noc = next(line for line in lines if line.endswith("jones-0001"))
    assert jones_noc == "48000000,S,NOC,923,MKT,11/23/2026,jones-0001"


def test_the_order_rows_are_stored_in_changes_no_trade(book, tmp_path):
    """A database returns rows in no particular order: the book with every table's rows reversed
    buys and sells exactly what it does as shipped (Jones bought AAPL for her NOC from a database,
    VTI from files, when the last tie-break was the row order)."""
    import shutil

    out, _ = book
    root = tmp_path / "book"
    shutil.copytree(book_path("advisor"), root)
    for name in ("securities", "accounts", "holdings", "households", "restrictions"):
        df = pd.read_csv(root / f"{name}.csv", dtype=str, keep_default_na=False)
        df.iloc[::-1].to_csv(root / f"{name}.csv", index=False)
    run_batch(root, tmp_path / "out", workers=1, progress=False, only_needed=True)
    key = ["household_id", "account_id", "security_id", "side"]
    shipped = pd.read_csv(out / "orders.csv").sort_values(key, ignore_index=True)
    reversed_ = pd.read_csv(tmp_path / "out" / "orders.csv").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(shipped[[*key, "quantity"]], reversed_[[*key, "quantity"]])
    jones = shipped[(shipped["household_id"] == "jones") & (shipped["side"] == "buy")]
    assert "VTI" in set(jones["security_id"]) and "AAPL" not in set(jones["security_id"])
