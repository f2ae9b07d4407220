"""The same question in other units gets the same answer: a daily covariance (with the risk
weight scaled to match) and money in cents give the same trades and the same objective."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from cvxrebalance import load_case, rebalance
from cvxrebalance.scenarios import case_path

CASES = ["example", "seed_portfolio", "tax_aware", "four_accounts", "overlay", "endowment"]
MONEY = {"securities.csv": ["price", "proxy_price"],
         "accounts.csv": ["cash", "min_cash", "cash_flow", "ytd_short_gain", "ytd_long_gain", "gain_budget"],
         "holdings.csv": ["cost_basis"], "transactions.csv": ["price", "realized_gain"],
         "futures.csv": ["price", "margin", "commission"]}


def trade_list(result) -> list[tuple]:
    return sorted((t.account_id, t.security_id, t.side, float(t.quantity)) for t in result.trades.itertuples())


def reasons(result) -> list[tuple]:
    """Each trade's reason (the details name amounts, which scale with money)."""
    return sorted((t.account_id, t.security_id, t.side, t.reason) for t in result.trades.itertuples())


def copy(tmp_path, name):
    case = tmp_path / name
    shutil.copytree(case_path(name), case)
    return case


def scale_columns(path, columns, factor):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in columns:
        if c in df.columns:
            df[c] = [repr(float(v) * factor) if v.strip() else v for v in df[c]]
    df.to_csv(path, index=False)


