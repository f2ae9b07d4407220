"""Custodian upload files from a batch's ``orders.csv``, laid out by a ``trade_file.toml``
template, without code.

The template (``optimizer.apps.trade_template``, every key in docs/case_format.md) names the
columns in file order, each a field or a constant, and the file's format.

Fields: every column of orders.csv (``order_id, household_id, account_id, account_number,
security_id, side, quantity, price, value, cost, reason, reason_detail``), ``trade_date`` and
``venue``; with ``lines = "lots"`` also order_lots.csv's ``lot_id, acquired,
cost_basis_per_share, term`` (blank on a buy's line): custodians relieve lots first in, first
out unless told which, and this layout tells them the lots the batch chose. A ``[sides]`` or ``[venues]`` table gives all its codes, none blank and no two alike,
and ``date_format`` must write a date that reads back (year, month and day; ``"%Q"`` or ``""``
are refused). ``account_number`` is the custodian's (accounts.csv), which a
template that uses it needs on every order: an order without one is an error, never a blank
cell a custodian would reject or misroute. A quantity the template's ``quantity_decimals`` would
round (a fractional share in a whole-share layout) is an error too: the file would trade
something else than the order; so is a quantity or price that is not positive (an orders.csv
edited by hand: the side says which way an order trades). Text cells are written spreadsheet-safe like every CSV the
product writes. Three documented examples ship in ``scenarios/trade_files/``.

After ``batch --cross`` (``allocations.csv`` has blocks of ``venue = internal``,
``read_allocations``), the crossed shares are settled inside the firm and must not also be
bought or sold at market: the file carries each order's street part (its quantity less its
crossed shares; an order crossed wholly is left out), and ``include_internal`` adds a line of
venue internal for each crossed part, for a custodian that takes journal or cross instructions
in the same file. A part's value and cost are the order's in proportion. Without a cross the
file is one street line per order, as it always was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.apps.batch import COMBINED
from cvxrebalance.optimizer.apps.orders import DESK_COLUMNS, decimal_places
from cvxrebalance.optimizer.apps.trade_template import DERIVED, LOT_FIELDS, VENUE_KEYS
from cvxrebalance.optimizer.domain.case_io import read_csv
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.output import from_spreadsheet_safe, spreadsheet_safe
from cvxrebalance.optimizer.domain.tables import file_lines

DECIMALS = {"quantity": "quantity_decimals", "price": "price_decimals", "value": "value_decimals",
            "cost": "value_decimals", "cost_basis_per_share": "price_decimals"}
# A batch's own files in OUT_DIR (``batch.combine``, the manifest): an upload file never replaces one.
BATCH_FILES = (*(f"{name}.csv" for name in (*COMBINED, "errors", *DESK_COLUMNS)), "manifest.json")
POSITIVE = ("quantity", "price")  # an order trades a positive amount at a positive price (its side says which way)


def read_orders(path: str | Path) -> pd.DataFrame:
    """A batch's ``orders.csv``, also after an edit by hand: every cell as text (spreadsheet
    quote removed), indexed by file line, so ``trade_file`` names a bad cell by its line.

    Raises
    ------
    ValidationError
        Not UTF-8, empty, or a line with another number of fields than the header.
    """
    return _read_desk(Path(path))


def _read_desk(path: Path) -> pd.DataFrame:
    """A desk file of the batch as text cells indexed by file line (``read_orders``)."""
    table = read_csv(path)
    if table is None:
        raise ValidationError([Problem(path.name, None, None, "cannot be read: the file is empty")])
    out = table.apply(lambda column: column.map(from_spreadsheet_safe))
    out.attrs["file_lines"] = True
    return out


def read_allocations(out_dir: str | Path) -> pd.DataFrame | None:
    """The internal parts of a crossed batch's orders: the rows of ``allocations.csv`` whose
    block ``block_trades.csv`` gives ``venue = internal`` (``block_id, order_id, quantity``, the
    quantity a number), indexed by allocations.csv line; None when OUT_DIR has no allocations.csv
    or the batch crossed nothing.

    Raises
    ------
    ValidationError
        allocations.csv without block_trades.csv, a column missing, a block that block_trades.csv
        does not list, or an internal quantity that is not a positive number.
    """
    out_dir = Path(out_dir)
    if not (out_dir / "allocations.csv").is_file():
        return None
    if not (out_dir / "block_trades.csv").is_file():
        raise ValidationError([Problem("block_trades.csv", None, None, "is missing beside allocations.csv: "
                                       "which blocks were crossed internally (venue) is not known")])
    alloc, block = _read_desk(out_dir / "allocations.csv"), _read_desk(out_dir / "block_trades.csv")
    problems = [Problem(name, 1, c, "required column is missing")
                for name, table, columns in (("allocations.csv", alloc, ("block_id", "order_id", "quantity")),
                                             ("block_trades.csv", block, ("block_id", "venue")))
                for c in columns if c not in table.columns]
    if problems:
        raise ValidationError(problems)
    venue = dict(zip(block["block_id"], block["venue"], strict=True))
    lines = file_lines(alloc)
    problems += [Problem("allocations.csv", line, "block_id", f"block {b!r} is not in block_trades.csv")
                 for line, b in zip(lines, alloc["block_id"], strict=True) if b not in venue]
    problems += [Problem("block_trades.csv", line, "venue", f"unknown venue {v!r}; known: {', '.join(VENUE_KEYS)}")
                 for line, v in zip(file_lines(block), block["venue"], strict=True) if v not in VENUE_KEYS]
    internal = alloc[alloc["block_id"].map(venue).eq("internal")]
    x = pd.to_numeric(internal["quantity"], errors="coerce")
    problems += [Problem("allocations.csv", line, "quantity", f"must be a number > 0, got {v!r}")
                 for line, v, good in zip(file_lines(internal), internal["quantity"], x.gt(0), strict=True)
                 if not good]
    if problems:
        raise ValidationError(problems)
    if internal.empty:
        return None
    out = internal.assign(quantity=x)
    out.attrs["file_lines"] = True
    return out


def trade_file(orders: pd.DataFrame, template: dict[str, Any], trade_date: dt.date,
               allocations: pd.DataFrame | None = None, include_internal: bool = False,
               order_lots: pd.DataFrame | None = None) -> str:
    """The upload file's text: ``render(upload_lines(...))``, one line per order (or per part
    of a crossed order), laid out by ``template`` (``read_template``).

    Raises
    ------
    ValidationError
        As ``upload_lines``.
    """
    return render(upload_lines(orders, template, allocations, include_internal, order_lots), template, trade_date)


def upload_lines(orders: pd.DataFrame, template: dict[str, Any], allocations: pd.DataFrame | None = None,
                 include_internal: bool = False, order_lots: pd.DataFrame | None = None) -> pd.DataFrame:
    """The lines of the upload file: ``orders`` checked, with a ``venue`` column.

    Parameters
    ----------
    orders : DataFrame
        orders.csv (``read_orders``).
    template : dict
        ``read_template``'s.
    allocations : DataFrame, optional
        The internal parts of a crossed batch (``read_allocations``); None: nothing was crossed,
        every order is one street line.
    include_internal : bool
        With ``allocations``: also a line of venue internal for each order's crossed part (for a
        custodian that takes journal or cross instructions in the same file). Without it the
        file carries each order's street part only (quantity less its crossed shares), and an
        order crossed wholly is left out. A part's value and cost are the order's in proportion
        to its quantity. The template needs a ``venue`` field then: a crossed line must not
        read as a market order.
    order_lots : DataFrame, optional
        order_lots.csv (``read_orders`` reads it too), for a template of ``lines = "lots"``: each
        sell (part) becomes one line per lot it relieves, in order_lots.csv's order, the street
        part relieving the first lots; a buy, or a sell without lots (a retirement account's),
        stays one line with the lot fields blank.

    Raises
    ------
    ValidationError
        ``orders`` lacks a field the template uses, has a side without a code in ``[sides]``, a
        quantity, price, value or cost that is not a number, a quantity or price that is not
        positive or a value or cost below zero, a quantity with more decimals than the template
        writes, or no account number where the template uses it (named by orders.csv line:
        ``read_orders``' lines, else counted from line 2); with ``allocations``, an order
        crossed for more shares than orders.csv now gives it, or a crossed order no longer in
        orders.csv; with ``lines = "lots"``, no ``order_lots``, a lot that is not a positive
        number of shares (or has more decimals than the template writes), a lot of a buy, or a
        sell whose lots do not add up to its quantity.
    """
    if include_internal and allocations is not None and "venue" not in _fields(template):
        raise ValidationError([Problem("--include-internal", None, "venue", "the template has no venue field: "
                                       "its crossed lines would read as market orders")])
    by_lot = template["file"]["lines"] == "lots"
    needed = ("order_id", "quantity", "side") if by_lot else ("order_id", "quantity") if allocations is not None else ()
    _check_orders(orders, template, needed)
    lines = orders.assign(venue="street") if allocations is None else _parts(orders, allocations, include_internal)
    return _by_lot(lines, orders, order_lots, template) if by_lot else lines


def render(lines: pd.DataFrame, template: dict[str, Any], trade_date: dt.date) -> str:
    """The text of the upload file of ``lines`` (``upload_lines``)."""
    f, sides, venues = template["file"], template["sides"], template["venues"]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=f["delimiter"], lineterminator=f["line_ending"])
    if f["header"]:
        writer.writerow([spreadsheet_safe(c["name"]) for c in template["columns"]])
    date = trade_date.strftime(f["date_format"])
    for line in lines.to_dict("records"):
        cells = []
        for col in template["columns"]:
            if "value" in col:
                cells.append(spreadsheet_safe(str(col["value"])))
                continue
            field = col["field"]
            value = date if field == "trade_date" else line[field]
            if field == "side":
                value = sides[value]
            elif field == "venue":
                value = venues[value]
            elif field in LOT_FIELDS and value == "":  # a buy's line, or a sell without lots
                pass
            elif field == "acquired":
                value = dt.date.fromisoformat(value).strftime(f["date_format"])
            elif field in DECIMALS:
                value = f"{float(value):.{f[DECIMALS[field]]}f}"
            cells.append(spreadsheet_safe(str(value)))
        writer.writerow(cells)
    return buf.getvalue()


def _parts(orders: pd.DataFrame, internal: pd.DataFrame, include_internal: bool) -> pd.DataFrame:
    """Each order's street part (its quantity less its crossed shares) and, with
    ``include_internal``, its crossed part, as lines with a ``venue``; orders in orders.csv order,
    street before internal."""
    lines = file_lines(orders)
    qty = pd.to_numeric(orders["quantity"]).to_numpy(float)
    crossed = internal.groupby("order_id", sort=False)["quantity"].sum()
    inside = orders["order_id"].map(crossed).fillna(0.0).to_numpy(float)
    known = set(orders["order_id"])
    problems = [Problem("allocations.csv", line, "order_id", f"order {o!r} is crossed internally (block {b}) "
                        "but is not in orders.csv: rerun the batch, or restore the order")
                for line, o, b in zip(file_lines(internal), internal["order_id"], internal["block_id"], strict=True)
                if o not in known]
    twice = orders["order_id"].duplicated(keep=False).to_numpy() & (inside > 0)
    problems += [Problem("orders.csv", line, "order_id", f"order {o!r} is given twice: which one its crossed "
                         "shares belong to is not known")
                 for line, o, bad in zip(lines, orders["order_id"], twice, strict=True) if bad]
    over = inside > qty * (1 + 1e-12) + 1e-9
    problems += [Problem("orders.csv", line, "quantity", f"{q:g} is less than the {c:g} shares allocations.csv "
                         f"crosses internally for order {o!r}: rerun the batch")
                 for line, o, q, c, bad in zip(lines, orders["order_id"], qty, inside, over, strict=True) if bad]
    if problems:
        raise ValidationError(problems)
    # To the orders' own digits (as the blocks): 10.3 - 10 is 0.3, not 0.3000000000000007.
    street = np.where(inside > 0, np.round(qty - inside, decimal_places(pd.Series(qty))), qty)
    parts = [_part(orders, street, qty, "street")]
    if include_internal:
        parts.append(_part(orders, inside, qty, "internal"))
    out = pd.concat(parts).sort_values("_order", kind="stable")  # street before internal, per order
    out = out[out["quantity"] > 0]
    out.index = [lines[i] for i in out["_order"]]  # each line named by its order's orders.csv line
    out = out.drop(columns="_order")
    out.attrs["file_lines"] = True
    return out


def _part(orders: pd.DataFrame, quantity, order_quantity, venue: str) -> pd.DataFrame:
    """``orders`` as lines of ``venue`` for ``quantity`` shares each: value and cost in
    proportion."""
    share = quantity / order_quantity
    out = orders.assign(quantity=quantity, venue=venue, _order=range(len(orders)))
    for name in ("value", "cost"):
        if name in orders.columns:
            out[name] = pd.to_numeric(orders[name], errors="coerce").to_numpy(float) * share
    return out


def _by_lot(lines: pd.DataFrame, orders: pd.DataFrame, lots: pd.DataFrame | None,
            template: dict[str, Any]) -> pd.DataFrame:
    """``lines`` with each sell line split into one line per lot it relieves (``upload_lines``)."""
    if lots is None:
        raise ValidationError([Problem("order_lots.csv", None, None, '[file] lines = "lots" needs the batch\'s '
                                       "order_lots.csv (the lots each sell relieves)")])
    _check_lots(lots, orders, template)
    places = decimal_places(pd.concat([pd.to_numeric(orders["quantity"]), pd.to_numeric(lots["quantity"])]))
    queue: dict[str, list[list]] = {}  # order -> its lots not yet relieved: [record, shares left]
    for lot in lots.to_dict("records"):
        queue.setdefault(lot["order_id"], []).append([lot, float(lot["quantity"])])
    rows, index = [], []
    for at, line in zip(lines.index, lines.to_dict("records"), strict=True):
        left = float(line["quantity"])
        mine = queue.get(line["order_id"]) if line["side"] == "sell" else None
        if not mine:
            rows.append({**line, **dict.fromkeys(LOT_FIELDS, "")})
            index.append(at)
            continue
        while left > 0 and mine:  # the lots in order_lots.csv's order: the street part first
            lot = mine[0]
            piece = round(min(lot[1], left), places)
            share = piece / float(line["quantity"])
            rows.append({**line, "quantity": piece, **{k: lot[0][k] for k in LOT_FIELDS},
                         **{k: _scaled(line[k], share) for k in ("value", "cost") if k in line}})
            index.append(at)
            lot[1], left = round(lot[1] - piece, places), round(left - piece, places)
            if lot[1] <= 0:
                mine.pop(0)
    out = pd.DataFrame(rows, index=index, columns=[*lines.columns, *LOT_FIELDS])
    out.attrs["file_lines"] = True
    return out


def _scaled(value: Any, share: float) -> Any:
    """A lot line's part of its order's value or cost; a cell that is not a number (a column
    the template does not write) as it is."""
    try:
        return float(value) * share
    except (TypeError, ValueError):
        return value


def _check_lots(lots: pd.DataFrame, orders: pd.DataFrame, template: dict[str, Any]) -> None:
    """Every problem of ``lots`` (order_lots.csv) for the orders' lot lines, at once. Lots of an
    order no longer in orders.csv are left out (the order is not sent)."""
    problems = [Problem("order_lots.csv", 1, c, "required column is missing")
                for c in ("order_id", "quantity", *LOT_FIELDS) if c not in lots.columns]
    if problems:
        raise ValidationError(problems)
    lines = file_lines(lots)
    side = dict(zip(orders["order_id"], orders["side"], strict=False))
    qty = pd.to_numeric(lots["quantity"], errors="coerce")
    places = template["file"]["quantity_decimals"]
    for line, o, q, raw, day, basis in zip(lines, lots["order_id"], qty, lots["quantity"], lots["acquired"],
                                           lots["cost_basis_per_share"], strict=True):
        if o not in side:
            continue
        if side[o] != "sell":
            problems.append(Problem("order_lots.csv", line, "order_id", f"order {o!r} is a {side[o]}: it relieves no lot"))
        if not q > 0 or q == float("inf"):
            problems.append(Problem("order_lots.csv", line, "quantity", f"must be a number > 0, got {raw!r}"))
        elif abs(q - round(q, places)) > 1e-9 * max(abs(q), 1.0):
            problems.append(Problem("order_lots.csv", line, "quantity", f"lot quantity {raw} has more decimals than "
                                    f"the template's quantity_decimals = {places} writes"))
        try:
            dt.date.fromisoformat(str(day))
        except ValueError:
            problems.append(Problem("order_lots.csv", line, "acquired", f"not a date (YYYY-MM-DD): {day!r}"))
        if not pd.to_numeric(pd.Series([basis]), errors="coerce").ge(0).all():
            problems.append(Problem("order_lots.csv", line, "cost_basis_per_share", f"must be a number >= 0, got {basis!r}"))
    mine = lots["order_id"].isin([o for o, s in side.items() if s == "sell"])
    totals = qty[mine].groupby(lots.loc[mine, "order_id"]).sum()
    for line, o, q in zip(file_lines(orders), orders["order_id"], pd.to_numeric(orders["quantity"]), strict=True):
        if o in totals.index and abs(totals[o] - q) > 1e-9 * max(q, 1.0):
            problems.append(Problem("orders.csv", line, "quantity", f"order {o!r} sells {q:g} shares, but its lots "
                                    f"in order_lots.csv add up to {totals[o]:g}: rerun the batch"))
    if orders["order_id"][orders["order_id"].isin(totals.index)].duplicated().any():
        problems.append(Problem("orders.csv", None, "order_id", "an order with lots is given twice: which one "
                                "relieves them is not known"))
    if problems:
        raise ValidationError(problems)


def cross_note(orders: pd.DataFrame, allocations: pd.DataFrame, include_internal: bool) -> str:
    """What the batch crossed internally and where it is, for the terminal: the orders, the
    shares bought and sold, how many were crossed wholly.

    Examples
    --------
    >>> orders = pd.DataFrame({"order_id": ["a-1", "b-1"], "side": ["buy", "sell"], "quantity": ["30", "40"]})
    >>> internal = pd.DataFrame({"order_id": ["a-1", "b-1"], "quantity": [30.0, 30.0]})
    >>> print(cross_note(orders, internal, False))  # doctest: +NORMALIZE_WHITESPACE
    crossed internally by the batch: 2 orders (30 shares bought, 30 sold), 1 of them wholly; their
    crossed parts are in allocations.csv (blocks of venue internal in block_trades.csv), not in this file
    """
    crossed = allocations.groupby("order_id")["quantity"].sum()
    o = orders[orders["order_id"].isin(crossed.index)]
    inside = o["order_id"].map(crossed)
    by_side = inside.groupby(o["side"]).sum()
    wholly = int((inside >= pd.to_numeric(o["quantity"]) - 1e-9).sum())
    where = ("written as lines of venue internal" if include_internal else
             "not in this file")
    return (f"crossed internally by the batch: {len(o)} orders ({by_side.get('buy', 0):,g} shares bought, "
            f"{by_side.get('sell', 0):,g} sold), {wholly} of them wholly; their crossed parts are in "
            f"allocations.csv (blocks of venue internal in block_trades.csv), {where}")


def failed_households(out_dir: str | Path) -> list[str]:
    """The households OUT_DIR's ``errors.csv`` lists (failed in the batch: none of their orders
    are in orders.csv); none when there is no errors.csv.

    Raises
    ------
    ValidationError
        errors.csv cannot be read, or has no ``household_id`` column.
    """
    path = Path(out_dir) / "errors.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return []
    errors = _read_desk(path)
    if "household_id" not in errors.columns:
        raise ValidationError([Problem("errors.csv", 1, "household_id", "required column is missing")])
    return list(dict.fromkeys(errors["household_id"]))


def upload_path(out_dir: str | Path, template: str, out: str | Path | None = None) -> Path:
    """Where the upload file goes: ``out``, else ``OUT_DIR/<template's name>.csv``.

    Raises
    ------
    ValidationError
        The path is one of the batch's own files in OUT_DIR (``BATCH_FILES``): a template named
        ``orders.toml`` would write its file over the orders it reads.
    """
    path = Path(out) if out else Path(out_dir) / f"{Path(template).stem}.csv"
    if path.resolve().parent == Path(out_dir).resolve() and path.name in BATCH_FILES:
        raise ValidationError([Problem("--out", None, "--out", f"{path} is the batch's own {path.name}: give "
                                       "the upload file another name with --out")])
    return path


def next_trading_day(today: dt.date) -> dt.date:
    """``today``, or the Monday after when ``today`` falls on a weekend: the default trade date.
    Exchange holidays are not known here; give ``--date`` on one."""
    return today + dt.timedelta(days=max(0, 7 - today.weekday()) if today.weekday() >= 5 else 0)


def _fields(template: dict[str, Any]) -> list[str]:
    """The fields ``template`` writes."""
    return [c["field"] for c in template["columns"] if "field" in c]


def _check_orders(orders: pd.DataFrame, template: dict[str, Any], needed: tuple[str, ...] = ()) -> None:
    """Every problem ``trade_file`` would meet in ``orders``, at once; ``needed``: fields read
    though the template may not write them."""
    used = [f for f in _fields(template) if f not in (*DERIVED, *LOT_FIELDS)] + list(needed)
    problems = [Problem("orders.csv", 1, name, "required column is missing")
                for name in dict.fromkeys(used) if name not in orders.columns]
    lines = file_lines(orders)
    for name in dict.fromkeys(used):
        if name not in orders.columns:
            continue
        if name == "side":
            problems += [Problem("orders.csv", line, "side", f"no code for side {v!r} in [sides]; known: "
                                 f"{', '.join(template['sides'])}")
                         for line, v in zip(lines, orders["side"], strict=True) if v not in template["sides"]]
        elif name in DECIMALS:
            x = pd.to_numeric(orders[name], errors="coerce")
            ok = x.notna() & x.abs().lt(float("inf"))
            problems += [Problem("orders.csv", line, name, f"not a number: {v!r}")
                         for line, v, good in zip(lines, orders[name], ok, strict=True) if not good]
            low = ok & (x.le(0) if name in POSITIVE else x.lt(0))
            bound = "> 0" if name in POSITIVE else ">= 0"
            problems += [Problem("orders.csv", line, name, f"must be {bound}, got {v}")
                         for line, v, bad in zip(lines, orders[name], low, strict=True) if bad]
            if name == "quantity":  # a rounded quantity would trade something else than the order
                places = template["file"]["quantity_decimals"]
                off = ok & (x - x.round(places)).abs().gt(1e-9 * x.abs().clip(lower=1.0))
                problems += [Problem("orders.csv", line, name, f"quantity {v} has more decimals than the "
                                     f"template's quantity_decimals = {places} writes")
                             for line, v, bad in zip(lines, orders[name], off, strict=True) if bad]
        elif name == "account_number":
            blank = orders[name].isna() | orders[name].astype(str).str.strip().eq("")
            problems += [Problem("orders.csv", line, name, f"no custodian account number for account "
                                 f"{a!r} of household {h!r}: the account's accounts.csv row has no "
                                 "account_number (give it one and rerun the batch)")
                         for line, a, h, bad in zip(lines, _column(orders, "account_id"),
                                                    _column(orders, "household_id"), blank, strict=True) if bad]
    if problems:
        raise ValidationError(problems)


def _column(orders: pd.DataFrame, name: str) -> pd.Series:
    """A column of ``orders``, or blanks where it has none (for messages only)."""
    return orders[name] if name in orders.columns else pd.Series("", index=orders.index)
