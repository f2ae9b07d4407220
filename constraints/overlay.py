"""The futures/forwards overlay: bounds per contract, gross and net limits, margin in cash.

- lo_j <= f_j <= hi_j for the notional after trading (per-contract maximum; an expiring contract
  is closed (0); ``cash_only`` keeps today's contracts; whole-contract rounding fixes them);
- sum_j |f_j| <= gross_limit and |sum_j f_j| <= net_limit (fractions of household value);
- the carrying account keeps initial margin plus a variation-margin buffer in cash:
  cash_a >= min_cash_a + sum_{j in a} (margin_j / notional_j + buffer) |f_j|;
- ``overlay_only``: no cash trades at all.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, WEIGHT_TOL, Context, Violation


def margin_matrix(data) -> np.ndarray:
    """(A, J) margin per unit |notional| for the account that carries each contract."""
    ov = data.overlay
    m = np.zeros((data.A, ov.J))
    m[ov.account, np.arange(ov.J)] = ov.margin_rate
    return m


def margin_required(sol) -> np.ndarray:
    """Cash each account must keep for its contracts, currency."""
    d = sol.data
    ov = d.overlay
    return margin_matrix(d) @ (np.abs(sol.contracts_q) * ov.notional)


class Overlay:
    name = "overlay"

    def buy_allowed(self, data) -> np.ndarray:
        return np.full((data.A, data.N), data.policy.overlay.instruments != "overlay_only")

    sell_allowed = buy_allowed

    def parameters(self, data, margins):
        ov = data.overlay
        lo, hi = ov.lo.copy(), ov.hi.copy()
        fixed = margins.get("contracts")
        if fixed is not None:  # whole contracts chosen: notional fixed
            lo = hi = fixed * ov.notional / data.V
        p = data.policy.overlay
        return {"f_lo": lo, "f_hi": hi, "gross_limit": np.array(p.gross_limit),
                "net_limit": np.array(p.net_limit), "margin_rate": margin_matrix(data),
                "margin_floor": data.min_cash + margins.get("cash", np.zeros(data.A))}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        if not ctx.J:
            return []
        f = ctx.f_after
        size = cp.abs(f)
        accounts = [f"overlay.margin[{a}]" for a in range(ctx.A)]
        margin = ctx.param("margin_rate", (ctx.A, ctx.J), nonneg=True) @ size
        return [
            f >= ctx.param("f_lo", (ctx.J,)), f <= ctx.param("f_hi", (ctx.J,)),
            cp.sum(size) <= ctx.param("gross_limit", (), nonneg=True)
            + cp.sum(ctx.slack("overlay_gross", ["overlay.gross_limit"])),
            cp.abs(cp.sum(f)) <= ctx.param("net_limit", (), nonneg=True)
            + cp.sum(ctx.slack("overlay_net", ["overlay.net_limit"])),
            ctx.cash >= ctx.param("margin_floor", (ctx.A,)) + margin - ctx.slack("overlay_margin", accounts),
        ]

    def check(self, sol) -> list[Violation]:
        d = sol.data
        ov = d.overlay
        p = d.policy.overlay
        out: list[Violation] = []
        if not ov.J:
            return out
        q = sol.contracts_q
        for j in np.flatnonzero(np.abs(q - np.round(q)) > 1e-9):
            out.append(Violation(self.name, f"fractional contracts {ov.ids[j]}", abs(q[j] - round(q[j])), "contracts"))
        f = q * ov.notional / d.V
        for j in range(ov.J):
            if f[j] < ov.lo[j] - WEIGHT_TOL or f[j] > ov.hi[j] + WEIGHT_TOL:
                out.append(Violation(self.name, f"bounds {ov.ids[j]}", float(max(ov.lo[j] - f[j], f[j] - ov.hi[j]))))
        # cash_only (contracts kept, expiring ones closed) is checked by the bounds above.
        if p.instruments == "overlay_only" and (sol.buy_q.any() or sol.sell_q.any()):
            out.append(Violation(self.name, "overlay_only traded securities", float(sol.traded), "currency"))
        notional = q * ov.notional / sol.value_after
        if np.abs(notional).sum() > p.gross_limit + WEIGHT_TOL:
            out.append(Violation(self.name, "gross_limit", float(np.abs(notional).sum() - p.gross_limit)))
        if abs(notional.sum()) > p.net_limit + WEIGHT_TOL:
            out.append(Violation(self.name, "net_limit", float(abs(notional.sum()) - p.net_limit)))
        short = d.min_cash * d.V + margin_required(sol) - sol.cash_after
        for a in np.flatnonzero(short > MONEY_TOL):
            out.append(Violation(self.name, f"margin[{d.account_ids[a]}]", float(short[a]), "currency"))
        return out
