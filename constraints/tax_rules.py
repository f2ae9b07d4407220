"""Tax limits: a budget on the net gain a rebalance realizes (household, and per taxable account
from accounts.csv ``gain_budget``), and the option that forbids realizing short-term gains.

Budget: sum over lots sold of (price - basis) * quantity <= budget, losses included (net gain).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Context, MaskRule, Violation

NO_BUDGET = 10.0  # fraction of household value: a bound never active


def gain_fraction(data) -> np.ndarray:
    """(T, N, K) realized gain per unit of value sold."""
    return data.lot_gain / data.price[None, :, None]


def budgets(data) -> tuple[float | None, np.ndarray]:
    """Household budget (None: none) and per taxable account budgets (NaN: none), currency."""
    b = data.policy.tax.gain_budget
    acc = data.household.accounts["gain_budget"].to_numpy(float)[data.taxable]
    return (b if b >= 0 else None), acc


class TaxRules(MaskRule):
    name = "tax_rules"

    def lot_allowed(self, data) -> np.ndarray:
        if data.policy.tax.allow_short_term_gains:
            return np.ones(data.lot_q.shape, bool)
        return ~(data.lot_short & (data.lot_gain > 0))

    def parameters(self, data, margins):
        household, per_account = budgets(data)
        return {
            "gain_budget": np.array(NO_BUDGET if household is None else household / data.V),
            "account_gain_budget": np.where(np.isnan(per_account), NO_BUDGET, per_account / data.V),
            **{f"gain_frac_{t}": gain_fraction(data)[t] for t in range(len(data.taxable))},
        }

    def build(self, ctx: Context) -> list[cp.Constraint]:
        T = len(ctx.taxable)
        if not T:
            return []
        gains = cp.hstack([cp.sum(cp.multiply(ctx.param(f"gain_frac_{t}", (ctx.N, ctx.K)), ctx.lot_sell[t]))
                           for t in range(T)])
        labels = [f"tax_rules.account_gain_budget[{a}]" for a in ctx.taxable]
        return [
            cp.sum(gains) <= ctx.param("gain_budget", ()) + cp.sum(ctx.slack("gain_budget", ["tax_rules.gain_budget"])),
            gains <= ctx.param("account_gain_budget", (T,)) + ctx.slack("account_gain_budget", labels),
        ]

    def check(self, sol) -> list[Violation]:
        d = sol.data
        out = []
        per_lot = d.lot_gain * sol.lot_sell_q
        household, per_account = budgets(d)
        if household is not None and per_lot.sum() > household + MONEY_TOL:
            out.append(Violation(self.name, "gain_budget", float(per_lot.sum() - household), "currency"))
        for t, a in enumerate(d.taxable):
            if not np.isnan(per_account[t]) and per_lot[t].sum() > per_account[t] + MONEY_TOL:
                out.append(Violation(self.name, f"gain_budget[{d.account_ids[a]}]",
                                     float(per_lot[t].sum() - per_account[t]), "currency"))
        if not d.policy.tax.allow_short_term_gains:
            banned = (sol.lot_sell_q > 0) & d.lot_short & (d.lot_gain > 0)
            for t, i, k in zip(*np.nonzero(banned), strict=True):
                out.append(Violation(self.name, f"short-term gain realized {d.security_ids[i]} slot {k}",
                                     float(sol.lot_sell_q[t, i, k]), "shares"))
        return out
