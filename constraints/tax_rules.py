"""Tax limits: a budget on the net gain a rebalance realizes (household, and per taxable account
from accounts.csv ``gain_budget``), and the option that forbids realizing short-term gains.

Budget: sum over lots sold of (price - basis) * quantity <= budget, losses included (net gain).
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Model, Violation


def gain_fraction(data) -> np.ndarray:
    """(L,) realized gain per unit of value sold."""
    return data.lot_gain / data.price[data.lot_security]


def budgets(data) -> tuple[float | None, np.ndarray]:
    """Household budget (None: none) and per taxable account budgets (NaN: none), currency."""
    b = data.policy.tax.gain_budget
    acc = data.household.accounts["gain_budget"].to_numpy(float)[data.taxable]
    return (b if b >= 0 else None), acc


class TaxRules:
    name = "tax_rules"

    def lot_allowed(self, data) -> np.ndarray:
        if data.policy.tax.allow_short_term_gains:
            return np.ones(data.L, bool)
        return ~(data.lot_short & (data.lot_gain > 0))

    def declare(self, m: Model) -> None:
        d = m.data
        household, per_account = budgets(d)
        if not d.L:
            return
        gain = gain_fraction(d)  # net gain realized per unit of value sold
        # Rounding to whole shares can overshoot a budget by part of a share's gain; the pipeline
        # then moves the budget inward (margins["gain_budget"]: household first, then each
        # taxable account, fractions of V) and solves again.
        inward = m.margins.get("gain_budget", np.zeros(1 + len(d.taxable)))
        if household is not None:
            m.program.constrain("tax_rules.gain_budget", gain @ m.lots, hi=household / d.V - inward[0],
                                hi_labels=["tax_rules.gain_budget"])
        budgeted = [t for t in range(len(d.taxable)) if not np.isnan(per_account[t])]
        if budgeted:
            accounts = [d.taxable[t] for t in budgeted]
            per = np.array([(d.lot_account == a) * gain for a in accounts])
            m.program.constrain("tax_rules.account_gain_budget", per @ m.lots,
                                hi=per_account[budgeted] / d.V - inward[[1 + t for t in budgeted]],
                                hi_labels=[f"tax_rules.account_gain_budget[{a}]" for a in accounts])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        out = []
        per_lot = d.lot_gain * sol.lot_sell_q
        household, per_account = budgets(d)
        if household is not None and per_lot.sum() > household + MONEY_TOL:
            out.append(Violation(self.name, "gain_budget", float(per_lot.sum() - household), "currency", index=0))
        for t, a in enumerate(d.taxable):
            realized = per_lot[d.lot_account == a].sum()
            if not np.isnan(per_account[t]) and realized > per_account[t] + MONEY_TOL:
                out.append(Violation(self.name, f"gain_budget[{d.account_ids[a]}]",
                                     float(realized - per_account[t]), "currency", index=1 + t))
        if not d.policy.tax.allow_short_term_gains:
            banned = (sol.lot_sell_q > 0) & d.lot_short & (d.lot_gain > 0)
            for k in np.flatnonzero(banned):
                out.append(Violation(self.name, f"short-term gain realized {d.security_ids[d.lot_security[k]]} "
                                     f"lot {d.lot_ids[k]}", float(sol.lot_sell_q[k]), "shares"))
        return out


RULE = TaxRules()
