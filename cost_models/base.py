"""The interface every objective term shares.

A cost term exposes ``name``, ``weight(policy) -> float`` (its policy weight),
``parameters(data, weight) -> dict`` (values of its Parameters, the weight already folded in so
that no parameter multiplies another: DPP), ``build(ctx) -> cvxpy expression`` (the weighted
term, fractions of household value) and ``evaluate(sol) -> float``
(the same term recomputed from a finished result, fractions of household value).
"""

from __future__ import annotations

from typing import Protocol

import cvxpy as cp


class CostTerm(Protocol):
    name: str

    def weight(self, policy) -> float: ...

    def parameters(self, data, weight: float) -> dict: ...

    def build(self, ctx) -> cp.Expression: ...

    def evaluate(self, sol) -> float: ...
