"""The ticket pass: from the convex optimum to a trade list with few, sensible tickets.

Runs after the continuous solve (wash sales and contracts decided), before rounding, when a
ticket rule applies (constraints.tickets).

1. Minimums and limits. Trades below their minimum, and the smallest trades beyond
   ``max_trades`` / ``max_trades_per_account``, are removed; the program is re-solved with only
   the kept positions free to trade (removed and untraded positions closed: bounds at 0, a
   re-solve in the same PIQP workspace). Closing only ever shrinks the set of trades, so this
   ends. If the re-solve is infeasible, a rule needs a removed trade: the removed trades are
   reopened raised to their minimum (``margins["ticket_floor"]``); if that is infeasible too they
   are kept as they were and marked exempt, and the summary's notes say so. A minimum never
   breaks a hard rule.
2. Ticket costs. The fixed cost of a trade is not convex; trades that do not pay for their ticket
   are found by re-solving: the smallest half of the trades is removed, then the smallest quarter,
   and so on, and a removal is kept only when the whole-share list it rounds to passes the checker
   and lowers the objective including every ticket. So the result is never worse than the
   plain trade list by that objective.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.cost_models import objective_value
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.pipeline import checker
from cvxrebalance.optimizer.pipeline.problem import ContinuousSolution, Solver
from cvxrebalance.optimizer.pipeline.rounding import NOISE_VALUE, to_shares

MAX_ROUNDS = 10
MAX_RAISE = 8  # removed trades tried raised to their minimum, one more at a time
TOL = 0.005  # currency: a continuous trade this close to its minimum meets it


def apply(solver: Solver, data: Prepared, margins: dict[str, np.ndarray],
          cont: ContinuousSolution) -> ContinuousSolution:
    """The continuous solution after the ticket pass (see the module docstring)."""
    if not data.has_ticket_rules:
        return cont
    cont = _minimums_and_limits(solver, data, margins, cont)
    if data.ticket.any():
        cont = _ticket_costs(solver, data, margins, cont)
    return cont


def _sides(data: Prepared, cont: ContinuousSolution) -> tuple[np.ndarray, np.ndarray]:
    """(A, N) buy and sell values in currency, solver noise removed."""
    V = data.V
    return (np.where(cont.buy > NOISE_VALUE, cont.buy * V, 0.0),
            np.where(cont.sell > NOISE_VALUE, cont.sell * V, 0.0))


def _removals(data: Prepared, buy: np.ndarray, sell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, N) masks: buys and sells below their minimum, and trades beyond the trade limits
    (the smallest of those kept)."""
    t, exempt, floor = data.policy.trades, data.tickets.exempt, data.min_trade_value - TOL
    whole = sell >= data.q0 * data.price - TOL  # selling a whole holding is always allowed
    drop_buy = (buy > 0) & (buy < floor) & ~exempt
    drop_sell = (sell > 0) & (sell < floor) & ~whole & ~exempt
    value = np.where(drop_buy | drop_sell, 0.0, buy + sell)  # kept trades; a position has one side
    kept = (value > 0) & ~exempt
    over = np.zeros_like(kept)
    limits = [(t.max_trades_per_account, [np.s_[a] for a in range(data.A)]), (t.max_trades, [np.s_[:]])]
    for limit, groups in limits:
        if not limit:
            continue
        for g in groups:
            inside = np.zeros_like(kept)
            inside[g] = kept[g] & ~over[g]
            extra = int(inside.sum() - limit)
            if extra > 0:
                flat = np.flatnonzero(inside)
                smallest = flat[np.argsort(value.ravel()[flat], kind="stable")[:extra]]
                over.ravel()[smallest] = True
    return drop_buy, drop_sell, over


