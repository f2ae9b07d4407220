"""Account location: a security is only bought in account types its ``allowed_account_types`` lists.

Existing holdings in other account types may be held or sold. The location *preference* (tax drag
per account type) is an objective term, see cvxrebalance.cost_models.location.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MaskRule, Violation


def allowed(data) -> np.ndarray:
    """(A, N) mask: security i may be bought in account a."""
    types = data.securities["allowed_account_types"].tolist()
    return np.array([[t in ok for ok in types] for t in data.account_types], bool)


class Location(MaskRule):
    name = "location"

    def buy_allowed(self, data) -> np.ndarray:
        return allowed(data)

    def check(self, sol) -> list[Violation]:
        d = sol.data
        bad = (sol.buy_q > 0) & ~allowed(d)
        return [Violation(self.name, f"{d.account_ids[a]} ({d.account_types[a]}) may not buy "
                          f"{d.security_ids[i]}", sol.buy_q[a, i], "shares")
                for a, i in zip(*np.nonzero(bad), strict=True)]


RULE = Location()
