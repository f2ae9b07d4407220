"""Objective terms: tracking error, transaction cost, tax, location preference, overlay cost.

Every module of this package with a ``TERM`` is an objective term (see ``cost_models.base``).
"""

from __future__ import annotations

import functools

from cvxrebalance.cost_models.base import CostTerm
from cvxrebalance.optimizer.domain.registry import members


@functools.cache
def default_costs() -> tuple:
    """Every objective term of the package, in module-name order."""
    return members(__name__, __path__, "TERM")


__all__ = ["CostTerm", "default_costs"]
