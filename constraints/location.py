"""Account location: a security is only bought in account types its ``allowed_account_types`` lists,
and a substitute class of restrictions.csv only in the accounts where it stands in.

Existing holdings in other account types may be held or sold. The location *preference* (tax drag
per account type) is an objective term, see cvxrebalance.cost_models.location.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MaskRule, Violation
from cvxrebalance.optimizer.domain.restrictions import of


def by_type(data) -> np.ndarray:
    """(A, N) mask: securities.csv ``allowed_account_types`` lets account a buy security i."""
    types = data.securities["allowed_account_types"].tolist()
    return np.array([[t in ok for ok in types] for t in data.account_types], bool)


def allowed(data) -> np.ndarray:
    """(A, N) mask: security i may be bought in account a."""
    ok = by_type(data)
    if len(data.household.restrictions):
        ok &= of(data).stand_in_ok
    return ok


class Location(MaskRule):
    name = "location"

    def buy_allowed(self, data) -> np.ndarray:
        return allowed(data)

    def check(self, sol) -> list[Violation]:
        d = sol.data
        typed = by_type(d)
        out = []
        for a, i in zip(*np.nonzero((sol.buy_q > 0) & ~allowed(d)), strict=True):
            why = (f"{d.account_ids[a]} ({d.account_types[a]}) may not buy {d.security_ids[i]}" if not typed[a, i]
                   else f"{d.account_ids[a]} may not buy {of(d).stand_in_text[i]}")
            out.append(Violation(self.name, why, sol.buy_q[a, i], "shares"))
        return out


RULE = Location()
