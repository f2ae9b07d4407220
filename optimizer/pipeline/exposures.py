"""Currency exposures before and after trading, and the overlay's part of them.

A currency's exposure is the household's loading on the risk model's factor of that name:
securities priced in it (and cash, when cash loads on it) plus currency forwards and futures,
each per unit of value (fractions of household value). Its target is the benchmark's exposure
times (1 - hedge ratio) (``[overlay] hedge_ratio``), as the tracking term steers it
(``optimizer.domain.prepare._risk_factors``).
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution


def currencies(data: Prepared) -> list[tuple[int, str]]:
    """(factor column, currency) of every currency of the household's securities or contracts
    that the risk model prices."""
    h = data.household
    named = set(h.securities["currency"].tolist()) | set(h.futures["currency"].tolist())
    columns = list(h.risk.loadings.columns)
    return [(k, c) for k, c in enumerate(columns) if c in named - {"", None}]


def currency_exposures(data: Prepared, sol: Solution) -> dict[str, dict[str, float]]:
    """Per currency: ``before``, ``after``, ``overlay_before``, ``overlay_after``, ``target`` and
    ``hedge_ratio`` (weights of household value; empty without foreign currencies)."""
    out = {}
    rf = data.risk
    for k, cur in currencies(data):
        col = np.asarray(rf.B[:, [k]].todense()).ravel()
        h = data.policy.overlay.hedge_ratio.get(cur, 0.0)
        ov_before = float(rf.b_f[:, k] @ data.overlay.f0) if data.overlay.J else 0.0
        ov_after = float(rf.b_f[:, k] @ sol.overlay_after()) if data.overlay.J else 0.0
        bench = float(col @ data.bench_target + rf.b_cash[k] * data.cash_target)
        out[cur] = {
            "before": float(col @ data.h0.sum(0) + rf.b_cash[k] * data.cash0.sum()) + ov_before,
            "after": float(col @ sol.weights_after() + rf.b_cash[k] * sol.cash_weight_after) + ov_after,
            "overlay_before": ov_before, "overlay_after": ov_after,
            "target": (1 - h) * bench, "hedge_ratio": h,
        }
    return out
