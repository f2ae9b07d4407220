"""The same question in other units gets the same answer: a daily covariance (with the risk
weight scaled to match) and money in cents give the same trades and the same objective."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from cvxrebalance import load_case, rebalance
from cvxrebalance.scenarios import case_path

CASES = ["example", "seed_portfolio", "tax_aware", "four_accounts", "overlay"]
MONEY = {"securities.csv": ["price"],
         "accounts.csv": ["cash", "min_cash", "cash_flow", "ytd_short_gain", "ytd_long_gain", "gain_budget"],
         "holdings.csv": ["cost_basis"], "transactions.csv": ["price", "realized_gain"],
         "futures.csv": ["price", "margin", "commission"]}


def trade_list(result) -> list[tuple]:
    return sorted((t.account_id, t.security_id, t.side, float(t.quantity)) for t in result.trades.itertuples())


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
    assert cents.summary["objective"]["value"] == pytest.approx(base.summary["objective"]["value"], rel=1e-7, abs=1e-12)
    # The summary rounds costs to hundredths of the unit: a cent in dollars, 1/100 cent in cents.
    assert cents.summary["costs"] == pytest.approx(100 * base.summary["costs"], abs=0.5 + 0.005)
