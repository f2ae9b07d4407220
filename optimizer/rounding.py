"""From the continuous solution to whole shares, with a repair that keeps cash rules true.

1. Sells (per lot in taxable accounts, per position elsewhere) round to the nearest whole share,
   or to the whole holding when that is nearer (fractional holdings can be closed out).
2. Buys round to the nearest whole share.
3. A position both bought and sold is netted (sells of the most heavily taxed lots go first).
4. Cash repair: an account left below its minimum cash (rounding up, quadratic impact) buys fewer
   shares, taking first from the buys that were rounded up the most.
Bands, turnover and the ESG score are kept by the caller: it re-solves with the band tightened
by the amount rounding crossed it (optimizer.rebalance).
"""

from __future__ import annotations

import math

import numpy as np

from cost_models.tax import coefficients
from optimizer.prepare import Prepared
from optimizer.problem import ContinuousSolution
from optimizer.solution import Solution

NOISE = 1e-6  # shares: solver noise below this is no trade


def round_sells(cont: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Nearest whole share, capped at the holding; the whole holding when that is nearer."""
    cont = np.where(cont < NOISE, 0.0, np.minimum(cont, held))
    r = np.minimum(np.round(cont), np.floor(held + 1e-9))
    return np.where(np.abs(held - cont) < np.abs(r - cont), held, r)


def to_shares(data: Prepared, cont: ContinuousSolution) -> Solution:
    """Whole-share trades from a continuous solution (fractions of household value)."""
    V, price = data.V, data.price
    buy_c = cont.buy * V / price
    sell_c = cont.sell * V / price
    buy = np.round(np.where(buy_c < NOISE, 0.0, buy_c))
    sell = round_sells(sell_c, data.q0)
    lots = np.zeros_like(data.lot_q)
    for t, a in enumerate(data.taxable):
        lots[t] = round_sells(cont.lot_sell[t] * V / price[:, None], data.lot_q[t])
        sell[a] = lots[t].sum(1)
    _net(data, buy, sell, lots)
    _repair_cash(data, buy, buy_c, sell, lots)
    return Solution(data, buy, sell, lots)


def _net(data: Prepared, buy, sell, lots) -> None:
    """Cancel a buy against a sell of the same position (keeps only the net trade)."""
    tax = coefficients(data)
    taxable = {a: t for t, a in enumerate(data.taxable)}
    for a, i in zip(*np.nonzero((buy > 0) & (sell > 0)), strict=True):
        both = min(buy[a, i], sell[a, i])
        buy[a, i] -= both
        sell[a, i] -= both
        if a in taxable:
            t, left = taxable[a], both
            for k in np.argsort(-tax[t, i]):
                take = min(left, lots[t, i, k])
                lots[t, i, k] -= take
                left -= take
            sell[a, i] = lots[t, i].sum()


def _repair_cash(data: Prepared, buy, buy_c, sell, lots) -> None:
    for a in range(data.A):
        for _ in range(10 * data.N + 10):
            sol = Solution(data, buy, sell, lots)
            short = data.min_cash[a] * data.V - sol.cash_after[a]
            if short <= 0:
                break
            held = np.flatnonzero(buy[a] > 0)
            if held.size == 0:
                break  # nothing to give up; the checker reports the shortfall
            i = held[np.argmax((buy[a] - buy_c[a])[held])]
            cut = min(buy[a, i], max(1.0, math.ceil(short / data.price[i])))
            buy[a, i] -= cut
