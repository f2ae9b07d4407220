"""Targets and bands: effective class targets (strategic + live tilt), band edges under the
policy's rule, and the reference weights the tracking term pulls toward.

Band edges around a target t (Daryanani 2008 for 5/25):
- absolute: t +/- a;  relative: t * (1 +/- r);  5/25: t +/- min(a, r * t);
clipped to [0, 1]. ``lower``/``upper`` in targets.csv override the rule per class (asymmetric).
A tilt past its ``tilt_expires`` date reverts to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.tables import CASH, rows

if TYPE_CHECKING:
    from cvxrebalance.optimizer.domain.household import Household
    from cvxrebalance.optimizer.domain.policy import Bands as BandPolicy
    from cvxrebalance.optimizer.domain.policy import Policy


@dataclass
class Targets:
    """Class-level targets and optional security-level model weights."""

    strategic: np.ndarray
    tilt: np.ndarray
    target: np.ndarray
    max_tilt: np.ndarray
    cash_target: float
    cash_banded: bool
    lower: dict[str, float]
    upper: dict[str, float]
    security_weights: np.ndarray | None
    notes: list[str] = field(default_factory=list)


def effective_targets(
    household: Household, policy: Policy, classes: list[str], sids: list[str]
) -> Targets:
    """Strategic weight + live tilt per class (and per security for a model portfolio)."""
    tgt = household.targets
    as_of = policy.tax.as_of
    C = len(classes)
    c_idx = {c: k for k, c in enumerate(classes)}
    s_idx = {s: i for i, s in enumerate(sids)}
    cls_of = (dict(zip(household.securities["security_id"].tolist(), household.securities["asset_class"].tolist(),
                       strict=True)) if household.target_by == "security_id" else {})
    strategic, tilt = np.zeros(C), np.zeros(C)
    max_tilt = np.full(C, policy.tactical.max_tilt)
    sec_w = np.zeros(len(sids)) if household.target_by == "security_id" else None
    cash_target, cash_tilt, cash_banded = 0.0, 0.0, False
    lower: dict[str, float] = {}
    upper: dict[str, float] = {}
    notes: list[str] = []
    expired: list[tuple[int, str, object]] = []
    live_total = 0.0
    for line, row in rows(tgt):
        live = row.tilt
        if row.tilt != 0 and row.tilt_expires is not None and as_of > row.tilt_expires:
            notes.append(f"tilt on {row.id} expired {row.tilt_expires}; reverted to strategic")
            live = 0.0
            expired.append((line, row.id, row.tilt_expires))
        live_total += live
        if row.id == CASH:
            cash_target, cash_tilt, cash_banded = row.weight, live, True
        elif sec_w is not None:
            sec_w[s_idx[row.id]] = row.weight + live
            k = c_idx[cls_of[row.id]]
            strategic[k] += row.weight
            tilt[k] += live
        else:
            k = c_idx[row.id]
            strategic[k], tilt[k] = row.weight, live
            if not np.isnan(row.max_tilt):
                max_tilt[k] = row.max_tilt
        key = CASH if row.id == CASH else (row.id if sec_w is None else None)
        if key is not None:
            if not np.isnan(row.lower):
                lower[key] = row.lower
            if not np.isnan(row.upper):
                upper[key] = row.upper
    # Tilts net to zero (targets.csv is checked so); if some legs expired and the others did not,
    # the live ones no longer do and the targets would not sum to one: a problem, not a guess.
    if expired and abs(live_total) > 1e-9:
        raise ValidationError([
            Problem("targets.csv", int(line), "tilt_expires",
                    f"the tilt on {name} expired on {when}, but the tilts it offset are still live (they "
                    f"sum to {live_total:+.6g}, so the targets would not add up to 1); give every leg of "
                    "a tilt the same tilt_expires")
            for line, name, when in expired])
    return Targets(strategic, tilt, strategic + tilt, max_tilt, cash_target + cash_tilt,
                   cash_banded, lower, upper, sec_w, notes)




def band_edges(target: np.ndarray, bands: BandPolicy, vol: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper band edges for each target weight under the policy's rule.

    Rule "volatility" scales the half-width with each class's volatility ``vol`` (annual, from
    the risk model): ``absolute * vol / reference_vol``, so a class as volatile as the reference
    gets ``absolute``. Cash has no volatility of its own (``vol`` None): it gets ``relative *
    target``.

    Examples
    --------
    >>> from cvxrebalance.optimizer.domain.policy import Bands
    >>> lo, hi = band_edges(np.array([0.60, 0.10, 0.05]), Bands(rule="5/25"))
    >>> lo.round(4).tolist(), hi.round(4).tolist()
    ([0.55, 0.075, 0.0375], [0.65, 0.125, 0.0625])
    >>> lo, hi = band_edges(np.array([0.6, 0.4]), Bands(rule="volatility"), vol=np.array([0.18, 0.06]))
    >>> lo.round(4).tolist(), hi.round(4).tolist()  # 5 points at 15% volatility
    ([0.54, 0.38], [0.66, 0.42])
    """
    t = np.asarray(target, float)
    if bands.rule == "none":
        return np.zeros_like(t), np.ones_like(t)
    if bands.rule == "absolute":
        half = np.full_like(t, bands.absolute)
    elif bands.rule == "relative" or bands.rule == "volatility" and vol is None:
        half = bands.relative * t
    elif bands.rule == "volatility":
        half = bands.absolute * np.asarray(vol, float) / bands.reference_vol
    else:  # "5/25": the smaller of 5 points and 25% of the target
        half = np.minimum(bands.absolute, bands.relative * t)
    return np.clip(t - half, 0, 1), np.clip(t + half, 0, 1)


