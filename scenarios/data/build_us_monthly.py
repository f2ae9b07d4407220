"""Build ``scenarios/cases/us_stocks_bonds_monthly/returns.csv`` from data shipped in the ``arch`` wheel.

Run once, by hand, in an environment that has ``arch`` (it is not a dependency of cvxrebalance)::

    python -m venv /tmp/venv-build && /tmp/venv-build/bin/pip install "arch==8.0.0"
    /tmp/venv-build/bin/python scenarios/data/build_us_monthly.py

The script reads two files inside the installed ``arch`` package (nothing is downloaded):

- ``arch/data/frenchdata/frenchdata.csv.gz``: Kenneth R. French's Data Library, Fama/French
  factors, monthly, 1926-07 to 2018-11, in percent: ``Mkt-RF`` (value-weighted return of all CRSP
  firms incorporated in the US and listed on NYSE, AMEX or NASDAQ, minus the one-month Treasury
  bill) and ``RF`` (the one-month Treasury bill return). arch's own ``load()`` misreads the
  ``YYYYMM`` dates as nanoseconds, so the CSV is read here directly.
- ``arch/data/default/default.csv.gz``: Moody's seasoned Aaa corporate bond yield (``AAA``),
  monthly averages, 1919-01 to 2018-12, in percent a year.

and writes the monthly simple returns, dated at each month's last calendar day:

- ``US_STOCKS = (Mkt-RF + RF) / 100``: the market's total return (dividends reinvested);
- ``US_BONDS``: the total return of a 20-year par bond with semiannual coupons, priced from the
  Aaa yield: bought at par at the previous month's yield ``y0`` (coupon ``y0``), accrued one
  month of coupon ``y0 / 12`` and repriced at this month's yield ``y1`` with 20 years less one
  month to run. No bond total-return history ships in a wheel we could find; this is the usual
  approximation from yields (the yields are monthly averages, so the series is smoother than a
  month-end one). See docs/market_data.md;
- ``cash = RF / 100``: the one-month Treasury bill.

It also writes the case's ``covariance.csv``: the annualized (x 12) sample covariance of the
two securities' monthly returns over the whole history.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

CASE = Path(__file__).resolve().parents[1] / "cases" / "us_stocks_bonds_monthly"
OUT = CASE / "returns.csv"
MATURITY = 20.0  # years, of the par bond the Aaa yield prices


def read_gz(package: str, name: str) -> pd.DataFrame:
    data = (resources.files(package) / name).read_bytes()
    return pd.read_csv(io.StringIO(gzip.decompress(data).decode("utf-8")))


def bond_price(coupon: np.ndarray, y: np.ndarray, years: float) -> np.ndarray:
    """Price per 1 of face of a bond paying ``coupon / 2`` twice a year for ``years``, at yield
    ``y`` (both annual, semiannually compounded); the annuity formula with a fractional count of
    half-years."""
    n = 2.0 * years
    discount = (1.0 + y / 2.0) ** -n
    return coupon / y * (1.0 - discount) + discount


def main() -> None:
    ff = read_gz("arch.data.frenchdata", "frenchdata.csv.gz")
    month = pd.PeriodIndex(ff["Date"].astype(str), freq="M")
    stocks = pd.Series(((ff["Mkt-RF"] + ff["RF"]) / 100.0).to_numpy(), index=month).round(6)
    cash = pd.Series((ff["RF"] / 100.0).to_numpy(), index=month).round(6)

    aaa = read_gz("arch.data.default", "default.csv.gz")
    aaa_month = pd.to_datetime(aaa["Date"], format="%m/%d/%Y").dt.to_period("M")
    y = pd.Series((aaa["AAA"] / 100.0).to_numpy(), index=aaa_month)
    y0, y1 = y.shift(1), y
    bonds = (bond_price(y0, y1, MATURITY - 1.0 / 12.0) - 1.0 + y0 / 12.0).round(6)

    out = pd.DataFrame({"US_STOCKS": stocks, "US_BONDS": bonds.reindex(month), "cash": cash})
    if out.isna().any().any():
        raise SystemExit(f"missing values:\n{out[out.isna().any(axis=1)]}")
    out.index = out.index.to_timestamp(how="end").normalize().strftime("%Y-%m-%d")
    out.index.name = "date"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(OUT, float_format="%.6g", lineterminator="\n")
    print(f"wrote {OUT}: {len(out)} months, {out.index[0]} to {out.index[-1]}")
    cov = out[["US_STOCKS", "US_BONDS"]].cov() * 12
    cov.index.name = "security_id"
    cov.to_csv(CASE / "covariance.csv", float_format="%.8f", lineterminator="\n")


if __name__ == "__main__":
    main()
