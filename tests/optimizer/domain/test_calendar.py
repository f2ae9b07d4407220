"""Check dates of calendar rules (optimizer.domain.calendar), on hand-written calendars."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cvxrebalance.optimizer.domain.calendar import check_dates, is_check_date


def _days(text: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(text.split()))


# Business days around quarter ends in 2023: 2023-03-31 is a Friday, 2023-06-30 a Friday,
# 2023-09-30 a Saturday (the last data date of Q3 is Friday 2023-09-29), 2023-12-29 a Friday.
DAYS = _days("2023-03-30 2023-03-31 2023-04-03 2023-06-29 2023-06-30 2023-07-03 2023-09-28 "
             "2023-09-29 2023-10-02 2023-12-28 2023-12-29 2024-01-02")


@pytest.mark.parametrize("frequency, expected", [
    ("daily", list(DAYS.strftime("%Y-%m-%d"))),
    ("monthly", ["2023-03-31", "2023-04-03", "2023-06-30", "2023-07-03", "2023-09-29", "2023-10-02",
                 "2023-12-29", "2024-01-02"]),
    ("quarterly", ["2023-03-31", "2023-06-30", "2023-09-29", "2023-12-29", "2024-01-02"]),
    ("semiannual", ["2023-06-30", "2023-12-29", "2024-01-02"]),
    ("annual", ["2023-12-29", "2024-01-02"]),
])
def test_the_last_data_date_of_each_period(frequency, expected):
    assert list(check_dates(DAYS, frequency).strftime("%Y-%m-%d")) == expected


def test_weekly_check_dates_are_the_last_data_date_of_each_week():
    days = _days("2024-01-02 2024-01-05 2024-01-08 2024-01-11 2024-01-16")  # Tue Fri Mon Thu Tue
    assert list(check_dates(days, "weekly").strftime("%Y-%m-%d")) == ["2024-01-05", "2024-01-11", "2024-01-16"]


def test_monthly_data_has_every_date_as_a_monthly_check_date():
    months = pd.date_range("2020-01-31", periods=6, freq="ME")
    assert check_dates(months, "monthly").equals(months)
    assert list(check_dates(months, "quarterly").strftime("%m")) == ["03", "06"]


@pytest.mark.parametrize("date, frequency, expected", [
    (dt.date(2023, 9, 29), "quarterly", True),  # Friday; the quarter's 30th is a Saturday
    (dt.date(2023, 9, 30), "quarterly", False),  # a Saturday is never a check date
    (dt.date(2023, 9, 28), "quarterly", False),
    (dt.date(2023, 12, 29), "annual", True),
    (dt.date(2023, 6, 30), "semiannual", True),
    (dt.date(2023, 3, 31), "semiannual", False),
    (dt.date(2023, 3, 31), "monthly", True),
    (dt.date(2023, 3, 30), "daily", True),
    (dt.date(2024, 1, 5), "weekly", True),  # a Friday
    (dt.date(2024, 1, 4), "weekly", False),
])
def test_a_single_rebalance_reads_its_as_of_date(date, frequency, expected):
    assert is_check_date(date, frequency) is expected
