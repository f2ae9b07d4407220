"""Constraint families: each module declares its rows once and checks a finished result.

Every module of this package with a ``RULE`` is a rule (see ``constraints.base``); adding a rule
means adding a module, nothing else.
"""

from __future__ import annotations

import functools

import numpy as np

from cvxrebalance.constraints import priority
from cvxrebalance.constraints.base import MaskRule, Model, Rule, Violation
from cvxrebalance.optimizer.domain.registry import members


@functools.cache
def default_constraints() -> tuple:
    """Every rule of the package, in module-name order."""
    return members(__name__, __path__, "RULE")


def trade_masks(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, N) masks of the positions that may be bought / sold, and the (L,) mask of the lots that
    may be sold, under every rule. Read-only: they are computed once per set of wash-sale
    blocks and ticket closures (the only state a rebalance changes that they depend on)."""
    return _memo_masks(data)[:3]


def rule_buy_mask(data) -> np.ndarray:
    """(A, N) the buys every rule but the priority ranking allows (what the ranking chose from)."""
    return _memo_masks(data)[3]


def _memo_masks(data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    key = ("trade_masks", frozenset(data.wash.block_buy), frozenset(data.wash.block_loss), data.tickets.version)
    if key not in data.memo:
        data.memo[key] = _masks(data)
    return data.memo[key]


def _masks(data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    buy_ok = np.ones((data.A, data.N), bool)
    sell_ok = np.ones((data.A, data.N), bool)
    lot_ok = np.ones(data.L, bool)
    for rule in default_constraints():
        if hasattr(rule, "buy_allowed"):
            buy_ok &= rule.buy_allowed(data)
        if hasattr(rule, "sell_allowed"):
            sell_ok &= rule.sell_allowed(data)
        if hasattr(rule, "lot_allowed"):
            lot_ok &= rule.lot_allowed(data)
    lot_ok &= sell_ok[data.lot_account, data.lot_security]
    ranked = priority.restrict(data, buy_ok)  # last: it ranks what the other rules allow
    for mask in (ranked, buy_ok, sell_ok, lot_ok):
        mask.flags.writeable = False
    return ranked, sell_ok, lot_ok, buy_ok


__all__ = ["MaskRule", "Model", "Rule", "Violation", "default_constraints", "rule_buy_mask", "trade_masks"]
