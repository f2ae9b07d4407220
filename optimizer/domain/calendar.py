"""Check dates of a calendar rebalancing rule: every period, or the last date of each month,
quarter, half-year or year.

On a calendar of data dates (a backtest) a check date is the last data date of its period. A
single rebalance has no calendar beyond its ``as_of`` date, so there the period's last business
day (Monday to Friday) stands in for it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

FREQUENCIES = ("daily", "weekly", "monthly", "quarterly", "semiannual", "annual")
# Period labels by frequency (pandas period aliases; a half-year is two quarters).
_PERIOD = {"weekly": "W", "monthly": "M", "quarterly": "Q", "semiannual": "Q", "annual": "Y"}


def _periods(dates: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """A label per date: dates with the same label are in the same check period."""
    if frequency == "semiannual":
        return (dates.year * 2 + (dates.month > 6)).to_numpy()
    return dates.to_period(_PERIOD[frequency]).asi8


def check_dates(dates, frequency: str) -> pd.DatetimeIndex:
    """The check dates among ``dates`` (increasing): all of them for "daily", else the last date
    of each week, month, quarter, half-year or year that the dates reach.

    A period the dates leave unfinished still has its last date as a check date: the data's last
    date is the last date of its period that is known.

    Examples
    --------
    >>> days = pd.to_datetime(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-29", "2024-03-01"])
    >>> [str(d.date()) for d in check_dates(days, "monthly")]
    ['2024-01-31', '2024-02-29', '2024-03-01']
    >>> [str(d.date()) for d in check_dates(days, "quarterly")]
    ['2024-03-01']
    """
    dates = pd.DatetimeIndex(dates)
    if frequency == "daily" or not len(dates):
        return dates
    labels = _periods(dates, frequency)
    last = np.append(labels[1:] != labels[:-1], True)
    return dates[last]


def is_check_date(date: dt.date, frequency: str) -> bool:
    """Whether ``date`` is a check date without a data calendar: a weekday that is the last
    weekday of its week, month, quarter, half-year or year ("daily": any weekday).

    Examples
    --------
    >>> is_check_date(dt.date(2026, 10, 30), "monthly"), is_check_date(dt.date(2026, 10, 29), "monthly")
    (True, False)
    >>> is_check_date(dt.date(2026, 12, 31), "annual"), is_check_date(dt.date(2026, 9, 30), "semiannual")
    (True, False)
    """
    day = pd.Timestamp(date)
    if day.weekday() >= 5:
        return False
    if frequency == "daily":
        return True
    following = pd.bdate_range(day, periods=2)
    return bool(check_dates(following, frequency)[0] == day)
