"""Transaction cost: (half spread + commission) * |trade| + impact * trade^2 (fractions of V).

The quadratic impact keeps the problem a QP (OSQP, PIQP, Clarabel all apply); it is declared
only for the positions whose security has an impact coefficient.
"""

from __future__ import annotations

import numpy as np


class TransactionCost:
    name = "cost"

    def weight(self, policy) -> float:
        return policy.objective.cost_weight

    def declare(self, m, weight: float) -> None:
        d = m.data
        lin = np.tile(d.linear_cost, d.A)
        m.program.minimize("cost", (weight * lin) @ m.traded)
        root = np.tile(np.sqrt(weight * d.column("impact").astype(float)), d.A)
        if root.any():  # sum_a,i impact_i * t_ai^2 = || sqrt(impact) * t ||^2
            on = root > 0
            m.program.minimize_squares("cost.impact", m.traded.rows(on) * root[on])

    def evaluate(self, sol) -> float:
        # Securities only (tickets included): the overlay's trading cost is its own term.
        return float((sol.costs - sol.futures_costs).sum() / sol.data.V)


TERM = TransactionCost()
