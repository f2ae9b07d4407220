"""Market data of a case: total-return prices or returns over time, checked like every other file.

A case may carry ``prices.csv`` (total-return price levels, dividends reinvested) or
``returns.csv`` (simple returns per period, each row dated at its period's end). Both are wide:
first column ``date``, then one column per series (a security id, or a futures contract's
``underlying``), and an optional ``cash`` column (a cash index level in ``prices.csv``, the cash
return per period in ``returns.csv``; without it cash earns nothing). docs/case_format.md has the
format, docs/market_data.md the bundled histories.

Conventions
-----------
- ``Market.returns`` row ``t`` is the simple return over the period that ends at date ``t``.
- ``Market.start`` is the point before the first return: the first date of ``prices.csv``; for
  ``returns.csv`` one period before the first row's date (the previous business day for daily
  data, 7 days before for weekly data, the previous month or quarter end for month-end dates,
  else the same day one or three months before).
- A series may start late (empty cells before its first value): its returns are NaN until then
  and its level is 1.0 just before its first return. It may not pause (an empty cell between two
  values) nor stop before the last date (empty cells at the end): both are errors, because a
  backtest could not value the position on those dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain import calendar
from cvxrebalance.optimizer.domain.case_io import read_csv
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.tables import CASH, Column, file_lines, parse_table

# name: (periods a year, median step between dates in days, every step in days)
FREQUENCIES: dict[str, tuple[int, tuple[float, float], tuple[int, int]]] = {
    "daily": (252, (1, 4), (1, 10)),  # business days: weekends, holidays, a closure of a week
    "weekly": (52, (5, 9), (4, 11)),
    "monthly": (12, (25, 35), (20, 40)),
    "quarterly": (4, (85, 95), (80, 100)),
}
# The decision calendars of a backtest: every period of the data, or the last data date in each
# month, quarter, half-year or year.
CHECK_FREQUENCIES = calendar.FREQUENCIES


@dataclass(frozen=True, eq=False)
class Market:
    """Simple returns of every series over time, from ``prices.csv`` or ``returns.csv``.

    Parameters
    ----------
    returns : pandas.DataFrame
        Index: DatetimeIndex of period ends, increasing. One column per series, ``cash`` always
        present (zeros when the file has none). Row ``t`` is the simple return over the period
        ending at ``t``; NaN before a series starts.
    start : pandas.Timestamp
        The starting point, before the first return (see the module's conventions).
    frequency : str
        ``"daily"``, ``"weekly"``, ``"monthly"`` or ``"quarterly"``, inferred from the dates.
    periods_per_year : int
        The annualization factor P of the frequency: 252, 52, 12 or 4.
    source : str
        The file the data came from, for messages.

    Examples
    --------
    >>> import pandas as pd
    >>> from cvxrebalance.scenarios.market import Market
    >>> prices = pd.DataFrame({"date": ["2024-01-31", "2024-02-29", "2024-03-29"],
    ...                        "VTI": [100.0, 110.0, 99.0]})
    >>> m = Market.from_prices(prices)
    >>> m
    Market(prices.csv: monthly, 2024-01-31 to 2024-03-29, 2 periods, series VTI, cash)
    >>> m.returns
                VTI  cash
    2024-02-29  0.1   0.0
    2024-03-29 -0.1   0.0
    >>> m.levels["VTI"].round(12).tolist()
    [1.0, 1.1, 0.99]
    >>> m.periods_per_year
    12
    """

    returns: pd.DataFrame
    start: pd.Timestamp
    frequency: str
    periods_per_year: int
    source: str = "returns.csv"

    def __post_init__(self) -> None:
        index = self.returns.index
        if not isinstance(index, pd.DatetimeIndex) or not index.is_monotonic_increasing or index.has_duplicates:
            raise ValueError("Market.returns needs an increasing DatetimeIndex without repeats")
        if CASH not in self.returns.columns:
            raise ValueError("Market.returns needs a 'cash' column (zeros: cash earns nothing)")
        if len(index) and not pd.Timestamp(self.start) < index[0]:
            raise ValueError(f"Market.start {self.start} must be before the first return date {index[0]}")
        if FREQUENCIES.get(self.frequency, (None,))[0] != self.periods_per_year:
            raise ValueError(f"frequency {self.frequency!r} with {self.periods_per_year} periods a year: "
                             f"expected one of {', '.join(f'{k} ({v[0]})' for k, v in FREQUENCIES.items())}")

    def __repr__(self) -> str:
        end = self.dates[-1].date() if len(self.dates) else self.start.date()
        return (f"Market({self.source}: {self.frequency}, {self.start.date()} to {end}, "
                f"{len(self.dates)} periods, series {', '.join(map(str, self.returns.columns))})")

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def from_prices(cls, df: pd.DataFrame, source: str = "prices.csv") -> Market:
        """Total-return price levels (a ``date`` column, or a DatetimeIndex) to a Market.

        The first row is the starting point; a ``cash`` column is a cash index level. Raises
        ValidationError listing every problem (file, line, field): see :func:`load_market`.
        """
        dates, values, lines = _parse(df, source, "prices")
        levels = pd.DataFrame(values, index=dates)
        returns = levels.pct_change(fill_method=None).iloc[1:]
        if CASH not in returns.columns:
            returns[CASH] = 0.0
        frequency = _frequency_of(dates, lines, source)
        return cls(returns, dates[0], frequency, FREQUENCIES[frequency][0], source)

    @classmethod
    def from_returns(cls, df: pd.DataFrame, source: str = "returns.csv") -> Market:
        """Simple returns per period (each row dated at the period's end) to a Market.

        The household starts one period before the first row (see the module's conventions); a
        ``cash`` column is the cash return per period. Raises ValidationError listing every
        problem (file, line, field): see :func:`load_market`.
        """
        dates, values, lines = _parse(df, source, "returns")
        returns = pd.DataFrame(values, index=dates)
        if CASH not in returns.columns:
            returns[CASH] = 0.0
        frequency = _frequency_of(dates, lines, source)
        start = _period_before(dates[0], frequency)
        return cls(returns, start, frequency, FREQUENCIES[frequency][0], source)

    # --------------------------------------------------------------------------------- views
    @property
    def dates(self) -> pd.DatetimeIndex:
        """The period ends (the dates of ``returns``); the starting point is ``start``."""
        return self.returns.index

    @cached_property
    def levels(self) -> pd.DataFrame:
        """Total-return levels, one row at ``start`` then one per date; each series is 1.0 just
        before its first return (so a series that starts late is NaN until then)."""
        growth = pd.concat([pd.DataFrame(np.nan, index=pd.DatetimeIndex([self.start]),
                                         columns=self.returns.columns), 1.0 + self.returns])
        levels = growth.cumprod()
        for j, column in enumerate(self.returns.columns):
            valid = np.flatnonzero(self.returns[column].notna().to_numpy())
            if len(valid):
                levels.iloc[valid[0], j] = 1.0  # the row before the first return
        return levels

    def price_relatives(self, date) -> pd.Series:
        """``1 + return`` of every series over the period ending at ``date`` (a data date)."""
        when = pd.Timestamp(date)
        if when not in self.returns.index:
            raise KeyError(f"{when.date()} is not a date of {self.source}")
        return 1.0 + self.returns.loc[when]

    def growth(self, since, until) -> pd.Series:
        """Value at ``until`` of 1 held in each series at ``since`` (both ``start`` or data dates):
        the price relative between two decision dates. NaN for a series not started at ``since``."""
        lv = self.levels
        for when in (since, until):
            if pd.Timestamp(when) not in lv.index:
                raise KeyError(f"{pd.Timestamp(when).date()} is neither the start nor a date of {self.source}")
        return lv.loc[pd.Timestamp(until)] / lv.loc[pd.Timestamp(since)]

    def window(self, start=None, end=None) -> Market:
        """The market from ``start`` to ``end`` (inclusive), levels restarting at 1.0.

        The new starting point is the last of ``start`` and the data dates on or before
        ``start``; the returns are those of the periods ending after it, up to ``end``.
        """
        points = self.dates.insert(0, self.start)
        first = self.start if start is None else _day(start, "start")
        last = self.dates[-1] if end is None else _day(end, "end")
        if first < self.start:
            raise ValueError(f"{first.date()} is before the start of {self.source} ({self.start.date()})")
        new_start = points[points <= first][-1]
        rows = self.returns[(self.dates > new_start) & (self.dates <= last)]
        if rows.empty:
            raise ValueError(f"no period of {self.source} ends after {new_start.date()} and by {last.date()}")
        return Market(rows.copy(), new_start, self.frequency, self.periods_per_year, self.source)

    def check_dates(self, frequency: str) -> pd.DatetimeIndex:
        """The dates a backtest checks the household on.

        ``"daily"``: every data date; ``"weekly"``, ``"monthly"``, ``"quarterly"``,
        ``"semiannual"``, ``"annual"``: the last data date in each week, calendar month, quarter,
        half-year or year (the last, partial one included: the backtest decides what it does on
        the final date). See ``optimizer.domain.calendar``.

        Examples
        --------
        >>> import pandas as pd
        >>> from cvxrebalance.scenarios.market import Market
        >>> days = pd.bdate_range("2024-03-27", "2024-04-03")  # March 30-31 is a weekend
        >>> m = Market.from_returns(pd.DataFrame({"X": 0.0}, index=days))
        >>> [str(d.date()) for d in m.check_dates("monthly")]
        ['2024-03-29', '2024-04-03']
        """
        if frequency not in CHECK_FREQUENCIES:
            raise ValueError(f"check frequency {frequency!r}: expected one of {', '.join(CHECK_FREQUENCIES)}")
        return calendar.check_dates(self.dates, frequency)


def load_market(case_dir: str | Path) -> Market | None:
    """The market data of a case directory: its ``prices.csv`` or ``returns.csv``.

    Returns
    -------
    Market or None
        None when the case has neither file.

    Raises
    ------
    ValidationError
        Both files present, or every problem in the file, each naming file, line (the header is
        line 1) and field (the column): a date that is not ``YYYY-MM-DD``, repeats or goes back;
        a cell that is not a number; an empty cell between two values of a series or after its
        last one; a price <= 0; a return <= -1; fewer than 2 rows; dates whose spacing is not
        daily, weekly, monthly or quarterly.

    Examples
    --------
    >>> from cvxrebalance.scenarios import case_path
    >>> from cvxrebalance.scenarios.market import load_market
    >>> load_market(case_path("us_stocks_bonds_monthly"))
    Market(returns.csv: monthly, 1926-06-30 to 2018-11-30, 1109 periods, series US_STOCKS, US_BONDS, cash)
    >>> load_market(case_path("example")) is None
    True
    """
    root = Path(case_dir)
    prices, returns = root / "prices.csv", root / "returns.csv"
    if prices.exists() and returns.exists():
        raise ValidationError([Problem("returns.csv", None, None, "a case has prices.csv or returns.csv, "
                                       "not both: remove one")])
    if not (prices.exists() or returns.exists()):
        return None
    path = prices if prices.exists() else returns
    problems: list[Problem] = []
    df = read_csv(path, problems)
    if df is None or problems:
        raise ValidationError(problems)
    build = Market.from_prices if path is prices else Market.from_returns
    return build(df, source=path.name)


# ------------------------------------------------------------------------------------- parsing
def _parse(df: pd.DataFrame, source: str, kind: str) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], list[int]]:
    """Dates, the numeric columns and the file line of each row; every problem raised at once."""
    frame = df
    if "date" not in [str(c) for c in df.columns] and isinstance(df.index, pd.DatetimeIndex):
        frame = df.reset_index(names="date")  # a pandas frame indexed by date
    frame = frame.rename(columns=str)
    lines = file_lines(frame)
    problems: list[Problem] = []
    columns = list(frame.columns)
    if not columns or columns[0] != "date":
        problems.append(Problem(source, 1, columns[0] if columns else None, "the first column must be `date`"))
    series = [c for c in columns if c != "date"]
    if not series:
        problems.append(Problem(source, 1, None, "no series: one column per security after `date`"))
    if problems:  # a wrong header: what the cells say would be noise
        raise ValidationError(problems)
    if len(frame) < 2:
        problems.append(Problem(source, None, None, f"{len(frame)} dated row(s): at least 2 are needed"))
    spec = {"date": Column("date", required=True), **{c: Column("float") for c in series}}
    table = parse_table(frame, source, spec, problems)
    dates = _check_dates(table["date"].tolist(), lines, source, problems)
    values: dict[str, np.ndarray] = {}
    for c in series if len(frame) else []:
        raw = frame[c]
        blank = (raw.isna() | raw.astype(str).str.strip().eq("")).to_numpy()
        values[c] = table[c].to_numpy(dtype=float)
        _check_values(values[c], blank, c, lines, source, kind, problems)
    if problems:
        raise ValidationError(sorted(problems, key=lambda p: p.row or 0))  # top to bottom
    return pd.DatetimeIndex(dates).as_unit("ns"), values, lines


def _check_dates(dates: list, lines: list[int], source: str, problems: list[Problem]) -> list:
    """Dates repeat no earlier date and increase (unparseable ones are already reported)."""
    seen: dict = {}
    previous = None
    for line, d in zip(lines, dates, strict=True):
        if d is None:
            continue
        if d in seen:
            problems.append(Problem(source, line, "date", f"duplicate date {d} (first on line {seen[d]})"))
        elif previous is not None and d < previous:
            problems.append(Problem(source, line, "date", f"{d} is before the previous row's {previous}: "
                                    "dates must increase"))
        seen.setdefault(d, line)
        previous = d if previous is None else max(previous, d)
    return dates


def _check_values(x: np.ndarray, blank: np.ndarray, column: str, lines: list[int], source: str, kind: str,
                  problems: list[Problem]) -> None:
    """Range of each value, and where the series has empty cells: before its first value is fine
    (it starts late), between two values or after the last one is an error (``cash``: none)."""
    bad = x <= 0 if kind == "prices" else x <= -1
    what = "a price must be > 0" if kind == "prices" else "a return must be > -1 (a loss of less than 100%)"
    for j in np.flatnonzero(bad & ~blank):
        problems.append(Problem(source, lines[j], column, f"{what}, got {x[j]:g}"))
    present = np.flatnonzero(~blank)
    if not len(present):
        problems.append(Problem(source, None, column, "the series has no values"))
        return
    if column == CASH and blank.any():
        j = int(np.flatnonzero(blank)[0])
        problems.append(Problem(source, lines[j], column, "empty cell: cash needs a value on every row "
                                "(leave the column out and cash earns nothing)"))
        return
    first, last = present[0], present[-1]
    gap = blank[first:last + 1]
    starts = np.flatnonzero(gap & ~np.concatenate([[False], gap[:-1]])) + first
    for j in starts:
        end = j
        while blank[end + 1]:
            end += 1
        span = f"line {lines[j]}" if end == j else f"lines {lines[j]}-{lines[end]}"
        problems.append(Problem(source, lines[j], column, f"empty cell in the middle of the series ({span}): "
                                "a series may start late, but not pause"))
    if last < len(blank) - 1:
        problems.append(Problem(source, lines[last + 1], column, f"the series stops after line {lines[last]}: "
                                "every series runs to the last date (carry its last price forward, or "
                                "leave the column out)"))


def _frequency_of(dates: pd.DatetimeIndex, lines: list[int], source: str) -> str:
    """The frequency whose typical step holds the median step between dates; each step must
    then be one the frequency allows (a longer one is a missing period)."""
    steps = np.diff(dates.to_numpy().astype("datetime64[D]").astype(np.int64))
    median = float(np.median(steps))
    found = [name for name, (_, (lo, hi), _) in FREQUENCIES.items() if lo <= median <= hi]
    if not found:
        allowed = ", ".join(f"{name} ({lo:g}-{hi:g})" for name, (_, (lo, hi), _) in FREQUENCIES.items())
        raise ValidationError([Problem(source, None, "date", f"cannot infer the frequency: the median step "
                                       f"between dates is {median:g} days; the steps read are {allowed}")])
    frequency = found[0]
    lo, hi = FREQUENCIES[frequency][2]
    problems = [
        Problem(source, lines[i + 1], "date", f"{dates[i + 1].date()} is {steps[i]} days after "
                f"{dates[i].date()}; {frequency} data (median step {median:g} days) steps {lo} to {hi} "
                "days: is a period missing?")
        for i in np.flatnonzero((steps < lo) | (steps > hi))
    ]
    if problems:
        raise ValidationError(problems)
    return frequency


def _period_before(first: pd.Timestamp, frequency: str) -> pd.Timestamp:
    """The starting point of returns.csv: one period before its first date."""
    if frequency == "daily":
        return first - pd.offsets.BDay(1)
    if frequency == "weekly":
        return first - pd.Timedelta(days=7)
    months = 1 if frequency == "monthly" else 3
    if first.is_month_end:
        return first - pd.offsets.MonthEnd(months)
    return first - pd.DateOffset(months=months)


__all__ = ["CHECK_FREQUENCIES", "FREQUENCIES", "Market", "load_market"]


def _day(value, name: str) -> pd.Timestamp:
    """A window edge as a plain date (a ValueError naming it otherwise)."""
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError):
        day = pd.NaT
    if pd.isna(day) or day.tzinfo is not None or day != day.normalize():
        raise ValueError(f"{name} {value!r} is not a date (YYYY-MM-DD)")
    return day
