"""Market data (prices.csv / returns.csv): parsing, conventions, calendars, errors, bundled history."""

from __future__ import annotations

import gzip
import io
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import ValidationError, load_case
from cvxrebalance.scenarios import case_path, describe_case, list_cases
from cvxrebalance.scenarios.market import CHECK_FREQUENCIES, Market, load_market

MARKET_CASES = ["us_stocks_bonds_monthly", "sp500_daily"]


def case_with(tmp_path, name: str, text: str):
    (tmp_path / name).write_text(text)
    return tmp_path


def market(tmp_path, name: str, text: str) -> Market:
    return load_market(case_with(tmp_path, name, text))


def problems(tmp_path, name: str, text: str) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        market(tmp_path, name, text)
    return [(p.file, p.row, p.field, p.message) for p in info.value.problems]


def dates(index) -> list[str]:
    return [str(d.date()) for d in index]


# ------------------------------------------------------------------------------ round trips
PRICES = """date,VTI,BND,cash
2024-01-04,100,50,1.0
2024-01-05,102,50.5,1.0001
2024-01-08,99.96,50.5,1.0002
2024-01-09,101.9592,50.0,1.00025
"""


def test_prices_to_returns_and_back(tmp_path):
    m = market(tmp_path, "prices.csv", PRICES)
    assert m.source == "prices.csv"
    assert m.start == pd.Timestamp("2024-01-04")  # the first row is the starting price
    assert dates(m.dates) == ["2024-01-05", "2024-01-08", "2024-01-09"]
    assert list(m.returns.columns) == ["VTI", "BND", "cash"]
    assert m.returns["VTI"].tolist() == pytest.approx([0.02, -0.02, 0.02])
    assert m.returns["BND"].tolist() == pytest.approx([0.01, 0.0, -0.5 / 50.5])
    assert m.returns["cash"].tolist() == pytest.approx([1e-4, 1e-4 / 1.0001, 0.5e-4 / 1.0002])
    given = pd.read_csv(io.StringIO(PRICES), index_col="date", parse_dates=True)
    rebuilt = m.levels * given.iloc[0]  # levels start at 1.0: times the first price is the file
    assert list(m.levels.index) == list(given.index)
    np.testing.assert_allclose(rebuilt.to_numpy(), given.to_numpy(), rtol=1e-12)


def test_returns_to_levels_and_back(tmp_path):
    prices = market(tmp_path, "prices.csv", PRICES)
    text = prices.returns.to_csv(index_label="date", date_format="%Y-%m-%d", float_format="%.17g")
    m = Market.from_returns(pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False))
    assert m.source == "returns.csv"
    assert m.start == pd.Timestamp("2024-01-04")  # daily: the business day before the first row
    pd.testing.assert_frame_equal(m.levels, prices.levels, check_freq=False)
    pd.testing.assert_frame_equal(m.returns, prices.returns, check_freq=False)


def test_pandas_frames_in(tmp_path):
    # A frame indexed by date with float cells reads like the file (lines counted from 2).
    frame = pd.read_csv(io.StringIO(PRICES), index_col="date", parse_dates=True)
    m = Market.from_prices(frame)
    pd.testing.assert_frame_equal(m.returns, market(tmp_path, "prices.csv", PRICES).returns, check_freq=False)
    frame.iloc[2, 0] = -1.0
    with pytest.raises(ValidationError) as info:
        Market.from_prices(frame, source="my frame")
    assert [(p.file, p.row, p.field) for p in info.value.problems] == [("my frame", 4, "VTI")]


def test_without_a_cash_column_cash_earns_nothing(tmp_path):
    m = market(tmp_path, "returns.csv", "date,A\n2024-01-31,0.01\n2024-02-29,-0.02\n")
    assert list(m.returns.columns) == ["A", "cash"]
    assert m.returns["cash"].tolist() == [0.0, 0.0]
    assert m.levels["cash"].tolist() == [1.0, 1.0, 1.0]


