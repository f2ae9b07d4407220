"""Turnover limit: one-way turnover (buys + sells) / 2 <= limit, as a fraction of household value.

A limit of 1 or more never binds (a self-financing household cannot trade more), so no row."""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import WEIGHT_TOL, Model, Violation


class Turnover:
    name = "turnover"

    def declare(self, m: Model) -> None:
        limit = m.data.policy.limits.turnover
        if limit >= 1:
            return
        margin = float(m.margins.get("turnover", np.zeros(1))[0])
        m.program.constrain("turnover", m.traded.sum() * 0.5, hi=max(limit - margin, 0.0),
                            hi_labels=["turnover"])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        one_way = sol.traded / 2 / d.V
        excess = one_way - d.policy.limits.turnover
        return [Violation(self.name, "one-way turnover", excess)] if excess > WEIGHT_TOL else []


RULE = Turnover()
