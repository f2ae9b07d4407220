"""Orders a desk can send, from a batch's combined trades and lots.

- ``orders.csv``: one row per account order (a household's trade in one account, security and
  side), ``order_id`` = ``<household_id>-<n>`` numbered in the household's trades.csv order (so
  a rerun that gives the same trades gives the same ids), with the custodian's
  ``account_number`` (accounts.csv; blank where none is given), the price used, the estimated
  value and cost, and the trade's reason;
- ``order_lots.csv``: for each taxable sell, the specific lots to relieve ("versus purchase"):
  lot id, acquisition date, quantity, cost basis, term;
- ``block_trades.csv``: one block per security and side, ``block_id`` = ``<side>-<security_id>``,
  ``venue = street``. Buys and sells are never netted across clients by default: a security
  bought for one household and sold for another is two blocks. Crossing them is an explicit
  option (``cross=True``), a firm's decision (client consent, its cross-trade policy): then the
  smaller side of each security is crossed internally, at the price used, as two blocks of
  ``venue = internal`` (``cross-buy-<security_id>`` and ``cross-sell-<security_id>``, of equal
  quantity), and the street blocks carry the rest; each order's part of the cross is its share
  of its side, in whole shares (largest remainder; a fractional part goes to the street);
- ``allocations.csv``: each block's orders, with their quantities (they sum to the block's, and
  an order's rows sum to its quantity).

A cross never matches a household against itself. A household that both buys and sells a
security (in any of its accounts) sends all its orders in that security to the street; only the
households on one side of it cross. Why this rule rather than crossing such a household's orders
against the other households' opposite orders only: the internal blocks are pools (allocations
map a block to its orders, never a buy to a sell), so the only way the files themselves show
that no client traded with herself is that no household appears on both sides of a security's
cross; and a household on both sides is moving a security between its own accounts (sell in
the IRA, buy in the taxable account), a trade between an IRA and its owner that is a prohibited
transaction (IRC 4975) if settled internally, and pointless to cross anyway. Its orders lose
the cross with other households, a small price for a rule an auditor can check from
allocations.csv alone. The household is ``household_id``: related clients in separate
households are the firm's to keep apart (do not cross).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY = "household_id"
ORDER_COLUMNS = ["order_id", KEY, "account_id", "account_number", "security_id", "side", "quantity", "price",
                 "value", "cost", "reason", "reason_detail"]
ORDER_LOT_COLUMNS = ["order_id", KEY, "account_id", "account_number", "security_id", "lot_id", "acquired",
                     "quantity", "cost_basis_per_share", "term"]
BLOCK_COLUMNS = ["block_id", "security_id", "side", "venue", "quantity", "price", "value", "allocations"]
ALLOCATION_COLUMNS = ["block_id", "order_id", KEY, "account_id", "account_number", "side", "quantity"]
# The desk's files (``<name>.csv`` in a batch's OUT_DIR) and their columns.
DESK_COLUMNS = {"orders": ORDER_COLUMNS, "order_lots": ORDER_LOT_COLUMNS, "block_trades": BLOCK_COLUMNS,
                "allocations": ALLOCATION_COLUMNS}


def orders(trades: pd.DataFrame, numbers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The combined trades as orders (``ORDER_COLUMNS``).

    Parameters
    ----------
    trades : DataFrame
        The batch's combined trades.csv (``household_id`` and the trade columns).
    numbers : DataFrame, optional
        ``household_id, account_id, account_number``: the custodian's account numbers
        (``batch.account_numbers``); an account without one has a blank ``account_number``.
    """
    if trades.empty or "side" not in trades.columns:
        return pd.DataFrame(columns=ORDER_COLUMNS)
    n = trades.groupby(KEY, sort=False).cumcount() + 1
    out = trades.assign(order_id=trades[KEY].astype(str) + "-" + n.map("{:04d}".format))
    if numbers is not None and len(numbers):
        out = out.merge(numbers[[KEY, "account_id", "account_number"]], on=[KEY, "account_id"], how="left",
                        validate="many_to_one")
    out["account_number"] = out.get("account_number", pd.Series("", index=out.index)).fillna("").astype(object)
    return out[ORDER_COLUMNS].reset_index(drop=True)