def test_a_series_may_start_late(tmp_path):
    text = "date,OLD,NEW\n2024-01-31,100,\n2024-02-29,101,\n2024-03-29,102,20\n2024-04-30,103,21\n"
    m = market(tmp_path, "prices.csv", text)
    assert m.returns["NEW"].isna().tolist() == [True, True, False]
    assert m.returns["NEW"].iloc[-1] == pytest.approx(0.05)
    assert m.levels["NEW"].tolist()[:3] == [pytest.approx(np.nan, nan_ok=True)] * 2 + [1.0]
    assert m.levels["NEW"].iloc[-1] == pytest.approx(1.05)
    (tmp_path / "r").mkdir()
    r = market(tmp_path / "r", "returns.csv", "date,OLD,NEW\n2024-01-31,0.01,\n2024-02-29,0.02,0.1\n")
    assert r.levels["NEW"].isna().tolist() == [True, False, False]  # 1.0 just before its first return
    assert r.levels["NEW"].tolist()[1:] == pytest.approx([1.0, 1.1])


# -------------------------------------------------------------------------------- frequency
def _frame(index) -> pd.DataFrame:
    return pd.DataFrame({"date": [str(d.date()) for d in index], "X": 0.001})


US_HOLIDAYS_2024 = ["2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19",
                    "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25"]
TRADING_2024 = pd.bdate_range("2024-01-02", "2024-12-31").difference(pd.DatetimeIndex(US_HOLIDAYS_2024))


@pytest.mark.parametrize(("index", "frequency", "periods"), [
    (TRADING_2024, "daily", 252),  # weekends and holidays skipped: still daily
    (pd.date_range("2024-01-01", periods=30, freq="D"), "daily", 252),  # calendar days too
    (pd.date_range("2024-01-05", periods=30, freq="W-FRI").delete(10).insert(10, pd.Timestamp("2024-03-14")),
     "weekly", 52),  # a Friday holiday moved one week's close to Thursday
    (pd.date_range("1990-01-31", periods=40, freq="ME"), "monthly", 12),
    (pd.bdate_range("2024-01-01", "2024-12-31", freq="BME"), "monthly", 12),  # last business days
    (pd.date_range("2024-01-15", periods=12, freq="MS") + pd.Timedelta(days=14), "monthly", 12),
    (pd.date_range("2000-03-31", periods=20, freq="QE"), "quarterly", 4),
])
def test_frequency_is_inferred_from_the_dates(index, frequency, periods):
    m = Market.from_returns(_frame(index))
    assert (m.frequency, m.periods_per_year) == (frequency, periods)
    p = Market.from_prices(_frame(index).assign(X=100.0))
    assert (p.frequency, p.periods_per_year) == (frequency, periods)


@pytest.mark.parametrize(("index", "start"), [
    (pd.bdate_range("2024-01-08", periods=6), "2024-01-05"),  # daily, a Monday: the Friday before
    (pd.date_range("2024-01-12", periods=6, freq="7D"), "2024-01-05"),  # weekly: 7 days before
    (pd.date_range("2024-02-29", periods=6, freq="ME"), "2024-01-31"),  # month ends: the previous one
    (pd.date_range("2024-03-01", periods=6, freq="MS") + pd.Timedelta(days=14), "2024-02-15"),  # mid-month
    (pd.date_range("2024-06-30", periods=6, freq="QE"), "2024-03-31"),  # quarter ends: the previous one
])
def test_returns_start_one_period_before_the_first_row(index, start):
    assert Market.from_returns(_frame(index)).start == pd.Timestamp(start)


