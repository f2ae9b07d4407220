"""Typed parsing of input tables with every problem collected (file, line, field)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from optimizer.errors import Problem

DTYPES = {"float": float, "bool": bool}
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Column:
    """One column's type, whether it is required, and its default when absent or empty."""

    kind: str  # "str" | "float" | "bool" | "date" | "list"
    required: bool = False
    default: Any = None
    check: Callable[[Any], str | None] | None = None  # returns a message when the value is bad


def nonneg(x: float) -> str | None:
    return None if x >= 0 else f"must be >= 0, got {x:g}"


def positive(x: float) -> str | None:
    return None if x > 0 else f"must be > 0, got {x:g}"


def fraction(x: float) -> str | None:
    return None if 0 <= x <= 1 else f"must be in [0, 1], got {x:g}"


def file_lines(df: pd.DataFrame) -> list[int]:
    """File line of each row (header = line 1). Frames read by case_io carry their real line
    numbers in the index (blank lines skipped); other frames count from line 2."""
    if df.attrs.get("file_lines"):
        return [int(i) for i in df.index]
    return list(range(2, len(df) + 2))


def parse_value(kind: str, value: Any) -> Any:
    """Convert one cell; raises ValueError with a user-facing message."""
    if kind == "str":
        return str(value).strip()
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
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
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
        values = []
        for i, raw in zip(lines, df[name].tolist(), strict=True):
            if _blank(raw):
                if col.required:
                    problems.append(Problem(file, i, name, "missing value"))
                values.append(col.default)
                continue
            try:
                v = parse_value(col.kind, raw)
            except ValueError as exc:
                problems.append(Problem(file, i, name, str(exc)))
                values.append(col.default)
                continue
            if col.check is not None:
                msg = col.check(v)
                if msg:
                    problems.append(Problem(file, i, name, msg))
            values.append(v)
        out[name] = values
    # Object dtype keeps None for blank text and dates (pandas 3 would turn them into NaN).
    index = pd.Index(lines, name="line")
    frame = {
        name: pd.Series(vals, index=index, dtype=DTYPES.get(spec[name].kind, object))
        for name, vals in out.items()
    }
    return pd.DataFrame(frame, index=index)


def _blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def duplicates(df: pd.DataFrame, cols: list[str], file: str, problems: list[Problem]) -> None:
    """Report every row whose key repeats an earlier row's (``df`` indexed by file line)."""
    seen: dict[tuple, int] = {}
    for i, key in zip(df.index, zip(*(df[c] for c in cols), strict=True), strict=True):
        if any(_blank(k) for k in key):
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
