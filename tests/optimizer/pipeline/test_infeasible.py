"""An infeasible policy raises InfeasibilityError naming the constraints that conflict."""

from __future__ import annotations

from dataclasses import replace

import pytest
from builders import policy, two_account_household

from cvxrebalance import InfeasibilityError, rebalance


def test_illiquid_holding_outside_its_band_names_the_band():
    # PE is 20,000 of 342,000 (5.85%) and cannot be sold: a 0-2% band on private equity is impossible.
    targets = [
        {"asset_class": "us_equity", "weight": 0.60},
        {"asset_class": "bonds", "weight": 0.37},
        {"asset_class": "private_equity", "weight": 0.01, "lower": 0.0, "upper": 0.02},
        {"asset_class": "cash", "weight": 0.02},
    ]
    with pytest.raises(InfeasibilityError) as err:
        rebalance(two_account_household(targets=targets), policy(bands={"rule": "absolute"}))
    names = [n for n, _ in err.value.conflicts]
    assert "bands.upper[private_equity]" in names
    amount = dict(err.value.conflicts)["bands.upper[private_equity]"]
    assert amount == pytest.approx(20_000 / 342_000 - 0.02, abs=2e-3)  # the PE weight above 2%
    assert "bands.upper[private_equity]" in str(err.value)


def test_turnover_limit_against_bands_names_both():
    # Equity is far above its 5-point band; a 0.1% turnover limit cannot bring it back.
    with pytest.raises(InfeasibilityError) as err:
        rebalance(two_account_household(), policy(bands={"rule": "absolute"}, limits={"turnover": 0.001}))
    names = {n.split("[")[0] for n, _ in err.value.conflicts}
    assert "turnover" in names or any(n.startswith("bands") for n in names)


def test_min_cash_above_account_value_names_the_account():
    h = two_account_household()
    acc = h.accounts.copy()
    acc.loc[acc["account_id"] == "ira", "min_cash"] = 10_000_000.0
    with pytest.raises(InfeasibilityError) as err:
        rebalance(replace(h, accounts=acc), policy(bands={"rule": "none"}))
    assert [n for n, _ in err.value.conflicts] == ["cash.min_cash[ira]"]


def test_an_infeasible_policy_is_infeasible_even_when_every_solver_errors(monkeypatch):
    """Clarabel erroring (not certifying) on an infeasible program used to end in SolverError;
    the elastic program still proves the infeasibility, which is the verdict."""
    from cvxrebalance.optimizer.pipeline import problem
    from cvxrebalance.optimizer.pipeline.assemble import Outcome

    real = problem.Solver._run

    def erroring(self, program, name):
        if program.is_elastic:
            return real(self, program, name)
        self.solves += 1
        return Outcome("solver_error", None, float("nan"), 0.0)

    monkeypatch.setattr(problem.Solver, "_run", erroring)
    h = two_account_household()
    acc = h.accounts.copy()
    acc.loc[acc["account_id"] == "ira", "min_cash"] = 10_000_000.0
    with pytest.raises(InfeasibilityError) as err:
        rebalance(replace(h, accounts=acc), policy(bands={"rule": "none"}, solver={"name": "CLARABEL"}))
    assert [n for n, _ in err.value.conflicts] == ["cash.min_cash[ira]"]


def test_repair_margins_never_make_a_feasible_policy_infeasible(monkeypatch):
    """A household feasible in fractional shares whose whole-share repairs used to move limits
    inward by doubling margins until the re-solve was infeasible, and then reported conflicts of
    those moved limits as if the policy were infeasible. Now the verdict says what was shown: the
    exact search proves it (one account: $117 between the cash band's top and the minimum cash,
    shares of $437 and $395, and no count of them fits both class bands and that window); when
    the search cannot settle it, the verdict says a whole-share list may exist."""
    from golden_cases import cases

    from cvxrebalance.optimizer.domain.prepare import prepare
    from cvxrebalance.optimizer.pipeline import whole_shares
    from cvxrebalance.optimizer.pipeline.problem import Solver

    name, h, p = next(c for c in cases() if c[0] == "random-34")
    assert Solver(prepare(h, p)).solve() is not None  # the policy is feasible
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, p)
    assert "can be met with fractional shares but not with whole shares" in str(err.value)
    assert "proved that no whole-share trade list meets it" in str(err.value)

    monkeypatch.setattr(whole_shares, "search", lambda *a: whole_shares.Found(None, "time limit reached", 2))
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, p)
    assert "could not settle it: it stopped without an answer (time limit reached)" in str(err.value)
    assert "a whole-share list may exist" in str(err.value)


