"""Orders, lots, blocks and the explicit crossing option (optimizer.apps.orders), by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvxrebalance.optimizer.apps.orders import blocks, orders

TRADES = pd.DataFrame({
    "household_id": ["a", "b", "c", "a"], "account_id": ["t", "t", "ira", "t"],
    "security_id": ["EQ", "EQ", "EQ", "BD"], "side": ["buy", "buy", "sell", "sell"],
    "quantity": [100.0, 50.0, 40.0, 10.0], "price": [100.0, 100.0, 100.0, 50.0],
    "value": [10_000.0, 5_000.0, 4_000.0, 500.0], "cost": [1.0, 0.5, 0.4, 0.05],
    "reason": ["drift"] * 4, "reason_detail": [""] * 4})


def test_by_default_sides_are_never_netted():
    o = orders(TRADES)
    assert o["order_id"].tolist() == ["a-0001", "b-0001", "c-0001", "a-0002"]
    block, alloc = blocks(o)
    b = block.set_index("block_id")
    assert b.loc["buy-EQ", "quantity"] == 150 and b.loc["sell-EQ", "quantity"] == 40
    assert (b["venue"] == "street").all() and b.loc["buy-EQ", "allocations"] == 2
    assert alloc.groupby("block_id")["quantity"].sum().to_dict() == b["quantity"].to_dict()
    assert alloc.groupby("order_id")["quantity"].sum().to_dict() == dict(zip(orders(TRADES)["order_id"],
                                                                          TRADES["quantity"], strict=True))


def test_crossing_matches_the_smaller_side_pro_rata_in_whole_shares():
    """40 EQ sold by c crosses against 150 bought by a and b: a gets 100/150 x 40 = 26.67 -> 27,
    b 13.33 -> 13 (largest remainder); 110 go to the street as one buy block. The cross is two
    internal blocks of its own, 40 bought and 40 sold."""
    block, alloc = blocks(orders(TRADES), cross=True)
    b = block.set_index("block_id")
    assert "sell-EQ" not in b.index  # wholly crossed
    assert b.loc["buy-EQ", "quantity"] == 110 and b.loc["buy-EQ", "venue"] == "street"
    assert b.loc[["cross-buy-EQ", "cross-sell-EQ"], "quantity"].tolist() == [40, 40]
    assert (b.loc[["cross-buy-EQ", "cross-sell-EQ"], "venue"] == "internal").all()
    assert b.loc["cross-buy-EQ", "value"] == 4_000.0 and b.loc["cross-buy-EQ", "allocations"] == 2
    street = alloc[alloc["block_id"] == "buy-EQ"].set_index("order_id")["quantity"]
    crossed = alloc[alloc["block_id"].str.startswith("cross-")].set_index("order_id")["quantity"]
    assert street.to_dict() == {"a-0001": 73, "b-0001": 37}
    assert crossed.to_dict() == {"a-0001": 27, "b-0001": 13, "c-0001": 40}
    assert alloc.groupby("order_id")["quantity"].sum()["c-0001"] == 40
    assert alloc.groupby("block_id")["quantity"].sum().to_dict() == b["quantity"].to_dict()
    assert b.loc["sell-BD", "quantity"] == 10 and b.loc["sell-BD", "venue"] == "street"


def test_crossing_never_gives_an_order_more_than_its_quantity_with_fractional_shares():
    # Two 0.8-share buys against a 1.6-share sell (a fractional holding sold whole): largest
    # remainder used to hand each a whole share, more than it trades.
    o = orders(pd.DataFrame({
        "household_id": ["a", "b", "c"], "account_id": ["t"] * 3, "security_id": ["EQ"] * 3,
        "side": ["buy", "buy", "sell"], "quantity": [0.8, 0.8, 1.6], "price": [100.0] * 3,
        "value": [80.0, 80.0, 160.0], "cost": [0.0] * 3, "reason": ["drift"] * 3, "reason_detail": [""] * 3}))
    block, alloc = blocks(o, cross=True)
    per_order = alloc.groupby("order_id")["quantity"].sum()
    assert per_order.to_dict() == o.set_index("order_id")["quantity"].to_dict()
    crossed = alloc[alloc["block_id"].str.startswith("cross-")]
    assert crossed["quantity"].ge(0).all() and (crossed["quantity"] == crossed["quantity"].round()).all()
    buys = crossed[crossed["order_id"].isin(o.loc[o["side"] == "buy", "order_id"])]["quantity"].sum()
    assert buys == crossed["quantity"].sum() - buys  # each side crosses the same shares


def test_orders_carry_the_custodian_account_number_and_blank_where_none_is_given():
    numbers = pd.DataFrame({"household_id": ["a", "c"], "account_id": ["t", "ira"],
                            "account_number": ["X-1001", "0042"]})
    o = orders(TRADES, numbers)
    assert o["account_number"].tolist() == ["X-1001", "", "0042", "X-1001"]  # b's account has none
    assert o["order_id"].tolist() == ["a-0001", "b-0001", "c-0001", "a-0002"]  # order kept
    block, alloc = blocks(o, cross=True)
    assert dict(zip(alloc["order_id"], alloc["account_number"], strict=False))["c-0001"] == "0042"
    assert orders(TRADES)["account_number"].eq("").all()


def test_fractional_quantities_are_the_orders_digits_not_float_noise():
    """A fractional holding sold whole: 10.3 shares, 10 crossed, left 0.3000000000000007 on the
    street block and its allocation; two fractional buys of 0.1 and 0.2 made a block of
    0.30000000000000004 shares."""
    from cvxrebalance.optimizer.domain.output import frame_csv

    o = orders(pd.DataFrame({
        "household_id": ["a", "b", "c", "d"], "account_id": ["t"] * 4, "security_id": ["EQ", "EQ", "BD", "BD"],
        "side": ["sell", "buy", "buy", "buy"], "quantity": [10.3, 10.0, 0.1, 0.2], "price": [100.0] * 4,
        "value": [1030.0, 1000.0, 10.0, 20.0], "cost": [0.0] * 4, "reason": ["drift"] * 4,
        "reason_detail": [""] * 4}))
    block, alloc = blocks(o, cross=True)
    b = block.set_index("block_id")["quantity"]
    assert b["sell-EQ"] == 0.3 and b["buy-BD"] == 0.3 and b["cross-sell-EQ"] == 10
    assert alloc.set_index("block_id").loc["sell-EQ", "quantity"] == 0.3
    assert "0000000" not in frame_csv(block) + frame_csv(alloc)
    per_order = alloc.groupby("order_id")["quantity"].sum()
    assert per_order.to_dict() == pytest.approx(o.set_index("order_id")["quantity"].to_dict(), abs=1e-12)
    # Only the noise goes: a quantity with many digits keeps every one of them.
    fine = orders(TRADES.assign(quantity=[100.0, 50.0, 0.1234567891234, 10.0]))
    assert blocks(fine)[0].set_index("block_id").loc["sell-EQ", "quantity"] == 0.1234567891234


def test_crossing_never_matches_a_household_against_itself():
    """Smith's IRA sold EQ and her taxable account bought it: the cross put her on both sides (a
    trade between an IRA and its owner's account is a prohibited transaction, IRC 4975). A
    household that both buys and sells a security sends that security's orders to the street;
    the others still cross among themselves."""
    trades = pd.DataFrame({
        "household_id": ["smith", "smith", "b", "c"], "account_id": ["ira", "taxable", "t", "t"],
        "security_id": ["EQ"] * 4, "side": ["sell", "buy", "buy", "sell"],
        "quantity": [50.0, 60.0, 30.0, 20.0], "price": [100.0] * 4, "value": [5000.0, 6000.0, 3000.0, 2000.0],
        "cost": [0.0] * 4, "reason": ["drift"] * 4, "reason_detail": [""] * 4})
    o = orders(trades)
    block, alloc = blocks(o, cross=True)
    crossed = alloc[alloc["block_id"].str.startswith("cross-")]
    assert "smith" not in set(crossed["household_id"])
    assert crossed.set_index("order_id")["quantity"].to_dict() == {"b-0001": 20, "c-0001": 20}
    street = alloc[~alloc["block_id"].str.startswith("cross-")].set_index("order_id")["quantity"]
    assert street.to_dict() == {"smith-0002": 60, "b-0001": 10, "smith-0001": 50}
    # Smith alone on both sides: nothing crosses at all.
    alone = blocks(orders(trades.iloc[:2]), cross=True)[0]
    assert (alone["venue"] == "street").all() and alone["quantity"].tolist() == [60, 50]


def test_no_household_is_ever_on_both_sides_of_a_cross():
    rng = np.random.default_rng(7)
    n = 60
    trades = pd.DataFrame({
        "household_id": rng.choice(["h1", "h2", "h3", "h4", "h5"], n), "account_id": rng.choice(["ira", "t"], n),
        "security_id": rng.choice(["EQ", "BD", "FX"], n), "side": rng.choice(["buy", "sell"], n),
        "quantity": rng.integers(1, 100, n).astype(float), "price": 10.0})
    trades = trades.drop_duplicates(["household_id", "account_id", "security_id"]).assign(
        value=lambda t: t["quantity"] * 10.0, cost=0.0, reason="drift", reason_detail="")
    block, alloc = blocks(orders(trades), cross=True)
    crossed = alloc[alloc["block_id"].str.startswith("cross-")].assign(
        security=lambda a: a["block_id"].str.split("-", n=2).str[2])
    assert len(crossed)  # the draw crosses something
    for _, part in crossed.groupby("security"):
        buyers = set(part.loc[part["side"] == "buy", "household_id"])
        assert buyers.isdisjoint(part.loc[part["side"] == "sell", "household_id"])
    assert alloc.groupby("block_id")["quantity"].sum().to_dict() == block.set_index("block_id")["quantity"].to_dict()


def test_allocations_write_whole_quantities_as_the_blocks_do():
    """allocations.csv wrote 348.0 where block_trades.csv wrote 348."""
    from cvxrebalance.optimizer.domain.output import frame_csv

    def written(table: pd.DataFrame) -> list[str]:
        return [line.rsplit(",", 1)[1] for line in frame_csv(table[["block_id", "quantity"]]).splitlines()[1:]]

    for cross in (False, True):
        block, alloc = blocks(orders(TRADES), cross=cross)
        assert all("." not in q for q in written(alloc) + written(block))
    fractional = blocks(orders(TRADES.assign(quantity=[100.0, 50.5, 40.0, 10.0])), cross=True)[1]
    assert "37.5" in written(fractional)  # 50.5 less 13 crossed: fractional shares stay as they are
