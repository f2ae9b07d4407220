"""What a policy sweep costs on one and on two local workers: N households x 2 policies.

    python3 benchmarks/bench_sweep.py [--households 20] [--years 10] [--runs 3] [--rebalancer rule]

The households are the bundled ``us_stocks_bonds_monthly`` case (a taxable account with lots and
an IRA) at different sizes, from 1926-06-30 over ``--years``; the policies a 5/25 threshold rule
and a quarterly calendar rule (``[backtest] rebalancer``). Each run writes a fresh OUT_DIR (a
rerun into the same one would skip every household). Figures are medians over ``--runs`` of the
whole ``run_sweep`` call (read, backtests, combine), measured in one run so their ratio compares
like with like; BLAS is pinned to one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pandas as pd  # noqa: E402

from cvxrebalance.optimizer.apps.sweep import run_sweep  # noqa: E402
from cvxrebalance.scenarios import case_path  # noqa: E402

POLICIES = {
    "threshold": '[bands]\nrule = "5/25"\n[trigger]\nmode = "threshold"\n',
    "quarterly": '[trigger]\nmode = "calendar"\nfrequency = "quarterly"\n',
}


def write_input(root: Path, households: int, rebalancer: str) -> tuple[Path, dict[str, Path]]:
    """A sweep IN_DIR of ``households`` scaled copies of the bundled case, and the policy files."""
    case = case_path("us_stocks_bonds_monthly")
    in_dir = root / "in"
    in_dir.mkdir(parents=True)
    for name in ("securities.csv", "targets.csv", "covariance.csv", "returns.csv"):
        shutil.copy(case / name, in_dir / name)
    acc = pd.read_csv(case / "accounts.csv", dtype=str, keep_default_na=False)
    hol = pd.read_csv(case / "holdings.csv", dtype=str, keep_default_na=False)
    accounts, holdings = [], []
    for k in range(households):
        scale = 1 + 0.1 * k
        accounts.append(acc.assign(household_id=f"h{k:04d}", cash=[str(float(c) * scale) for c in acc["cash"]]))
        holdings.append(hol.assign(household_id=f"h{k:04d}",
                                   quantity=[str(round(float(q) * scale)) for q in hol["quantity"]]))
    pd.concat(accounts).to_csv(in_dir / "accounts.csv", index=False)
    pd.concat(holdings).to_csv(in_dir / "holdings.csv", index=False)
    files = {}
    for name, text in POLICIES.items():
        files[name] = root / f"{name}.toml"
        files[name].write_text(text + f'[backtest]\nrebalancer = "{rebalancer}"\n[tax]\nas_of = 1926-06-30\n')
    return in_dir, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebalancer", choices=["rule", "optimizer"], default="rule")
    args = parser.parse_args()
    end = (pd.Timestamp("1926-06-30") + pd.DateOffset(years=args.years)).date()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        in_dir, files = write_input(root, args.households, args.rebalancer)
        seconds: dict[int, list[float]] = {1: [], 2: []}
        for run in range(args.runs):
            for workers in (1, 2):
                t0 = time.perf_counter()
                man = run_sweep(in_dir, root / f"out-{workers}-{run}", files, end=end, workers=workers,
                                progress=False)
                seconds[workers].append(time.perf_counter() - t0)
                assert man["counts"]["succeeded"] == args.households, man["counts"]
    one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
    print(json.dumps({"households": args.households, "policies": len(POLICIES), "years": args.years,
                      "rebalancer": args.rebalancer, "runs": args.runs, "workers_1_s": round(one, 3),
                      "workers_2_s": round(two, 3), "speedup": round(one / two, 2),
                      "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