# ------------------------------------------------------------------------------ check dates
def test_check_dates_on_a_daily_calendar():
    # 2024-06-26 .. 2024-12-31 trading days: June ends on a Sunday (last day Friday the 28th),
    # August on a Saturday (Friday the 30th), November's last trading day is Friday the 29th.
    days = TRADING_2024[TRADING_2024 >= "2024-06-26"]
    m = Market.from_prices(_frame(days).assign(X=100.0))
    assert m.start == pd.Timestamp("2024-06-26")
    assert dates(m.check_dates("daily")) == dates(days[1:])
    assert dates(m.check_dates("monthly")) == ["2024-06-28", "2024-07-31", "2024-08-30", "2024-09-30",
                                               "2024-10-31", "2024-11-29", "2024-12-31"]
    assert dates(m.check_dates("quarterly")) == ["2024-06-28", "2024-09-30", "2024-12-31"]
    assert dates(m.check_dates("semiannual")) == ["2024-06-28", "2024-12-31"]
    assert dates(m.check_dates("annual")) == ["2024-12-31"]


def test_check_dates_end_on_the_last_date_even_in_a_partial_period():
    days = TRADING_2024[(TRADING_2024 >= "2024-01-02") & (TRADING_2024 <= "2024-04-17")]
    m = Market.from_prices(_frame(days).assign(X=100.0))
    # Good Friday (March 29) closed the market: March's last trading day is the 28th.
    assert dates(m.check_dates("monthly")) == ["2024-01-31", "2024-02-29", "2024-03-28", "2024-04-17"]
    assert dates(m.check_dates("semiannual")) == ["2024-04-17"]


def test_check_dates_on_monthly_data():
    m = Market.from_returns(_frame(pd.date_range("2023-11-30", "2025-02-28", freq="ME")))
    assert dates(m.check_dates("monthly")) == dates(m.dates)
    assert dates(m.check_dates("quarterly")) == ["2023-12-31", "2024-03-31", "2024-06-30", "2024-09-30",
                                                 "2024-12-31", "2025-02-28"]
    assert dates(m.check_dates("semiannual")) == ["2023-12-31", "2024-06-30", "2024-12-31", "2025-02-28"]
    assert dates(m.check_dates("annual")) == ["2023-12-31", "2024-12-31", "2025-02-28"]


def test_unknown_check_frequency():
    m = Market.from_returns(_frame(pd.date_range("2024-01-31", periods=3, freq="ME")))
    assert set(CHECK_FREQUENCIES) == {"daily", "weekly", "monthly", "quarterly", "semiannual", "annual"}
    with pytest.raises(ValueError, match="fortnightly.*expected one of daily, weekly, monthly"):
        m.check_dates("fortnightly")


# ------------------------------------------------------------------------- window and growth
def test_window_restarts_the_levels():
    m = Market.from_prices(pd.DataFrame({"date": ["2024-01-31", "2024-02-29", "2024-03-29", "2024-04-30"],
                                         "A": [100.0, 110.0, 121.0, 108.9]}))
    w = m.window("2024-02-29", "2024-03-29")
    assert w.start == pd.Timestamp("2024-02-29")
    assert dates(w.dates) == ["2024-03-29"]
    assert w.levels["A"].tolist() == pytest.approx([1.0, 1.1])
    assert (w.frequency, w.periods_per_year) == ("monthly", 12)
    between = m.window("2024-03-15")  # not a data date: starts at the last one before it
    assert between.start == pd.Timestamp("2024-02-29")
    assert dates(between.dates) == ["2024-03-29", "2024-04-30"]
    assert dates(m.window(end="2024-02-29").dates) == ["2024-02-29"]
    with pytest.raises(ValueError, match="before the start"):
        m.window("2023-12-31")
    with pytest.raises(ValueError, match="no period"):
        m.window("2024-04-30")


