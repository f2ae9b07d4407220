"""``cvxrebalance bench``: the library against the bare solver on synthetic households.

For each household: the whole ``rebalance`` on a warm template (what a batch worker does), the
cvxpy solve call alone, and PIQP called directly on the very matrices cvxpy hands it (setup and
solve: the floor), plus the objective error against a tight Clarabel solve. Medians over the
households; this is the speed measurement, never a timed test.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np

from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.pipeline.problem import TemplateCache
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
from cvxrebalance.optimizer.pipeline.solvers import SETTINGS
from cvxrebalance.scenarios.synthetic import synthetic_accounts, synthetic_universe

POLICY = {"tax": {"as_of": "2026-11-20"}, "overlay": {"compare_cash_only": False}}


def bare_piqp(problem: cp.Problem) -> tuple[float, float]:
    """Seconds for PIQP's setup + solve on the problem's current data, and its objective."""
    import cvxpy.settings as s
    import piqp

    data, _, _ = problem.get_problem_data(cp.PIQP)
    solver = piqp.SparseSolver()
    for key, value in SETTINGS["PIQP"].items():
        if key != "warm_start":  # a cvxpy option, not a PIQP setting
            setattr(solver.settings, key, value)
    t0 = time.perf_counter()
    kwargs = {"P": data[s.P], "c": data[s.Q], "A": data[s.A], "b": data[s.B], "G": data[s.F], "h_u": data[s.G]}
    if data.get(s.LOWER_BOUNDS) is not None:
        kwargs["x_l"] = data[s.LOWER_BOUNDS]
    if data.get(s.UPPER_BOUNDS) is not None:
        kwargs["x_u"] = data[s.UPPER_BOUNDS]
    solver.setup(**kwargs)
    solver.solve()
    return time.perf_counter() - t0, float(solver.result.info.primal_obj)


def main(args) -> int:
    policy = Policy.from_dict(POLICY)
    universe = synthetic_universe(args.securities, args.contracts, seed=0)
    from cvxrebalance.optimizer.domain.household import Household

    homes = []
    for k in range(args.households):
        acc, hol, fut = synthetic_accounts(universe, args.accounts, args.lots, seed=k)
        homes.append(Household.from_frames(universe.securities, acc, hol, universe.targets,
                                           covariance=universe.covariance, futures=fut,
                                           specific_variance=universe.specific_variance, name=f"h{k}"))
    cache = TemplateCache()
    full, call, bare, errors = [], [], [], []
    for h in homes:
        rebalance(h, policy, cache=cache)  # compile each shape before timing
    for h in homes:
        t0 = time.perf_counter()
        rebalance(h, policy, cache=cache)
        full.append(time.perf_counter() - t0)
        data = prepare(h, policy)
        tpl = cache.get(data.shape_key())
        tpl.update(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            piqp_problem = tpl.problem_for("PIQP")
            t0 = time.perf_counter()
            piqp_problem.solve(solver="PIQP", **SETTINGS["PIQP"])
            call.append(time.perf_counter() - t0)
            value = piqp_problem.value
            bare.append(bare_piqp(piqp_problem)[0])
            reference = tpl.problem_for("CLARABEL")
            reference.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
            errors.append(abs(value - reference.value) / max(abs(reference.value), 1e-12))
    med = {k: statistics.median(v) for k, v in (("full", full), ("call", call), ("bare", bare))}
    print(f"{args.households} households: {args.securities} securities, {args.accounts} accounts, "
          f"{args.lots} lots, {args.contracts} contracts; {len(cache)} compiled shape(s); medians")
    rows = [
        ("rebalance() on a warm template", f"{1e3 * med['full']:8.2f} ms", f"{1 / med['full']:7.1f} households/s",
         f"{med['full'] / med['bare']:5.2f}x bare"),
        ("cvxpy solve call (PIQP)", f"{1e3 * med['call']:8.2f} ms", "", f"{med['call'] / med['bare']:5.2f}x bare"),
        ("bare PIQP (setup + solve)", f"{1e3 * med['bare']:8.2f} ms", "", "1.00x"),
    ]
    for r in rows:
        print(f"  {r[0]:32s}{r[1]}  {r[2]:20s}{r[3]}")
    print(f"  objective error vs tight Clarabel (relative): max {max(errors):.2e}, median {np.median(errors):.2e}")
    print("  (x bare: time over bare PIQP's setup + solve on the same matrices; rebalance() also reads and\n"
          "   checks the household, re-solves for wash sales, whole contracts and limits crossed by\n"
          "   rounding, rounds, verifies and builds the result)")
    if args.batch:
        _bench_batch(args, universe)
    return 0


def _bench_batch(args, universe) -> None:
    """Write ``args.batch`` households as a batch input and time ``run_batch`` on it."""
    from cvxrebalance.optimizer.apps.executors import run_batch

    with tempfile.TemporaryDirectory() as tmp:
        in_dir = Path(tmp) / "in"
        write_batch_input(in_dir, universe, args.batch, args.accounts, args.lots)
        man = run_batch(in_dir, Path(tmp) / "out", workers=args.workers, progress=False)
        t, c = man["timings"], man["counts"]
        print(f"batch of {c['households']} households ({man['workers']} workers): "
              f"{c['households'] / t['wall_seconds']:.1f} households/s end to end "
              f"(read {t['read_seconds']:.1f} s, rebalance {t['run_seconds']:.1f} s, "
              f"combine {t['combine_seconds']:.1f} s), {c['failed']} failed")


def write_batch_input(in_dir: Path, universe, n: int, n_accounts: int, n_lots: int) -> None:
    """A batch IN_DIR of ``n`` synthetic households sharing ``universe``."""
    import pandas as pd

    in_dir.mkdir(parents=True, exist_ok=True)
    universe.securities.to_csv(in_dir / "securities.csv", index=False)
    universe.targets.to_csv(in_dir / "targets.csv", index=False)
    universe.covariance.to_csv(in_dir / "covariance.csv", index=False)
    accounts, holdings = [], []
    for k in range(n):
        acc, hol, _ = synthetic_accounts(universe, n_accounts, n_lots, seed=k)
        accounts.append(acc.assign(household_id=f"h{k:05d}"))
        holdings.append(hol.assign(household_id=f"h{k:05d}"))
    pd.concat(accounts).to_csv(in_dir / "accounts.csv", index=False)
    pd.concat(holdings).to_csv(in_dir / "holdings.csv", index=False)
    (in_dir / "policy.toml").write_text('[tax]\nas_of = 2026-11-20\n')
