"""The error contract: every failure a user can act on has its own exception type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in the input.

    Parameters
    ----------
    file : str
        File (or table) the problem is in, e.g. ``"securities.csv"``.
    row : int or None
        Line number in the file (the header is line 1), or None for the whole file; for a
        database table, the row's number (the first row is 1).
    field : str or None
        Column or policy key.
    message : str
        What is wrong, in words a user can act on.
    table : bool
        ``file`` is a database table, ``row`` a row number: shown as ``table holdings, row 7``
        (``optimizer.apps.database.table_problems``).

    Examples
    --------
    >>> str(Problem("holdings.csv", 8, "quantity", "not a number"))
    'holdings.csv line 8 [quantity]: not a number'
    >>> str(Problem("holdings", 7, "quantity", "not a number", table=True))
    'table holdings, row 7 [quantity]: not a number'
    """

    file: str
    row: int | None
    field: str | None
    message: str
    table: bool = False

    def __str__(self) -> str:
        where = f"table {self.file}" if self.table else self.file
        if self.row is not None:
            where += f", row {self.row}" if self.table else f" line {self.row}"
        if self.field:
            where += f" [{self.field}]"
        return f"{where}: {self.message}"


class CvxRebalanceError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(CvxRebalanceError, ValueError):
    """Bad input; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the input:\n{lines}")


class InfeasibilityError(CvxRebalanceError):
    """The policy cannot be met; ``conflicts`` names the constraints that must give.

    Each conflict is ``(constraint_name, shortfall)`` where shortfall is how much (in fractions of
    household value or weight) the constraint had to be relaxed in the elastic re-solve.
    """

    def __init__(self, conflicts: list[tuple[str, float]], detail: str = ""):
        self.conflicts = list(conflicts)
        lines = "\n".join(f"  - {name} (short by {amount:.6g})" for name, amount in conflicts)
        msg = "the policy is infeasible; these constraints conflict:\n" + lines
        if detail:
            msg += f"\n{detail}"
        super().__init__(msg)


class SolverError(CvxRebalanceError):
    """Every solver in the fallback chain failed; ``attempts`` lists (solver, status or error)."""

    def __init__(self, attempts: list[tuple[str, str]]):
        self.attempts = list(attempts)
        tried = "; ".join(f"{s}: {st}" for s, st in attempts)
        super().__init__(f"no solver produced a solution ({tried})")


class CheckError(CvxRebalanceError):
    """A result failed the independent checker; it is never returned."""

    def __init__(self, violations: list):
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"the result failed {len(self.violations)} check(s):\n{lines}")


class OutputError(CvxRebalanceError, OSError):
    """The results could not be written (a read-only or full disk, OUT_DIR a file); nothing
    about the household or the policy is wrong."""
