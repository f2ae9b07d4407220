"""A finished trade list in shares, with everything the checker needs derived from it.

Only share quantities, prices and the documented cost formulas are used here, never solver
variables, so the checker that reads a Solution is independent of the solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvxrebalance.optimizer.domain.prepare import Prepared


def trade_costs(data: Prepared, trade_value: np.ndarray) -> np.ndarray:
    """Transaction cost per account in currency.

    cost = (half_spread + commission) * |value| + impact * value^2 / V + ticket  (per position
    traded), i.e. in fractions of household value c * |t| + impact * t^2 with t = value / V, plus
    the fixed ticket cost of each trade.
    """
    return position_costs(data, trade_value).sum(axis=1)


def position_costs(data: Prepared, trade_value: np.ndarray) -> np.ndarray:
    """(A, N) the same cost per position (its one trade: a position is never bought and sold)."""
    lin = data.linear_cost
    impact = data.column("impact")
    v = np.abs(np.atleast_2d(trade_value))
    return v * lin + impact * v**2 / data.V + np.where(v > 0, data.ticket, 0.0)


def futures_costs(data: Prepared, contracts_traded: np.ndarray) -> np.ndarray:
    """Overlay trading cost per account in currency: commission per contract plus half spread on
    the notional traded."""
    ov = data.overlay
    per_contract = ov.cost_rate * ov.notional * np.abs(contracts_traded)
    out = np.zeros(data.A)
    np.add.at(out, ov.account, per_contract)
    return out


@dataclass
class Solution:
    """Trades in shares: ``buy_q``/``sell_q`` (A, N), ``lot_sell_q`` (L,) per tax lot of the
    taxable accounts; contracts held after trading ``contracts_q`` (J,; None: unchanged)."""

    data: Prepared
    buy_q: np.ndarray
    sell_q: np.ndarray
    lot_sell_q: np.ndarray
    contracts_q: np.ndarray | None = None

    def __post_init__(self) -> None:
        d = self.data
        if self.contracts_q is None:
            self.contracts_q = d.overlay.q0.copy()
        self.contracts_traded = self.contracts_q - d.overlay.q0
        self.buy_value = self.buy_q * d.price
        self.sell_value = self.sell_q * d.price
        self.futures_costs = futures_costs(d, self.contracts_traded)
        self.costs = trade_costs(d, self.buy_value + self.sell_value) + self.futures_costs
        self.q_after = d.q0 + self.buy_q - self.sell_q
        self.cash_after = (
            d.cash_cur + d.flow_cur + self.sell_value.sum(1) - self.buy_value.sum(1) - self.costs
        )
        self.value_after = float((self.q_after * d.price).sum() + self.cash_after.sum())
        held_after = (self.q_after * d.price).sum(0)
        self.class_after = d.X.T @ held_after / self.value_after
        self.class_overlay_after = d.overlay.G.T @ self.overlay_after()
        self.cash_weight_after = float(self.cash_after.sum() / self.value_after)

    @classmethod
    def no_trade(cls, data: Prepared) -> Solution:
        return cls(data, np.zeros((data.A, data.N)), np.zeros((data.A, data.N)), np.zeros(data.L))

    @property
    def traded(self) -> float:
        """Total value bought plus sold, currency."""
        return float(self.buy_value.sum() + self.sell_value.sum())

    def overlay_after(self) -> np.ndarray:
        """Overlay notional after trading per contract (J,), fraction of value after trading."""
        ov = self.data.overlay
        return self.contracts_q * ov.notional / self.value_after

    def weights_after(self) -> np.ndarray:
        """Household security weights after trading (N,)."""
        return (self.q_after * self.data.price).sum(0) / self.value_after
