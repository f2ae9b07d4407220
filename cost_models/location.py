"""Location preference: sum over positions of tax drag(security, account type) * value held.

Drag comes from securities.csv ``drag_<account type>`` (annual drag per unit of value), so a bond
fund with drag_taxable = 0.004 prefers tax-deferred accounts when its weight is the same elsewhere.
"""

from __future__ import annotations

import numpy as np


def drag(data) -> np.ndarray:
    """(A, N) drag per unit of value held."""
    cols = {t: data.column(f"drag_{t}").astype(float) for t in ("taxable", "tax_deferred", "tax_exempt")}
    return np.array([cols[t] for t in data.account_types])


class LocationDrag:
    name = "location"

    def weight(self, policy) -> float:
        return policy.objective.location_weight

    def declare(self, m, weight: float) -> None:
        rate = weight * drag(m.data).ravel()
        if rate.any():  # the drag of today's holdings is a constant; only the change counts
            m.program.minimize("location", rate @ (m.buy - m.sold))

    def evaluate(self, sol) -> float:
        d = sol.data
        return float((drag(d) * (sol.buy_q - sol.sell_q) * d.price).sum() / d.V)


TERM = LocationDrag()