@pytest.mark.parametrize("name", CASES)
def test_a_daily_covariance_gives_the_same_answer(tmp_path, name):
    base = rebalance(*load_case(case_path(name)))
    case = copy(tmp_path, name)
    cov = pd.read_csv(case / "covariance.csv")
    cov[cov.columns[1:]] = cov[cov.columns[1:]] / 252
    cov.to_csv(case / "covariance.csv", index=False)
    if (case / "specific_variance.csv").exists():
        scale_columns(case / "specific_variance.csv", ["variance"], 1 / 252)
    household, policy = load_case(case)
    daily = rebalance(household, policy.replace(objective={"risk_weight": policy.objective.risk_weight * 252}))
    assert trade_list(daily) == trade_list(base)
    assert reasons(daily) == reasons(base)
    assert daily.summary["objective"]["value"] == pytest.approx(base.summary["objective"]["value"], rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_money_in_cents_gives_the_same_answer(tmp_path, name):
    base = rebalance(*load_case(case_path(name)))
    case = copy(tmp_path, name)
    for file, columns in MONEY.items():
        if (case / file).exists():
            scale_columns(case / file, columns, 100.0)
    household, policy = load_case(case)
    if policy.tax.gain_budget >= 0:
        policy = policy.replace(tax={"gain_budget": policy.tax.gain_budget * 100})
    cents = rebalance(household, policy)
    assert trade_list(cents) == trade_list(base)
    assert reasons(cents) == reasons(base)
    assert cents.summary["objective"]["value"] == pytest.approx(base.summary["objective"]["value"], rel=1e-7, abs=1e-12)
    # The summary rounds costs to hundredths of the unit: a cent in dollars, 1/100 cent in cents.
    assert cents.summary["costs"] == pytest.approx(100 * base.summary["costs"], abs=0.5 + 0.005)


def _risk_scaled(household, k: float):
    import dataclasses

    r = household.risk
    return dataclasses.replace(household, risk=dataclasses.replace(
        r, factor_cov=r.factor_cov * k, specific=None if r.specific is None else r.specific * k))


def _money_scaled(household, k: float):
    import dataclasses

    frames = {}
    for name, columns in (("securities", ["price", "proxy_price", "min_value", "ticket_cost"]),
                          ("accounts", ["cash", "min_cash", "cash_flow", "ytd_short_gain", "ytd_long_gain",
                                        "gain_budget"]),
                          ("holdings", ["cost_basis"])):
        df = getattr(household, name).copy()
        for c in columns:
            if c in df:
                df[c] = df[c] * k
        frames[name] = df
    return dataclasses.replace(household, **frames)


@pytest.mark.parametrize("seed", range(30))
def test_random_households_trade_the_same_with_a_daily_covariance(seed):
    """The property family (bands, taxes, impact, flows, ESG): covariance / 252 with risk_weight
    x 252 gives the same share quantities (at release 0.1 45 of 69 households differed)."""
    from golden_cases import random_household

    from cvxrebalance import InfeasibilityError

    household, policy = random_household(seed)
    try:
        base = rebalance(household, policy)
    except InfeasibilityError:
        with pytest.raises(InfeasibilityError):
            rebalance(_risk_scaled(household, 1 / 252), policy.replace(objective={"risk_weight": policy.objective.risk_weight * 252}))
        return
    daily = rebalance(_risk_scaled(household, 1 / 252), policy.replace(objective={"risk_weight": policy.objective.risk_weight * 252}))
    assert trade_list(daily) == trade_list(base)
    assert reasons(daily) == reasons(base)


@pytest.mark.parametrize("seed", range(30))
def test_random_households_trade_the_same_in_cents_with_ticket_rules(seed):
    """Every price and money amount x 100, the ticket rules' money too: the same quantities."""
    from golden_cases import random_household

    from cvxrebalance import InfeasibilityError

    household, policy = random_household(seed)
    policy = policy.replace(trades={"min_value": 800.0, "ticket_cost": 5.0, "max_trades_per_account": 4})
    cents_policy = policy.replace(trades={"min_value": 80_000.0, "ticket_cost": 500.0})
    try:
        base = rebalance(household, policy)
    except InfeasibilityError:
        with pytest.raises(InfeasibilityError):
            rebalance(_money_scaled(household, 100.0), cents_policy)
        return
    cents = rebalance(_money_scaled(household, 100.0), cents_policy)
    assert trade_list(cents) == trade_list(base)
    assert reasons(cents) == reasons(base)


def test_an_index_tracker_with_a_daily_covariance_matches_an_independent_solve():
    """Minimum tracking error to security-level index weights with a daily covariance (objective
    of order 1e-5) and no costs: the continuous optimum's weights match a direct cvxpy/Clarabel
    formulation of min (w - b)' S (w - b), w >= 0, sum w = 1 - cash, to 1e-6."""
    import cvxpy as cp
    import numpy as np
    from builders import household, policy

    from cvxrebalance.optimizer.domain.prepare import prepare
    from cvxrebalance.optimizer.pipeline.problem import Solver

    rng = np.random.default_rng(7)
    n = 25
    securities = [{"security_id": f"S{i}", "asset_class": "eq", "price": float(rng.uniform(20, 400))}
                  for i in range(n)]
    bench = rng.dirichlet(np.ones(n))
    B = rng.normal(0, 1, (n, 3)) * 0.01  # daily factor loadings
    cov = B @ B.T + np.diag(rng.uniform(1e-5, 4e-4, n))
    covariance = pd.DataFrame(cov, columns=[s["security_id"] for s in securities])
    covariance.insert(0, "security_id", [s["security_id"] for s in securities])
    holdings = [{"account_id": "A", "security_id": f"S{i}", "quantity": float(rng.integers(0, 400))} for i in range(n)]
    h = household(securities, [{"account_id": "A", "type": "tax_exempt", "cash": 50_000.0}], holdings,
                  [{"security_id": s["security_id"], "weight": float(w)} for s, w in zip(securities, bench, strict=True)],
                  covariance=covariance)
    p = policy(bands={"rule": "none"}, objective={"risk_weight": 100.0 * 252, "cost_weight": 1.0})
    data = prepare(h, p)
    cont = Solver(data).solve()
    ours = (data.h0 + cont.buy - cont.sell).sum(0)
    w = cp.Variable(n, nonneg=True)
    cp.Problem(cp.Minimize(cp.quad_form(w - bench, cp.psd_wrap(cov))), [cp.sum(w) == 1]).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14)
    assert np.abs(ours - w.value).max() < 1e-6
    assert (ours @ cov @ ours) < 1e-3  # a daily-scale objective: tiny numbers, same answer


@pytest.mark.parametrize("seed", range(20))
def test_random_households_trade_the_same_with_every_weight_scaled(seed):
    """The objective in other units (every weight x 1e-4 or x 1e4) is the same question: the
    tie-break is relative to the objective's scale. With an absolute tie-break 14 of 16
    feasible households traded differently at x 1e-4."""
    from golden_cases import random_household

    from cvxrebalance import InfeasibilityError

    household, policy = random_household(seed)
    o = policy.objective
    try:
        base = rebalance(household, policy)
    except InfeasibilityError:
        base = None
    for k in (1e-4, 1e4):
        scaled = policy.replace(objective={"risk_weight": o.risk_weight * k, "cost_weight": o.cost_weight * k,
                                           "tax_weight": o.tax_weight * k, "location_weight": o.location_weight * k})
        if base is None:
            with pytest.raises(InfeasibilityError):
                rebalance(household, scaled)
            continue
        other = rebalance(household, scaled)
        assert trade_list(other) == trade_list(base)
        assert reasons(other) == reasons(base)
        assert other.summary["objective"]["value"] == pytest.approx(k * base.summary["objective"]["value"],
                                                                    rel=1e-6, abs=1e-12 * k)
