"""The synthetic household generator makes valid households of any shape (the bench relies on it)."""

from __future__ import annotations

import pytest

from cvxrebalance import Household, Policy, rebalance
from cvxrebalance.scenarios.synthetic import synthetic_accounts, synthetic_universe


@pytest.mark.parametrize("n_accounts", [1, 2, 3, 4, 6])
def test_synthetic_households_are_valid_for_any_number_of_accounts(n_accounts):
    universe = synthetic_universe(20, 0, seed=1)
    acc, hol, fut = synthetic_accounts(universe, n_accounts, 60, seed=2)
    household = Household.from_frames(universe.securities, acc, hol, universe.targets,
                                      covariance=universe.covariance, futures=fut,
                                      specific_variance=universe.specific_variance)
    assert list(household.accounts["type"]).count("taxable") == 1
    result = rebalance(household, Policy.from_dict({"tax": {"as_of": "2026-11-20"}}))
    assert result.summary["checks"]["passed"]
