"""Asset-class bands (absolute, relative, 5/25, asymmetric) and the trigger rule.

Band edges around a target t (Daryanani 2008 for 5/25):
- absolute: t +/- a;  relative: t * (1 +/- r);  5/25: t +/- min(a, r * t);
clipped to [0, 1]. ``lower``/``upper`` in targets.csv override the rule per class (asymmetric).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np

from cvxrebalance.constraints.base import WEIGHT_TOL, Context, Violation
from cvxrebalance.optimizer.domain.targets import band_edges, outside, reference  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from cvxrebalance.optimizer.domain.prepare import Prepared
    from cvxrebalance.optimizer.domain.solution import Solution


def banded_before(data: Prepared) -> np.ndarray:
    """Class weights the bands apply to before trading: physical, plus the overlay's exposure
    when ``[bands] on = "exposure"``."""
    x = data.X.T @ data.h0.sum(0)
    if data.policy.bands.on == "exposure":
        x = x + data.overlay.G.T @ data.overlay.f0
    return x


def banded_after(sol: Solution) -> np.ndarray:
    """The same after trading."""
    if sol.data.policy.bands.on == "exposure":
        return sol.class_after + sol.class_overlay_after
    return sol.class_after


class BandConstraint:
    """lower + margin <= class weight after trading <= upper - margin, for every class and cash.

    ``margins`` (key "bands", C + 1 values, cash last) tighten the bands in the re-solve that follows
    a rounding that crossed an edge.
    """

    name = "bands"

    def parameters(self, data: Prepared, margins: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = margins.get("bands", np.zeros(data.C + 1))
        lo = np.append(data.lower, data.cash_lower) + m
        hi = np.append(data.upper, data.cash_upper) - m
        mid = (np.append(data.lower, data.cash_lower) + np.append(data.upper, data.cash_upper)) / 2
        # A margin never crosses the middle of the band.
        return {"band_lo": np.minimum(lo, mid), "band_hi": np.maximum(hi, mid)}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        lo = ctx.param("band_lo", (ctx.C + 1,))
        hi = ctx.param("band_hi", (ctx.C + 1,))
        w = cp.hstack([ctx.class_weight, cp.reshape(ctx.cash_weight, (1,), order="C")])
        labels_lo = [f"bands.lower[{k}]" for k in range(ctx.C + 1)]
        labels_hi = [f"bands.upper[{k}]" for k in range(ctx.C + 1)]
        return [w >= lo - ctx.slack("bands_lower", labels_lo),
                w <= hi + ctx.slack("bands_upper", labels_hi)]

    def check(self, sol: Solution) -> list[Violation]:
        d = sol.data
        out = []
        names = [*d.classes, "cash"]
        w = np.append(banded_after(sol), sol.cash_weight_after)
        lo = np.append(d.lower, d.cash_lower)
        hi = np.append(d.upper, d.cash_upper)
        for k, name in enumerate(names):
            if w[k] < lo[k] - WEIGHT_TOL:
                out.append(Violation(self.name, f"lower[{name}]", lo[k] - w[k], index=k))
            if w[k] > hi[k] + WEIGHT_TOL:
                out.append(Violation(self.name, f"upper[{name}]", w[k] - hi[k], index=k))
        return out


def triggered(data: Prepared) -> tuple[bool, list[str]]:
    """Whether the trigger rule asks for a rebalance, and why (class names out of band)."""
    reasons: list[str] = []
    x_now = banded_before(data)
    for k in np.flatnonzero(outside(x_now, data.lower, data.upper)):
        reasons.append(f"{data.classes[k]} at {x_now[k]:.2%} outside {data.lower[k]:.2%} to "
                       f"{data.upper[k]:.2%}")
    cash_now = float(data.cash0.sum())
    if outside(np.array([cash_now]), np.array([data.cash_lower]), np.array([data.cash_upper]))[0]:
        reasons.append(f"cash at {cash_now:.2%} outside {data.cash_lower:.2%} to {data.cash_upper:.2%}")
    short = np.flatnonzero(data.cash0 < data.min_cash - 1e-12)
    for a in short:
        reasons.append(f"account {data.account_ids[a]} below its minimum cash")
    if data.policy.trigger.mode == "always":
        return True, reasons or ["trigger mode is 'always'"]
    return bool(reasons), reasons
