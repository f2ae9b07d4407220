"""Ticket state of a rebalance: the positions the ticket pass closed, and the trades kept below
their minimum because a rule needs them (optimizer.pipeline.tickets decides; the rule is
constraints.tickets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TicketState:
    """(A, N) masks: buys and sells the ticket pass forbids, and trades exempt from the minimums
    and limits; ``version`` changes with the masks (the trade masks are cached by it)."""

    closed_buy: np.ndarray
    closed_sell: np.ndarray
    exempt: np.ndarray
    version: int = 0

    @classmethod
    def empty(cls, A: int, N: int) -> TicketState:
        return cls(np.zeros((A, N), bool), np.zeros((A, N), bool), np.zeros((A, N), bool))

    def set(self, closed_buy: np.ndarray, closed_sell: np.ndarray) -> None:
        """Replace the closed masks."""
        self.closed_buy, self.closed_sell = closed_buy.copy(), closed_sell.copy()
        self.version += 1
