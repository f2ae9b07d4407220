"""Whole futures contracts: round the continuous overlay, then re-solve the cash trades with the
contracts fixed. With few free contracts (at most ENUMERATE), every floor/ceiling combination is
solved and the best objective kept; otherwise each rounds to the nearest whole contract."""

from __future__ import annotations

import itertools

import numpy as np

from optimizer.prepare import Prepared
from optimizer.problem import ContinuousSolution, ProblemTemplate

ENUMERATE = 3


def candidates(data: Prepared, f: np.ndarray) -> list[np.ndarray]:
    """Whole-contract vectors to try for continuous notionals ``f`` (fractions of V)."""
    ov = data.overlay
    q = f * data.V / ov.notional
    lo = np.ceil(ov.lo * data.V / ov.notional - 1e-9)
    hi = np.floor(ov.hi * data.V / ov.notional + 1e-9)
    free = [j for j in range(ov.J) if ov.lo[j] < ov.hi[j]]
    base = np.clip(np.round(q), lo, hi)
    if len(free) > ENUMERATE:
        return [base]
    options = [sorted({float(np.clip(np.floor(q[j]), lo[j], hi[j])),
                       float(np.clip(np.ceil(q[j]), lo[j], hi[j]))}) for j in free]
    out = []
    for combo in itertools.product(*options):
        c = base.copy()
        c[free] = combo
        out.append(c)
    return out


def choose(template: ProblemTemplate, data: Prepared, margins: dict,
           cont: ContinuousSolution) -> ContinuousSolution | None:
    """Fix whole contracts in ``margins["contracts"]`` and return the re-solve with the best
    objective (None when no combination is feasible)."""
    best: tuple[float, np.ndarray, ContinuousSolution] | None = None
    for cand in candidates(data, cont.f):
        margins["contracts"] = cand
        sol = template.solve(data, margins)
        if sol is not None and (best is None or sol.objective < best[0]):
            best = (sol.objective, cand, sol)
    if best is None:
        return None
    margins["contracts"] = best[1]
    return best[2]
