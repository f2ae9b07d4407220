"""Each account is self-financing: cash after trades, costs and flows stays >= its minimum.

cash[a] = cash0[a] + sum_i (sell - buy)[a, i] - sum_i r_ai (buy + sell)[a, i]
          - sum_j (commission_j / notional_j + half_spread_j) |contracts traded_j|  (fractions of V,
          j the contracts account a carries),
r_ai = half spread + commission + impact_i * t_ai, with t_ai the position's trade in the previous
solve (margins["impact_trade"], zero at first). Impact impact_i * t^2 is quadratic; writing it into
the cash balance exactly would make the problem a QCQP that QP solvers cannot take, so the
pipeline re-solves until t stops moving (a fixed point where r t = c t + impact t^2 exactly).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Context, Violation


class Cash:
    name = "cash"

    def parameters(self, data, margins):
        lin = data.linear_cost
        traded = margins.get("impact_trade", np.zeros((data.A, data.N)))
        m = margins.get("cash", np.zeros(data.A))
        rate = lin[None, :] + data.column("impact")[None, :] * traded
        ov = data.overlay
        carry = np.zeros((data.A, ov.J))
        carry[ov.account, np.arange(ov.J)] = ov.cost_rate
        return {"cash0": data.cash0, "cash_cost_rate": rate, "min_cash": data.min_cash + m,
                "futures_cost_rate": carry}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        rate = ctx.param("cash_cost_rate", (ctx.A, ctx.N), nonneg=True)
        flows = cp.sum(ctx.sell - ctx.buy, axis=1) - cp.sum(cp.multiply(rate, ctx.buy + ctx.sell), axis=1)
        if ctx.J:  # the carrying account pays the overlay's commissions and spreads
            carry = ctx.param("futures_cost_rate", (ctx.A, ctx.J), nonneg=True)
            flows = flows - carry @ (ctx.fbuy + ctx.fsell)
        labels = [f"cash.min_cash[{a}]" for a in range(ctx.A)]
        return [ctx.cash == ctx.param("cash0", (ctx.A,)) + flows,
                ctx.cash >= ctx.param("min_cash", (ctx.A,)) - ctx.slack("min_cash", labels)]

    def check(self, sol) -> list[Violation]:
        d = sol.data
        floor = d.min_cash * d.V
        short = floor - sol.cash_after
        return [Violation(self.name, f"min_cash[{d.account_ids[a]}]", short[a], "currency", index=int(a))
                for a in np.flatnonzero(short > MONEY_TOL)]
