"""Illiquid holdings (private equity, real-estate funds) are never traded.

They stay in household value and in their class weight; the liquid part rebalances around them.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MaskRule, Violation


class Illiquid(MaskRule):
    name = "illiquid"

    def buy_allowed(self, data) -> np.ndarray:
        return np.broadcast_to(data.liquid, (data.A, data.N)).copy()

    sell_allowed = buy_allowed

    def check(self, sol) -> list[Violation]:
        d = sol.data
        traded = (sol.buy_q + sol.sell_q) * ~d.liquid
        return [Violation(self.name, f"{d.account_ids[a]}/{d.security_ids[i]}", traded[a, i], "shares")
                for a, i in zip(*np.nonzero(traded > 0), strict=True)]


RULE = Illiquid()
