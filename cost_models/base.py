"""The interface every objective term shares.

A cost module exposes one object, ``TERM``, with ``name``, ``weight(policy) -> float`` (its
policy weight), ``declare(m, weight)`` (its objective pieces over the shared variables of
``constraints.base.Model``, in fractions of household value, times ``weight``; auxiliary
variables and their defining rows included) and ``evaluate(sol) -> float`` (the unweighted term
recomputed from a finished result, fractions of household value).
"""

from __future__ import annotations

from typing import Protocol


class CostTerm(Protocol):
    name: str

    def weight(self, policy) -> float: ...

    def declare(self, m, weight: float) -> None: ...

    def evaluate(self, sol) -> float: ...
