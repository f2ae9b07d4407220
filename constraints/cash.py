"""Each account is self-financing: cash after trades, costs and flows stays >= its minimum.

cash[a] = cash0[a] + sum_i (sell - buy)[a, i] - sum_i r_ai (buy + sell)[a, i]
          - sum_j (commission_j / notional_j + half_spread_j) |contracts traded_j|  (fractions of V,
          j the contracts account a carries),
r_ai = half spread + commission + impact_i * t_ai, with t_ai the position's trade in the previous
solve (margins["impact_trade"], zero at first). Impact impact_i * t^2 is quadratic; writing it into
the cash balance exactly would make the problem a QCQP that QP solvers cannot take, so the
pipeline re-solves until t stops moving (a fixed point where r t = c t + impact t^2 exactly).
The minimum is the cash variable's lower bound (elastic: an infeasible policy names it).
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Model, Violation


class Cash:
    name = "cash"

    def declare(self, m: Model) -> None:
        d = m.data
        traded_before = m.margins.get("impact_trade", np.zeros((d.A, d.N)))
        rate = d.linear_cost[None, :] + d.column("impact").astype(float)[None, :] * traded_before
        # cash - (sell - buy) + rate * traded + overlay costs = cash0
        balance = m.cash + m.per_account(m.buy - m.sold) + m.per_account(m.traded, np.broadcast_to(rate, (d.A, d.N)))
        if m.J:
            ov = d.overlay
            carry = np.zeros((d.A, ov.J))
            carry[ov.account, np.arange(ov.J)] = ov.cost_rate
            balance = balance + carry @ (m.fbuy + m.fsell)
        m.program.constrain("cash.balance", balance, lo=d.cash0, hi=d.cash0)
        floor = d.min_cash + m.margins.get("cash", np.zeros(d.A))
        m.program.bound("cash", lo=floor, lo_labels=[f"cash.min_cash[{a}]" for a in range(d.A)])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        floor = d.min_cash * d.V
        short = floor - sol.cash_after
        return [Violation(self.name, f"min_cash[{d.account_ids[a]}]", short[a], "currency", index=int(a))
                for a in np.flatnonzero(short > MONEY_TOL)]


RULE = Cash()
