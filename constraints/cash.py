"""Each account is self-financing: cash after trades, costs and flows stays >= its minimum.

cash[a] = cash0[a] + sum_i (sell - buy)[a, i] - sum_i c_i (buy + sell)[a, i]  (fractions of V),
c_i = half spread + commission. Quadratic impact is charged by the rounding step's cash repair
and verified by the checker; the continuous solve sees only the linear part.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from constraints.base import MONEY_TOL, Context, Violation


class Cash:
    name = "cash"

    def parameters(self, data, margins):
        lin = data.column("half_spread") + data.column("commission")
        m = margins.get("cash", np.zeros(data.A))
        return {"cash0": data.cash0, "cost_lin": lin, "min_cash": data.min_cash + m}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        lin = ctx.param("cost_lin", (ctx.N,), nonneg=True)
        flows = cp.sum(ctx.sell - ctx.buy, axis=1) - (ctx.buy + ctx.sell) @ lin
        labels = [f"cash.min_cash[{a}]" for a in range(ctx.A)]
        return [ctx.cash == ctx.param("cash0", (ctx.A,)) + flows,
                ctx.cash >= ctx.param("min_cash", (ctx.A,)) - ctx.slack("min_cash", labels)]

    def check(self, sol) -> list[Violation]:
        d = sol.data
        floor = d.min_cash * d.V
        short = floor - sol.cash_after
        return [Violation(self.name, f"min_cash[{d.account_ids[a]}]", short[a], "currency")
                for a in np.flatnonzero(short > MONEY_TOL)]
