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
    assert len(needed) == 46
    assert needed["reason"].value_counts().to_dict() == {"band_breach": 29, "cash_short": 9, "harvest": 6,
                                                         "restriction": 2}
    # Jones's inherited NOC and Smith's taxable BND are what her rules say to sell: the most urgent.
    assert r["household_id"].tolist()[:2] == ["jones", "smith"]
    assert r.set_index("household_id").loc["jones", "restricted"] == 923 * 520.0


def test_only_the_needed_run_and_jones_and_smith_follow_their_rules(book):
    out, manifest = book
    assert manifest["counts"]["run"] == 46 and manifest["counts"]["not_needed"] == 154
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
