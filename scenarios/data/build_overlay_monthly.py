"""Build ``scenarios/cases/overlay_monthly/returns.csv`` from the monthly US history.

Run by hand (no dependency beyond pandas): ``python scenarios/data/build_overlay_monthly.py``.

It copies ``us_stocks_bonds_monthly/returns.csv`` (built by ``build_us_monthly.py`` from the
Fama/French and Moody's data in the ``arch`` wheel) and adds the monthly returns of two
continuously rolled futures on the same markets, each the total return less the one-month bill
(the cost of carry: a future plus the bills that collateralize it earns the total return):
``US_EQUITY_FUT = US_STOCKS - cash`` (a stock-index future) and ``US_BOND_FUT = US_BONDS -
cash`` (a bond future on the same 20-year bond). No such futures existed before the 1970s and
1980s; the series are the what-if of an overlay over the whole history, and the case's README
says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

CASES = Path(__file__).resolve().parents[1] / "cases"
SOURCE = CASES / "us_stocks_bonds_monthly" / "returns.csv"
OUT = CASES / "overlay_monthly" / "returns.csv"


def main() -> None:
    data = pd.read_csv(SOURCE, index_col="date", dtype={"date": str})
    data.insert(2, "US_EQUITY_FUT", data["US_STOCKS"] - data["cash"])
    data.insert(3, "US_BOND_FUT", data["US_BONDS"] - data["cash"])
    data.to_csv(OUT, float_format="%.6g", lineterminator="\n")
    print(f"wrote {OUT}: {len(data)} months, {data.index[0]} to {data.index[-1]}")


if __name__ == "__main__":
    main()
