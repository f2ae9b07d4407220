"""What FIFO and HIFO relief of the same sold quantities would have realized, for comparison with
the optimizer's lot-by-lot choice (same netting, same year-to-date gains)."""

from __future__ import annotations

import numpy as np

from cvxrebalance.cost_models.tax import gains_by_term, incremental


def relieve(data, sold: np.ndarray, method: str, last: np.ndarray | None = None) -> np.ndarray:
    """(L,) lot sells that take ``sold`` ((A, N) shares per position) within each position in
    FIFO (oldest first), HIFO (highest basis first) or "tax" order (lowest rate-weighted gain
    per share first: the largest losses, short term before long, then the smallest gains, long
    term before short; ties by highest basis). Lots marked ``last`` are taken only after all
    others of their position."""
    if method == "fifo":
        key = data.lot_acquired.astype("int64")
    elif method == "hifo":
        key = -data.lot_basis
    else:
        key = data.lot_rate * data.lot_gain - 1e-12 * data.lot_basis
    last = np.zeros(data.L, bool) if last is None else last
    order = np.lexsort((key, last, data.lot_position))  # by position, then the method's order
    pos, q = data.lot_position[order], data.lot_q[order]
    before = np.cumsum(q) - q  # shares of the same position's earlier lots, after subtracting...
    first = np.r_[True, pos[1:] != pos[:-1]]
    start = np.maximum.accumulate(np.where(first, before, 0.0))  # ...the position's own start
    ahead = before - start
    take = np.clip(sold.ravel()[pos] - ahead, 0.0, q)
    out = np.zeros(data.L)
    out[order] = take
    return out


def compare(sol) -> dict[str, dict[str, float]]:
    """Gains by term and tax (model and exact) for the optimizer's lots, FIFO and HIFO."""
    d = sol.data
    sold = d.lots_by_position(sol.lot_sell_q)
    out = {}
    for name, lots in (("optimizer", sol.lot_sell_q), ("fifo", relieve(d, sold, "fifo")),
                       ("hifo", relieve(d, sold, "hifo"))):
        short, long, _ = gains_by_term(d, lots)
        model, exact = incremental(d, short, long)
        # + 0.0 turns a -0.0 (a loss times a zero rate) into 0.0, in JSON and on the terminal.
        out[name] = {"short_term_gain": round(short, 2) + 0.0, "long_term_gain": round(long, 2) + 0.0,
                     "tax": round(model, 2) + 0.0, "tax_exact": round(exact, 2) + 0.0}
    return out
