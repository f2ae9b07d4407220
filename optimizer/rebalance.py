"""The solve pipeline: prepare -> trigger -> solve -> whole shares -> check -> result."""

from __future__ import annotations

import re
import time

import numpy as np

from constraints.bands import triggered
from optimizer import checker
from optimizer.errors import CheckError, InfeasibilityError
from optimizer.household import Household
from optimizer.policy import Policy
from optimizer.prepare import Prepared, prepare
from optimizer.problem import TemplateCache
from optimizer.result import RebalanceResult
from optimizer.rounding import to_shares
from optimizer.solution import Solution

MAX_REPAIRS = 4


def rebalance(
    household: Household, policy: Policy | None = None, *, cache: TemplateCache | None = None
) -> RebalanceResult:
    """Rebalance a household under a policy: one convex program, rounded, checked.

    Parameters
    ----------
    household : Household
        From :func:`optimizer.load_case` or :meth:`Household.from_frames`.
    policy : Policy, optional
        Defaults to ``Policy()``.
    cache : TemplateCache, optional
        Reuse compiled problems across calls (batch jobs); a fresh cache per call otherwise.

    Returns
    -------
    RebalanceResult
        Trades, lots and a summary, already verified by the independent checker.

    Raises
    ------
    ValidationError
        Input problems that need both household and policy to see.
    InfeasibilityError
        The policy's constraints conflict; names the constraints that must give.
    SolverError
        Every solver in the fallback chain failed.
    CheckError
        The result broke a rule beyond tolerance (it is never returned).

    Examples
    --------
    >>> from optimizer import load_case, rebalance
    >>> from scenarios import case_path
    >>> household, policy = load_case(case_path("seed_portfolio"))
    >>> result = rebalance(household, policy)
    >>> result.summary["checks"]["passed"]
    True
    """
    t0 = time.perf_counter()
    policy = policy or Policy()
    cache = TemplateCache() if cache is None else cache
    data = prepare(household, policy)
    go, reasons = triggered(data)
    if not go:
        sol = Solution.no_trade(data)
        checks = checker.verify(sol)
        return RebalanceResult.build(data, sol, None, checks, reasons, False, time.perf_counter() - t0)

    template = cache.get(data.shape_key())
    margins: dict[str, np.ndarray] = {}
    for _ in range(MAX_REPAIRS):
        cont = template.solve(data, margins)
        if cont is None:
            raise _infeasible(data, cache)
        sol = to_shares(data, cont)
        violations = checker.check(sol)
        if not violations or not _tighten(data, margins, violations):
            break
    checks = checker.verify(sol)
    return RebalanceResult.build(data, sol, cont, checks, reasons, True, time.perf_counter() - t0)


def _tighten(data: Prepared, margins: dict[str, np.ndarray], violations) -> bool:
    """Move the constraints rounding crossed inward by twice the crossing; False if none can."""
    names = [*data.classes, "cash"]
    moved = False
    for v in violations:
        step = 2 * v.amount + 1e-7
        if v.constraint == "bands":
            side, name = re.match(r"(lower|upper)\[(.*)\]", v.where).groups()
            m = margins.setdefault("bands", np.zeros(data.C + 1))
            m[names.index(name)] += step
        elif v.constraint == "turnover":
            margins.setdefault("turnover", np.zeros(1))[0] += step
        elif v.constraint == "esg" and v.where.startswith("score"):
            margins.setdefault("esg", np.zeros(1))[0] += step * 10
        elif v.constraint == "cash":
            a = data.account_ids.index(v.where[len("min_cash["):-1])
            margins.setdefault("cash", np.zeros(data.A))[a] += 2 * v.amount / data.V
        else:
            continue
        moved = True
    return moved


def _infeasible(data: Prepared, cache: TemplateCache) -> InfeasibilityError:
    """Elastic re-solve: relax every policy constraint with a penalized slack and name those
    that had to give (an L1 penalty makes the set small)."""
    elastic = cache.get(data.shape_key(), elastic=True)
    try:
        if elastic.solve(data) is None:
            return InfeasibilityError([], "even the relaxed problem is infeasible: check holdings and caps")
    except CheckError:  # pragma: no cover - elastic solves are not checked
        pass
    names = {"bands": [*data.classes, "cash"], "cash": data.account_ids}

    def label(raw: str) -> str:
        m = re.match(r"(\w+)\.(\w+)\[(\d+)\]", raw)
        if not m:
            return raw
        family, kind, k = m.group(1), m.group(2), int(m.group(3))
        return f"{family}.{kind}[{names.get(family, [])[k] if family in names else k}]"

    conflicts = [(label(n), a) for n, a in elastic.conflicts()]
    return InfeasibilityError(conflicts)
