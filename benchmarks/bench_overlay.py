"""What swaps, counterparty limits and factor bands cost a single rebalance, on the bundled case
``duration_overlay`` (a $100M bond portfolio, two swap lines, a Treasury future, a duration band).

    python3 benchmarks/bench_overlay.py [--runs 25]

Each variant is the same household rebalanced ``--runs`` times after one warm-up; the figures are
medians in milliseconds and their ratios to the plain variant, measured in the same run (BLAS
pinned to one thread):
- ``plain``: no factor_targets.csv, no counterparty limit;
- ``factor band``: the case's duration band (factor_targets.csv);
- ``counterparty limit``: ``[overlay] counterparty_limit`` without the band;
- ``both``: the case as shipped;
- ``futures only``: both, with the swaps removed (the Treasury future alone).
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

import cvxrebalance as cr  # noqa: E402
from cvxrebalance.optimizer.domain.factor_targets import empty_factor_targets  # noqa: E402


def median_ms(household, policy, runs: int) -> float:
    cr.rebalance(household, policy)  # warm-up: imports, solver set-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        cr.rebalance(household, policy)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args()
    case = cr.case_path("duration_overlay")
    household, policy = cr.load_case(case)
    unbanded = dataclasses.replace(household, factor_targets=empty_factor_targets())
    unlimited = policy.replace(overlay={"counterparty_limit": 0.0})
    futures_only = dataclasses.replace(household, futures=household.futures[household.futures["source"] == "futures.csv"])
    variants = {"plain": (unbanded, unlimited), "factor band": (household, unlimited),
                "counterparty limit": (unbanded, policy), "both": (household, policy),
                "futures only": (futures_only, policy)}
    ms = {name: median_ms(h, p, args.runs) for name, (h, p) in variants.items()}
    out = {name: {"median_ms": round(v, 2), "ratio": round(v / ms["plain"], 2)} for name, v in ms.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
