"""Tax on realized gains, lot by lot: rate(term) * max(gain, 0) / price * lot_sell.

term is short or long by holding period at the as-of date (more than a year: long). Losses are
valued at zero here: their worth depends on netting against other gains, which is the job of the
netting model (DESIGN.md, max(c * net, net)); valuing them per lot without netting would reward
wash trades.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np


def coefficients(data) -> np.ndarray:
    """(T, N, K) tax per unit of value sold from each lot slot."""
    gain_frac = np.maximum(data.lot_gain, 0.0) / data.price[None, :, None]
    return data.lot_rate * gain_frac


class Tax:
    name = "tax"

    def weight(self, policy) -> float:
        return policy.objective.tax_weight

    def parameters(self, data, weight: float) -> dict:
        c = weight * coefficients(data)
        return {f"tax_{t}": c[t] for t in range(len(data.taxable))}

    def build(self, ctx) -> cp.Expression:
        terms = [cp.sum(cp.multiply(ctx.param(f"tax_{t}", (ctx.N, ctx.K), nonneg=True),
                                    ctx.lot_sell[t])) for t in range(len(ctx.taxable))]
        return cp.sum(cp.hstack(terms)) if terms else cp.Constant(0.0)

    def evaluate(self, sol) -> float:
        d = sol.data
        return float((np.maximum(d.lot_gain, 0) * d.lot_rate * sol.lot_sell_q).sum() / d.V)

    @staticmethod
    def realized(sol) -> dict[str, float]:
        """Realized gains by term (net of losses of the same term), gross gains and losses, and
        the tax, in currency. Losses lower the net figures but not the tax (see module doc)."""
        d = sol.data
        g = d.lot_gain * sol.lot_sell_q
        short = np.zeros_like(g, bool)
        for lot in d.lots:
            short[lot.t, lot.security, lot.slot] = lot.term == "short"
        tax = float((np.maximum(d.lot_gain, 0) * d.lot_rate * sol.lot_sell_q).sum())
        return {"short_term_gain": float(g[short].sum()), "long_term_gain": float(g[~short].sum()),
                "gross_gain": float(g[g > 0].sum()), "gross_loss": float(g[g < 0].sum()),
                "tax": tax}
