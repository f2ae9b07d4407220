"""The same declared Program as a readable cvxpy problem: one cvxpy Variable per block, one
constraint per row block, ``sum_squares`` per squared piece.

It is compiled by cvxpy's own canonicalization, independently of ``assemble``, so the tests use
it as the reference for the fast path, and the fallback solvers (Clarabel, which certifies
infeasibility, and OSQP) solve it when PIQP cannot.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from cvxrebalance.optimizer.domain.program import Affine, Program
from cvxrebalance.optimizer.pipeline.assemble import Outcome


class Reference:
    """A cvxpy Problem built from a Program (objective divided by ``scale``)."""

    def __init__(self, program: Program, scale: float = 1.0) -> None:
        import cvxpy as cp

        self.program, self.scale = program, scale
        self.x = {b.name: cp.Variable(b.size, name=b.name) for b in program.blocks.values()}
        cons = []
        for b in program.blocks.values():
            x = self.x[b.name]
            for edge, keep, op in ((b.lo, np.isfinite(b.lo), "ge"), (b.hi, np.isfinite(b.hi), "le")):
                if keep.any():
                    idx = np.flatnonzero(keep)
                    cons.append(x[idx] >= edge[idx] if op == "ge" else x[idx] <= edge[idx])
        for rows in program.rows:
            e = self.expr(rows.expr)
            eq = rows.lo == rows.hi
            if eq.any():
                cons.append(e[np.flatnonzero(eq)] == rows.lo[eq])
            for edge, op in ((rows.lo, "ge"), (rows.hi, "le")):
                keep = ~eq & np.isfinite(edge)
                if keep.any():
                    idx = np.flatnonzero(keep)
                    cons.append(e[idx] >= edge[idx] if op == "ge" else e[idx] <= edge[idx])
        terms = [self.expr(e)[0] for _, e in program.linear]
        terms += [cp.sum_squares(self.expr(e)) for _, e in program.squares]
        objective = cp.sum(cp.hstack(terms)) / scale if terms else cp.Constant(0.0)
        self.problem = cp.Problem(cp.Minimize(objective), cons)

    def expr(self, a: Affine):
        """An Affine as a cvxpy expression."""
        out = a.const
        for name in a.terms:
            out = out + a.matrix(name, self.program.blocks[name].size) @ self.x[name]
        return out

    def solve(self, solver: str, settings: dict) -> Outcome:
        """Solve with a cvxpy solver; the status in the words of ``assemble.Outcome``."""
        import cvxpy as cp

        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                warnings.filterwarnings("ignore", category=RuntimeWarning)
                self.problem.solve(solver=solver, **settings)
            status = self.problem.status
        except cp.error.SolverError as exc:
            status = f"error: {exc}"
        seconds = time.perf_counter() - t0
        if status == cp.OPTIMAL:
            x = np.concatenate([np.asarray(self.x[b].value, float).reshape(-1) for b in self.program.blocks])
            return Outcome("optimal", x, float(self.problem.value) * self.scale, seconds)
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return Outcome("infeasible", None, float("nan"), seconds)
        return Outcome(str(status), None, float("nan"), seconds)