def test_growth_and_price_relatives():
    m = Market.from_prices(pd.DataFrame({"date": ["2024-01-31", "2024-02-29", "2024-03-29"],
                                         "A": [100.0, 110.0, 99.0], "cash": [1.0, 1.01, 1.0201]}))
    assert m.price_relatives("2024-02-29").tolist() == pytest.approx([1.1, 1.01])
    assert m.growth("2024-01-31", "2024-03-29").tolist() == pytest.approx([0.99, 1.0201])
    assert m.growth(m.start, m.dates[-1]).tolist() == pytest.approx((m.levels.iloc[-1]).tolist())
    with pytest.raises(KeyError, match="not a date"):
        m.price_relatives("2024-01-31")  # the start ends no period
    with pytest.raises(KeyError, match="neither the start nor a date"):
        m.growth("2024-02-01", "2024-03-29")


def test_market_invariants():
    index = pd.DatetimeIndex(["2024-01-31", "2024-02-29"])
    with pytest.raises(ValueError, match="cash"):
        Market(pd.DataFrame({"A": [0.0, 0.0]}, index=index), pd.Timestamp("2023-12-31"), "monthly", 12)
    with pytest.raises(ValueError, match="periods a year"):
        Market(pd.DataFrame({"cash": [0.0, 0.0]}, index=index), pd.Timestamp("2023-12-31"), "monthly", 252)
    with pytest.raises(ValueError, match="before the first return"):
        Market(pd.DataFrame({"cash": [0.0, 0.0]}, index=index), pd.Timestamp("2024-01-31"), "monthly", 12)


# -------------------------------------------------------------------------------- validation
MONTHS = ["2024-01-31", "2024-02-29", "2024-03-29", "2024-04-30", "2024-05-31"]


def table(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("prices.csv", table("date,A", "2024-01-31,1", "2024/02/29,2", "2024-03-29,3"),
     [(3, "date", "not a date written YYYY-MM-DD")]),
    ("prices.csv", table("date,A", "2024-01-31,1", "2024-02-30,2", "2024-03-29,3"),
     [(3, "date", "not a calendar date")]),
    ("returns.csv", table("date,A", "2024-01-31,0", "2024-02-29,0", "2024-02-29,0", "2024-03-29,0"),
     [(4, "date", "duplicate date 2024-02-29 (first on line 3)")]),
    ("returns.csv", table("date,A", "2024-01-31,0", "2024-03-29,0", "2024-02-29,0"),
     [(4, "date", "before the previous row's 2024-03-29: dates must increase")]),
    ("prices.csv", table("date,A,B", *(f"{d},1,{'' if i in (2, 3) else 1}" for i, d in enumerate(MONTHS))),
     [(4, "B", "empty cell in the middle of the series (lines 4-5)")]),
    ("returns.csv", table("date,A,B", *(f"{d},0,{'' if i == 1 else 0}" for i, d in enumerate(MONTHS))),
     [(3, "B", "empty cell in the middle of the series (line 3)")]),
    ("prices.csv", table("date,A,B", *(f"{d},1,{'' if i >= 3 else 1}" for i, d in enumerate(MONTHS))),
     [(5, "B", "the series stops after line 4")]),
    ("returns.csv", table("date,A,cash", *(f"{d},0,{'' if i == 0 else 0}" for i, d in enumerate(MONTHS))),
     [(2, "cash", "cash needs a value on every row")]),
    ("prices.csv", table("date,A,B", "2024-01-31,1,0", "2024-02-29,-5,1", "2024-03-29,1,1"),
     [(2, "B", "a price must be > 0, got 0"), (3, "A", "a price must be > 0, got -5")]),
    ("returns.csv", table("date,A", "2024-01-31,-1", "2024-02-29,-0.99", "2024-03-29,-1.5"),
     [(2, "A", "a return must be > -1"), (4, "A", "got -1.5")]),
    ("returns.csv", table("date,A", "2024-01-31,0.01", "2024-02-29,1%", "2024-03-29,abc"),
     [(3, "A", "not a number: '1%'"), (4, "A", "not a number: 'abc'")]),
    ("returns.csv", table("date,A", "2024-01-31,0.01"), [(None, None, "1 dated row(s): at least 2")]),
    ("prices.csv", table("date,A"), [(None, None, "0 dated row(s): at least 2")]),
    ("returns.csv", table("when,A", "2024-01-31,0", "2024-02-29,0"), [(1, "when", "first column must be `date`")]),
    ("returns.csv", table("date", "2024-01-31", "2024-02-29"), [(1, None, "no series")]),
    ("returns.csv", table("date,A", "2024-01-31,", "2024-02-29,"), [(None, "A", "no values")]),
    ("returns.csv", table("date,A", "2024-01-31,0", "2024-03-15,0", "2024-04-29,0"),
     [(None, "date", "cannot infer the frequency: the median step between dates is 44.5 days")]),
    ("returns.csv", table("date,A", *(f"{d},0" for d in MONTHS[:2] + MONTHS[3:])),
     [(4, "date", "2024-04-30 is 61 days after 2024-02-29; monthly data (median step 31 days) steps 20 to 40 "
       "days: is a period missing?")]),
    ("prices.csv", table("date,A", "2024-01-31,1,2", "2024-02-29,1", "2024-03-29,1"),
     [(2, None, "3 fields, more than the header's 2")]),
])
def test_each_problem_names_file_line_and_field(tmp_path, name, text, expected):
    found = problems(tmp_path, name, text)
    assert len(found) == len(expected), found
    for (file, line, field, message), (want_line, want_field, want_message) in zip(found, expected, strict=True):
        assert (file, line, field) == (name, want_line, want_field), found
        assert want_message in message, message


