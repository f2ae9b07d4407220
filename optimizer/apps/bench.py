"""``cvxrebalance bench``: the library against the bare solver on synthetic households.

For each household, in the same run: the whole ``rebalance`` (what a batch worker does per
household), the pipeline's solve call (declare the rows, assemble the minimal QP, PIQP), and
PIQP alone on that minimal QP (setup + solve: the floor), plus the objective's error against a
tight Clarabel solve of the cvxpy reference. Medians over the households, and ratios to the bare
solve; this is the speed measurement, never a timed test. BLAS is pinned to one thread.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.pipeline import solvers
from cvxrebalance.optimizer.pipeline.assemble import assemble, solve_piqp
from cvxrebalance.optimizer.pipeline.problem import declare, objective_scale
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
from cvxrebalance.optimizer.pipeline.reference import Reference
from cvxrebalance.scenarios.synthetic import synthetic_accounts, synthetic_universe

POLICY = {"tax": {"as_of": "2026-11-20"}, "overlay": {"compare_cash_only": False}}
TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}


def households(args) -> list[Household]:
    """``args.households`` synthetic households sharing one universe."""
    universe = synthetic_universe(args.securities, args.contracts, seed=0)
    out = []
    for k in range(args.households):
        acc, hol, fut = synthetic_accounts(universe, args.accounts, args.lots, seed=k)
        out.append(Household.from_frames(universe.securities, acc, hol, universe.targets,
                                         covariance=universe.covariance, futures=fut,
                                         specific_variance=universe.specific_variance, name=f"h{k}"))
    return out


def measure(args) -> dict:
    """The figures of one run, as a dict (what ``--json`` prints)."""
    policy = Policy.from_dict(POLICY)
    homes = households(args)
    rebalance(homes[0], policy)  # imports and first-call costs are not part of a household's time
    full, solve, bare, errors, solves, sizes = [], [], [], [], [], []
    for h in homes:
        t0 = time.perf_counter()
        result = rebalance(h, policy)
        full.append(time.perf_counter() - t0)
        solves.append(result.summary["solver"]["solves"])
        data = prepare(h, policy)
        t0 = time.perf_counter()
        scale = objective_scale(data)
        program = declare(data).program
        qp = assemble(program, scale)
        out = solve_piqp(qp, solvers.SETTINGS["PIQP"])
        solve.append(time.perf_counter() - t0)
        bare.append(solve_piqp(qp, solvers.SETTINGS["PIQP"]).seconds)
        sizes.append((qp.free.size, qp.A.shape[0] + qp.G.shape[0], qp.A.nnz + qp.G.nnz + qp.P.nnz))
        reference = Reference(program, scale).solve("CLARABEL", TIGHT)
        errors.append(abs(out.objective - reference.objective) / max(abs(reference.objective), scale))
    med = {k: statistics.median(v) * 1e3 for k, v in (("full", full), ("solve", solve), ("bare", bare))}
    figures = {
        "config": {"households": args.households, "securities": args.securities, "accounts": args.accounts,
                   "lots": args.lots, "contracts": args.contracts, "solver": "PIQP"},
        "rebalance_ms": med["full"], "solve_ms": med["solve"], "bare_ms": med["bare"],
        "rebalance_over_bare": med["full"] / med["bare"], "solve_over_bare": med["solve"] / med["bare"],
        "households_per_s": 1e3 / med["full"],
        "solves_per_household": statistics.mean(solves),
        "qp_variables": int(np.median([s[0] for s in sizes])), "qp_rows": int(np.median([s[1] for s in sizes])),
        "qp_nonzeros": int(np.median([s[2] for s in sizes])),
        "objective_error_max": max(errors), "objective_error_median": float(np.median(errors)),
    }
    if args.batch:
        figures["batch"] = _bench_batch(args)
    return figures


def main(args) -> int:
    figures = measure(args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    c = figures["config"]
    print(f"{c['households']} households: {c['securities']} securities, {c['accounts']} accounts, {c['lots']} lots, "
          f"{c['contracts']} contracts; medians; minimal QP {figures['qp_variables']} variables, "
          f"{figures['qp_rows']} rows, {figures['qp_nonzeros']} nonzeros")
    rows = [
        ("rebalance()", figures["rebalance_ms"], f"{figures['households_per_s']:7.1f} households/s",
         figures["rebalance_over_bare"]),
        ("solve call (rows, assembly, PIQP)", figures["solve_ms"], "", figures["solve_over_bare"]),
        ("bare PIQP on the minimal QP", figures["bare_ms"], "", 1.0),
    ]
    for name, ms, extra, ratio in rows:
        print(f"  {name:36s}{ms:8.2f} ms  {extra:20s}{ratio:6.2f}x bare")
    print(f"  solves per household {figures['solves_per_household']:.2f}; objective error vs tight Clarabel "
          f"(relative to the objective's unit): max {figures['objective_error_max']:.1e}, "
          f"median {figures['objective_error_median']:.1e}")
    if "batch" in figures:
        b = figures["batch"]
        print(f"batch of {b['households']} households ({b['workers']} workers): {b['households_per_s']:.1f} "
              f"households/s end to end (read {b['read_s']:.1f} s, rebalance {b['run_s']:.1f} s, "
              f"combine {b['combine_s']:.1f} s), {b['failed']} failed")
    return 0


def _bench_batch(args) -> dict:
    """Write ``args.batch`` households as a batch input and time ``run_batch`` on it."""
    from cvxrebalance.optimizer.apps.executors import run_batch

    universe = synthetic_universe(args.securities, 0, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        in_dir = Path(tmp) / "in"
        write_batch_input(in_dir, universe, args.batch, args.accounts, args.lots)
        t0 = time.perf_counter()
        man = run_batch(in_dir, Path(tmp) / "out", workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        t, c = man["timings"], man["counts"]
        return {"households": c["households"], "workers": man["workers"], "households_per_s": c["households"] / wall,
                "read_s": t["read_seconds"], "run_s": t["run_seconds"], "combine_s": t["combine_seconds"],
                "failed": c["failed"]}


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
        # Custodian account numbers, distinct across the book, as a firm's book has them.
        accounts.append(acc.assign(household_id=f"h{k:05d}",
                                   account_number=[f"{k:05d}{j:03d}" for j in range(len(acc))]))
        holdings.append(hol.assign(household_id=f"h{k:05d}"))
    pd.concat(accounts).to_csv(in_dir / "accounts.csv", index=False)
    pd.concat(holdings).to_csv(in_dir / "holdings.csv", index=False)
    (in_dir / "policy.toml").write_text('[tax]\nas_of = 2026-11-20\n')
