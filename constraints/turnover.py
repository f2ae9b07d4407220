"""Turnover limit: one-way turnover (buys + sells) / 2 <= limit, as a fraction of household value."""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints.base import WEIGHT_TOL, Context, Violation


class Turnover:
    name = "turnover"

    def parameters(self, data, margins):
        m = float(margins.get("turnover", np.zeros(1))[0])
        return {"turnover": np.array(max(data.policy.limits.turnover - m, 0.0))}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        one_way = (cp.sum(ctx.buy) + cp.sum(ctx.sell)) / 2
        limit = ctx.param("turnover", (), nonneg=True)
        return [one_way <= limit + cp.sum(ctx.slack("turnover", ["turnover"]))]

    def check(self, sol) -> list[Violation]:
        d = sol.data
        one_way = sol.traded / 2 / d.V
        excess = one_way - d.policy.limits.turnover
        return [Violation(self.name, "one-way turnover", excess)] if excess > WEIGHT_TOL else []
