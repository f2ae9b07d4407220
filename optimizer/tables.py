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


def line(i: int) -> int:
    """File line of the i-th data row (the header is line 1)."""
    return i + 2


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
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
    if kind == "list":
        return tuple(s.strip() for s in str(value).split(";") if s.strip())
    raise AssertionError(kind)


def parse_table(
    df: pd.DataFrame, file: str, spec: dict[str, Column], problems: list[Problem]
) -> pd.DataFrame:
    """Check columns and convert every cell; bad cells become problems and NaN/None.

    Unknown columns are problems too, so a typo in a header is never silently ignored.
    """
    df = df.reset_index(drop=True)
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
        for i, raw in enumerate(df[name].tolist()):
            if _blank(raw):
                if col.required:
                    problems.append(Problem(file, line(i), name, "missing value"))
                values.append(col.default)
                continue
            try:
                v = parse_value(col.kind, raw)
            except ValueError as exc:
                problems.append(Problem(file, line(i), name, str(exc)))
                values.append(col.default)
                continue
            if col.check is not None:
                msg = col.check(v)
                if msg:
                    problems.append(Problem(file, line(i), name, msg))
            values.append(v)
        out[name] = values
    # Object dtype keeps None for blank text and dates (pandas 3 would turn them into NaN).
    frame = {
        name: pd.Series(vals, dtype=DTYPES.get(spec[name].kind, object))
        for name, vals in out.items()
    }
    return pd.DataFrame(frame, index=range(len(df)))


def _blank(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def duplicates(df: pd.DataFrame, cols: list[str], file: str, problems: list[Problem]) -> None:
    """Report every row whose key repeats an earlier row's."""
    seen: dict[tuple, int] = {}
    for i, key in enumerate(zip(*(df[c] for c in cols), strict=True)):
        if any(k is None for k in key):
            continue
        if key in seen:
            what = ", ".join(f"{c}={k}" for c, k in zip(cols, key, strict=True))
            problems.append(
                Problem(file, line(i), cols[-1], f"duplicate {what} (first on line {seen[key]})")
            )
        else:
            seen[key] = line(i)
