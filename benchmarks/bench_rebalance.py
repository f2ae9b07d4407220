"""Which solver is the default: each one's time and accuracy on our own problem.

    python3 benchmarks/bench_rebalance.py --runs 15 [--securities 100 --accounts 3 --lots 500]

For synthetic households (medians): PIQP called directly on the minimal QP (setup + solve), and
Clarabel and OSQP through the cvxpy reference of the same declared program (solve call, compile
excluded), each with the settings of optimizer/pipeline/solvers.py, and each one's objective
error against a tight Clarabel solve (relative to the objective's unit). BLAS is pinned to one
thread. Speed of the whole rebalance: ``cvxrebalance bench``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from cvxrebalance import Policy  # noqa: E402
from cvxrebalance.optimizer.domain.prepare import prepare  # noqa: E402
from cvxrebalance.optimizer.pipeline.assemble import assemble, solve_piqp  # noqa: E402
from cvxrebalance.optimizer.pipeline.problem import declare, objective_scale  # noqa: E402
from cvxrebalance.optimizer.pipeline.reference import Reference  # noqa: E402
from cvxrebalance.optimizer.pipeline.solvers import SETTINGS  # noqa: E402
from cvxrebalance.scenarios.synthetic import synthetic_household  # noqa: E402

TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--securities", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=3)
    ap.add_argument("--lots", type=int, default=500)
    args = ap.parse_args()
    policy = Policy.from_dict({"tax": {"as_of": "2026-11-20"}})
    times: dict[str, list[float]] = {"PIQP": [], "CLARABEL": [], "OSQP": []}
    errors: dict[str, list[float]] = {k: [] for k in times}
    for seed in range(args.runs):
        data = prepare(synthetic_household(args.securities, args.accounts, args.lots, seed=seed), policy)
        scale = objective_scale(data)
        program = declare(data).program
        tight = Reference(program, scale).solve("CLARABEL", TIGHT).objective
        unit = max(abs(tight), scale)
        out = solve_piqp(assemble(program, scale), SETTINGS["PIQP"])
        times["PIQP"].append(out.seconds)
        errors["PIQP"].append(abs(out.objective - tight) / unit if out.status == "optimal" else float("inf"))
        for name in ("CLARABEL", "OSQP"):
            ref = Reference(program, scale)
            ref.solve(name, SETTINGS[name])  # compile once, then time a solve with the data in place
            t0 = time.perf_counter()
            res = ref.solve(name, SETTINGS[name])
            times[name].append(time.perf_counter() - t0)
            errors[name].append(abs(res.objective - tight) / unit if res.status == "optimal" else float("inf"))
    print(f"{args.runs} households, {args.securities} securities, {args.accounts} accounts, {args.lots} lots; medians")
    for name in times:
        print(f"  {name:9s} {1e3 * statistics.median(times[name]):8.2f} ms   objective error max "
              f"{max(errors[name]):.1e}, median {statistics.median(errors[name]):.1e}")


if __name__ == "__main__":
    main()
