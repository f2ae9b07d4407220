"""Typed parsing of input tables with every problem collected (file, line, field)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem

CASH = "cash"  # the asset class of the accounts' cash


def rows(df):
    """(line, row) pairs of a table with attribute access, read column by column (pandas'
    ``itertuples`` and ``to_dict`` cost about a millisecond per call, even on an empty table)."""
    if not len(df):
        return
    names = [str(c) for c in df.columns]
    columns = [df[c].to_numpy().tolist() for c in df.columns]
    for line, *values in zip(df.index.tolist(), *columns, strict=True):
        yield line, SimpleNamespace(**dict(zip(names, values, strict=True)))


def index_of(keys, values) -> np.ndarray:
    """Position of each value among ``keys`` (-1 where absent), by a dict: for a few hundred
    ids this is ten times faster than building a pandas Index.

    Examples
    --------
    >>> index_of(["a", "b", "c"], ["c", "a", "z"]).tolist()
    [2, 0, -1]
    """
    where = {k: i for i, k in enumerate(keys.tolist() if hasattr(keys, "tolist") else keys)}
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    return np.fromiter((where.get(v, -1) for v in values), dtype=np.int64, count=len(values))


def days(dates) -> np.ndarray:
    """``datetime.date`` values (or None) as ``datetime64[D]`` (None: NaT), without numpy's slow
    per-object parsing.

    Examples
    --------
    >>> days([dt.date(1970, 1, 2), None]).tolist()
    [datetime.date(1970, 1, 2), None]
    """
    epoch = dt.date(1970, 1, 1).toordinal()
    nat = np.iinfo(np.int64).min  # NaT's integer value
    values = dates.tolist() if hasattr(dates, "tolist") else list(dates)
    try:
        ordinal = np.fromiter((nat if d is None else d.toordinal() - epoch for d in values), np.int64,
                              count=len(values))
    except (AttributeError, TypeError):  # strings or numpy dates: numpy's own parser
        return np.array(values, dtype="datetime64[D]")
    return ordinal.view("datetime64[D]")


DTYPES = {"float": float, "bool": bool}
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Column:
    """One column's type, whether it is required, and its default when absent or empty."""

    kind: str  # "str" | "text" (``text_cell``) | "float" | "bool" | "date" | "list"
    required: bool = False
    default: Any = None
    check: Callable[[Any], str | None] | None = None  # returns a message when the value is bad


def nonneg(x: float) -> str | None:
    return None if x >= 0 else f"must be >= 0, got {x:g}"


def positive(x: float) -> str | None:
    return None if x > 0 else f"must be > 0, got {x:g}"


def fraction(x: float) -> str | None:
    return None if 0 <= x <= 1 else f"must be in [0, 1], got {x:g}"


def above_minus_one(x: float) -> str | None:
    return None if x > -1 else f"must be > -1 (a return of -100% or less), got {x:g}"


def one_line(text: str) -> str | None:
    """A text cell that a line-based file can carry: no line break, tab or other control character."""
    bad = sorted({repr(c)[1:-1] for c in text if ord(c) < 32 or ord(c) == 127})
    return f"contains a line break or control character ({', '.join(bad)})" if bad else None


def whole_positive(x: float) -> str | None:
    return None if x >= 1 and x == int(x) else f"must be a whole number >= 1, got {x:g}"


def unit_magnitude(x: float) -> str | None:
    return None if -1 <= x <= 1 else f"must be in [-1, 1], got {x:g}"


# The numeric checks above as array tests (True: passes), so a column is checked at once.
_VECTOR_CHECKS: dict[Callable, Callable[[np.ndarray], np.ndarray]] = {
    nonneg: lambda x: x >= 0,
    positive: lambda x: x > 0,
    fraction: lambda x: (x >= 0) & (x <= 1),
    whole_positive: lambda x: (x >= 1) & (x == np.floor(x)),
    unit_magnitude: lambda x: np.abs(x) <= 1,
}


def file_lines(df: pd.DataFrame) -> list[int]:
    """File line of each row (header = line 1). Frames read by case_io carry their real line
    numbers in the index (blank lines skipped); other frames count from line 2."""
    if df.attrs.get("file_lines"):
        return [int(i) for i in df.index]
    return list(range(2, len(df) + 2))


