"""Tax on realized gains with netting: the convex form max(c * net, net) of DESIGN.md.

Per lot slot, selling a unit of value realizes gain_frac = (price - basis) / price (negative for a
loss), short term when the lot is held one year or less at the as-of date, long term otherwise.
For the household (one tax return: every taxable account and its year-to-date gains together):

    net = r_S * (G_S + ytd_S) + r_L * (G_L + ytd_L)      (rate-weighted net gain, fraction of V)
    tax = max(c * net, net) - max(c * net0, net0)        (net0: year-to-date alone; the increment)

with c in [0, 1] what a net loss is worth now (``[tax] loss_value`` in harvest mode, else 0).
Convex and piecewise linear: two inequalities on an auxiliary variable.

Where this differs from the exact liability (``exact_tax``): the exact rules net short and long
terms separately and let the loss of one term offset the other's gain at the *other's* rate.
When the year nets to a gain, the convex form is off by (r_S - r_L) x (the loss of one term used
against the other term's gain): it under-states by that when short-term losses offset long-term
gains and over-states when long-term losses offset short-term gains; it is exact when both terms
net to the same sign. When the year nets to a loss, the exact tax now is 0 and the convex form is
c * net (the value of the carried-forward loss).
"""

from __future__ import annotations

import numpy as np


def coefficients(data) -> np.ndarray:
    """(L,) rate-weighted gain per unit of value sold from each lot (negative: a loss)."""
    return data.lot_rate * data.lot_gain / data.price[data.lot_security]


def loss_value(policy) -> float:
    """c: what a net loss is worth now per dollar of tax (0 unless harvesting)."""
    return policy.tax.loss_value if policy.tax.harvest else 0.0


def ytd_net(data) -> float:
    """Rate-weighted net of the year's earlier gains, fraction of V."""
    t = data.policy.tax
    return (t.short_term_rate * data.ytd_short + t.long_term_rate * data.ytd_long) / data.V


def convex_tax(net: float, c: float) -> float:
    """max(c * net, net)."""
    return max(c * net, net)


def exact_tax(short: float, long: float, short_rate: float, long_rate: float) -> float:
    """Tax on a year's net short and long gains under the netting rules (a net loss: 0 now,
    carried forward; the $3,000 ordinary-income offset is left out)."""
    if short >= 0 and long >= 0:
        return short_rate * short + long_rate * long
    if short < 0 <= long:
        return long_rate * max(long + short, 0.0)
    if long < 0 <= short:
        return short_rate * max(short + long, 0.0)
    return 0.0


class Tax:
    name = "tax"

    def weight(self, policy) -> float:
        return policy.objective.tax_weight

    def declare(self, m, weight: float) -> None:
        d = m.data
        if not d.L or weight == 0:
            return
        coef, c, ytd = coefficients(d), loss_value(d.policy), ytd_net(d)
        # tax >= net and tax >= c * net, net = ytd + coef' lots: tax = max(c * net, net).
        tax = m.program.var("tax", 1, lo=-np.inf)
        m.program.constrain("tax.net", tax - coef @ m.lots, lo=ytd)
        if c > 0:
            m.program.constrain("tax.loss_value", tax - (c * coef) @ m.lots, lo=c * ytd)
        else:  # c * net = 0: a bound, not a row
            m.program.bound("tax", lo=0.0)
        # The year-to-date part max(c*ytd, ytd) is a constant of the objective; evaluate() reports
        # the increment.
        m.program.minimize("tax", tax * weight)

    def evaluate(self, sol) -> float:
        return realized(sol)["tax"] / sol.data.V


def gains_by_term(data, lot_sell_q: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Realized short and long gains (currency) and the per-lot gains."""
    g = data.lot_gain * lot_sell_q
    short = data.lot_short
    return float(g[short].sum()), float(g[~short].sum()), g


def incremental(data, short: float, long: float) -> tuple[float, float]:
    """(model, exact) incremental tax in currency for this rebalance's gains by term."""
    t = data.policy.tax
    c = loss_value(data.policy)
    rs, rl = t.short_term_rate, t.long_term_rate
    ys, yl = data.ytd_short, data.ytd_long
    model = (convex_tax(rs * (short + ys) + rl * (long + yl), c) - convex_tax(rs * ys + rl * yl, c))
    exact = exact_tax(short + ys, long + yl, rs, rl) - exact_tax(ys, yl, rs, rl)
    return model, exact


def realized(sol) -> dict[str, float]:
    """Currency figures: realized gains by term, gross gains and losses, year-to-date, the
    model's incremental tax and the exact rules' incremental tax."""
    d = sol.data
    short, long, g = gains_by_term(d, sol.lot_sell_q)
    model, exact = incremental(d, short, long)
    return {"short_term_gain": short, "long_term_gain": long,
            "gross_gain": float(g[g > 0].sum()), "gross_loss": float(g[g < 0].sum()),
            "ytd_short_gain": d.ytd_short, "ytd_long_gain": d.ytd_long,
            "tax": model, "tax_exact": exact}


TERM = Tax()
