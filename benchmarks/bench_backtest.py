"""What a backtest costs: a 30-year monthly history with the optimizer deciding every month,
against one warm ``rebalance`` of the same household, and a threshold rule on its quiet dates.

    python3 benchmarks/bench_backtest.py [--years 30] [--runs 3]

The household is the bundled ``us_stocks_bonds_monthly`` case (a taxable account with lots and
an IRA) from 1926-06-30. Figures are medians over ``--runs``, measured in one run so their ratios
compare like with like; BLAS is pinned to one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pandas as pd  # noqa: E402

from cvxrebalance import load_case, rebalance  # noqa: E402
from cvxrebalance.scenarios import case_path  # noqa: E402
from cvxrebalance.scenarios.backtests import backtest  # noqa: E402
from cvxrebalance.scenarios.market import load_market  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    case = case_path("us_stocks_bonds_monthly")
    household, policy = load_case(case)
    market = load_market(case)
    end = market.start + pd.DateOffset(years=args.years)
    market = market.window(end=end)
    every_month = policy.replace(trigger={"mode": "always"})
    threshold = policy.replace(trigger={"mode": "threshold"})
    rebalance(household, every_month)  # imports and first calls are not part of the figures
    one, full, quiet = [], [], []
    for _ in range(args.runs):
        for _ in range(20):
            t0 = time.perf_counter()
            rebalance(household, every_month)
            one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = backtest(household, every_month, market)
        full.append(time.perf_counter() - t0)
        decisions = len(market.dates) - 1
        t0 = time.perf_counter()
        q = backtest(household, threshold, market)
        quiet.append(time.perf_counter() - t0)
    # The household grows lots as the backtest buys: one warm rebalance of the household as it
    # ends (its lots, at the start prices) is the like-for-like cost of a late decision.
    grown = dataclasses.replace(household, holdings=r.runs["policy"].holdings)
    at_end = every_month.replace(tax={"as_of": market.dates[-1].date()})
    late = []
    for _ in range(20):
        t0 = time.perf_counter()
        rebalance(grown, at_end)
        late.append(time.perf_counter() - t0)
    lots = int(grown.holdings["lot_id"].notna().sum())
    events_threshold = int(q.stats.loc["policy", "events"])
    seconds = statistics.median(full)
    per = seconds / decisions
    warm = statistics.median(one)
    quiet_s = statistics.median(quiet)
    figures = {
        "years": args.years, "decisions": decisions, "optimizer_events": int(r.stats.loc["policy", "events"]),
        "backtest_seconds": round(seconds, 3), "ms_per_decision": round(1e3 * per, 3),
        "warm_rebalance_ms": round(1e3 * warm, 3), "decision_over_rebalance": round(per / warm, 3),
        "lots_at_end": lots, "warm_rebalance_at_end_ms": round(1e3 * statistics.median(late), 3),
        "decision_over_rebalance_at_end": round(per / statistics.median(late), 3),
        "threshold_seconds": round(quiet_s, 3), "threshold_events": events_threshold,
        "threshold_ms_per_quiet_date": round(1e3 * quiet_s / decisions, 3),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
