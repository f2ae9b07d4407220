"""Build scenarios/cases/tactical_monthly/signals.csv: the Moody's Baa - Aaa corporate yield
spread (percentage points), a valuation series for the case's ``valuation`` signal.

Source: ``arch/data/default/default.csv.gz`` in the ``arch`` 8.0.0 wheel (NCSA licence), the
same file that prices the bundled bonds (docs/market_data.md). Its yields are monthly averages,
known only once the month is over, so each month's spread is dated the first day of the next
month: a decision on a month's last day reads the month before's spread, never its own.

Run once with ``arch`` installed (it is not a dependency): ``python scenarios/data/build_tactical_monthly.py``.
The case's other files are the ``us_stocks_bonds_monthly`` household and returns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from build_us_monthly import read_gz

OUT = Path(__file__).resolve().parents[1] / "cases" / "tactical_monthly" / "signals.csv"


def main() -> None:
    raw = read_gz("arch.data.default", "default.csv.gz")
    month = pd.to_datetime(raw["Date"], format="%m/%d/%Y").dt.to_period("M")
    known = (month + 1).dt.to_timestamp(how="start").dt.strftime("%Y-%m-%d")
    out = pd.DataFrame({"date": known, "name": "credit_spread", "value": (raw["BAA"] - raw["AAA"]).round(4)})
    out.to_csv(OUT, index=False, lineterminator="\n")
    print(f"wrote {OUT}: {len(out)} months, {out['date'].iloc[0]} to {out['date'].iloc[-1]}")


if __name__ == "__main__":
    main()
