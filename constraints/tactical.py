"""Tactical limits: the effective target is the strategic weight plus a tilt within its maximum.

A tilt past its ``tilt_expires`` date reverts to zero. Tilts are validated against their maximum
when the household is read; the checker verifies the targets the optimizer used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from constraints.base import CASH, WEIGHT_TOL, MaskRule, Violation, rows

if TYPE_CHECKING:
    from optimizer.household import Household
    from optimizer.policy import Policy
    from optimizer.solution import Solution


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
    cls_of = dict(zip(household.securities["security_id"], household.securities["asset_class"],
                      strict=True))
    strategic, tilt = np.zeros(C), np.zeros(C)
    max_tilt = np.full(C, policy.tactical.max_tilt)
    sec_w = np.zeros(len(sids)) if household.target_by == "security_id" else None
    cash_target, cash_tilt, cash_banded = 0.0, 0.0, False
    lower: dict[str, float] = {}
    upper: dict[str, float] = {}
    notes: list[str] = []
    for _, row in rows(tgt):
        live = row.tilt
        if row.tilt != 0 and row.tilt_expires is not None and as_of > row.tilt_expires:
            notes.append(f"tilt on {row.id} expired {row.tilt_expires}; reverted to strategic")
            live = 0.0
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
    return Targets(strategic, tilt, strategic + tilt, max_tilt, cash_target + cash_tilt,
                   cash_banded, lower, upper, sec_w, notes)


class Tactical(MaskRule):
    """Checks that the targets a result was optimized toward respect the tilt limits."""

    name = "tactical"

    def check(self, sol: Solution) -> list[Violation]:
        d = sol.data
        out = []
        tg = d.targets_detail
        for k, c in enumerate(d.classes):
            excess = abs(d.target[k] - d.strategic[k]) - tg.max_tilt[k]
            if d.household.target_by == "asset_class" and excess > WEIGHT_TOL:
                out.append(Violation(self.name, f"max_tilt[{c}]", excess))
        return out
