"""Tracking error: a' S a with a = weights after trading - benchmark, in factor form.

S = B F B' + diag(d^2) over securities, contracts and cash, F = L L'. With the factor exposure
y = B' a (+ cash's and the contracts' rows) as an auxiliary variable, the term is
||L' y||^2 + ||d * a||^2 (+ the contracts' basis risk): never a dense N x N matrix; y's rows have
one entry per security and per factor it loads on (one for a class covariance), and the
objective's dense block is F itself, r x r.
"""

from __future__ import annotations

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
    rf = data.risk
    e = rf.B.T @ a + rf.b_cash * a_cash + rf.b_f.T @ f + rf.shift  # factor exposure
    y = rf.L.T @ e
    return float(y @ y + ((rf.d * a) ** 2).sum() + ((rf.d_f * f) ** 2).sum())


# A class-level risk model is indifferent between the securities of a class, so many trade lists
# are optimal. Each security's own term gets TIE_QUAD x the mean security variance added to its
# specific variance in the objective (not in reported figures): the members of a class then trade
# pro rata to the benchmark among the buys the trade masks allow, and the optimum moves
# negligibly. By default those masks leave each account one security per class
# (constraints.priority; [trades] spread = "pro_rata" lifts that).
TIE_QUAD = 1e-4


class TrackingError:
    name = "risk"

    def weight(self, policy) -> float:
        return policy.objective.risk_weight

    def declare(self, m, weight: float) -> None:
        d = m.data
        rf = d.risk
        r = rf.L.shape[1]
        a0 = d.h0.sum(0) - d.bench
        # y = B'(h0 + net - bench) + b_cash (cash - cash_ref) + B_f'(f0 + ftrade) + shift
        exposure = rf.B.T @ m.net + rf.b_cash[:, None] @ m.cash_weight
        if m.J:
            exposure = exposure + rf.b_f.T @ m.ftrade
        y0 = rf.B.T @ a0 - rf.b_cash * d.cash_ref + rf.b_f.T @ d.overlay.f0 + rf.shift
        if r:
            y = m.program.var("risk.factor_exposure", r, lo=-np.inf)
            m.program.constrain("risk.factor_exposure", y - exposure, lo=y0, hi=y0)
            m.program.minimize_squares("risk.factor", (np.sqrt(weight) * rf.L.T) @ y)
        # Specific risk plus the pro-rata tie-break (TIE_QUAD) on each security's own term.
        mean_var = float(rf.factor_variance.mean()) if d.N else 0.0
        dz = np.sqrt(weight * rf.d**2 + weight * TIE_QUAD * max(mean_var, 1e-12))
        m.program.minimize_squares("risk.specific", m.net * dz + dz * a0)
        if m.J and rf.d_f.any():  # basis risk: each contract's own specific variance
            m.program.minimize_squares("risk.basis", (m.ftrade + d.overlay.f0) * (np.sqrt(weight) * rf.d_f))

    def evaluate(self, sol) -> float:
        return variance(sol.data, sol.weights_after(), sol.cash_weight_after, sol.overlay_after())


TERM = TrackingError()
