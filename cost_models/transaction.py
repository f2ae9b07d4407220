"""Transaction cost: (half spread + commission) * |trade| + impact * trade^2 (fractions of V).

The quadratic impact keeps the problem a QP (OSQP, PIQP, Clarabel all apply).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np


class TransactionCost:
    name = "cost"

    def weight(self, policy) -> float:
        return policy.objective.cost_weight

    def parameters(self, data, weight: float) -> dict:
        lin = data.linear_cost
        return {"cost_obj": weight * lin,
                "sqrt_impact": np.sqrt(weight * data.column("impact").astype(float))}

    def build(self, ctx) -> cp.Expression:
        lin = ctx.param("cost_obj", (ctx.N,), nonneg=True)
        root = ctx.param("sqrt_impact", (ctx.N,), nonneg=True)
        traded = ctx.buy + ctx.sell
        # Impact on each position's trade: sum_a,i impact_i * t_ai^2 = ||t * sqrt(impact)||^2.
        impact = cp.sum_squares(traded @ cp.diag(root)) if ctx.A else 0
        return cp.sum(traded @ lin) + impact

    def evaluate(self, sol) -> float:
        return float(sol.costs.sum() / sol.data.V)
