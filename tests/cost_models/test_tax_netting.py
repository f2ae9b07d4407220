"""The convex netting form against the exact liability: where they agree, and the documented gap
where they do not (cost_models/tax.py)."""

from __future__ import annotations

import itertools

import pytest

from cvxrebalance.cost_models.tax import convex_tax, exact_tax

RS, RL = 0.37, 0.20


def convex(short: float, long: float, c: float = 0.0) -> float:
    return convex_tax(RS * short + RL * long, c)


GRID = [-30_000.0, -10_000.0, 0.0, 5_000.0, 20_000.0]


@pytest.mark.parametrize(("short", "long"), list(itertools.product(GRID, GRID)))
def test_convex_form_against_exact(short, long):
    exact = exact_tax(short, long, RS, RL)
    model = convex(short, long)
    net = RS * short + RL * long
    if short >= 0 and long >= 0:
        assert model == pytest.approx(exact)  # same sign: exact
    elif net < 0:
        assert model == 0.0  # c = 0: a net loss is worth nothing now
        assert exact <= max(RS * short, RL * long, 0) + 1e-9
    elif short < 0 <= long:
        # Short losses offset long gains: exact taxes the rest at r_L, the form credits the
        # loss at r_S: under-states by (r_S - r_L) * |short| (while the total stays a gain).
        if long + short >= 0:
            assert exact - model == pytest.approx((RS - RL) * -short)
        else:
            assert exact == 0.0 and model >= 0.0
    else:  # long < 0 <= short
        # Long losses offset short gains at r_S exactly; the form credits them at r_L only:
        # over-states by (r_S - r_L) * |long|.
        if short + long >= 0:
            assert model - exact == pytest.approx((RS - RL) * -long)
        else:
            assert exact == 0.0


@pytest.mark.parametrize("c", [0.0, 0.3, 1.0])
def test_net_loss_is_worth_c(c):
    assert convex(-10_000, -5_000, c) == pytest.approx(c * (RS * -10_000 + RL * -5_000))


def test_gap_bound_over_grid():
    # |model - exact| <= (r_S - r_L) * min(|short|, |long|) whenever the year nets to a gain.
    for short, long in itertools.product(GRID, GRID):
        if short + long >= 0 and RS * short + RL * long >= 0:
            gap = abs(convex(short, long) - exact_tax(short, long, RS, RL))
            assert gap <= (RS - RL) * min(abs(short), abs(long)) + 1e-9
