"""Custodian upload files from a batch's ``orders.csv``, laid out by a ``trade_file.toml``
template, without code.

A template has three parts (every key optional but ``[[columns]]``)::

    [file]
    header = true              # write the column names first
    delimiter = ","            # one character
    date_format = "%m/%d/%Y"   # strftime codes, for the trade date
    quantity_decimals = 0      # digits after the point: quantities, prices, values
    price_decimals = 4
    value_decimals = 2
    line_ending = "\\n"         # or "\\r\\n"

    [sides]                    # the custodian's side codes
    buy = "B"
    sell = "S"

    [[columns]]                # in file order: a field of orders.csv (or "trade_date") ...
    name = "Account"
    field = "account_number"
    [[columns]]                # ... or a constant
    name = "Order Type"
    value = "MKT"

Fields: ``order_id, household_id, account_id, account_number, security_id, side, quantity, price,
value, cost, reason, trade_date``. ``account_number`` is the custodian's (accounts.csv), which a
template that uses it needs on every order: an order without one is an error, never a blank
cell a custodian would reject or misroute. A quantity the template's ``quantity_decimals`` would
round (a fractional share in a whole-share layout) is an error too: the file would trade
something else than the order; so is a quantity or price that is not positive (an orders.csv
edited by hand: the side says which way an order trades). Text cells are written spreadsheet-safe like every CSV the
product writes. Two documented examples ship in ``scenarios/trade_files/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from cvxrebalance.optimizer.domain.case_io import read_csv
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.output import from_spreadsheet_safe, spreadsheet_safe
from cvxrebalance.optimizer.domain.tables import file_lines

FILE_KEYS = {"header": True, "delimiter": ",", "date_format": "%Y-%m-%d", "quantity_decimals": 0,
             "price_decimals": 4, "value_decimals": 2, "line_ending": "\n"}
SIDE_KEYS = {"buy": "BUY", "sell": "SELL"}
FIELDS = ("order_id", "household_id", "account_id", "account_number", "security_id", "side", "quantity", "price", "value", "cost",
          "reason", "trade_date")
DECIMALS = {"quantity": "quantity_decimals", "price": "price_decimals", "value": "value_decimals",
            "cost": "value_decimals"}
# A batch's own files in OUT_DIR (``batch.combine``, the manifest): an upload file never replaces one.
BATCH_FILES = ("trades.csv", "lots.csv", "futures.csv", "errors.csv", "orders.csv", "order_lots.csv",
               "block_trades.csv", "allocations.csv", "manifest.json")
POSITIVE = ("quantity", "price")  # an order trades a positive amount at a positive price (its side says which way)


def read_orders(path: str | Path) -> pd.DataFrame:
    """A batch's ``orders.csv``, also after an edit by hand: every cell as text (spreadsheet
    quote removed), indexed by file line, so ``trade_file`` names a bad cell by its line.

    Raises
    ------
    ValidationError
        Not UTF-8, empty, or a line with another number of fields than the header.
    """
    orders = read_csv(Path(path))
    if orders is None:
        raise ValidationError([Problem("orders.csv", None, None, "cannot be read: the file is empty")])
    out = orders.apply(lambda column: column.map(from_spreadsheet_safe))
    out.attrs["file_lines"] = True
    return out


def read_template(path: str | Path) -> dict[str, Any]:
    """A checked template: ``file`` and ``sides`` with defaults filled, and ``columns``.

    Raises
    ------
    ValidationError
        Not TOML, an unknown section or key, a wrong type, an unknown field, a column with
        neither or both of ``field`` and ``value``; each named by its key.
    """
    path = Path(path)
    name = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError([Problem(name, None, None, f"cannot be read as TOML: {exc}")]) from exc
    problems: list[Problem] = []
    for key in raw:
        if key not in ("file", "sides", "columns"):
            problems.append(Problem(name, None, key, "unknown section; known: file, sides, columns"))
    out = {"file": _section(raw.get("file", {}), FILE_KEYS, "file", name, problems),
           "sides": _section(raw.get("sides", {}), SIDE_KEYS, "sides", name, problems), "columns": []}
    f = out["file"]
    if not isinstance(f["delimiter"], str) or len(f["delimiter"]) != 1:
        problems.append(Problem(name, None, "file.delimiter", "must be one character"))
    elif f["delimiter"] in ('"', "\n", "\r"):  # the quote or a line break: the file would not read back
        problems.append(Problem(name, None, "file.delimiter", "must not be a double quote or a line break"))
    if f["line_ending"] not in ("\n", "\r\n"):
        problems.append(Problem(name, None, "file.line_ending", 'must be "\\n" or "\\r\\n"'))
    for key in ("quantity_decimals", "price_decimals", "value_decimals"):
        if not 0 <= f[key] <= 10:
            problems.append(Problem(name, None, f"file.{key}", "must be a whole number in [0, 10]"))
    columns = raw.get("columns")
    if not isinstance(columns, list) or not columns:
        problems.append(Problem(name, None, "columns", "give at least one [[columns]] table"))
        columns = []
    for k, col in enumerate(columns, 1):
        where = f"columns[{k}]"
        if not isinstance(col, dict) or not isinstance(col.get("name"), str):
            problems.append(Problem(name, None, where, "needs a name (text)"))
            continue
        for key in col:
            if key not in ("name", "field", "value"):
                problems.append(Problem(name, None, f"{where}.{key}", "unknown key; known: name, field, value"))
        if ("field" in col) == ("value" in col):
            problems.append(Problem(name, None, where, "give a field or a value, not both and not neither"))
        elif "field" in col and col["field"] not in FIELDS:
            problems.append(Problem(name, None, f"{where}.field",
                                    f"unknown field {col['field']!r}; known: {', '.join(FIELDS)}"))
        out["columns"].append(col)
    if problems:
        raise ValidationError(problems)
    return out


def _section(raw: Any, defaults: dict, section: str, name: str, problems: list[Problem]) -> dict:
    if not isinstance(raw, dict):
        problems.append(Problem(name, None, section, "must be a table"))
        return dict(defaults)
    out = dict(defaults)
    for key, value in raw.items():
        if key not in defaults:
            problems.append(Problem(name, None, f"{section}.{key}", f"unknown key; known: {', '.join(defaults)}"))
        elif type(value) is not type(defaults[key]):
            problems.append(Problem(name, None, f"{section}.{key}",
                                    f"expected {type(defaults[key]).__name__}, got {value!r}"))
        else:
            out[key] = value
    return out


def trade_file(orders: pd.DataFrame, template: dict[str, Any], trade_date: dt.date) -> str:
    """The upload file's text: one line per order, laid out by ``template`` (``read_template``).

    Raises
    ------
    ValidationError
        ``orders`` lacks a field the template uses, has a side without a code in ``[sides]``, a
        quantity, price, value or cost that is not a number, a quantity or price that is not
        positive or a value or cost below zero, a quantity with more decimals than the template
        writes, or no account number where the template uses it (named by orders.csv line:
        ``read_orders``' lines, else counted from line 2).
    """
    f, sides = template["file"], template["sides"]
    _check_orders(orders, template)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=f["delimiter"], lineterminator=f["line_ending"])
    if f["header"]:
        writer.writerow([spreadsheet_safe(c["name"]) for c in template["columns"]])
    date = trade_date.strftime(f["date_format"])
    for order in orders.to_dict("records"):
        cells = []
        for col in template["columns"]:
            if "value" in col:
                cells.append(spreadsheet_safe(str(col["value"])))
                continue
            field = col["field"]
            value = date if field == "trade_date" else order[field]
            if field == "side":
                value = sides[value]
            elif field in DECIMALS:
                value = f"{float(value):.{f[DECIMALS[field]]}f}"
            cells.append(spreadsheet_safe(str(value)))
        writer.writerow(cells)
    return buf.getvalue()


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


def _check_orders(orders: pd.DataFrame, template: dict[str, Any]) -> None:
    """Every problem ``trade_file`` would meet in ``orders``, at once."""
    used = [c["field"] for c in template["columns"] if "field" in c and c["field"] != "trade_date"]
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
                                 f"{a!r} of household {h!r}: give accounts.csv an account_number column")
                         for line, a, h, bad in zip(lines, _column(orders, "account_id"),
                                                    _column(orders, "household_id"), blank, strict=True) if bad]
    if problems:
        raise ValidationError(problems)


def _column(orders: pd.DataFrame, name: str) -> pd.Series:
    """A column of ``orders``, or blanks where it has none (for messages only)."""
    return orders[name] if name in orders.columns else pd.Series("", index=orders.index)