def test_repair_margins_are_capped():
    import numpy as np

    from cvxrebalance.constraints.base import Violation
    from cvxrebalance.optimizer.domain.prepare import prepare
    from cvxrebalance.optimizer.pipeline.rebalance import MARGIN_CAP, _tighten

    h = two_account_household()
    data = prepare(h, policy(limits={"turnover": 0.05}))
    margins: dict = {}
    moved = [_tighten(data, margins, [Violation("turnover", "turnover", 0.01)]) for _ in range(30)]
    assert margins["turnover"][0] <= MARGIN_CAP + 1e-15
    assert not moved[-1] and np.isclose(margins["turnover"][0], MARGIN_CAP)


def test_no_infeasibility_verdict_without_conflicts(monkeypatch):
    """When the elastic program also finds no optimum (a solver at its iteration limit), nothing
    was proven: a SolverError, not an InfeasibilityError listing no constraints."""
    from cvxrebalance import SolverError
    from cvxrebalance.optimizer.pipeline import problem
    from cvxrebalance.optimizer.pipeline.assemble import Outcome

    def failing(self, program, name):
        self.solves += 1
        status = "iteration limit" if program.is_elastic else "infeasible"
        return Outcome(status, None, float("nan"), 0.0)

    monkeypatch.setattr(problem.Solver, "_run", failing)
    with pytest.raises(SolverError):
        rebalance(two_account_household(), policy(bands={"rule": "none"}))


def test_a_band_the_wash_sale_rule_keeps_out_of_reach_says_so():
    """Bonds at 20% against a 40% +- 5 band, and the only bond fund was sold at a loss 10 days
    ago: buying it back is blocked (a trade bound, not a row the elastic program can relax), so
    the verdict names the band and the explanation names the block and the trade behind it."""
    import pandas as pd

    from cvxrebalance import Household
    h = Household.from_frames(
        pd.DataFrame([{"security_id": "EQ", "asset_class": "equity", "price": 100},
                      {"security_id": "BD", "asset_class": "bonds", "price": 100}]),
        pd.DataFrame([{"account_id": "tax", "type": "taxable", "cash": 1_000}]),
        pd.DataFrame([{"account_id": "tax", "security_id": "EQ", "quantity": 790, "lot_id": "e", "cost_basis": 100,
                       "acquired": "2020-01-02"},
                      {"account_id": "tax", "security_id": "BD", "quantity": 200, "lot_id": "b", "cost_basis": 100,
                       "acquired": "2020-01-02"}]),
        pd.DataFrame([{"asset_class": "equity", "weight": 0.59}, {"asset_class": "bonds", "weight": 0.40},
                      {"asset_class": "cash", "weight": 0.01}]),
        covariance=pd.DataFrame({"id": ["equity", "bonds"], "equity": [0.0256, 0.0], "bonds": [0.0, 0.0036]}),
        transactions=pd.DataFrame([{"date": "2026-11-10", "account_id": "tax", "security_id": "BD", "side": "sell",
                                    "quantity": 50, "price": 100, "realized_gain": -400.0}]))
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, policy(bands={"rule": "absolute", "absolute": 0.05}))
    assert "bands.lower[bonds]" in [n for n, _ in err.value.conflicts]
    assert "bonds: buys of BD are blocked by the wash-sale rule (BD sold at a loss 2026-11-10 in tax)" in str(err.value)
