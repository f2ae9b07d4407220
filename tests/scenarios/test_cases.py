"""Every bundled case loads, rebalances and passes the checker, from the installed package."""

from __future__ import annotations

import pytest

from cvxrebalance import check, rebalance
from cvxrebalance.scenarios import case_path, list_cases
from cvxrebalance.scenarios.tactical import load_tactical_case


def test_bundled_cases_are_present():
    assert {"example", "seed_portfolio", "four_accounts", "endowment", "overlay", "tax_aware",
            "us_stocks_bonds_monthly", "sp500_daily"} <= set(list_cases())


@pytest.mark.parametrize("name", list_cases())
def test_case_rebalances_and_passes_checks(name):
    result = rebalance(*load_tactical_case(case_path(name)))  # a case's signals as `run` reads them
    assert result.summary["checks"]["passed"]
    assert check(result.solution) == []
    assert result.summary["tracking_error"]["after"] <= result.summary["tracking_error"]["before"] + 1e-9


def test_unknown_case_name():
    with pytest.raises(KeyError, match="no bundled case"):
        case_path("nope")
