"""Objective terms: tracking error, transaction cost, tax, location preference."""

from cvxrebalance.cost_models.base import CostTerm
from cvxrebalance.cost_models.location import LocationDrag
from cvxrebalance.cost_models.overlay import OverlayCost
from cvxrebalance.cost_models.tax import Tax
from cvxrebalance.cost_models.tracking_error import TrackingError
from cvxrebalance.cost_models.transaction import TransactionCost


def default_costs() -> list:
    """Every objective term."""
    return [TrackingError(), TransactionCost(), Tax(), LocationDrag(), OverlayCost()]


__all__ = ["CostTerm", "LocationDrag", "OverlayCost", "Tax", "TrackingError", "TransactionCost",
           "default_costs"]
