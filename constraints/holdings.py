"""No short sales, and sells in taxable accounts come from named lots.

sell[a, i] <= holding (non-taxable accounts), sell[a, i] = sum_k lot_sell[a, i, k] with
0 <= lot_sell <= lot value (taxable accounts); buys and sells only where every module allows.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Context, Violation

SHARE_TOL = 1e-9


class Holdings:
    """Trade bounds from holdings and lots, and the masks of every other module."""

    name = "holdings"

    def __init__(self, modules: list) -> None:
        self.modules = modules

    def masks(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(A, N) masks of the positions every module allows to be bought / sold."""
        buy_ok = np.ones((data.A, data.N), bool)
        sell_ok = np.ones((data.A, data.N), bool)
        for m in self.modules:
            if hasattr(m, "buy_allowed"):
                buy_ok &= m.buy_allowed(data)
            if hasattr(m, "sell_allowed"):
                sell_ok &= m.sell_allowed(data)
        return buy_ok, sell_ok

    def lot_mask(self, data, sell_ok: np.ndarray | None = None) -> np.ndarray:
        """(T, N, K) lot slots every module allows to be sold (position masks included)."""
        if sell_ok is None:
            _, sell_ok = self.masks(data)
        ok = np.ones(data.lot_q.shape, bool)
        for t, a in enumerate(data.taxable):
            ok[t] &= sell_ok[a][:, None]
        for m in self.modules:
            if hasattr(m, "lot_allowed"):
                ok &= m.lot_allowed(data)
        return ok

    def parameters(self, data, margins):
        buy_ok, sell_ok = self.masks(data)
        lot_cap = data.lot_q * data.price[None, :, None] / data.V * self.lot_mask(data, sell_ok)
        # Buys are bounded by the household value after flows (the unit), a bound never active.
        return {"buy_cap": buy_ok * 1.0, "sell_cap": data.h0 * sell_ok,
                **{f"lot_cap_{t}": lot_cap[t] for t in range(len(data.taxable))}}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        cons = [ctx.buy <= ctx.param("buy_cap", (ctx.A, ctx.N), nonneg=True),
                ctx.sell <= ctx.param("sell_cap", (ctx.A, ctx.N), nonneg=True)]
        for t, a in enumerate(ctx.taxable):
            cap = ctx.param(f"lot_cap_{t}", (ctx.N, ctx.K), nonneg=True)
            cons += [ctx.lot_sell[t] <= cap, ctx.sell[a] == cp.sum(ctx.lot_sell[t], axis=1)]
        return cons

    def check(self, sol) -> list[Violation]:
        d = sol.data
        out = []
        for a, i in zip(*np.nonzero(sol.q_after < -SHARE_TOL), strict=True):
            out.append(Violation(self.name, f"short {d.account_ids[a]}/{d.security_ids[i]}",
                                 -sol.q_after[a, i], "shares"))
        for a, i in zip(*np.nonzero((sol.buy_q < -SHARE_TOL) | (sol.sell_q < -SHARE_TOL)), strict=True):
            out.append(Violation(self.name, f"negative trade {d.account_ids[a]}/{d.security_ids[i]}",
                                 1.0, "shares"))
        for t, a in enumerate(d.taxable):
            over = sol.lot_sell_q[t] - d.lot_q[t]
            for i, k in zip(*np.nonzero(over > SHARE_TOL), strict=True):
                out.append(Violation(self.name, f"lot over-sold {d.account_ids[a]}/{d.security_ids[i]}"
                                     f" slot {k}", over[i, k], "shares"))
            gap = np.abs(sol.lot_sell_q[t].sum(1) - sol.sell_q[a])
            for i in np.flatnonzero(gap > SHARE_TOL):
                out.append(Violation(self.name, f"lots do not add up {d.account_ids[a]}/"
                                     f"{d.security_ids[i]}", gap[i], "shares"))
        # Account values change only by flows and costs (no money moves between accounts).
        before = (d.q0 * d.price).sum(1) + d.cash_cur + d.flow_cur
        after = (sol.q_after * d.price).sum(1) + sol.cash_after
        gap = np.abs(after - (before - sol.costs))
        for a in np.flatnonzero(gap > MONEY_TOL + 1e-9 * d.V):
            out.append(Violation(self.name, f"value not conserved {d.account_ids[a]}", gap[a], "currency"))
        return out
