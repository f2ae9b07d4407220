"""Tactical views: minus the expected active return the trades add (fractions of household value).

targets.csv ``alpha`` gives each row's expected active return (annual, a fraction); prepare maps
it to securities (``alpha``, N), cash (``alpha_cash``) and contracts (``alpha_f = G @ alpha_class``,
per unit of notional). With t the net trade per security, dc the change in household cash and df
the notional traded per contract (all fractions of V),

    alpha term = -(alpha' t + alpha_cash * dc + alpha_f' df)

so a buy of a class with a positive view lowers the objective by alpha_weight * alpha per unit
bought (less cash's alpha on the cash that paid for it). Only the change counts: the alpha of
today's holdings is a constant. Linear, so the optimizer moves toward a view until the marginal
tracking error, costs and taxes equal alpha_weight * alpha.
"""

from __future__ import annotations

import numpy as np


def has_views(data) -> bool:
    """Whether any security, cash or contract carries a nonzero alpha."""
    return bool(data.alpha.any() or data.alpha_cash != 0 or data.alpha_f.any())


def largest_rate(data) -> float:
    """The largest |alpha| per unit of value traded (securities, cash, contracts)."""
    return float(max(np.abs(data.alpha).max(initial=0.0), abs(data.alpha_cash),
                     np.abs(data.alpha_f).max(initial=0.0)))


class Alpha:
    name = "alpha"

    def weight(self, policy) -> float:
        return policy.objective.alpha_weight

    def declare(self, m, weight: float) -> None:
        d = m.data
        if weight <= 0 or not has_views(d):
            return
        # -(alpha' net + alpha_cash (cash after - cash before) + alpha_f' ftrade), times weight
        gain = (weight * d.alpha) @ m.net + (weight * d.alpha_cash) * (m.cash_weight - float(d.cash0.sum()))
        if m.J and d.alpha_f.any():
            gain = gain + (weight * d.alpha_f) @ m.ftrade
        m.program.minimize("alpha", -gain)

    def evaluate(self, sol) -> float:
        d = sol.data
        net = (sol.buy_value - sol.sell_value).sum(0) / d.V
        cash_change = float(sol.cash_after.sum() - (d.cash_cur + d.flow_cur).sum()) / d.V
        notional = sol.contracts_traded * d.overlay.notional / d.V
        return -float(d.alpha @ net + d.alpha_cash * cash_change + d.alpha_f @ notional)


TERM = Alpha()
