"""Constraint families: each module builds cvxpy constraints and checks a finished result."""

from constraints.bands import BandConstraint
from constraints.base import Constraint, Context, Violation
from constraints.cash import Cash
from constraints.esg import Esg
from constraints.holdings import Holdings
from constraints.illiquid import Illiquid
from constraints.location import Location
from constraints.overlay import Overlay
from constraints.tactical import Tactical
from constraints.turnover import Turnover


def default_constraints() -> list:
    """Every constraint family, in build order (Holdings reads the others' trade masks)."""
    others = [Illiquid(), Esg(), Location(), Cash(), BandConstraint(), Turnover(), Tactical(),
              Overlay()]
    return [Holdings(others), *others]


def trade_masks(data) -> tuple:
    """(A, N) masks of positions that may be bought / sold under every constraint family."""
    return default_constraints()[0].masks(data)


__all__ = [
    "BandConstraint", "Cash", "Constraint", "Context", "Esg", "Holdings", "Illiquid", "Location", "Overlay",
    "Tactical", "Turnover", "Violation", "default_constraints", "trade_masks",
]
