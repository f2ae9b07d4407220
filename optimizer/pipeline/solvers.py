"""Solver settings and the fallback chain.

The order was chosen by measurement on our own problem (``python benchmarks/bench_rebalance.py
--runs 7``, 100 securities, 3 accounts, 500 lots, medians; error relative to the objective's
unit against a tight Clarabel solve): PIQP directly on the minimal QP 3.4 ms at 2.7e-11,
Clarabel through the cvxpy reference 19.4 ms at 1.9e-10, OSQP 4.4 ms at 1.4e-7 (and it does not
converge on every household: the example case's linear location term). So PIQP first, Clarabel
second, OSQP last with an iteration cap so a fallback cannot take seconds.
PIQP's "infeasible" is confirmed by the elastic program (optimizer.pipeline.problem); Clarabel
certifies infeasibility itself.
"""

from __future__ import annotations

CHAIN = ("PIQP", "CLARABEL", "OSQP")

# Full-accuracy settings: objective within ~1e-8 relative of a tight reference solve.
SETTINGS: dict[str, dict] = {
    # PIQP (called directly on the minimal QP, optimizer.pipeline.assemble) converges in 15-30
    # iterations on our problems; the cap of 80 ends a struggling solve early so the chain moves on.
    "PIQP": {"eps_abs": 1e-10, "eps_rel": 1e-10, "eps_duality_gap_abs": 1e-10, "eps_duality_gap_rel": 1e-10,
             "max_iter": 80},
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "warm_start": False},
    "OSQP": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iter": 20_000, "polishing": True, "warm_start": True},
}
CERTIFIES_INFEASIBILITY = {"CLARABEL", "OSQP"}


def chain(name: str) -> list[str]:
    """Solvers to try in order: the named one first (``auto``: the measured default), then the rest."""
    name = name.upper()
    first = CHAIN[0] if name == "AUTO" else name
    return [first, *(s for s in CHAIN if s != first)]