def test_every_problem_is_reported_at_once(tmp_path):
    text = table("date,A,B", "2024-01-31,1,x", "2024-01-31,0,1", "2024-03-29,,1", "2024-04-30,2,1")
    found = {(line, field) for _, line, field, _ in problems(tmp_path, "prices.csv", text)}
    assert found == {(2, "B"), (3, "date"), (3, "A"), (4, "A")}


def test_blank_lines_count_in_line_numbers(tmp_path):
    text = "date,A\n2024-01-31,1\n\n2024-02-29,0\n2024-03-29,1\n"
    assert problems(tmp_path, "prices.csv", text) == [("prices.csv", 4, "A", "a price must be > 0, got 0")]


def test_a_case_has_prices_or_returns_not_both(tmp_path):
    assert load_market(tmp_path) is None  # neither: no market data
    (tmp_path / "prices.csv").write_text(PRICES)
    (tmp_path / "returns.csv").write_text("date,A\n2024-01-31,0\n2024-02-29,0\n")
    with pytest.raises(ValidationError, match="prices.csv or returns.csv, not both"):
        load_market(tmp_path)


def test_load_case_accepts_a_case_with_market_data(tmp_path):
    import shutil

    case = tmp_path / "case"
    shutil.copytree(case_path("example"), case)
    (case / "prices.csv").write_text(PRICES)
    household, _ = load_case(case)  # not an "unknown file"
    assert household.value > 0
    (case / "price.csv").write_text(PRICES)
    with pytest.raises(ValidationError, match="did you mean prices.csv"):
        load_case(case)


# ---------------------------------------------------------------------------- bundled data
def test_bundled_market_cases_are_listed():
    assert set(MARKET_CASES) <= set(list_cases())
    for name in MARKET_CASES:
        assert describe_case(name)


@pytest.mark.parametrize("name", list_cases())
def test_every_bundled_market_file_loads(name):
    m = load_market(case_path(name))
    if name in MARKET_CASES:
        assert m is not None
    if m is not None:
        assert not m.returns.isna().any().any()  # the bundled series run over the whole span
        household, _ = load_case(case_path(name))
        held = set(household.securities["security_id"])
        assert held <= set(m.returns.columns)  # every security is priced by a column


