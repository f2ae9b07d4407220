"""The drift scan's speed: ``cvxrebalance scan`` over a synthetic book (issue 13's goal: 10,000
households in under 10 s on this machine).

    python3 benchmarks/bench_scan.py [--households 10000] [--dir /tmp/scan_book] [--runs 3]

Writes the book once (40 securities, 3 accounts and 30 lots a household; it is kept in ``--dir``
and reused when it has as many households), then times ``scan`` ``--runs`` times and prints the
median and the households per second, with the part spent reading the tables (``read_tables``)
measured in the same run. BLAS is pinned to one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pandas as pd  # noqa: E402

from cvxrebalance.optimizer.apps.batch import read_tables  # noqa: E402
from cvxrebalance.optimizer.apps.bench import write_batch_input  # noqa: E402
from cvxrebalance.optimizer.apps.scan import scan  # noqa: E402
from cvxrebalance.scenarios.synthetic import synthetic_universe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--dir", default="/tmp/scan_book")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    root = Path(args.dir)
    accounts = root / "accounts.csv"
    if not accounts.exists() or pd.read_csv(accounts, usecols=["household_id"])["household_id"].nunique() != args.households:
        write_batch_input(root, synthetic_universe(40, 0, seed=3), args.households, 3, 30)
    total, reading, needed = [], [], 0
    for _ in range(args.runs):
        t = time.perf_counter()
        read_tables(root)
        reading.append(time.perf_counter() - t)
        t = time.perf_counter()
        table = scan(root)
        total.append(time.perf_counter() - t)
        needed = int(table["needs_rebalance"].sum())
    med = statistics.median(total)
    rows = len((root / "holdings.csv").read_text().splitlines()) - 1
    print(json.dumps({"households": args.households, "holdings_rows": rows,
                      "scan_median_s": round(med, 2), "read_tables_median_s": round(statistics.median(reading), 2),
                      "households_per_s": round(args.households / med), "needing_rebalance": needed}, indent=1))


if __name__ == "__main__":
    main()
