"""The textbook mechanical rebalancer: trade each account exactly to the target weights (or to
the band edge), with the costs solved exactly. It is the baseline a backtest compares the
optimizer with, so it must match the published arithmetic.

Each account is rebalanced to the household's security-level targets ``w`` (the targets spread
over each class's securities as the optimizer's benchmark does, cash at its target), on its own
value. With linear cost rates ``c_i`` (half spread + commission) the value after trading ``V'``
solves

    V' + sum_i c_i |w_i V' - h_i| = V          (h_i: value held, V: the account's value)

(the costs are paid from the account's cash). The left side is increasing and piecewise linear
in ``V'`` (slope 1 + sum_i +-c_i w_i > 0), so the root is found exactly: on the segment between
consecutive breakpoints h_i / w_i where the sum changes sign it is linear. The trades are then
``w_i V' - h_i``: after trading every weight equals its target on the post-cost value. Impact and
ticket costs are charged as in every result but are not anticipated (they are nonlinear).

``rebalance_to = "tolerance"``: the classes outside their band go to the band's edge (``inner``
of the half-width in from it; ``inner = 1`` is the edge), the others make room
(``optimizer.domain.targets.reference``). Illiquid holdings are not traded: the liquid part is
rebalanced to the targets' liquid weights scaled to what is left.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.cost_models.lot_relief import relieve
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution

LOT_METHODS = ("fifo", "hifo", "average")


def post_cost_value(held: np.ndarray, weight: np.ndarray, rate: np.ndarray, total: float) -> float:
    """V' with V' + sum_i rate_i |weight_i V' - held_i| = total, exactly (module docstring).

    Examples
    --------
    Two assets at 70/30 rebalanced to 60/40 with a 1% cost on both sides: the sale of
    70 - 0.6 V' and the buy of 0.4 V' - 30 cost 0.01 (40 - 0.2 V'), so 0.998 V' + 0.4 = 100:

    >>> v = post_cost_value(np.array([70.0, 30.0]), np.array([0.6, 0.4]), np.array([0.01, 0.01]), 100.0)
    >>> round(v, 10) == round(99.6 / 0.998, 10), round(0.6 * v, 4), round(0.4 * v, 4)
    (True, 59.8798, 39.9198)
    """
    w = np.asarray(weight, float)
    h = np.asarray(held, float)
    c = np.asarray(rate, float)

    def f(v: float) -> float:
        return v + float((c * np.abs(w * v - h)).sum()) - total

    breaks = np.sort(np.unique(np.r_[0.0, h[w > 0] / w[w > 0], total]))
    values = np.array([f(b) for b in breaks])
    k = int(np.searchsorted(values, 0.0))  # f increases: the root lies in [breaks[k-1], breaks[k]]
    if k == 0:
        return float(breaks[0])
    if k >= len(breaks):  # beyond the last breakpoint f is linear with slope 1 + sum c w
        return float(breaks[-1] - values[-1] / (1 + (c * w).sum()))
    lo, hi = breaks[k - 1], breaks[k]
    return float(lo - values[k - 1] * (hi - lo) / (values[k] - values[k - 1]))  # linear in between


def rule_trades(data: Prepared, lot_method: str = "fifo", whole: bool = True) -> Solution:
    """The mechanical rule's trades for a prepared household, as a Solution the checker reads.

    Parameters
    ----------
    data : Prepared
        The household under its policy (targets, bands, ``rebalance_to``).
    lot_method : {"fifo", "hifo", "average"}
        How sales relieve taxable lots ("average": every lot of the position in proportion, so
        the gain is the one of the average cost).
    whole : bool
        Whole shares (buys rounded down, sales up and at most the holding), else fractional.

    Returns
    -------
    Solution
    """
    if lot_method not in LOT_METHODS:
        raise ValueError(f"lot_method {lot_method!r} is not one of {', '.join(LOT_METHODS)}")
    weights = np.asarray(data.bench, float)  # the targets (or the tolerance reference) per security
    cash_w = 1.0 - weights.sum()
    buy = np.zeros((data.A, data.N))
    sell = np.zeros((data.A, data.N))
    liquid = data.liquid
    for a in range(data.A):
        held = data.q0[a] * data.price
        total = float(held.sum() + data.cash0[a] * data.V)
        fixed = float(held[~liquid].sum())  # illiquid value stays; the rest is rebalanced
        w = np.where(liquid, weights, 0.0)
        scale = (w.sum() + cash_w)
        w = w / scale if scale > 0 else w
        v = post_cost_value(held[liquid], w[liquid], data.linear_cost[liquid], total - fixed)
        trade = np.where(liquid, w * v - held, 0.0) / data.price
        if whole:  # buys round down and sales up (both floor), so the exact solve's cash is not overspent
            trade = np.floor(trade + 1e-9)
        trade = np.maximum(trade, -data.q0[a])
        buy[a], sell[a] = np.maximum(trade, 0.0), np.maximum(-trade, 0.0)
    return Solution(data, buy, sell, _lots(data, sell, lot_method))


def _lots(data: Prepared, sell: np.ndarray, method: str) -> np.ndarray:
    if not data.L:
        return np.zeros(0)
    sold = np.where(np.isin(np.arange(data.A), data.taxable)[:, None], sell, 0.0)
    if method != "average":
        return relieve(data, sold, method)
    held = data.lots_by_position(data.lot_q)  # (A, N) shares in lots per position
    frac = np.divide(sold, held, out=np.zeros_like(sold), where=held > 0)
    return data.lot_q * frac[data.lot_account, data.lot_security]
