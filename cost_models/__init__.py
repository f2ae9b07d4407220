"""Objective terms: tracking error, transaction cost, tax, location preference, overlay cost,
tactical views (expected active return), factor drift.

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


def objective_value(sol) -> tuple[float, dict[str, float]]:
    """The policy's objective of a finished result (fractions of household value, ticket costs
    included in ``cost``), and each unweighted term."""
    terms = {c.name: c.evaluate(sol) for c in default_costs()}
    o = sol.data.policy.objective
    value = (o.risk_weight * terms["risk"] + o.cost_weight * (terms["cost"] + terms["overlay_cost"])
             + o.tax_weight * terms["tax"] + o.location_weight * terms["location"]
             + o.alpha_weight * terms["alpha"] + o.factor_weight * terms["factor_drift"])
    return value, terms


__all__ = ["CostTerm", "default_costs", "objective_value"]
