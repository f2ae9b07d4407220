"""Overlay trading cost: commission per contract plus half spread on notional traded,
(commission_j / notional_j + half_spread_j) * |notional traded_j| in fractions of household value.
A roll pays it twice: closing the expiring contract and opening the next."""

from __future__ import annotations


class OverlayCost:
    name = "overlay_cost"

    def weight(self, policy) -> float:
        return policy.objective.cost_weight

    def declare(self, m, weight: float) -> None:
        if m.J:
            m.program.minimize("overlay_cost", (weight * m.data.overlay.cost_rate) @ (m.fbuy + m.fsell))

    def evaluate(self, sol) -> float:
        return float(sol.futures_costs.sum() / sol.data.V)


TERM = OverlayCost()
