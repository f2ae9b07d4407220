"""What FIFO and HIFO relief of the same sold quantities would have realized, for comparison with
the optimizer's lot-by-lot choice (same netting, same year-to-date gains)."""

from __future__ import annotations

import numpy as np

from cvxrebalance.cost_models.tax import gains_by_term, incremental


def relieve(data, sold: np.ndarray, method: str) -> np.ndarray:
    """(T, N, K) lot sells that take ``sold`` (T, N) shares per position in FIFO (oldest first)
    or HIFO (highest basis first) order."""
    out = np.zeros_like(data.lot_q)
    by_position: dict[tuple[int, int], list] = {}
    for lot in data.lots:
        by_position.setdefault((lot.t, lot.security), []).append(lot)
    for (t, i), lots in by_position.items():
        left = sold[t, i]
        key = (lambda x: x.acquired) if method == "fifo" else (lambda x: -x.cost_basis)
        for lot in sorted(lots, key=key):
            take = min(left, lot.quantity)
            out[t, i, lot.slot] = take
            left -= take
    return out


def compare(sol) -> dict[str, dict[str, float]]:
    """Gains by term and tax (model and exact) for the optimizer's lots, FIFO and HIFO."""
    d = sol.data
    sold = sol.lot_sell_q.sum(axis=2)
    out = {}
    for name, lots in (("optimizer", sol.lot_sell_q), ("fifo", relieve(d, sold, "fifo")),
                       ("hifo", relieve(d, sold, "hifo"))):
        short, long, _ = gains_by_term(d, lots)
        model, exact = incremental(d, short, long)
        out[name] = {"short_term_gain": round(short, 2), "long_term_gain": round(long, 2),
                     "tax": round(model, 2), "tax_exact": round(exact, 2)}
    return out
