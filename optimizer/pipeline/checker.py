"""The independent checker: every constraint module checks a finished result from shares and
prices alone. ``check`` returns the violations; ``verify`` raises CheckError on any."""

from __future__ import annotations

from cvxrebalance.constraints import default_constraints
from cvxrebalance.constraints.base import Violation
from cvxrebalance.optimizer.domain.errors import CheckError
from cvxrebalance.optimizer.domain.solution import Solution


def check(sol: Solution) -> list[Violation]:
    """Every violation of every constraint family, beyond the stated tolerances."""
    out: list[Violation] = []
    for module in default_constraints():
        out.extend(module.check(sol))
    return out


def verify(sol: Solution, violations: list[Violation] | None = None) -> dict:
    """Raise CheckError on any violation; otherwise the checks' summary for summary.json.

    ``violations`` may pass a ``check(sol)`` already computed for this very solution.
    """
    violations = check(sol) if violations is None else violations
    if violations:
        raise CheckError(violations)
    return {"passed": True, "families": [m.name for m in default_constraints()], "violations": 0}