def order_lots(orders_: pd.DataFrame, lots: pd.DataFrame) -> pd.DataFrame:
    """The lots of each sell order (``ORDER_LOT_COLUMNS``): lots.csv rows joined to the sell of
    the same household, account and security."""
    if orders_.empty or lots.empty or "lot_id" not in lots.columns:
        return pd.DataFrame(columns=ORDER_LOT_COLUMNS)
    sells = orders_.loc[orders_["side"] == "sell", ["order_id", KEY, "account_id", "account_number", "security_id"]]
    joined = lots.merge(sells, on=[KEY, "account_id", "security_id"], how="left", validate="many_to_one")
    return joined[ORDER_LOT_COLUMNS].reset_index(drop=True)


def blocks(orders_: pd.DataFrame, cross: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block trades per security and side (``BLOCK_COLUMNS``) and their allocations to orders
    (``ALLOCATION_COLUMNS``); ``cross``: cross opposite sides of a security first (module
    docstring)."""
    if orders_.empty:
        return pd.DataFrame(columns=BLOCK_COLUMNS), pd.DataFrame(columns=ALLOCATION_COLUMNS)
    o = orders_.assign(block_id=orders_["side"].astype(str) + "-" + orders_["security_id"].astype(str),
                       crossed=_crossed(orders_) if cross else 0.0)
    street = o[o["quantity"] > o["crossed"]]
    places = decimal_places(o["quantity"])  # sums and differences kept to the orders' own digits
    street = street.assign(quantity=np.round(street["quantity"] - street["crossed"], places), venue="street")
    crossing = o[o["crossed"] > 0]
    crossing = crossing.assign(quantity=crossing["crossed"], venue="internal",
                               block_id="cross-" + crossing["block_id"])
    alloc = pd.concat([street, crossing])
    g = alloc.groupby(["block_id", "security_id", "side", "venue"], sort=True)
    block = g.agg(quantity=("quantity", "sum"), price=("price", "first"), allocations=("order_id", "size")).reset_index()
    block["quantity"] = np.round(block["quantity"], places)
    block["value"] = np.round(block["quantity"].to_numpy(float) * block["price"].to_numpy(float), 2)
    alloc = alloc.sort_values(["block_id", KEY, "account_id"], kind="stable")[ALLOCATION_COLUMNS]
    return _whole(block[BLOCK_COLUMNS]), _whole(alloc.reset_index(drop=True))


def _whole(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its quantities as integers when every one is whole, so the files write
    ``348``, not ``348.0``; fractional shares stay as they are."""
    q = table["quantity"].astype(float)
    return table.assign(quantity=q.astype(int)) if (q == np.round(q)).all() else table


def decimal_places(quantity: pd.Series) -> int:
    """Digits after the point of the most precise quantity (in its shortest decimal form, at
    most 15): sums and differences of the quantities are exact to that many digits, and any
    further digit is float noise (10.3 - 10 = 0.3000000000000007), not a share to trade."""
    digits = (len(np.format_float_positional(q, trim="-").partition(".")[2])
              for q in pd.unique(quantity.astype(float)))  # each distinct quantity once
    return min(15, max(digits, default=0))


def _crossed(o: pd.DataFrame) -> pd.Series:
    """Each order's crossed shares: per security, min(bought, sold) whole shares are crossed;
    each side's orders share it in proportion to their whole shares, in whole shares by largest
    remainder. A household with orders on both sides of a security crosses none of them (module
    docstring)."""
    out = pd.Series(0.0, index=o.index)
    # Only an order's whole shares cross (a fractional part goes to the street), so no order's
    # rounded-up share of the cross can exceed what it trades.
    whole_qty = np.floor(o["quantity"].astype(float))
    sides = o.groupby(["security_id", KEY])["side"].transform("nunique")
    for _, part in o.assign(_whole=whole_qty)[sides.lt(2)].groupby("security_id"):
        totals = part.groupby("side")["_whole"].sum()
        matched = float(min(totals.get("buy", 0.0), totals.get("sell", 0.0)))
        if matched <= 0:
            continue
        for side in ("buy", "sell"):
            mine = part[part["side"] == side]
            exact = matched * mine["_whole"] / totals[side]
            whole = np.floor(exact)
            left = int(round(matched - whole.sum()))  # shares still to hand out, to the largest remainders
            order = (exact - whole).sort_values(ascending=False, kind="stable").index[:left]
            whole.loc[order] += 1
            out.loc[mine.index] = whole
    return out
