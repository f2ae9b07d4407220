"""Solver settings and the fallback chain.

The order was chosen by measurement on our own problem (``python benchmarks/bench_rebalance.py``,
100 securities, 3 accounts, 500 lots, medians of 9 households, warm template):
PIQP 11 ms at 5e-8 relative objective error, Clarabel 26 ms at 2e-9, OSQP never reached 1e-6
accuracy (20,000 iterations, 1 s, still 0.3-100% off depending on scaling). So PIQP first,
Clarabel second, OSQP last with an iteration cap so a fallback cannot take seconds.
PIQP cannot certify infeasibility (it runs into its iteration limit), so an infeasible problem
falls through to Clarabel, which certifies it.
"""

from __future__ import annotations

import cvxpy as cp

CHAIN = ("PIQP", "CLARABEL", "OSQP")

# Full-accuracy settings: objective within ~1e-8 relative of a tight reference solve.
SETTINGS: dict[str, dict] = {
    # PIQP converges in 15-30 iterations on our problems; a cap of 80 lets an infeasible problem
    # (which PIQP cannot certify) fall through to Clarabel quickly instead of after 250.
    # warm_start=False: cvxpy's PIQP warm-start path (solver.update on the cached workspace) left
    # PIQP at its iteration limit on re-solves of a template with new data (found by
    # `cvxrebalance bench`); an interior-point method gains nothing from it anyway.
    "PIQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 80, "warm_start": False},
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "warm_start": False},
    "OSQP": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iter": 20_000, "polishing": True, "warm_start": True},
}
CERTIFIES_INFEASIBILITY = {"CLARABEL", "OSQP"}
INFEASIBLE = {cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE}


def chain(name: str) -> list[str]:
    """Solvers to try in order: the named one first (``auto``: the measured default), then the rest."""
    name = name.upper()
    first = CHAIN[0] if name == "AUTO" else name
    return [first, *(s for s in CHAIN if s != first)]
