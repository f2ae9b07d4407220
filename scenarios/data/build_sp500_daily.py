"""Build ``scenarios/cases/sp500_daily/prices.csv`` from data shipped in the ``skfolio`` wheel.

Run once, by hand, in an environment that has ``skfolio`` (it is not a dependency of
cvxrebalance)::

    python -m venv /tmp/venv-build && /tmp/venv-build/bin/pip install "skfolio==1.12.2"
    /tmp/venv-build/bin/python scenarios/data/build_sp500_daily.py

The script reads ``skfolio/datasets/data/sp500_dataset.csv.gz`` inside the installed package
(the file behind ``skfolio.datasets.load_sp500_dataset()``; nothing is downloaded): daily
adjusted closing prices (splits and dividends folded in, so they are total-return levels) of 20
S&P 500 constituents, 1990-01-02 to 2022-12-28, rounded to 3 decimals in the source. The prices
are copied as they are: only the date column is renamed ``date``. There is no cash column (the
dataset has no short rate), so cash earns nothing. See docs/market_data.md.

It also writes the case's ``covariance.csv``: the annualized (x 252) sample covariance of the
stocks' daily returns over the whole history.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path

import pandas as pd

CASE = Path(__file__).resolve().parents[1] / "cases" / "sp500_daily"
OUT = CASE / "prices.csv"


def main() -> None:
    data = (resources.files("skfolio.datasets.data") / "sp500_dataset.csv.gz").read_bytes()
    text = gzip.decompress(data).decode("utf-8")
    prices = pd.read_csv(io.StringIO(text), dtype=str).rename(columns={"Date": "date"})
    if prices.isna().any().any():
        raise SystemExit("missing values in the source")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    prices.to_csv(OUT, index=False, lineterminator="\n")
    print(f"wrote {OUT}: {len(prices)} days, {prices['date'].iloc[0]} to {prices['date'].iloc[-1]}, "
          f"{len(prices.columns) - 1} stocks")
    levels = prices.set_index("date").astype(float)
    cov = levels.pct_change().iloc[1:].cov() * 252
    cov.index.name = "security_id"
    cov.to_csv(CASE / "covariance.csv", float_format="%.8f", lineterminator="\n")


if __name__ == "__main__":
    main()
