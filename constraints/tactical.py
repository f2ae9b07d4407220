"""Tactical limits: the effective target is the strategic weight plus a tilt within its maximum.

A tilt past its ``tilt_expires`` date reverts to zero. Tilts are validated against their maximum
when the household is read; the checker verifies the targets the optimizer used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cvxrebalance.constraints.base import WEIGHT_TOL, MaskRule, Violation

if TYPE_CHECKING:
    from cvxrebalance.optimizer.domain.solution import Solution


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


RULE = Tactical()
