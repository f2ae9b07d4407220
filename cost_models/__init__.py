"""Objective terms: tracking error, transaction cost, tax, location preference, overlay cost.

Every module of this package with a ``TERM`` is an objective term (see ``cost_models.base``).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from cvxrebalance.cost_models.base import CostTerm


@functools.cache
def default_costs() -> tuple:
    """Every objective term of the package, in module-name order."""
    terms = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "TERM"):
            terms.append(module.TERM)
    return tuple(terms)


__all__ = ["CostTerm", "default_costs"]
