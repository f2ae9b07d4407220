"""No short sales, sells in taxable accounts come from named lots, trades only where every rule
allows, and account values change only by flows and costs.

0 <= sell[a, i] <= holding (tax-deferred and tax-exempt accounts); in taxable accounts a
position's sale is the sum of its lots' sales, 0 <= lot sale <= lot value (the variables' bounds
in ``constraints.base.Model``). A trade some rule forbids gets an upper bound of zero, so the
minimal QP has no variable for it.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Model, Violation

SHARE_TOL = 1e-9


class Holdings:
    name = "holdings"

    def declare(self, m: Model) -> None:
        from cvxrebalance.constraints import trade_masks  # the package lists every rule

        buy_ok, sell_ok, lot_ok = trade_masks(m.data)
        m.program.bound("buy", hi=0.0, where=~buy_ok.ravel())
        m.program.bound("sell", hi=0.0, where=~sell_ok.ravel())
        m.program.bound("lots", hi=0.0, where=~lot_ok)

    def check(self, sol) -> list[Violation]:
        d = sol.data
        out = []
        for a, i in zip(*np.nonzero(sol.q_after < -SHARE_TOL), strict=True):
            out.append(Violation(self.name, f"short {d.account_ids[a]}/{d.security_ids[i]}",
                                 -sol.q_after[a, i], "shares"))
        for a, i in zip(*np.nonzero((sol.buy_q < -SHARE_TOL) | (sol.sell_q < -SHARE_TOL)), strict=True):
            out.append(Violation(self.name, f"negative trade {d.account_ids[a]}/{d.security_ids[i]}",
                                 1.0, "shares"))
        # A round trip (bought and sold in one account) only costs: rounding nets it, so one
        # reaching the checker is a defect, and it would make the trade list's costs (per side)
        # differ from the cash balance's (per position).
        for a, i in zip(*np.nonzero((sol.buy_q > SHARE_TOL) & (sol.sell_q > SHARE_TOL)), strict=True):
            out.append(Violation(self.name, f"round trip {d.account_ids[a]}/{d.security_ids[i]}: bought "
                                 f"{sol.buy_q[a, i]:g} and sold {sol.sell_q[a, i]:g}",
                                 float(min(sol.buy_q[a, i], sol.sell_q[a, i])), "shares"))
        over = sol.lot_sell_q - d.lot_q
        for k in np.flatnonzero((over > SHARE_TOL) | (sol.lot_sell_q < -SHARE_TOL)):
            out.append(Violation(self.name, f"lot {d.lot_ids[k]} of {d.account_ids[d.lot_account[k]]}/"
                                 f"{d.security_ids[d.lot_security[k]]} sold {sol.lot_sell_q[k]:g} of {d.lot_q[k]:g}",
                                 float(max(over[k], -sol.lot_sell_q[k])), "shares"))
        gap = np.abs(d.lots_by_position(sol.lot_sell_q) - sol.sell_q)[d.taxable]
        for t, i in zip(*np.nonzero(gap > SHARE_TOL), strict=True):
            a = d.taxable[t]
            out.append(Violation(self.name, f"lots do not add up {d.account_ids[a]}/{d.security_ids[i]}",
                                 gap[t, i], "shares"))
        # Account values change only by flows and costs (no money moves between accounts).
        before = (d.q0 * d.price).sum(1) + d.cash_cur + d.flow_cur
        after = (sol.q_after * d.price).sum(1) + sol.cash_after
        gap = np.abs(after - (before - sol.costs))
        for a in np.flatnonzero(gap > MONEY_TOL + 1e-9 * d.V):
            out.append(Violation(self.name, f"value not conserved {d.account_ids[a]}", gap[a], "currency"))
        return out


RULE = Holdings()
