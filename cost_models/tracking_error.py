"""Tracking error: a' S a with a = weights after trading - benchmark, in factor form.

S = M M' + diag(d^2) over securities (cash loads on the factors when the covariance has a cash
row). With y = M' a as an auxiliary variable the term is ||y||^2 + ||d * a||^2: never a dense
N x N matrix, and DPP-compliant because M multiplies a variable, not another parameter.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np


def active(data, weights: np.ndarray, cash_weight: float) -> tuple[np.ndarray, float]:
    """Active security and cash weights against the benchmark."""
    return weights - data.bench, cash_weight - data.cash_ref


def variance(data, weights: np.ndarray, cash_weight: float) -> float:
    """a' S a for security weights (N,) and a cash weight."""
    a, a_cash = active(data, weights, cash_weight)
    y = data.risk_M.T @ a + data.risk_m_cash * a_cash
    return float(y @ y + ((data.risk_d * a) ** 2).sum())


class TrackingError:
    name = "risk"

    def weight(self, policy) -> float:
        return policy.objective.risk_weight

    def parameters(self, data, weight: float) -> dict:
        a0, a0_cash = active(data, data.h0.sum(0), 0.0)
        return {"w_risk": np.array(weight), "M": data.risk_M, "m_cash": data.risk_m_cash,
                "d": data.risk_d,
                # y = M'(h0 + net - bench) + m_cash (cash - cash_ref) = M' net + m_cash cash + y0
                "y0": data.risk_M.T @ a0 + data.risk_m_cash * a0_cash,
                "e0": data.risk_d * a0}

    def build(self, ctx) -> cp.Expression:
        r = ctx.risk_rank
        M = ctx.param("M", (ctx.N, r))
        y = cp.Variable(r, name="factor_exposure")
        ctx.extra_constraints.append(
            y == M.T @ ctx.net + ctx.param("m_cash", (r,)) * ctx.cash_weight + ctx.param("y0", (r,))
        )
        z = cp.Variable(ctx.N, name="specific_exposure")
        ctx.extra_constraints.append(
            z == cp.multiply(ctx.param("d", (ctx.N,), nonneg=True), ctx.net) + ctx.param("e0", (ctx.N,))
        )
        return ctx.param("w_risk", (), nonneg=True) * (cp.sum_squares(y) + cp.sum_squares(z))

    def evaluate(self, sol) -> float:
        return variance(sol.data, sol.weights_after(), sol.cash_weight_after)
