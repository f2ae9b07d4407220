"""The tactical boundary framework (scenarios.governance): time limits and reversion per
signal, then size and risk limits on the combined tilt, each clip reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import Policy
from cvxrebalance.scenarios.governance import hold, limit, tracking_error

DATES = pd.date_range("2021-01-31", periods=8, freq="ME")


def spec(**params):
    return Policy.from_dict({"signals": {"s": {"kind": "momentum", "classes": ["A"], **params}}}).signals[0]


def tilts(a):
    a = np.asarray(a, float)
    return pd.DataFrame({"A": a, "cash": -a}, index=DATES[: len(a)])


def test_max_days_ends_a_held_tilt_until_its_sign_changes():
    """Held from Jan 31: Mar 31 is 59 days on, Apr 30 89 > 60: cut; a flip starts a new hold."""
    held, cut = hold(tilts([0.02, 0.02, 0.02, 0.02, 0.02, -0.02, -0.02, 0.0]), spec(max_days=60))
    assert held["A"].tolist() == [0.02, 0.02, 0.02, 0.0, 0.0, -0.02, -0.02, 0.0]
    assert cut.tolist() == [False, False, False, True, True, False, False, False]
    assert (held.sum(axis=1).abs() < 1e-15).all()


def test_linear_reversion_steps_down_over_reversion_periods_and_a_new_tilt_replaces_it():
    held, _ = hold(tilts([0.03, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0, 0.01]), spec(reversion="linear", reversion_periods=3))
    assert held["A"].tolist() == pytest.approx([0.03, 0.02, 0.01, 0.0, 0.0, 0.03, 0.02, 0.01])
    immediate, _ = hold(tilts([0.03, 0.0, 0.0]), spec())
    assert immediate["A"].tolist() == [0.03, 0.0, 0.0]


def test_a_tilt_cut_by_max_days_reverts_linearly():
    held, cut = hold(tilts([0.04] * 6), spec(max_days=45, reversion="linear", reversion_periods=2))
    assert held["A"].tolist() == pytest.approx([0.04, 0.04, 0.02, 0.0, 0.0, 0.0])
    assert cut.tolist() == [False, False, True, True, True, True]


def limited(raw: dict, strategic, max_tilt, cov=None, budget=0.0):
    frame = pd.DataFrame(raw, index=["A", "B", "cash"]).T
    cov = np.zeros((3, 3)) if cov is None else cov
    return limit(pd.Timestamp("2021-01-31"), frame, np.asarray(strategic, float), np.asarray(max_tilt, float),
                 cov, budget)


def test_max_tilt_clips_each_class_then_the_larger_side_scales_to_net_zero():
    """+8% on A clipped to +5%; the -8% on cash is within its 10%: the negatives scale by 5/8."""
    final, share, clips = limited({"m": [0.08, 0.0, -0.08]}, [0.6, 0.3, 0.1], [0.05, 0.05, 0.10])
    assert final.tolist() == pytest.approx([0.05, 0.0, -0.05])
    assert share.sum(0) == pytest.approx(final)
    reasons = {(c.asset_class, c.limit): (c.before, c.after) for c in clips}
    assert reasons[("A", "max_tilt")] == pytest.approx((0.08, 0.05))
    assert reasons[("cash", "net_zero")] == pytest.approx((-0.08, -0.05))


def test_weights_stay_within_zero_and_one():
    final, _, clips = limited({"m": [0.0, 0.04, -0.04]}, [0.6, 0.38, 0.02], [0.05, 0.05, 0.05])
    assert final.tolist() == pytest.approx([0.0, 0.02, -0.02])
    assert {c.limit for c in clips} == {"weight_bounds", "net_zero"}


def test_the_risk_budget_scales_every_tilt_to_the_budget_and_shares_follow_the_sources():
    cov = np.diag([0.04, 0.0036, 0.0])
    raw = {"m": [0.03, -0.03, 0.0], "t": [0.01, 0.0, -0.01]}
    before = np.array([0.04, -0.03, -0.01])
    te = tracking_error(before, cov)
    final, share, clips = limited(raw, [0.6, 0.3, 0.1], [0.05] * 3, cov, budget=0.005)
    assert te == pytest.approx(np.sqrt(0.04 * 0.04**2 + 0.0036 * 0.03**2))
    assert tracking_error(final, cov) == pytest.approx(0.005)
    assert final == pytest.approx(before * 0.005 / te)
    assert share[0] == pytest.approx([0.03 / 0.04 * final[0], final[1], 0.0])  # m's part of A, all of B
    assert share.sum(0) == pytest.approx(final)
    assert {c.limit for c in clips} == {"risk_budget"}
    untouched, _, none = limited(raw, [0.6, 0.3, 0.1], [0.05] * 3, cov, budget=1.0)
    assert untouched == pytest.approx(before) and not none
