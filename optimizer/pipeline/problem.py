"""One cvxpy problem per problem *shape*, built once from the constraint and cost modules and
re-solved with new Parameter values (DPP), so households of the same shape share the compile.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints import default_constraints
from cvxrebalance.constraints.base import Context, shared_parameters
from cvxrebalance.cost_models import default_costs
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.pipeline import solvers

TIE_BREAK = 1e-7  # per unit of household value traded, in objective units


@dataclass
class ContinuousSolution:
    """Solver output in fractions of household value."""

    buy: np.ndarray
    sell: np.ndarray
    lot_sell: np.ndarray  # (T, N, K)
    f: np.ndarray  # (J,) overlay notional after trading
    objective: float  # in the policy's units (fractions of household value)
    solver: str
    status: str
    time_ms: float
    attempts: list[tuple[str, str]]


def objective_scale(data: Prepared) -> float:
    """Typical size of the objective's terms, so the solver sees O(1) numbers whatever the units
    of the covariance: 1e-4 times the largest of risk_weight * mean security variance, cost_weight * largest
    linear cost rate, tax_weight * largest tax rate and location_weight * largest drag."""
    from cvxrebalance.cost_models.location import drag
    from cvxrebalance.cost_models.tax import coefficients

    o = data.policy.objective
    var = (data.risk_M**2).sum(1) + data.risk_d**2
    sizes = [
        o.risk_weight * float(var.mean()) if var.size else 0.0,
        o.cost_weight * float(data.linear_cost.max()),
        o.tax_weight * float(coefficients(data).max(initial=0.0)),
        o.location_weight * float(np.abs(drag(data)).max(initial=0.0)),
    ]
    # Drifts and trades are O(0.01) of household value: scale so a 1% drift costs O(1).
    return max(max(sizes), 1e-12) * 1e-4


class ProblemTemplate:
    """A compiled problem for one shape; ``solve(data)`` sets parameters and solves.

    Parameters
    ----------
    key : tuple
        ``Prepared.shape_key()``: (A, N, C, K, risk rank, taxable account indices, contracts).
    elastic : bool
        Build the elastic (phase-one) version that minimizes the violation of policy constraints,
        used to name the constraints of an infeasible policy.
    """

    def __init__(self, key: tuple, elastic: bool = False) -> None:
        A, N, C, K, r, taxable, J = key
        self.key = key
        self.elastic = elastic
        self.constraints = default_constraints()
        self.costs = default_costs()
        ctx = Context(A, N, C, K, tuple(taxable), risk_rank=r, J=J, elastic=elastic)
        cons: list[cp.Constraint] = []
        for m in self.constraints:
            cons += m.build(ctx)
        terms = [c.build(ctx) for c in self.costs]
        # Tie-break: without it a cost-free household may buy and sell at once (many optima).
        # TIE_BREAK per unit traded moves the optimum negligibly. (The pro-rata pull within a
        # class is part of the tracking-error term: cvxrebalance.cost_models.tracking_error.)
        traded = cp.sum(ctx.buy) + cp.sum(ctx.sell)
        if J:
            traded = traded + cp.sum(ctx.fbuy) + cp.sum(ctx.fsell)
        terms.append(ctx.param("tie_break", (), nonneg=True) * traded)
        cons += ctx.extra_constraints
        # The elastic version minimizes the total relaxation of the policy constraints.
        slack = [cp.sum(v) for v, _ in ctx.slacks.values()]
        objective = cp.sum(cp.hstack(slack)) if elastic else cp.sum(cp.hstack(terms))
        self.ctx = ctx
        self.problem = cp.Problem(cp.Minimize(objective), cons)
        # One cvxpy Problem per solver over the same variables and parameters: cvxpy keeps one
        # compiled program per Problem, so a fallback to another solver would otherwise
        # recompile (about 0.1 s) on every switch.
        self._per_solver: dict[str, cp.Problem] = {}
        self.scale = 1.0

    def update(self, data: Prepared, margins: dict[str, np.ndarray] | None = None) -> None:
        """Set every Parameter from a household's data."""
        margins = margins or {}
        values = shared_parameters(data)
        for m in self.constraints:
            values.update(m.parameters(data, margins))
        self.scale = objective_scale(data)
        for c in self.costs:
            values.update(c.parameters(data, c.weight(data.policy) / self.scale))
        values["tie_break"] = np.array(TIE_BREAK / self.scale)
        for name, p in self.ctx.params.items():
            p.value = np.asarray(values[name], dtype=float).reshape(p.shape)

    def solve(self, data: Prepared, margins: dict[str, np.ndarray] | None = None,
              first_only: bool = False) -> ContinuousSolution | None:
        """Solve along the fallback chain; None when a solver certifies infeasibility (or, with
        ``first_only``, when the first solver of the chain does not succeed).

        Raises
        ------
        SolverError
            No solver in the chain succeeded.
        """
        from cvxrebalance.optimizer.domain.errors import SolverError

        self.update(data, margins)
        attempts: list[tuple[str, str]] = []
        chain = solvers.chain(data.policy.solver.name)
        for name in chain[:1] if first_only else chain:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    # An inaccurate solve is reported by its status and falls through the chain.
                    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                    # A solver stopped at its iteration cap may leave huge values behind.
                    warnings.filterwarnings("ignore", category=RuntimeWarning)
                    problem = self.problem_for(name)
                    problem.solve(solver=name, **solvers.SETTINGS[name])
                status = problem.status
            except cp.error.SolverError as exc:
                status = f"error: {exc}"
            ms = (time.perf_counter() - t0) * 1e3
            attempts.append((name, status))
            if status == cp.OPTIMAL:
                return self._extract(problem, name, status, ms, attempts)
            if status in solvers.INFEASIBLE and name in solvers.CERTIFIES_INFEASIBILITY:
                return None
        if first_only:
            return None
        raise SolverError(attempts)

    def problem_for(self, solver: str) -> cp.Problem:
        """The cvxpy Problem this template solves with ``solver`` (compiled for it once)."""
        if solver not in self._per_solver:
            first = not self._per_solver
            self._per_solver[solver] = self.problem if first else cp.Problem(
                self.problem.objective, self.problem.constraints)
        return self._per_solver[solver]

    def _extract(self, problem, name, status, ms, attempts) -> ContinuousSolution:
        ctx = self.ctx
        lot = np.array([v.value for v in ctx.lot_sell]) if ctx.lot_sell else np.zeros((0, ctx.N, ctx.K))
        clean = lambda x: np.maximum(np.asarray(x), 0.0)  # noqa: E731  (solver noise below zero)
        value = float(problem.value) * (1.0 if self.elastic else self.scale)
        f = np.asarray(ctx.f_after.value, float).reshape(-1) if ctx.J else np.zeros(0)
        return ContinuousSolution(clean(ctx.buy.value), clean(ctx.sell.value), clean(lot), f, value,
                                  name, status, ms, attempts)

    def conflicts(self, tol: float = 1e-7) -> list[tuple[str, float]]:
        """After an elastic solve: the constraints that had to give, and by how much."""
        out = []
        for var, labels in self.ctx.slacks.values():
            for label, amount in zip(labels, np.atleast_1d(var.value), strict=True):
                if amount > tol:
                    out.append((label, float(amount)))
        return sorted(out, key=lambda x: -x[1])


class TemplateCache:
    """Compiled problems by shape: pass one to ``rebalance`` to reuse compiles across households."""

    def __init__(self) -> None:
        self._templates: dict[tuple, ProblemTemplate] = {}

    def get(self, key: tuple, elastic: bool = False) -> ProblemTemplate:
        k = (key, elastic)
        if k not in self._templates:
            self._templates[k] = ProblemTemplate(key, elastic)
        return self._templates[k]

    def __len__(self) -> int:
        return len(self._templates)
