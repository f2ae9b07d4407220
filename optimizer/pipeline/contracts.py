"""Whole futures contracts: round the continuous overlay, then re-solve the cash trades with the
contracts fixed. With few free contracts (at most ENUMERATE), every floor/ceiling combination is
a candidate; otherwise each rounds to the nearest whole contract. A contract within NEAR of a
whole number is not enumerated. All candidates share one declared program and one PIQP
workspace (between them only the contract rows' bounds move); they are solved from the most
promising down, and those a convexity bound shows cannot win are skipped (``choose``)."""

from __future__ import annotations

import itertools

import numpy as np

from cvxrebalance.constraints.overlay import fixed_notional
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.pipeline.problem import ContinuousSolution, Solver

ENUMERATE = 3
NEAR = 0.05
# A lower bound must pass the best objective by this much (x the objective's scale) to skip a
# candidate: the multipliers carry the solver's tolerance.
PRUNE_TOL = 1e-6


def _bounds(data: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Whole-contract bounds from the notional bounds."""
    ov = data.overlay
    return (np.ceil(ov.lo * data.V / ov.notional - 1e-9), np.floor(ov.hi * data.V / ov.notional + 1e-9))


def _within_caps(data: Prepared, contracts: np.ndarray) -> bool:
    """Whether whole ``contracts`` keep every counterparty's gross notional within its cap (a
    rounding up can pass it, by less than a solver's tolerance but more than the checker's)."""
    ov = data.overlay
    caps = ov.counterparty_caps(data.policy)
    if not caps:
        return True
    gross = ov.counterparty_matrix(list(caps)) @ np.abs(contracts * ov.notional)
    return bool(np.all(gross <= np.array(list(caps.values())) * data.V * (1 + 1e-12)))


def ruled_out(data: Prepared, f: np.ndarray) -> list[tuple[str, float]]:
    """The counterparty caps that ruled roundings of ``f`` out (``candidates``), each with the
    least amount a rounding passed it by (fractions of V), in the labels of the program's rows."""
    ov = data.overlay
    caps = ov.counterparty_caps(data.policy)
    past: dict[str, float] = {}
    for c in _roundings(data, f) if caps else ():
        gross = ov.counterparty_matrix(list(caps)) @ np.abs(c * ov.notional) / data.V
        for name, g, cap in zip(caps, gross, caps.values(), strict=True):
            if g > cap * (1 + 1e-12):
                label = f"overlay.counterparty_limit[{name}]"
                past[label] = min(past.get(label, np.inf), float(g - cap))
    return sorted(past.items())


def candidates(data: Prepared, f: np.ndarray) -> list[np.ndarray]:
    """Whole-contract vectors to try for continuous notionals ``f`` (fractions of V): the
    roundings that keep the counterparty caps, and the rounding toward zero (which keeps them
    whenever ``f`` does) if none does."""
    out = [c for c in _roundings(data, f) if _within_caps(data, c)]
    if not out:
        lo, hi = _bounds(data)
        out = [np.clip(np.trunc(f * data.V / data.overlay.notional), lo, hi)]
    return out


def _roundings(data: Prepared, f: np.ndarray) -> list[np.ndarray]:
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


def rank(data: Prepared, cont: ContinuousSolution, options: list[np.ndarray]) -> list[np.ndarray]:
    """Candidates from likely best to likely worst: the objective's overlay part with the cash
    trades held at the continuous optimum (risk_weight x tracking variance, from
    cost_models.tracking_error, plus cost_weight x the contracts' trading cost, less
    alpha_weight x the views' expected return on the notional traded). Only an order
    to solve them in: a good first incumbent lets ``choose`` prune the rest."""
    from cvxrebalance.cost_models.tracking_error import variance

    o, ov = data.policy.objective, data.overlay
    weights = data.h0.sum(0) + (cont.buy - cont.sell).sum(0)
    cash = float(data.cash0.sum() - (cont.buy - cont.sell).sum())

    def score(contracts: np.ndarray) -> float:
        f = contracts * ov.notional / data.V
        return (o.risk_weight * variance(data, weights, cash, f)
                + o.cost_weight * float(ov.cost_rate @ np.abs(f - ov.f0))
                - o.alpha_weight * float(data.alpha_f @ (f - ov.f0)))

    return sorted(options, key=score)


def choose(solver: Solver, data: Prepared, margins: dict,
           cont: ContinuousSolution) -> ContinuousSolution | None:
    """Fix whole contracts in ``margins["contracts"]`` and return the re-solve with the best
    objective (None when no candidate is feasible).

    Candidates are solved in ``rank`` order, in one PIQP workspace (``Solver.solve_contracts``).
    A candidate is skipped when a lower bound on its optimum already reaches the best found:
    the optimum v is convex in the fixed notionals n, so every solved candidate k with slope g_k
    gives v(n) >= v_k + g_k'(n - n_k) (a supporting hyperplane, as in Benders cuts). Skipping
    is exact: a skipped candidate cannot beat the one kept.

    Candidates are screened with the first solver of the chain only: one it cannot solve is
    usually infeasible (rounding up broke the margin or a limit), and certifying that with a
    second solver costs more than the rest of the rebalance. Only if no candidate solves does
    the nearest rounding get the full chain.
    """
    best: tuple[float, np.ndarray, ContinuousSolution] | None = None
    cuts: list[tuple[float, np.ndarray, np.ndarray]] = []
    margin = PRUNE_TOL * solver.scale

    def dominated(contracts: np.ndarray) -> bool:
        n = fixed_notional(data, contracts)
        return best is not None and any(v + g @ (n - nk) >= best[0] + margin for v, g, nk in cuts)

    options = rank(data, cont, candidates(data, cont.f))
    for cand, (sol, slope) in zip(options, solver.solve_contracts(margins, options, dominated), strict=True):
        if sol is None:
            continue
        if slope is not None:
            cuts.append((sol.objective, slope, fixed_notional(data, cand)))
        if best is None or sol.objective < best[0]:
            best = (sol.objective, cand, sol)
    if best is None:
        margins["contracts"] = candidates(data, cont.f)[0]
        return solver.solve(margins)
    margins["contracts"] = best[1]
    return best[2]
