"""Whole futures contracts: round the continuous overlay, then re-solve the cash trades with the
contracts fixed. With few free contracts (at most ENUMERATE), every floor/ceiling combination is
a candidate; otherwise each rounds to the nearest whole contract. A contract within NEAR of a
whole number is not enumerated. All candidates share one declared program and one PIQP
workspace: between them only the contract rows' bounds move.

Ranking candidates instead, by the objective with the cash trades held at the continuous optimum,
found the best first on 40 of 40 synthetic households but fourth of eight on the bundled
``overlay`` case (there the cash trades re-optimize around the hedge), so every candidate is
still solved."""

from __future__ import annotations

import itertools

import numpy as np

from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.pipeline.problem import ContinuousSolution, Solver

ENUMERATE = 3
NEAR = 0.05


def _bounds(data: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Whole-contract bounds from the notional bounds."""
    ov = data.overlay
    return (np.ceil(ov.lo * data.V / ov.notional - 1e-9), np.floor(ov.hi * data.V / ov.notional + 1e-9))


def candidates(data: Prepared, f: np.ndarray) -> list[np.ndarray]:
    """Whole-contract vectors to try for continuous notionals ``f`` (fractions of V)."""
    ov = data.overlay
    q = f * data.V / ov.notional
    lo, hi = _bounds(data)
    free = [j for j in range(ov.J) if ov.lo[j] < ov.hi[j]]
    base = np.clip(np.round(q), lo, hi)
    if len(free) > ENUMERATE:
        return [base]
    # A contract within NEAR of a whole number is that number (the other side is solver noise).
    options = [[float(base[j])] if abs(q[j] - np.round(q[j])) < NEAR else
               sorted({float(np.clip(np.floor(q[j]), lo[j], hi[j])),
                       float(np.clip(np.ceil(q[j]), lo[j], hi[j]))}) for j in free]
    out = []
    for combo in itertools.product(*options):
        c = base.copy()
        c[free] = combo
        out.append(c)
    return out


def choose(solver: Solver, data: Prepared, margins: dict,
           cont: ContinuousSolution) -> ContinuousSolution | None:
    """Fix whole contracts in ``margins["contracts"]`` and return the re-solve with the best
    objective (None when no candidate is feasible).

    Candidates are screened with the first solver of the chain only, in one PIQP workspace
    (``Solver.solve_contracts``): one it cannot solve is usually infeasible (rounding up broke
    the margin or a limit), and certifying that with a second solver costs more than the rest of
    the rebalance. Only if no candidate solves does the nearest rounding get the full chain.
    """
    best: tuple[float, np.ndarray, ContinuousSolution] | None = None
    options = candidates(data, cont.f)
    for cand, sol in zip(options, solver.solve_contracts(margins, options), strict=True):
        if sol is not None and (best is None or sol.objective < best[0]):
            best = (sol.objective, cand, sol)
    if best is None:
        nearest = np.clip(np.round(cont.f * data.V / data.overlay.notional), *_bounds(data))
        margins["contracts"] = nearest
        return solver.solve(margins)
    margins["contracts"] = best[1]
    return best[2]