def test_us_stocks_bonds_monthly_span_and_values():
    m = load_market(case_path("us_stocks_bonds_monthly"))
    assert (m.frequency, m.periods_per_year, m.source) == ("monthly", 12, "returns.csv")
    assert m.start == pd.Timestamp("1926-06-30")
    assert (str(m.dates[0].date()), str(m.dates[-1].date()), len(m.dates)) == ("1926-07-31", "2018-11-30", 1109)
    assert list(m.returns.columns) == ["US_STOCKS", "US_BONDS", "cash"]
    assert (m.dates == m.check_dates("monthly")).all()
    # Spot checks against the source (arch 8.0.0, arch/data/frenchdata/frenchdata.csv.gz, in %):
    # 192607: Mkt-RF 2.96, RF 0.22; 200810: Mkt-RF -17.23, RF 0.08.
    assert m.returns.loc["1926-07-31", "cash"] == pytest.approx(0.0022)
    assert m.returns.loc["1926-07-31", "US_STOCKS"] == pytest.approx(0.0318)
    assert m.returns.loc["2008-10-31", "US_STOCKS"] == pytest.approx(-0.1715)
    assert m.returns.loc["2008-10-31", "cash"] == pytest.approx(0.0008)
    # arch/data/default/default.csv.gz: AAA 4.72 (1926-06), 4.71 (1926-07); a 20-year par bond.
    y0, y1, n = 0.0472, 0.0471, 2 * (20 - 1 / 12)
    price = y0 / y1 * (1 - (1 + y1 / 2) ** -n) + (1 + y1 / 2) ** -n
    assert m.returns.loc["1926-07-31", "US_BONDS"] == pytest.approx(price - 1 + y0 / 12, abs=1e-6)


def test_sp500_daily_span_and_values():
    m = load_market(case_path("sp500_daily"))
    assert (m.frequency, m.periods_per_year, m.source) == ("daily", 252, "prices.csv")
    assert m.start == pd.Timestamp("1990-01-02")
    assert (str(m.dates[-1].date()), len(m.dates)) == ("2022-12-28", 8312)
    assert len(m.returns.columns) == 21 and (m.returns["cash"] == 0).all()
    # skfolio 1.12.2 load_sp500_dataset(): AAPL 0.264 on 1990-01-02, 0.266 on 1990-01-03; XOM
    # 4.068 on the first day and 106.627 on the last.
    assert m.price_relatives("1990-01-03")["AAPL"] == pytest.approx(0.266 / 0.264)
    assert m.levels["XOM"].iloc[-1] == pytest.approx(106.627 / 4.068)
    securities = pd.read_csv(case_path("sp500_daily") / "securities.csv", index_col="security_id")
    first = pd.read_csv(case_path("sp500_daily") / "prices.csv", nrows=1).iloc[0]
    assert (securities["price"] == first[securities.index]).all()  # the case starts on the first row


def test_us_monthly_matches_the_arch_wheel():
    pytest.importorskip("arch")  # not a dependency: checked where it is installed
    raw = (resources.files("arch.data.frenchdata") / "frenchdata.csv.gz").read_bytes()
    ff = pd.read_csv(io.StringIO(gzip.decompress(raw).decode()))
    m = load_market(case_path("us_stocks_bonds_monthly"))
    np.testing.assert_allclose(m.returns["cash"], ff["RF"] / 100, atol=1e-9)
    np.testing.assert_allclose(m.returns["US_STOCKS"], (ff["Mkt-RF"] + ff["RF"]) / 100, atol=1e-9)


def test_sp500_daily_matches_the_skfolio_wheel():
    datasets = pytest.importorskip("skfolio.datasets")
    source = datasets.load_sp500_dataset()
    m = load_market(case_path("sp500_daily"))
    np.testing.assert_allclose(m.levels.drop(columns="cash").to_numpy(),
                               (source / source.iloc[0]).to_numpy(), rtol=1e-12)
