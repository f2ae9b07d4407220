"""From the continuous solution to whole shares, with a repair that keeps cash rules true.

1. Sells (per lot in taxable accounts, per position elsewhere) round to the nearest whole share,
   or to the whole holding when that is nearer (fractional holdings can be closed out).
2. Buys round to the nearest whole share.
3. A position both bought and sold is netted (sells of the most heavily taxed lots go first).
4. Cash repair: an account left below its minimum cash (rounding up, quadratic impact) buys fewer
   shares, taking first from the buys that were rounded up the most; then cash left over buys back
   one share of each buy that was rounded down, largest shortfall first, while cash allows.
Bands, turnover and the ESG score are kept by the caller: it re-solves with the band tightened
by the amount rounding crossed it (cvxrebalance.optimizer.pipeline.rebalance).
"""

from __future__ import annotations

import math

import numpy as np

from cvxrebalance.constraints import trade_masks
from cvxrebalance.constraints.overlay import margin_required
from cvxrebalance.cost_models.tax import coefficients
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution, trade_costs
from cvxrebalance.optimizer.pipeline.problem import ContinuousSolution

NOISE = 1e-6  # shares: solver noise below this is no trade
NOISE_VALUE = 1e-8  # fraction of household value: solver noise below this is no trade


def round_sells(cont: np.ndarray, held: np.ndarray, lot: np.ndarray | float = 1.0) -> np.ndarray:
    """Nearest whole number of ``lot``-share units, capped at the holding; the whole holding
    when that is nearer."""
    cont = np.where(cont < NOISE, 0.0, np.minimum(cont, held))
    r = np.minimum(np.round(cont / lot), np.floor(held / lot + 1e-9)) * lot
    return np.where(np.abs(held - cont) < np.abs(r - cont), held, r)


def to_shares(data: Prepared, cont: ContinuousSolution, contracts: np.ndarray | None = None) -> Solution:
    """Whole-share trades from a continuous solution (fractions of household value); the overlay
    holds ``contracts`` (already whole; None: today's)."""
    V, price = data.V, data.price
    # Solver noise (below NOISE_VALUE of household value) and trades a rule forbids are no trade.
    buy_ok, sell_ok, lot_ok = trade_masks(data)
    clean = lambda x, ok: np.where((x > NOISE_VALUE) & ok, x, 0.0)  # noqa: E731
    buy_c = clean(cont.buy, buy_ok) * V / price
    sell_c = clean(cont.sell, sell_ok) * V / price
    lot_c = clean(cont.lot_sell, lot_ok) * V / price[data.lot_security]
    sell_c[data.taxable] = data.lots_by_position(lot_c)[data.taxable]
    # A cost-free optimum may buy and sell one position at once: keep the net trade before rounding.
    _net(data, buy_c, sell_c, lot_c)
    lot = data.lot_size
    buy = np.round(np.where(buy_c < NOISE, 0.0, buy_c) / lot) * lot
    sell = round_sells(sell_c, data.q0, lot)
    lots = round_sells(lot_c, data.lot_q)
    if (lot != 1).any():  # a taxable sale in whole lot_size units (or the whole holding)
        _lots_to(data, lots, sell, data.lot_size[data.lot_security] != 1)
    sell[data.taxable] = data.lots_by_position(lots)[data.taxable]
    _net(data, buy, sell, lots)
    if data.min_trade_value.any():
        _raise_to_minimum(data, buy, sell, lots)
    # The cash each account would hold under the continuous plan: top-ups may spend only what
    # rounding freed beyond it (spending more would move cash below its band).
    untraded = Solution(data, np.zeros_like(buy), np.zeros_like(sell), np.zeros_like(lots), contracts)
    plan_cash = _cash_after(data, untraded.cash_after, buy_c, sell_c)
    _repair_cash(data, buy, buy_c, sell, untraded, plan_cash)
    return Solution(data, buy, sell, lots, contracts)


def _net(data: Prepared, buy, sell, lots) -> None:
    """Cancel a buy against a sell of the same position (keeps only the net trade); in a taxable
    account the sells given up are those of the most heavily taxed lots."""
    both_ways = (buy > 0) & (sell > 0)
    if not both_ways.any():
        return
    tax = coefficients(data)
    taxable = set(data.taxable)
    for a, i in zip(*np.nonzero(both_ways), strict=True):
        both = min(buy[a, i], sell[a, i])
        buy[a, i] -= both
        sell[a, i] -= both
        if a in taxable:
            left = both
            mine = np.flatnonzero((data.lot_account == a) & (data.lot_security == i))
            for k in mine[np.argsort(-tax[mine], kind="stable")]:
                take = min(left, lots[k])
                lots[k] -= take
                left -= take
            sell[a, i] = lots[mine].sum()


