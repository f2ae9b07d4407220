"""Every result re-verified by ``tests/independent_check.py`` (plain pandas on the household's
tables and the result's tables, no code shared with the checker): random households of the
property family and the bundled cases. ``INDEPENDENT_HOUSEHOLDS=2000`` runs a campaign."""

from __future__ import annotations

import os

import pytest
from golden_cases import overlay_variant, random_household
from independent_check import independent_violations

from cvxrebalance import InfeasibilityError, load_case, rebalance
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.pipeline.problem import Solver
from cvxrebalance.scenarios import case_path, list_cases
from cvxrebalance.scenarios.tactical import load_tactical_case

N = int(os.environ.get("INDEPENDENT_HOUSEHOLDS", "40"))


def assert_checked(household, policy) -> None:
    """Rebalance, then: a result passes the independent check, or the verdict is true."""
    try:
        result = rebalance(household, policy)
    except InfeasibilityError as exc:
        assert_true_verdict(household, policy, exc)
        return
    assert independent_violations(household, policy, result) == []


def assert_true_verdict(household, policy, exc: InfeasibilityError) -> None:
    """An infeasibility verdict is true and proven: the program itself is infeasible, or the exact
    whole-share search found no list (after rounding failed, or under every choice of sides of
    the wash-sale rule, which the convex program alone does not hold)."""
    if Solver(prepare(household, policy)).solve() is None:
        return
    text = str(exc)
    assert ("proved that no whole-share trade list meets it" in text
            or "every choice of sides (a MILP, HiGHS) found no whole-share trade list" in text), text


@pytest.mark.parametrize("seed", range(N))
def test_random_household_passes_the_independent_check(seed):
    assert_checked(*random_household(seed))


@pytest.mark.parametrize("name", list_cases())
def test_bundled_case_passes_the_independent_check(name):
    household, policy = load_tactical_case(case_path(name))  # a case's signals as `run` reads them
    result = rebalance(household, policy)
    assert independent_violations(household, policy, result) == []


def test_the_independent_check_catches_broken_results():
    """Not vacuous: the same check flags a tampered trade list."""
    from types import SimpleNamespace

    import pandas as pd

    household, policy = load_case(case_path("example"))
    r = rebalance(household, policy)
    illiquid = household.securities.loc[~household.securities["liquid"], "security_id"].iloc[0]
    extra = pd.DataFrame([{"account_id": "taxable", "security_id": illiquid, "side": "buy",
                           "quantity": 1_000_000, "price": 1.0, "value": 1e6, "cost": 0.0}])
    bad = SimpleNamespace(trades=pd.concat([r.trades, extra], ignore_index=True), lots=r.lots,
                          summary=r.summary, futures=r.futures)
    found = independent_violations(household, policy, bad)
    assert any("illiquid" in v for v in found) and any("cash of taxable" in v for v in found)


@pytest.mark.parametrize("seed", range(N // 2))
def test_random_household_with_esg_minimum_and_gain_budget_passes_the_independent_check(seed):
    household, policy = random_household(seed)
    assert_checked(household, policy.replace(esg={"min_score": 4.0}, tax={"gain_budget": 500.0}))


@pytest.mark.parametrize("seed", range(N // 4))
def test_households_with_an_overlay_pass_the_independent_check(seed):
    """Contracts held after trading: margin, exposure bands, gross and net limits, the horizon."""
    household, policy = overlay_variant(seed)
    result = rebalance(household, policy)
    assert (result.futures["contracts_after"] != 0).any()
    assert independent_violations(household, policy, result) == []


def test_the_independent_check_sees_overlay_margin_and_exposure():
    """Not vacuous for the overlay: 30 more of the expiring equity contract than the result holds
    break the margin reserve, the gross limit, the horizon and the equity band on exposure."""
    from types import SimpleNamespace

    household, policy = load_case(case_path("overlay"))
    r = rebalance(household, policy)
    fut = r.futures.copy()
    fut.loc[fut.index[0], "contracts_after"] += 30
    bad = SimpleNamespace(trades=r.trades, lots=r.lots, summary=r.summary, futures=fut)
    found = independent_violations(household, policy, bad)
    assert any("plus margin" in v for v in found), found
    assert any("overlay gross" in v for v in found), found
    assert any("held past the horizon" in v for v in found), found
    assert any(v.startswith("class us_equity") for v in found), found


def test_the_independent_check_sees_bands_with_illiquid_holdings_at_their_adjusted_value():
    """Not vacuous with an illiquid fund (builders.lagged_fund_household): without its trades the
    rebalanced household leaves equity at 5,400,000 / 10,096,000 = 53.49%, below its 53.75% edge;
    only the fund's rolled-forward value (1,096,000, not the reported 1,000,000) puts it there."""
    from types import SimpleNamespace

    from builders import LAGGED, lagged_fund_household, policy

    household, pol = lagged_fund_household(**LAGGED), policy(trigger={"mode": "threshold"})
    r = rebalance(household, pol)
    assert r.summary["rebalanced"] and independent_violations(household, pol, r) == []
    untraded = SimpleNamespace(trades=r.trades.iloc[:0], lots=r.lots, summary=r.summary, futures=r.futures)
    assert independent_violations(household, pol, untraded) == [
        "class equity at 0.534865 outside [0.537500, 0.600000]"]


def test_the_independent_check_sees_a_class_spread_over_substitutes():
    """Not vacuous for [trades] spread: a synthetic household's pro-rata list buys several ETFs
    of a class in one account, which the default policy's rule forbids; its own list passes."""
    from builders import policy

    from cvxrebalance.scenarios.synthetic import synthetic_household

    household, default = synthetic_household(20, 3, 60, seed=1), policy()
    pro_rata = rebalance(household, default.replace(trades={"spread": "pro_rata"}))
    found = independent_violations(household, default, pro_rata)
    assert any("substitutes of one class" in v for v in found), found
    assert independent_violations(household, default, rebalance(household, default)) == []
