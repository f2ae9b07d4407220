"""The factor form of the risk term equals the textbook a' S a with a dense S."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import household, policy

from cvxrebalance import Household, rebalance
from cvxrebalance.cost_models.tracking_error import variance
from cvxrebalance.optimizer.domain.prepare import prepare

SECURITIES = [
    {"security_id": "A", "asset_class": "eq", "price": 10},
    {"security_id": "B", "asset_class": "eq", "price": 20},
    {"security_id": "C", "asset_class": "fi", "price": 50},
]
ACCOUNTS = [{"account_id": "x", "type": "tax_exempt", "cash": 1000}]
HOLDINGS = [{"account_id": "x", "security_id": s, "quantity": q} for s, q in [("A", 300), ("B", 100), ("C", 40)]]
TARGETS = [{"security_id": "A", "weight": 0.3}, {"security_id": "B", "weight": 0.3},
           {"security_id": "C", "weight": 0.4}]


def dense_check(h: Household):
    d = prepare(h, policy(bands={"rule": "none"}))
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3)) * 0.95
    cash = 0.05
    return d, w, cash


def test_security_covariance():
    S = np.array([[0.04, 0.01, 0.002], [0.01, 0.09, 0.003], [0.002, 0.003, 0.01]])
    cov = pd.DataFrame(S, index=["A", "B", "C"], columns=["A", "B", "C"]).reset_index(names="id")
    h = household(SECURITIES, ACCOUNTS, HOLDINGS, TARGETS, covariance=cov)
    d, w, cash = dense_check(h)
    a = w - np.array([0.3, 0.3, 0.4])
    assert variance(d, w, cash) == pytest.approx(a @ S @ a, rel=1e-10)


def test_class_covariance():
    h = household(SECURITIES, ACCOUNTS, HOLDINGS, TARGETS, vols={"eq": 0.2, "fi": 0.05}, corr=0.1)
    d, w, cash = dense_check(h)
    S_cls = np.array([[0.04, 0.001], [0.001, 0.0025]])
    X = np.array([[1, 0], [1, 0], [0, 1]])
    a = X.T @ (w - np.array([0.3, 0.3, 0.4]))
    assert variance(d, w, cash) == pytest.approx(a @ S_cls @ a, rel=1e-10)


def test_factor_model_with_specific_risk():
    B = np.array([[1.0, 0.2], [1.2, -0.1], [0.1, 1.0]])
    F = np.array([[0.03, 0.002], [0.002, 0.004]])
    D = np.array([0.01, 0.02, 0.001])
    h = Household.from_frames(
        pd.DataFrame(SECURITIES), pd.DataFrame(ACCOUNTS), pd.DataFrame(HOLDINGS), pd.DataFrame(TARGETS),
        factor_loadings=pd.DataFrame(B, index=["A", "B", "C"], columns=["mkt", "rates"]).reset_index(names="security_id"),
        factor_covariance=pd.DataFrame(F, index=["mkt", "rates"], columns=["mkt", "rates"]).reset_index(names="factor"),
        specific_variance=pd.DataFrame({"security_id": ["A", "B", "C"], "variance": D}),
    )
    d, w, cash = dense_check(h)
    S = B @ F @ B.T + np.diag(D)
    a = w - np.array([0.3, 0.3, 0.4])
    assert variance(d, w, cash) == pytest.approx(a @ S @ a, rel=1e-10)
    # And the optimizer's reported tracking error is sqrt(a' S a) of its own trades.
    r = rebalance(h, policy(bands={"rule": "none"}))
    w_after = r.solution.weights_after()
    a = w_after - np.array([0.3, 0.3, 0.4])
    assert r.summary["tracking_error"]["after"] == pytest.approx(np.sqrt(a @ S @ a), rel=1e-8)
