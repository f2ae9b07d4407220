"""Factor drift: the distance of each targeted factor exposure from its target, priced in variance.

For the factors of factor_targets.csv (``optimizer.domain.factor_targets``), with x_k the exposure
after trading (securities, cash and overlay, per unit of household value) and F the factor
covariance,

    factor drift = sum_k F_kk (x_k - ref_k)^2

times ``[objective] factor_weight``. ref_k is the target (or, under ``rebalance_to = "tolerance"``
or a ``[trigger] fraction``, the reference the asset classes would get). Each factor is priced by
its own variance only, in the units of the tracking error (a return variance), so a factor
deviation and the tracking error trade off at the ratio of their weights, and the answer does not
depend on the covariance's time unit when factor_weight is scaled with risk_weight (against costs,
both weights carry the covariance's unit). A factor with zero variance is not pulled (its band, if any,
still holds). Nothing is declared without factor targets or with ``factor_weight = 0``.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.optimizer.domain.factor_targets import exposure, exposure_after, factor_targets


def largest_rate(data) -> float:
    """The drift term's variance per unit of weight squared at its steepest: max over targeted
    factors of F_kk times the largest squared loading on the factor (for the objective's scale,
    as tracking error's mean security variance)."""
    ft = factor_targets(data)
    return float((ft.variance * ft.scale**2).max(initial=0.0)) if ft.T else 0.0


class FactorDrift:
    name = "factor_drift"

    def weight(self, policy) -> float:
        return policy.objective.factor_weight

    def declare(self, m, weight: float) -> None:
        ft = factor_targets(m.data)
        if weight <= 0 or not ft.T or not ft.variance.any():
            return
        x = exposure(m)
        m.program.minimize_squares("factor_drift", (x - ft.ref) * np.sqrt(weight * np.maximum(ft.variance, 0.0)))

    def evaluate(self, sol) -> float:
        ft = factor_targets(sol.data)
        if not ft.T:
            return 0.0
        x, _ = exposure_after(sol)
        return float((ft.variance * (x - ft.ref) ** 2).sum())


TERM = FactorDrift()