def class_edges(targets: Targets, bands: BandPolicy, classes: list[str],
                vol: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Band edges per class and for cash: the policy's rule around each (tilted) target, where
    targets.csv gives no ``lower``/``upper`` of its own; cash is unbanded ([0, 1]) unless
    targets.csv has a cash row."""
    lower, upper = band_edges(targets.target, bands, vol)
    cash_lower, cash_upper = (0.0, 1.0)
    if targets.cash_banded:
        lo_c, hi_c = band_edges(np.array([targets.cash_target]), bands)
        cash_lower, cash_upper = float(lo_c[0]), float(hi_c[0])
    for k, c in enumerate(classes):
        lower[k] = targets.lower.get(c, lower[k])
        upper[k] = targets.upper.get(c, upper[k])
    return lower, upper, targets.lower.get(CASH, cash_lower), targets.upper.get(CASH, cash_upper)


def outside(weights: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Mask of weights outside their band."""
    return (weights < lower - tol) | (weights > upper + tol)


def reference(
    policy: Policy, target, lower, upper, now, cash_target, cash_lower, cash_upper, cash_now
) -> tuple[np.ndarray, float]:
    """Class weights the tracking term pulls toward.

    ``rebalance_to = "target"``: the targets. ``"tolerance"``: a class outside its band is pulled
    to its inner band (target +/- inner * half-width, on the side it broke); the classes inside
    their bands (cash included) make room, first those deviating from target in the direction
    that helps (in proportion to that deviation), then in proportion to target, so the
    reference weights still sum to one.
    """
    if policy.trigger.rebalance_to == "target":
        return np.asarray(target, float).copy(), float(cash_target)
    t = np.append(target, cash_target)
    lo = np.append(lower, cash_lower)
    hi = np.append(upper, cash_upper)
    w = np.append(now, cash_now).astype(float)
    inner = policy.bands.inner
    out = outside(w, lo, hi)
    ref = w.copy()
    ref[out] = np.clip(w[out], (t - inner * (t - lo))[out], (t + inner * (hi - t))[out])
    delta = (ref - w)[out].sum()  # what the out-of-band moves need from the others
    if abs(delta) > 0 and (~out).any():
        room = np.where(~out, np.maximum(np.sign(delta) * (w - t), 0.0), 0.0)
        take = min(abs(delta), room.sum())
        if take > 0:
            ref -= np.sign(delta) * take * room / room.sum()
        rest = abs(delta) - take
        if rest > 0:
            share = np.where(~out, t, 0.0)
            share = share / share.sum() if share.sum() > 0 else (~out) / (~out).sum()
            ref -= np.sign(delta) * rest * share
    return ref[:-1], float(ref[-1])
