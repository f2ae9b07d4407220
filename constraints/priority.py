"""Preferred securities: securities.csv ``priority`` (1 = the class's primary buy).

In each account, a class whose securities carry priorities is bought only through the best-ranked
security the account may buy under every other rule (location, ESG, wash sales, illiquidity,
restrictions); lower ranks are used only where those rules forbid the better ones, and unranked
securities of a ranked class only where no ranked one may be bought. Classes without priorities
are bought as the objective decides. Applied as the last step of the trade masks
(``constraints.trade_masks``), since it depends on what every other rule allows.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MaskRule, Violation


def restrict(data, buy_ok: np.ndarray) -> np.ndarray:
    """``buy_ok`` (A, N) with only the best-ranked buyable security of each ranked class left."""
    if not data.household.priorities:
        return buy_ok
    rank = data.column("priority").astype(float)
    out = buy_ok.copy()
    for k in np.unique(data.class_of[~np.isnan(rank)]):
        members = data.class_of == k
        for a in range(data.A):
            ranked = members & buy_ok[a] & ~np.isnan(rank)
            if ranked.any():
                out[a, members & (rank != rank[ranked].min())] = False
    return out


class Priority(MaskRule):
    name = "priority"

    def check(self, sol) -> list[Violation]:
        from cvxrebalance.constraints import trade_masks  # the package lists every rule

        d = sol.data
        if not d.household.priorities:
            return []
        buy_ok = trade_masks(d)[0]
        bad = (sol.buy_q > 0) & ~buy_ok
        return [Violation(self.name, f"{d.account_ids[a]} buys {d.security_ids[i]} while a better-ranked "
                          "security of its class may be bought", float(sol.buy_q[a, i]), "shares")
                for a, i in zip(*np.nonzero(bad), strict=True)]


RULE = Priority()
