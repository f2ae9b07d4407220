"""Solver settings and the fallback chain.

The default order was chosen by measurement on our own problem (benchmarks/solvers.py): the fastest
solver that reaches full accuracy comes first. PIQP cannot certify infeasibility (it runs into its
iteration limit), so an infeasible problem falls through to Clarabel or OSQP, which certify it.
"""

from __future__ import annotations

import cvxpy as cp

CHAIN = ("PIQP", "CLARABEL", "OSQP")

# Full-accuracy settings: objective within ~1e-8 relative of a tight reference solve.
SETTINGS: dict[str, dict] = {
    "PIQP": {"eps_abs": 1e-9, "eps_rel": 1e-9},
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9},
    "OSQP": {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iter": 200_000, "polishing": True},
}
CERTIFIES_INFEASIBILITY = {"CLARABEL", "OSQP"}
INFEASIBLE = {cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE}


def chain(name: str) -> list[str]:
    """Solvers to try in order: the named one first (``auto``: the measured default), then the rest."""
    name = name.upper()
    first = CHAIN[0] if name == "AUTO" else name
    return [first, *(s for s in CHAIN if s != first)]
