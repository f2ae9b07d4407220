"""The ``trade_file.toml`` template of a custodian upload file (``optimizer.apps.trade_file``):
read and checked, every problem named by its key.

A template has these parts (every key optional but ``[[columns]]``; each key documented in
docs/case_format.md, "trade_file.toml")::

    [file]
    header = true              # write the column names first
    delimiter = ","            # one character
    date_format = "%m/%d/%Y"   # strftime codes, for the trade date
    quantity_decimals = 0      # digits after the point: quantities, prices, values
    price_decimals = 4
    value_decimals = 2
    line_ending = "\\n"         # or "\\r\\n"
    lines = "orders"           # or "lots": a sell as one line per tax lot it relieves

    [sides]                    # the custodian's side codes
    buy = "B"
    sell = "S"

    [venues]                   # the codes of the venue field (a crossed batch's parts)
    street = "street"
    internal = "internal"

    [[columns]]                # in file order: a field of orders.csv (or "trade_date") ...
    name = "Account"
    field = "account_number"
    [[columns]]                # ... or a constant
    name = "Order Type"
    value = "MKT"

Fields: every column of orders.csv, ``trade_date`` and ``venue``; with ``lines = "lots"`` also
order_lots.csv's ``lot_id, acquired, cost_basis_per_share, term``. A ``[sides]`` or ``[venues]``
table gives all its codes, none blank and no two alike, and ``date_format`` must write a date
that reads back (year, month and day; ``"%Q"`` or ``""`` are refused).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

from cvxrebalance.optimizer.apps.orders import ORDER_COLUMNS
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError

FILE_KEYS = {"header": True, "delimiter": ",", "date_format": "%Y-%m-%d", "quantity_decimals": 0,
             "price_decimals": 4, "value_decimals": 2, "line_ending": "\n", "lines": "orders"}
SIDE_KEYS = {"buy": "BUY", "sell": "SELL"}
VENUE_KEYS = {"street": "street", "internal": "internal"}
DERIVED = ("trade_date", "venue")  # fields of the upload line, not columns of orders.csv
LOT_FIELDS = ("lot_id", "acquired", "cost_basis_per_share", "term")  # order_lots.csv's, with lines = "lots"
FIELDS = (*ORDER_COLUMNS, *DERIVED, *LOT_FIELDS)  # every column of orders.csv is a field
LINES = ("orders", "lots")  # [file] lines: one line per order (part), or per lot a sell relieves
KNOWN_DATE = dt.date(2031, 12, 25)  # a date_format must write it so that it reads back (day > 12: no swap)
SECTIONS = ("file", "sides", "venues", "columns")


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
        if key not in SECTIONS:
            problems.append(Problem(name, None, key, f"unknown section; known: {', '.join(SECTIONS)}"))
    out = {"file": _section(raw.get("file", {}), FILE_KEYS, "file", name, problems),
           "sides": _section(raw.get("sides", {}), SIDE_KEYS, "sides", name, problems),
           "venues": _section(raw.get("venues", {}), VENUE_KEYS, "venues", name, problems), "columns": []}
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
    if f["lines"] not in LINES:
        problems.append(Problem(name, None, "file.lines", f"must be one of {', '.join(LINES)}, got {f['lines']!r}"))
    if not _reads_back(f["date_format"]):
        problems.append(Problem(name, None, "file.date_format", f"{f['date_format']!r} does not write a date that "
                                f"reads back: {KNOWN_DATE} would be written {_written(f['date_format'])}; use "
                                "strftime codes with the year, month and day, e.g. \"%m/%d/%Y\""))
    for section, keys in (("sides", SIDE_KEYS), ("venues", VENUE_KEYS)):
        problems += _code_problems(raw.get(section), out[section], keys, section, name)
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
        elif col.get("field") in LOT_FIELDS and f["lines"] != "lots":
            problems.append(Problem(name, None, f"{where}.field", f"{col['field']!r} is a lot's: it needs "
                                    '[file] lines = "lots" (one line per lot a sell relieves)'))
        out["columns"].append(col)
    if problems:
        raise ValidationError(problems)
    return out


def _reads_back(date_format: str) -> bool:
    """Whether ``date_format`` writes ``KNOWN_DATE`` as text that ``strptime`` reads back as it."""
    try:
        return dt.datetime.strptime(KNOWN_DATE.strftime(date_format), date_format).date() == KNOWN_DATE
    except (ValueError, re.error):  # an unknown directive; a repeated one (re.error)
        return False


def _written(date_format: str) -> str:
    try:
        return repr(KNOWN_DATE.strftime(date_format))
    except ValueError as exc:
        return f"not at all ({exc})"


def _code_problems(given: Any, codes: dict[str, str], keys: dict[str, str], section: str,
                   name: str) -> list[Problem]:
    """A ``[sides]`` or ``[venues]`` table gives every code, none blank, no two alike (also by
    case and spaces): a code left to its default beside the custodian's, or one code for both
    sides, writes a file that trades the wrong way."""
    if not isinstance(given, dict):
        return []
    problems = [Problem(name, None, f"{section}.{k}", f"[{section}] must give every code ({', '.join(keys)}), "
                        "not leave one to its default") for k in keys if k not in given]
    problems += [Problem(name, None, f"{section}.{k}", "must not be blank")
                 for k, v in codes.items() if isinstance(v, str) and not v.strip()]
    seen = [str(v).strip().casefold() for v in codes.values()]
    if len(set(seen)) < len(seen) and all(seen):
        problems.append(Problem(name, None, section, f"the codes must differ, got {codes}"))
    return problems


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
