"""One rebalance's convex program: declared by the rule and cost modules, compiled to the minimal
QP and solved along the solver chain.

``declare`` collects every module's rows into one Program (the single definition of the model).
``Solver.solve`` compiles it with ``assemble`` and calls PIQP directly; when PIQP does not reach
an optimum the same Program goes through cvxpy (``reference``) to Clarabel, then OSQP. Building
the minimal QP from the household's index arrays takes a fraction of a millisecond, so nothing
is cached between households: each gets the QP of its own shape, with no padding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from cvxrebalance.constraints import default_constraints, trade_masks
from cvxrebalance.constraints.base import Model
from cvxrebalance.constraints.overlay import BOUNDS, fixed_notional
from cvxrebalance.cost_models import default_costs, factor_drift
from cvxrebalance.cost_models.alpha import largest_rate
from cvxrebalance.cost_models.location import drag
from cvxrebalance.cost_models.tax import coefficients
from cvxrebalance.optimizer.domain.errors import SolverError
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.program import Program
from cvxrebalance.optimizer.pipeline import solvers
from cvxrebalance.optimizer.pipeline.assemble import QP, Outcome, Piqp, TriviallyInfeasible, assemble

# Per unit of household value traded, in units of objective_scale (so the objective's own scale:
# the same share of it whatever the weights' or the covariance's units).
TIE_BREAK = 1e-3
ELASTIC_TOL = 1e-7  # total elastic slack below this: the policy is feasible after all


@dataclass
class ContinuousSolution:
    """Solver output in fractions of household value."""

    buy: np.ndarray  # (A, N)
    sell: np.ndarray  # (A, N), taxable positions included (the sum of their lots)
    lot_sell: np.ndarray  # (L,)
    f: np.ndarray  # (J,) overlay notional after trading
    objective: float  # in the policy's units (fractions of household value)
    solver: str
    status: str
    time_ms: float
    attempts: list[tuple[str, str]]


def objective_scale(data: Prepared) -> float:
    """Typical size of the objective's terms, so the solver sees O(1) numbers whatever the units
    of the covariance: 1e-4 times the largest of risk_weight * mean security variance, cost_weight * largest
    linear cost rate, tax_weight * largest tax rate, location_weight * largest drag,
    alpha_weight * largest |alpha| (a view's expected return per unit traded) and factor_weight *
    the factor drift's steepest variance per unit weight (``factor_drift.largest_rate``)."""
    o = data.policy.objective
    var = data.risk.factor_variance + data.risk.d**2
    sizes = [
        o.risk_weight * float(var.mean()) if var.size else 0.0,
        o.cost_weight * float(data.linear_cost.max(initial=0.0)),
        o.tax_weight * float(coefficients(data).max(initial=0.0)),
        o.location_weight * float(np.abs(drag(data)).max(initial=0.0)),
        o.alpha_weight * largest_rate(data),
        o.factor_weight * factor_drift.largest_rate(data),
    ]
    # Drifts and trades are O(0.01) of household value: scale so a 1% drift costs O(1).
    return max(max(sizes), 1e-12) * 1e-4


def tie_break(data: Prepared) -> float:
    """The tie-break's price per unit of household value traded, in the policy's objective units:
    ``TIE_BREAK`` times ``objective_scale`` (1e-7 of the largest term's rate)."""
    return TIE_BREAK * objective_scale(data)


def declare(data: Prepared, margins: dict[str, np.ndarray] | None = None) -> Model:
    """The rebalance as one Program: every rule's rows and every cost term, plus the tie-breaks."""
    m = Model(data, margins)
    for rule in default_constraints():
        rule.declare(m)
    for term in default_costs():
        term.declare(m, term.weight(data.policy))
    # Tie-break: without it a cost-free household may buy and sell at once (many optima).
    # tie_break(data) per unit traded moves the optimum negligibly. (The pro-rata pull within a
    # class is part of the tracking-error term: cost_models.tracking_error.)
    traded = m.traded.sum()
    if m.J:
        traded = traded + (m.fbuy + m.fsell).sum()
    m.program.minimize("tie_break", traded * tie_break(data))
    return m


class Solver:
    """Solves one household's program under changing ``margins`` (re-solves of the pipeline)."""

    def __init__(self, data: Prepared) -> None:
        self.data = data
        self.scale = objective_scale(data)
        self.solves = 0  # solver runs, for the summary and the benchmark
        self._elastic: tuple[tuple, Program, Outcome] | None = None  # the last elastic solve
        self._last: tuple[tuple, Program] | None = None  # the last program solved, by its key
        # The last optimal PIQP solve's margins, program, trade masks, QP and workspace (``_rebound``).
        self._warm: tuple[tuple, Program, tuple[np.ndarray, ...], QP, Piqp] | None = None
        self._workspace: tuple[QP, Piqp] | None = None  # set by every PIQP run

    def _key(self, margins: dict[str, np.ndarray] | None, skip: str = "contracts", wash: bool = True) -> tuple:
        """What shapes the program besides the household: margins (but ``skip``) and, with
        ``wash``, the wash-sale decisions."""
        blocks = (tuple(sorted(self.data.wash.block_buy)), tuple(sorted(self.data.wash.block_loss))) if wash else ()
        return (tuple(sorted((k, np.asarray(v).tobytes()) for k, v in (margins or {}).items() if k != skip)),
                *blocks)

    def solve(self, margins: dict[str, np.ndarray] | None = None,
              first_only: bool = False) -> ContinuousSolution | None:
        """Solve along the chain; None when the program is infeasible (or, with ``first_only``,
        when the first solver of the chain does not reach an optimum).

        PIQP reports primal infeasibility itself; the verdict is confirmed by the elastic
        program (every policy constraint relaxed with a penalized slack): a positive minimal
        violation proves it. If the elastic optimum violates nothing, PIQP was wrong and the chain
        goes on to Clarabel, which certifies infeasibility, then OSQP.

        Raises
        ------
        SolverError
            No solver in the chain succeeded.
        """
        margins_key = self._key(margins, skip="", wash=False)  # what the workspace was solved for
        quick = self._rebound(margins_key)
        if quick is not None:
            return quick
        program = declare(self.data, margins).program
        masks = trade_masks(self.data)  # what the program's bounds were declared from
        self._last = (self._key(margins), program)
        attempts: list[tuple[str, str]] = []
        chain = solvers.chain(self.data.policy.solver.name)
        for name in chain[:1] if first_only else chain:
            outcome = self._run(program, name)
            attempts.append((name, outcome.status))
            if outcome.status == "optimal":
                if name == "PIQP":  # its workspace serves re-solves that only close trades
                    self._warm = (margins_key, program, masks, *self._workspace)
                return self._extract(program, outcome, name, attempts)
            if outcome.status == "infeasible":
                if name in solvers.CERTIFIES_INFEASIBILITY or first_only:
                    return None
                if self.violation(margins) > ELASTIC_TOL:
                    attempts.append(("elastic", "infeasible: confirmed"))
                    return None
        if first_only:
            return None
        # Every solver failed on the program itself; the elastic program (always feasible, and
        # easier) may still prove that the policy is infeasible, which is then the verdict.
        _, elastic = self.elastic(margins)
        if elastic.status == "optimal" and elastic.objective > ELASTIC_TOL:
            attempts.append(("elastic", "infeasible: proven"))
            return None
        raise SolverError(attempts)

    def _rebound(self, margins_key: tuple) -> ContinuousSolution | None:
        """Re-solve after wash-sale decisions in the last PIQP solve's workspace when they only
        forbid trades, i.e. lower some variables' upper bounds to 0, so the QP keeps its
        structure and PIQP its symbolic factorization (``update(x_u=...)``). None when there is
        no such workspace for these margins (``margins_key``: ``_key`` without the wash state),
        when the decisions allow a trade the workspace's program forbade (a blocked primary buy
        hands its class to the next-ranked security: ``constraints.priority``), or when the
        re-solve does not reach an optimum (the full path then decides)."""
        if self._warm is None or self._warm[0] != margins_key:
            return None
        _, program, then, qp, workspace = self._warm
        now = trade_masks(self.data)
        if any((ok & ~was).any() for ok, was in zip(now, then, strict=True)):
            return None
        hi = np.concatenate([b.hi for b in program.blocks.values()])
        for name, ok in zip(("buy", "sell", "lots"), now, strict=True):
            block = program.blocks[name]
            part = hi[block.offset:block.offset + block.size]  # a view: edits land in hi
            part[~ok.ravel()] = np.minimum(part[~ok.ravel()], 0.0)
        qp.x_u = hi[qp.free]
        return self._resolve(program, qp, workspace)

    def _resolve(self, program: Program, qp: QP, workspace: Piqp) -> ContinuousSolution | None:
        """Solve again in a workspace whose QP bounds were moved in place (None: no optimum)."""
        self.solves += 1
        outcome = workspace.solve()
        if outcome.status != "optimal":
            return None
        outcome.z = qp.full(outcome.z)
        return self._extract(program, outcome, "PIQP", [("PIQP", "optimal")])

    def solve_contracts(self, margins: dict[str, np.ndarray], candidates: list[np.ndarray],
                        skip: Callable[[np.ndarray], bool] | None = None,
                        ) -> Iterator[tuple[ContinuousSolution | None, np.ndarray | None]]:
        """The program with each whole-contract vector fixed in turn, first solver only, lazily.

        Yields ``(solution, slope)`` per candidate: the solution (None: no optimum, or ``skip``
        said not to solve it) and the objective's slope in each contract's notional (fractions
        of V) at it, from the multipliers of the contract rows (None when not known). The
        optimum is convex in the fixed notionals, so each slope gives a lower bound on every
        other candidate (``contracts.choose`` prunes with it).

        With PIQP first, the program is declared once (the last solve's, with the contract rows'
        bounds moved) and assembled and set up once: between candidates only those bounds change
        (``QP.set_rows``).
        """
        def one(contracts: np.ndarray) -> ContinuousSolution | None:
            return self.solve({**margins, "contracts": contracts}, first_only=True)

        skip = skip or (lambda contracts: False)
        if not candidates or solvers.chain(self.data.policy.solver.name)[0] != "PIQP":
            yield from ((None if skip(c) else one(c), None) for c in candidates)
            return
        first = fixed_notional(self.data, candidates[0])
        if self._last is not None and self._last[0] == self._key(margins):
            program = self._last[1].with_rows(BOUNDS, first, first)  # only these bounds differ
        else:
            program = declare(self.data, {**margins, "contracts": candidates[0]}).program
        try:
            qp = assemble(program, self.scale)
        except TriviallyInfeasible:
            yield from ((None if skip(c) else one(c), None) for c in candidates)
            return
        workspace = Piqp(qp, solvers.SETTINGS["PIQP"])
        rows = qp.in_A[qp.families[BOUNDS]]  # the contract rows' places among the equalities
        for k, contracts in enumerate(candidates):
            if skip(contracts):
                yield None, None
                continue
            bounds = fixed_notional(self.data, contracts)
            if k and not qp.set_rows(BOUNDS, bounds, bounds):
                yield one(contracts), None  # a row changed kind: this candidate is assembled anew
                continue
            sol = self._resolve(program, qp, workspace)
            # PIQP's Lagrangian adds y'(Az - b): the optimum moves by -y per unit of b, in the
            # solver's scaled objective.
            slope = -workspace.duals()[rows] * qp.scale if sol is not None and (rows >= 0).all() else None
            yield sol, slope

    def _run(self, program: Program, name: str) -> Outcome:
        self.solves += 1
        scale = 1.0 if program.is_elastic else self.scale
        if name == "PIQP":
            try:
                qp = assemble(program, scale)
            except TriviallyInfeasible:
                return Outcome("infeasible", None, float("nan"), 0.0)
            workspace = Piqp(qp, solvers.SETTINGS["PIQP"])
            self._workspace = (qp, workspace)
            out = workspace.solve()
            if out.z is not None:
                out.z = qp.full(out.z)
            return out
        from cvxrebalance.optimizer.pipeline.reference import Reference

        return Reference(program, scale).solve(name, solvers.SETTINGS[name])

    def _extract(self, program: Program, outcome: Outcome, name: str,
                 attempts: list[tuple[str, str]]) -> ContinuousSolution:
        d = self.data
        x = outcome.z
        part = {b.name: x[b.offset:b.offset + b.size] for b in program.blocks.values()}
        clean = lambda v: np.maximum(np.asarray(v, float), 0.0)  # noqa: E731  (solver noise below zero)
        lots = clean(part["lots"])
        by_lot = d.lots_by_position(lots)
        sell = clean(part["sell"]).reshape(d.A, d.N) + by_lot
        f = d.overlay.f0 + part["fbuy"] - part["fsell"] if d.overlay.J else np.zeros(0)
        return ContinuousSolution(clean(part["buy"]).reshape(d.A, d.N), sell, lots, f,
                                  outcome.objective, name, outcome.status, outcome.seconds * 1e3,
                                  attempts)

    def elastic(self, margins: dict[str, np.ndarray] | None = None,
                hard: frozenset[str] = frozenset()) -> tuple[Program, Outcome]:
        """Solve the elastic program (always feasible): the least total violation of the policy's
        constraints, PIQP first, then the cvxpy chain. Confirming an infeasibility and naming its
        conflicts ask for the same solve; it runs once per margins and wash-sale decisions.

        ``hard``: labels held as they are (the program may then be infeasible; the first solver
        of the chain only, and not kept for the next call)."""
        key = self._key(margins, skip="")
        if not hard and self._elastic is not None and self._elastic[0] == key:
            return self._elastic[1], self._elastic[2]
        program = declare(self.data, margins).program.elastic(hard)
        out = Outcome("not run", None, float("nan"), 0.0)
        chain = solvers.chain(self.data.policy.solver.name)
        for name in chain[:1] if hard else chain:
            out = self._run(program, name)
            if out.status == "optimal":
                break
        if not hard:
            self._elastic = (key, program, out)
        return program, out

    def violation(self, margins: dict[str, np.ndarray] | None = None) -> float:
        """The elastic program's optimum: 0 when the policy is feasible."""
        _, out = self.elastic(margins)
        return out.objective if out.status == "optimal" else float("inf")

    def conflicts(self, margins: dict[str, np.ndarray] | None = None, tol: float = 1e-7,
                  hard: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """The constraints that had to give in the elastic program, and by how much, largest
        first (``hard``: labels held, see ``elastic``; none found if that is infeasible)."""
        program, out = self.elastic(margins, hard)
        if out.status != "optimal":
            return []
        found = []
        for b in program.blocks.values():
            if b.name.startswith("slack:"):
                for label, amount in zip(b.lo_labels, out.z[b.offset:b.offset + b.size], strict=True):
                    if amount > tol:
                        found.append((label, float(amount)))
        merged: dict[str, float] = {}
        for label, amount in found:  # a two-sided row (net limit) has one label for both sides
            merged[label] = merged.get(label, 0.0) + amount
        return sorted(merged.items(), key=lambda x: -x[1])