def _lots_to(data: Prepared, lots: np.ndarray, target: np.ndarray, which: np.ndarray) -> None:
    """Move the lot sales of taxable positions (those with a lot in ``which``) to the position
    totals ``target`` (A, N): shares come off the most heavily taxed lots sold and go onto the
    least taxed lots with shares left."""
    tax = coefficients(data)
    for a, i in {(int(data.lot_account[k]), int(data.lot_security[k])) for k in np.flatnonzero(which)}:
        mine = np.flatnonzero((data.lot_account == a) & (data.lot_security == i))
        gap = target[a, i] - lots[mine].sum()
        for k in (mine[np.argsort(-tax[mine], kind="stable")] if gap < 0 else mine[np.argsort(tax[mine], kind="stable")]):
            if abs(gap) < 1e-9:
                break
            step = max(gap, -lots[k]) if gap < 0 else min(gap, data.lot_q[k] - lots[k])
            lots[k] += step
            gap -= step


def smallest_trade(data: Prepared) -> np.ndarray:
    """(N,) shares of the smallest allowed trade: whole lots worth at least the minimum, and at
    least one lot."""
    lot = data.lot_size
    return np.maximum(np.ceil(data.min_trade_value / data.price / lot - 1e-9), 1.0) * lot


def _raise_to_minimum(data: Prepared, buy, sell, lots) -> None:
    """Trades that rounding left below their minimum (by less than a lot) go up to the smallest
    whole number of lots that meets it; a sale capped by the holding sells the whole holding."""
    need = smallest_trade(data)
    exempt = data.tickets.exempt
    small_buy = (buy > 0) & (buy < need) & ~exempt
    buy[small_buy] = np.broadcast_to(need, buy.shape)[small_buy]
    whole = np.abs(sell - data.q0) <= 1e-9
    small_sell = (sell > 0) & (sell < need) & ~whole & ~exempt
    if small_sell.any():
        sell[small_sell] = np.minimum(np.broadcast_to(need, sell.shape), data.q0)[small_sell]
        taxable = np.zeros(sell.shape, bool)
        taxable[data.taxable] = True
        _lots_to(data, lots, sell, (small_sell & taxable)[data.lot_account, data.lot_security])


def _cash_after(data: Prepared, untraded_cash: np.ndarray, buy, sell, rows: slice = slice(None)) -> np.ndarray:
    """Cash after trading for the accounts in ``rows``: the untraded cash (after flows and
    overlay costs) plus sells less buys less transaction costs (Solution's formula, per row)."""
    b, s = buy[rows] * data.price, sell[rows] * data.price
    return untraded_cash[rows] + s.sum(-1) - b.sum(-1) - trade_costs(data, np.atleast_2d(b + s))


def _repair_cash(data: Prepared, buy, buy_c, sell, untraded: Solution, plan_cash) -> None:
    """Cut buys where an account ends below its floor (minimum cash plus margin), then top up."""
    floor = data.min_cash * data.V + margin_required(untraded)  # contracts are fixed here
    lin, impact = data.linear_cost, data.column("impact")
    need = smallest_trade(data)
    for a in range(data.A):
        def cash(a: int = a) -> float:
            return float(_cash_after(data, untraded.cash_after, buy, sell, slice(a, a + 1))[0])

        for _ in range(10 * data.N + 10):
            short = floor[a] - cash()
            if short <= 0:
                break
            held = np.flatnonzero(buy[a] > 0)
            if held.size == 0:
                break  # nothing to give up; the checker reports the shortfall
            i = held[np.argmax((buy[a] - buy_c[a])[held])]
            lot = data.lot_size[i]
            cut = min(buy[a, i], lot * max(1.0, math.ceil(short / data.price[i] / lot)))
            # What is left is a whole number of lots at or above the minimum, or nothing.
            buy[a, i] -= buy[a, i] if buy[a, i] - cut < need[i] else cut
        # Top up: spend cash that rounding freed (beyond the plan's cash) on the buys rounded
        # down the most.
        shortfall = (buy_c[a] - buy[a]) * data.price
        left = cash()
        for i in np.argsort(-shortfall):
            if buy_c[a, i] - buy[a, i] <= 0.01:
                break
            if buy[a, i] == 0 and sell[a, i] > 0:
                continue  # never turn a sale into a round trip
            # One more lot (a new trade: its minimum) costs its value plus the change in
            # trade_costs' formula for the position (impact's square, and a new trade's ticket).
            shares = data.lot_size[i] if buy[a, i] > 0 else need[i]
            p = data.price[i] * shares
            t = (buy[a, i] + sell[a, i]) * data.price[i]
            step = p + lin[i] * p + impact[i] * ((t + p) ** 2 - t**2) / data.V + (data.ticket[i] if t == 0 else 0.0)
            if left - step >= max(floor[a], plan_cash[a] - 0.5 * p):
                buy[a, i] += shares
                left -= step