def text_cell(value: Any) -> str:
    """A cell that must be text, such as a custodian's account number: a string trimmed, or a
    whole number of an integer column (Parquet, a database) as its digits.

    Raises
    ------
    ValueError
        Any other value: a float (``48000030.0`` is not the account's text, and a float's digits
        may not be the number's), a boolean, a date.

    Examples
    --------
    >>> text_cell(" 0042 "), text_cell(48000030)
    ('0042', '48000030')
    """
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    raise ValueError(f"not text: {value!r} is stored as a {type(value).__name__}; store the column as text "
                     "(a float column writes 48000030 as 48000030.0 and may change its digits)")


def parse_value(kind: str, value: Any) -> Any:
    """Convert one cell; raises ValueError with a user-facing message."""
    if kind == "str":
        return str(value).strip()
    if kind == "text":
        return text_cell(value)
    if kind == "float":
        try:
            x = float(str(value).strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"not a finite number: {value!r}")
        return x
    if kind == "bool":
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in TRUE:
            return True
        if s in FALSE:
            return False
        raise ValueError(f"not true/false: {value!r}")
    if kind == "date":
        if isinstance(value, pd.Timestamp | dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return iso_date(str(value).strip())
    if kind == "list":
        items = value if isinstance(value, list | tuple) else str(value).split(";")
        return tuple(str(s).strip() for s in items if str(s).strip())
    raise AssertionError(kind)


def parse_table(
    df: pd.DataFrame, file: str, spec: dict[str, Column], problems: list[Problem]
) -> pd.DataFrame:
    """Check columns and convert every cell; bad cells become problems and NaN/None.

    Unknown columns are problems too, so a typo in a header is never silently ignored.
    """
    lines = file_lines(df)
    for col in df.columns:
        if col not in spec:
            problems.append(Problem(file, 1, str(col), "unknown column"))
    out: dict[str, list[Any]] = {}
    for name, col in spec.items():
        if name not in df.columns:
            if col.required:
                problems.append(Problem(file, 1, name, "required column is missing"))
            out[name] = [col.default] * len(df)
            continue
        raw = df[name].tolist()
        values = _convert(col.kind, raw)  # vectorized fast path; _BAD marks a cell to look at
        blank = []
        for j in [j for j, v in enumerate(values) if v is _BAD]:
            # Blank or unparseable: the cell-by-cell path gives the exact message.
            if is_blank(raw[j]):
                blank.append(j)
                if col.required:
                    problems.append(Problem(file, lines[j], name, "missing value"))
                values[j] = col.default
                continue
            try:
                values[j] = parse_value(col.kind, raw[j])
            except ValueError as exc:
                problems.append(Problem(file, lines[j], name, str(exc)))
                values[j] = col.default
        if col.kind == "float":
            for j in _out_of_range(values, blank):
                problems.append(Problem(file, lines[j], name, f"{values[j]:g} is out of range: numbers are 0 "
                                        f"or between {MIN_MAGNITUDE:g} and {MAX_MAGNITUDE:g} in size"))
                values[j] = col.default
        if col.check is not None:
            for j in _suspects(col, values, blank):
                msg = col.check(values[j])
                if msg:
                    problems.append(Problem(file, lines[j], name, msg))
        out[name] = values
    # Object dtype keeps None for blank text and dates (pandas 3 would turn them into NaN).
    index = pd.Index(lines, name="line")
    frame = {
        name: pd.Series(vals, index=index, dtype=DTYPES.get(spec[name].kind, object))
        for name, vals in out.items()
    }
    return pd.DataFrame(frame, index=index)


_BAD = object()  # a cell the fast path could not convert
# Every number in a table: 0, or of a size between these (docs/case_format.md). Beyond them the
# optimizer's scaling (a household's value is its unit) loses every digit of a trade.
MAX_MAGNITUDE = 1e15
MIN_MAGNITUDE = 1e-12


def _out_of_range(values: list, blank: list[int]) -> list[int]:
    """Cells of a number column whose size is beyond the limits (blank cells are not numbers)."""
    x = np.abs(np.asarray(values, dtype=float))
    bad = (x > MAX_MAGNITUDE) | ((x > 0) & (x < MIN_MAGNITUDE))
    bad[blank] = False
    return np.flatnonzero(bad).tolist()


def _suspects(col: Column, values: list, blank: list[int]) -> list[int]:
    """Cells whose value the column's check must see: all non-blank ones, or for the numeric
    checks only those a vectorized test flags (the check then words the message)."""
    test = _VECTOR_CHECKS.get(col.check) if col.kind == "float" else None
    if test is None:
        skip = set(blank)
        return [j for j, v in enumerate(values) if j not in skip and v is not None
                and not (isinstance(v, float) and math.isnan(v))]
    x = np.asarray(values, dtype=float)
    flagged = ~np.isnan(x) & ~test(x)
    flagged[blank] = False
    return np.flatnonzero(flagged).tolist()


def _convert(kind: str, raw: list) -> list:
    """Convert a column at once where the cells are plain; _BAD where they need a closer look
    (blank, malformed, or of a type the fast path does not handle)."""
    n = len(raw)
    if kind == "float":
        try:  # numbers, and text Python's float() reads (spaces, "1_000"); blanks are NaN
            num = np.asarray([np.nan if v is None or v == "" else v for v in raw], dtype=object).astype(float)
        except (TypeError, ValueError):  # a blank or malformed cell somewhere: one by one
            s = pd.Series(raw, dtype=object)
            text = s.map(lambda v: v.strip().replace("_", "") if isinstance(v, str) else v)
            num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(num)
        return [x if good else _BAD for x, good in zip(num.tolist(), ok.tolist(), strict=True)]
    if kind in ("str", "text"):
        return [v.strip() if isinstance(v, str) and v.strip() else _BAD for v in raw]
    if kind == "date":
        return [_iso_date(v) for v in raw]
    return [_BAD] * n  # bool and list columns: the cell-by-cell path


def _iso_date(value: Any) -> Any:
    """A YYYY-MM-DD string's date (anything else: _BAD, for the slow path's message)."""
    if isinstance(value, str):
        try:
            return iso_date(value.strip())
        except ValueError:
            return _BAD
    return _BAD


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(text: str) -> dt.date:
    """The date written ``YYYY-MM-DD``, and only that form (Python's ISO parser also takes
    ``20261120`` and week dates like ``2026-W47-5``, which a spreadsheet user does not mean).

    Examples
    --------
    >>> iso_date("2026-11-20")
    datetime.date(2026, 11, 20)
    """
    if not _DATE.fullmatch(text):
        raise ValueError(f"not a date written YYYY-MM-DD: {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a calendar date: {text!r}") from None


def is_blank(value: Any) -> bool:
    """Whether a cell is empty: None, NA, NaT, NaN or blank text (a parsed table's blank cells
    hold their column's default: None, NaN or "")."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def duplicates(df: pd.DataFrame, cols: list[str], file: str, problems: list[Problem]) -> None:
    """Report every row whose key repeats an earlier row's (``df`` indexed by file line)."""
    keys = list(zip(*(df[c].tolist() for c in cols), strict=True))
    if len(set(keys)) == len(keys):
        return  # no key repeats: nothing to report
    seen: dict[tuple, int] = {}
    for i, key in zip(df.index, keys, strict=True):
        if any(is_blank(k) for k in key):
            continue
        if key in seen:
            what = ", ".join(f"{c}={k}" for c, k in zip(cols, key, strict=True))
            problems.append(
                Problem(file, int(i), cols[-1], f"duplicate {what} (first on line {seen[key]})")
            )
        else:
            seen[key] = int(i)


def has_problem(problems: list[Problem], file: str, row: int, field: str) -> bool:
    """Whether a problem is already reported for this cell (so one bad cell gives one problem)."""
    return any(p.file == file and p.row == row and p.field == field for p in problems)


def decode_utf8(data: bytes, name: str, problems: list[Problem]) -> str | None:
    """The text of a file that should be UTF-8: a byte-order mark is dropped; another encoding
    is a problem naming the line of the first byte that is not UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem(name, None, None, "the file is UTF-16; save it as UTF-8"))
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, None, f"not UTF-8 text (byte {data[exc.start]:#04x}); save the "
                                "file as UTF-8"))
        return None
