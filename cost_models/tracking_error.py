"""Tracking error: a' S a with a = weights after trading - benchmark, in factor form.

S = M M' + diag(d^2) over securities (cash loads on the factors when the covariance has a cash
row). With y = M' a as an auxiliary variable the term is ||y||^2 + ||d * a||^2: never a dense
N x N matrix, and DPP-compliant because M multiplies a variable, not another parameter.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np


def variance(data, weights: np.ndarray, cash_weight: float, overlay: np.ndarray | None = None,
             target: bool = False) -> float:
    """a' S a for security weights (N,), a cash weight and overlay notionals (J,), all fractions
    of household value, against the benchmark the optimizer tracks (``target=True``: against the
    targets themselves, as reported)."""
    bench = data.bench_target if target else data.bench
    cash_ref = data.cash_target if target else data.cash_ref
    f = data.overlay.f0 if overlay is None else overlay
    a, a_cash = weights - bench, cash_weight - cash_ref
    y = data.risk_M.T @ a + data.risk_m_cash * a_cash + data.risk_M_f.T @ f + data.risk_hedge
    return float(y @ y + ((data.risk_d * a) ** 2).sum() + ((data.risk_d_f * f) ** 2).sum())


# A class-level risk model is indifferent between the securities of a class, so many trade lists
# are optimal. Each security's own term gets TIE_QUAD x the mean security variance added to its
# specific variance in the objective (not in reported figures): the members of a class then trade
# pro rata to the benchmark, and the optimum moves negligibly.
TIE_QUAD = 1e-4


class TrackingError:
    name = "risk"

    def weight(self, policy) -> float:
        return policy.objective.risk_weight

    def parameters(self, data, weight: float) -> dict:
        a0 = data.h0.sum(0) - data.bench
        ov = data.overlay
        # y = M'(h0 + net - bench) + m_cash (cash - cash_ref) + M_f'(f0 + fnet) + hedge
        #   = M' net + m_cash cash + M_f' fnet + y0
        y0 = data.risk_M.T @ a0 - data.risk_m_cash * data.cash_ref + data.risk_M_f.T @ ov.f0 + data.risk_hedge
        mean_var = float((data.risk_M**2).sum(1).mean()) if data.N else 0.0
        # z carries the weight itself: w d^2 plus the pro-rata tie-break (TIE_QUAD).
        dz = np.sqrt(weight * data.risk_d**2 + weight * TIE_QUAD * max(mean_var, 1e-12))
        return {"w_risk": np.array(weight), "M": data.risk_M, "m_cash": data.risk_m_cash,
                "dz": dz, "y0": y0, "e0": dz * a0, "M_f": data.risk_M_f,
                "d_f": data.risk_d_f, "e0_f": data.risk_d_f * ov.f0}

    def build(self, ctx) -> cp.Expression:
        r = ctx.risk_rank
        M = ctx.param("M", (ctx.N, r))
        y = cp.Variable(r, name="factor_exposure")
        exposure = M.T @ ctx.net + ctx.param("m_cash", (r,)) * ctx.cash_weight + ctx.param("y0", (r,))
        if ctx.J:
            exposure = exposure + ctx.param("M_f", (ctx.J, r)).T @ ctx.fnet
        ctx.extra_constraints.append(y == exposure)
        z = cp.Variable(ctx.N, name="specific_exposure")  # already weighted (see parameters)
        ctx.extra_constraints.append(
            z == cp.multiply(ctx.param("dz", (ctx.N,), nonneg=True), ctx.net) + ctx.param("e0", (ctx.N,))
        )
        total = cp.sum_squares(y)
        if ctx.J:  # basis risk: each contract's own specific variance
            zf = cp.Variable(ctx.J, name="basis_exposure")
            ctx.extra_constraints.append(
                zf == cp.multiply(ctx.param("d_f", (ctx.J,), nonneg=True), ctx.fnet) + ctx.param("e0_f", (ctx.J,))
            )
            total = total + cp.sum_squares(zf)
        return ctx.param("w_risk", (), nonneg=True) * total + cp.sum_squares(z)

    def evaluate(self, sol) -> float:
        return variance(sol.data, sol.weights_after(), sol.cash_weight_after, sol.overlay_after())
