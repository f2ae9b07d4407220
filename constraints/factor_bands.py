"""Factor bands: lower_k <= factor exposure x_k <= upper_k after trading (factor_targets.csv).

The exposure counts securities, cash and the overlay (``optimizer.domain.factor_targets``). The
rows are written as the checker reads them, over the value after trading:

    x_value_k - (lower_k + margin_k) * value_after >= 0,   x_value_k - (upper_k - margin_k) * value_after <= 0

with x_value = B'(h0 + net) + b_cash cash + b_f'(f0 + ftrade) and value_after = sum(h0) +
sum(net) + sum(cash), all fractions of V (costs lower the cash, so they are in value_after). Where
costs would loosen a row (a lower edge above 0, an upper edge below 0: a smaller value after
trading raises the exposure per unit of it) the row is over the value before costs, sum(h0) +
sum(cash0), instead: stricter than the checker by |edge| x costs, never looser, so the program
cannot meet a band by spending cash on round trips (buying and selling a contract at once). Each
row is divided by the factor's largest loading (``FactorTargets.scale``) so that its elastic slack,
as an infeasible policy's conflict reports it, is a fraction of household value like the other
rules' (the weight of the highest-loading security that would have to move).
``margins["factor_bands"]`` (T,) moves the edges inward after a whole-share rounding crossed one:
in weight, times the factor's largest loading (``FactorTargets.scale``), so the pipeline's cap on
margins (a share of household value) means the same for every factor; an edge never crosses the
middle of its band. The elastic labels are ``factor_bands.lower[<factor>]`` and
``factor_bands.upper[<factor>]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cvxrebalance.constraints.base import WEIGHT_TOL, Model, Violation
from cvxrebalance.optimizer.domain.factor_targets import (
    FactorTargets,
    exposure,
    exposure_after,
    factor_targets,
)

if TYPE_CHECKING:
    from cvxrebalance.optimizer.domain.solution import Solution

UNIT = "factor"  # a Violation's amount is in the factor's own units


def edges(ft: FactorTargets, margins: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(T,) band edges moved inward by ``margins["factor_bands"]`` (weights, times the factor's
    scale), never past the middle of the band."""
    m = margins.get("factor_bands", np.zeros(ft.T)) * ft.scale
    mid = np.where(np.isfinite(ft.lower) & np.isfinite(ft.upper), (ft.lower + ft.upper) / 2, ft.target)
    lo = np.where(np.isfinite(ft.lower), np.minimum(ft.lower + m, np.maximum(mid, ft.lower)), -np.inf)
    hi = np.where(np.isfinite(ft.upper), np.maximum(ft.upper - m, np.minimum(mid, ft.upper)), np.inf)
    return lo, hi


class FactorBands:
    """lower <= factor exposure after trading <= upper, for every factor of factor_targets.csv
    with a band edge."""

    name = "factor_bands"

    def declare(self, m: Model) -> None:
        d = m.data
        ft = factor_targets(d)
        if not ft.banded.any():
            return
        x = exposure(m)
        value = m.net.sum() + m.cash.sum() + float(d.h0.sum())  # after trading: costs lower it
        before_costs = float(d.h0.sum() + d.cash0.sum())
        lo, hi = edges(ft, m.margins)
        for side, edge, label in (("lower", lo, "lo"), ("upper", hi, "hi")):
            rows = np.flatnonzero(np.isfinite(edge))
            if not rows.size:
                continue
            e = edge[rows]
            # Where costs would loosen the row, it is over the value before costs (module docstring).
            loosens = e > 0 if side == "lower" else e < 0
            at_value = (np.ones((rows.size, 1)) @ value) * np.where(loosens, 0.0, e) + before_costs * np.where(loosens, e, 0.0)
            # Over the factor's scale: a row's elastic slack is then a weight, like the other rules'.
            expr = (x.rows(rows) - at_value) * (1 / ft.scale[rows])
            labels = {f"{label}_labels": [f"factor_bands.{side}[{ft.names[t]}]" for t in rows]}
            bounds = {"lo": 0.0} if side == "lower" else {"hi": 0.0}
            m.program.constrain(f"factor_bands.{side}", expr, **bounds, **labels)

    def check(self, sol: Solution) -> list[Violation]:
        ft = factor_targets(sol.data)
        if not ft.banded.any():
            return []
        x, _ = exposure_after(sol)
        tol = WEIGHT_TOL * ft.scale
        out = []
        for t in np.flatnonzero(x < ft.lower - tol):
            out.append(Violation(self.name, f"lower[{ft.names[t]}]", float(ft.lower[t] - x[t]), UNIT, int(t)))
        for t in np.flatnonzero(x > ft.upper + tol):
            out.append(Violation(self.name, f"upper[{ft.names[t]}]", float(x[t] - ft.upper[t]), UNIT, int(t)))
        return out


RULE = FactorBands()