def _minimums_and_limits(solver: Solver, data: Prepared, margins: dict[str, np.ndarray],
                         cont: ContinuousSolution) -> ContinuousSolution:
    state = data.tickets
    for _ in range(MAX_ROUNDS):
        buy, sell = _sides(data, cont)
        small_buy, small_sell, over = _removals(data, buy, sell)
        drop = small_buy | small_sell | over
        if not drop.any():
            return cont
        untraded_buy, untraded_sell = state.closed_buy | (buy == 0), state.closed_sell | (sell == 0)
        state.set(untraded_buy | small_buy | (over & (buy > 0)), untraded_sell | small_sell | (over & (sell > 0)))
        new = solver.solve(margins)
        if new is None:
            new = _raise(solver, data, margins, buy, sell, small_buy, small_sell, over,
                         untraded_buy, untraded_sell)
            if new is None:  # not even raised: keep them as they were
                state.set(untraded_buy, untraded_sell)
                state.exempt |= drop
                new = solver.solve(margins)
            kept = int((state.exempt & drop).sum())
            if kept:
                data.notes.append(f"{kept} trade(s) kept below their minimum or beyond the trade limits: the "
                                  "re-solve without them (and with them raised to their minimum) broke the "
                                  "policy's other rules (cash, bands, withdrawals)")
            if new is None:  # pragma: no cover - the same program as the solve that found cont
                return cont
        cont = new
    return cont


def _raise(solver: Solver, data: Prepared, margins: dict[str, np.ndarray], buy, sell, small_buy, small_sell,
           over, untraded_buy, untraded_sell) -> ContinuousSolution | None:
    """A rule needs some removed trade. Trades beyond the limits are kept (exempt); of the small
    ones, the first k are raised to their minimum (a sale at most to the whole holding, which is
    always allowed) and the rest stay removed, for k = 1, 2, ... until the program is feasible.
    Sales come first (cash is what rules need: withdrawals, minimum cash), each side by how close
    it is to its minimum. None (and no floor left) if no k up to MAX_RAISE works."""
    state = data.tickets
    state.exempt |= over
    minimum = np.broadcast_to(data.min_trade_value, (data.A, data.N))
    sells, buys = np.flatnonzero(small_sell.ravel()), np.flatnonzero(small_buy.ravel())
    closeness = lambda v, idx: np.argsort(-(v.ravel()[idx] / minimum.ravel()[idx]), kind="stable")  # noqa: E731
    order = [(1, k) for k in sells[closeness(sell, sells)]] + [(0, k) for k in buys[closeness(buy, buys)]]
    floor = margins.setdefault("ticket_floor", np.zeros((2, data.A * data.N)))
    before = floor.copy()
    whole = (data.q0 * data.price).ravel()
    for n in range(1, min(len(order), MAX_RAISE) + 1):
        closed = [untraded_buy.ravel() | small_buy.ravel(), untraded_sell.ravel() | small_sell.ravel()]
        floor[:] = before
        for side, k in order[:n]:
            closed[side][k] = False
            floor[side][k] = (min(minimum.ravel()[k], whole[k]) if side else minimum.ravel()[k]) / data.V
        state.set(closed[0].reshape(data.A, data.N), closed[1].reshape(data.A, data.N))
        new = solver.solve(margins)
        if new is not None:
            return new
    floor[:] = before
    return None


def _ticket_costs(solver: Solver, data: Prepared, margins: dict[str, np.ndarray],
                  cont: ContinuousSolution) -> ContinuousSolution:
    state = data.tickets
    best = _score(data, margins, cont)
    if best is None:
        return cont
    for _ in range(MAX_ROUNDS):
        buy, sell = _sides(data, cont)
        value = buy + sell
        traded = np.flatnonzero((value > 0).ravel() & ~state.exempt.ravel())
        order = traded[np.argsort(value.ravel()[traded], kind="stable")]
        before = state.closed_buy.copy(), state.closed_sell.copy()
        k, improved = order.size // 2, False
        while k >= 1 and not improved:
            drop = np.zeros(data.A * data.N, bool)
            drop[order[:k]] = True
            drop = drop.reshape(data.A, data.N)
            state.set(before[0] | (buy == 0) | drop, before[1] | (sell == 0) | drop)
            new = solver.solve(margins)
            score = _score(data, margins, new) if new is not None else None
            if score is not None and score < best - 1e-12:
                cont, best, improved = new, score, True
            else:
                k //= 2
        if not improved:
            state.set(*before)
            return cont
    return cont


def _score(data: Prepared, margins: dict[str, np.ndarray], cont: ContinuousSolution) -> float | None:
    """The objective, tickets included, of the whole-share list ``cont`` rounds to (None: that
    list breaks a rule)."""
    sol = to_shares(data, cont, margins.get("contracts"))
    if checker.check(sol):
        return None
    return objective_value(sol)[0]
