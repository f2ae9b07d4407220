"""Asset-class bands (absolute, relative, 5/25, asymmetric) and the trigger rule.

The band edges come from ``optimizer.domain.targets``. Rows: lower + margin <= class weight after
trading <= upper - margin for every class and for cash, only where a band binds anything (an
edge inside [0, 1], or an overlay whose exposure the bands see).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cvxrebalance.constraints.base import WEIGHT_TOL, Model, Violation
from cvxrebalance.optimizer.domain.calendar import is_check_date
from cvxrebalance.optimizer.domain.factor_targets import outside_reasons
from cvxrebalance.optimizer.domain.targets import outside

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


def unbanded(data: Prepared) -> bool:
    """``[bands] rule = "none"`` without ``exposure_floor``: no band beyond the edges targets.csv
    gives explicitly (with an overlay a class's exposure may then go below 0 or above 1, as the
    nearest whole contract of a full hedge can)."""
    return data.policy.bands.rule == "none" and not data.policy.bands.exposure_floor


def edges(data: Prepared, margins: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(C + 1) band edges, cash last, moved inward by ``margins["bands"]`` (the re-solve after a
    rounding that crossed an edge); a margin never crosses the middle of the band."""
    m = margins.get("bands", np.zeros(data.C + 1))
    lo0 = np.append(data.lower, data.cash_lower)
    hi0 = np.append(data.upper, data.cash_upper)
    mid = (lo0 + hi0) / 2
    return np.minimum(lo0 + m, mid), np.maximum(hi0 - m, mid)


def banded_rows(m: Model, margins: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The band edges (C + 1, cash last) and the rows that carry a band: an edge inside [0, 1],
    or every class when an overlay's exposure counts (unless the rule is "none")."""
    d = m.data
    lo, hi = edges(d, margins)
    exposure = bool(m.J) and d.policy.bands.on == "exposure" and not unbanded(d)
    return lo, hi, np.flatnonzero((lo > 0) | (hi < 1) | exposure)


class BandConstraint:
    """lower + margin <= class weight after trading <= upper - margin, for every class and cash."""

    name = "bands"

    def declare(self, m: Model) -> None:
        d = m.data
        lo, hi, rows = banded_rows(m, m.margins)
        classes = rows[rows < d.C]
        if classes.size:
            m.program.constrain("bands", m.class_weight.rows(classes), lo[classes], hi[classes],
                                lo_labels=[f"bands.lower[{k}]" for k in classes],
                                hi_labels=[f"bands.upper[{k}]" for k in classes])
        if d.C in rows:
            m.program.constrain("bands.cash", m.cash_weight, lo[d.C], hi[d.C],
                                lo_labels=[f"bands.lower[{d.C}]"], hi_labels=[f"bands.upper[{d.C}]"])

    def check(self, sol: Solution) -> list[Violation]:
        d = sol.data
        out = []
        names = [*d.classes, "cash"]
        w = np.append(banded_after(sol), sol.cash_weight_after)
        lo = np.append(d.lower, d.cash_lower)
        hi = np.append(d.upper, d.cash_upper)
        if unbanded(d):  # only the explicit edges are bands
            w = np.where((lo <= 0) & (hi >= 1), np.clip(w, 0, 1), w)
        for k in np.flatnonzero(w < lo - WEIGHT_TOL):
            out.append(Violation(self.name, f"lower[{names[k]}]", lo[k] - w[k], index=int(k)))
        for k in np.flatnonzero(w > hi + WEIGHT_TOL):
            out.append(Violation(self.name, f"upper[{names[k]}]", w[k] - hi[k], index=int(k)))
        return out


def triggered(data: Prepared) -> tuple[bool, list[str], list[str]]:
    """Whether the trigger rule asks for a rebalance, why (or why not), and the same in plain
    words for the client's proposal.

    ``always`` trades; ``never`` does not (buy and hold); ``threshold`` trades when a class or
    cash is outside its band, a factor exposure is outside its factor_targets.csv band, or an
    account is below its minimum cash; ``calendar`` trades on the
    check dates of ``[trigger] frequency`` and ``hybrid`` applies the threshold rule on them only
    (``optimizer.domain.calendar.is_check_date`` of the as-of date; a backtest decides check dates
    from its data calendar).
    """
    trigger = data.policy.trigger
    as_of = data.policy.tax.as_of
    if trigger.mode == "never":
        return False, ["trigger mode is 'never' (buy and hold)"], ["the policy is buy and hold: it never rebalances"]
    if trigger.mode in ("calendar", "hybrid") and not is_check_date(as_of, trigger.frequency):
        return (False, [f"{as_of} is not a {trigger.frequency} check date (trigger '{trigger.mode}')"],
                [f"{as_of} is not a scheduled {trigger.frequency} review date"])
    if trigger.mode == "calendar":
        return (True, [f"{as_of} is a {trigger.frequency} check date (trigger 'calendar')"],
                [f"{as_of} is a scheduled {trigger.frequency} review date"])
    reasons: list[str] = []
    words: list[str] = []

    def breach(name: str, x: float, lo: float, hi: float) -> None:
        reasons.append(f"{name} at {x:.2%} outside {lo:.2%} to {hi:.2%}")
        words.append(f"{name} is at {x:.2%}, outside its allowed range of {lo:.2%} to {hi:.2%}")

    x_now = banded_before(data)
    for k in np.flatnonzero(outside(x_now, data.lower, data.upper)):
        breach(data.classes[k], x_now[k], data.lower[k], data.upper[k])
    cash_now = float(data.cash0.sum())
    if outside(np.array([cash_now]), np.array([data.cash_lower]), np.array([data.cash_upper]))[0]:
        breach("cash", cash_now, data.cash_lower, data.cash_upper)
    factors = outside_reasons(data)  # factor exposures outside their factor_targets.csv bands
    reasons += factors
    words += factors
    for a in np.flatnonzero(data.cash0 < data.min_cash - 1e-12):
        reasons.append(f"account {data.account_ids[a]} below its minimum cash")
        words.append(f"account {data.account_ids[a]} is below the minimum cash it must keep")
    if trigger.mode == "always":
        return True, reasons or ["trigger mode is 'always'"], words or ["the policy rebalances at every review"]
    what = "every asset class and factor is" if len(data.household.factor_targets) else "every asset class is"
    return (bool(reasons), reasons or [f"{what} inside its band (trigger '{trigger.mode}')"],
            words or [f"{what} inside its allowed range"])


RULE = BandConstraint()
