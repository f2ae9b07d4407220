"""Overlay trading cost: commission per contract plus half spread on notional traded,
(commission_j / notional_j + half_spread_j) * |notional traded_j| in fractions of household value.
A roll pays it twice: closing the expiring contract and opening the next."""

from __future__ import annotations

import cvxpy as cp


class OverlayCost:
    name = "overlay_cost"

    def weight(self, policy) -> float:
        return policy.objective.cost_weight

    def parameters(self, data, weight: float) -> dict:
        return {"overlay_cost": weight * data.overlay.cost_rate}

    def build(self, ctx) -> cp.Expression:
        if not ctx.J:
            return cp.Constant(0.0)
        rate = ctx.param("overlay_cost", (ctx.J,), nonneg=True)
        return rate @ (ctx.fbuy + ctx.fsell)

    def evaluate(self, sol) -> float:
        return float(sol.futures_costs.sum() / sol.data.V)
