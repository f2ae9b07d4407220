"""Constraint families: each module builds cvxpy constraints and checks a finished result."""

from cvxrebalance.constraints.bands import BandConstraint
from cvxrebalance.constraints.base import Constraint, Context, Violation
from cvxrebalance.constraints.cash import Cash
from cvxrebalance.constraints.esg import Esg
from cvxrebalance.constraints.holdings import Holdings
from cvxrebalance.constraints.illiquid import Illiquid
from cvxrebalance.constraints.location import Location
from cvxrebalance.constraints.overlay import Overlay
from cvxrebalance.constraints.tactical import Tactical
from cvxrebalance.constraints.tax_rules import TaxRules
from cvxrebalance.constraints.turnover import Turnover
from cvxrebalance.constraints.wash_sales import WashSales


def default_constraints() -> list:
    """Every constraint family, in build order (Holdings reads the others' trade masks)."""
    others = [Illiquid(), Esg(), Location(), Cash(), BandConstraint(), Turnover(), Tactical(),
              Overlay(), TaxRules(), WashSales()]
    return [Holdings(others), *others]


def trade_masks(data) -> tuple:
    """(A, N) masks of positions that may be bought / sold, and the (T, N, K) mask of lot slots
    that may be sold, under every constraint family."""
    holdings = default_constraints()[0]
    buy_ok, sell_ok = holdings.masks(data)
    return buy_ok, sell_ok, holdings.lot_mask(data, sell_ok)


__all__ = [
    "BandConstraint", "Cash", "Constraint", "Context", "Esg", "Holdings", "Illiquid", "Location", "Overlay",
    "Tactical", "TaxRules", "Turnover", "Violation", "WashSales", "default_constraints", "trade_masks",
]
