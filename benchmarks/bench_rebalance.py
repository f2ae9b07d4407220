"""Benchmark one rebalance and compare the solvers on the project's own problem.

Usage: python benchmarks/bench_rebalance.py [--securities 100 --accounts 3 --lots 500 --runs 15]
(about a minute: OSQP is run to its iteration cap on every household.)

Prints medians over several households (this machine is shared and noisy: never a single run):
- the full pipeline (prepare, solve, round, check, result) on a fresh template (compile included)
  and on a warm one (compiled problem reused, the batch case);
- per solver, the continuous solve on the warm template and its objective error relative to a
  tight Clarabel reference solve. The default solver is the fastest at full accuracy (<= 1e-6).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from cvxrebalance import Policy, TemplateCache, rebalance
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.pipeline.problem import ProblemTemplate
from cvxrebalance.optimizer.pipeline.solvers import SETTINGS
from cvxrebalance.scenarios.synthetic import synthetic_household


def median_ms(xs: list[float]) -> str:
    return f"{1e3 * statistics.median(xs):8.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--securities", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=3)
    ap.add_argument("--lots", type=int, default=500)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--contracts", type=int, default=0, help="overlay contracts in each household")
    args = ap.parse_args()
    # No cash-only comparison: the figure is the time of one rebalance.
    policy = Policy.from_dict({"tax": {"as_of": "2026-11-20"}, "bands": {"rule": "5/25"},
                               "overlay": {"compare_cash_only": False}})
    homes = [synthetic_household(args.securities, args.accounts, args.lots, seed=s,
                                 n_contracts=args.contracts) for s in range(args.runs)]
    data0 = prepare(homes[0], policy)
    print(f"household: {args.securities} securities, {args.accounts} accounts, {args.lots} lots, "
          f"{args.contracts} contracts "
          f"(lot slots K={data0.K}); {args.runs} households, medians")

    fresh, warm = [], []
    cache = TemplateCache()
    rebalance(homes[0], policy, cache=cache)  # compile once
    for h in homes:
        t0 = time.perf_counter()
        rebalance(h, policy)
        fresh.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rebalance(h, policy, cache=cache)
        warm.append(time.perf_counter() - t0)
    print(f"rebalance(), fresh template (compile included): {median_ms(fresh)}")
    print(f"rebalance(), warm template (batch case):         {median_ms(warm)}")

    t0 = time.perf_counter()
    ProblemTemplate(data0.shape_key())
    print(f"problem build (cvxpy, before first compile):     {1e3 * (time.perf_counter() - t0):8.2f} ms")

    ref_cache = TemplateCache()
    refs = []
    for h in homes:
        d = prepare(h, policy)
        ref_tpl = ref_cache.get(d.shape_key())
        ref_tpl.update(d)
        reference = ref_tpl.problem_for("CLARABEL")
        reference.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        refs.append(reference.value * ref_tpl.scale)
    print("\nsolver      solve (median)   objective rel. error (max)   status")
    for name in ("PIQP", "CLARABEL", "OSQP"):
        pol = policy.replace(solver={"name": name})
        solver_cache = TemplateCache()
        times, errs, status = [], [], set()
        for h in homes:  # compile every shape first
            d = prepare(h, pol)
            solver_cache.get(d.shape_key()).update(d)
        for h, ref in zip(homes, refs, strict=True):
            # This solver alone (no fallback chain), so its own status and accuracy show.
            d = prepare(h, pol)
            tpl = solver_cache.get(d.shape_key())
            tpl.update(d)
            t0 = time.perf_counter()
            problem = tpl.problem_for(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem.solve(solver=name, **SETTINGS[name])
            times.append(time.perf_counter() - t0)
            errs.append(abs(problem.value * tpl.scale - ref) / max(abs(ref), 1e-12))
            status.add(problem.status)
        print(f"{name:10s} {median_ms(times)}   {max(errs):12.2e}                 {','.join(sorted(status))}")


if __name__ == "__main__":
    main()
