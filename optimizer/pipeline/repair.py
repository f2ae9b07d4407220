"""Last-resort repair of a rounded result: one-share moves until the checker is satisfied.

Rounding can cross a constraint by less than a share where re-solving with a margin cannot help
(a band narrower than one share, a class whose rounding always lands on the same side). This
greedy search tries, for the positions involved, one share less or more of each buy and sell
(lots: the most heavily taxed lot gives up a share first, the least taxed one sells first) and
keeps the move that lowers the total violation most, until none is left or no move helps.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints import default_constraints, trade_masks
from cvxrebalance.cost_models.tax import coefficients
from cvxrebalance.optimizer.domain.factor_targets import factor_targets
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution
from cvxrebalance.optimizer.pipeline import checker

MAX_MOVES = 200
LIMITS = {"bands", "factor_bands", "turnover", "cash", "tax_rules", "overlay"}  # limits a share can cross
HARD = 1e6


def score(sol: Solution, modules=None) -> float:
    """Total violation (of ``modules``; all families by default): weights as they are, money and
    shares over household value, a factor's units over the factor's largest loading (a weight)."""
    violations = checker.check(sol) if modules is None else [v for m in modules for v in m.check(sol)]
    total = 0.0
    for v in violations:
        if v.constraint not in LIMITS:
            total += HARD  # a rule, not a limit: no move may break one
        elif v.unit in ("weight", "score"):
            total += v.amount
        elif v.unit == "factor":
            total += v.amount / factor_targets(sol.data).scale[v.index]
        else:
            total += v.amount / sol.data.V
    return total


def repair(sol: Solution) -> Solution:
    """Greedy one-share moves that reduce the checker's total violation; returns the best found.

    Candidates are scored on the violated families only (cheap); a move is kept only if the
    whole checker agrees it lowered the total, so no other family is broken on the way.
    """
    d = sol.data
    best, best_score = sol, score(sol)
    for _ in range(MAX_MOVES):
        if best_score == 0:
            break
        violated = {v.constraint for v in checker.check(best)}
        focus = [m for m in default_constraints() if m.name in violated]
        candidates = [c for c in (_apply(best, move) for move in _moves(d, best)) if c is not None]
        if not candidates:
            break
        order = np.argsort([score(c, focus) for c in candidates])
        for k in order[:5]:  # the few most promising, checked in full
            full = score(candidates[k])
            if full < best_score:
                best, best_score = candidates[k], full
                break
        else:
            break
    return best


def _positions(d: Prepared, sol: Solution) -> list[tuple[int, int]]:
    """Positions worth moving: those in a violated class, or traded, or held."""
    classes = {v.index for v in checker.check(sol) if v.constraint == "bands" and v.index < d.C}
    members = np.zeros(d.N, bool)
    for k in classes:
        members |= d.X[:, k] > 0
    active = (sol.buy_q > 0) | (sol.sell_q > 0) | members[None, :]
    return list(zip(*np.nonzero(active), strict=True))


def _moves(d: Prepared, sol: Solution):
    buy_ok, sell_ok, _ = trade_masks(d)
    for a, i in _positions(d, sol):
        if sol.buy_q[a, i] >= 1:
            yield ("buy", a, i, -1)
        # Never both buy and sell one position (a round trip only pays costs twice).
        if buy_ok[a, i] and sol.sell_q[a, i] == 0:
            yield ("buy", a, i, +1)
        if sol.sell_q[a, i] >= 1:
            yield ("sell", a, i, -1)
        if sell_ok[a, i] and sol.buy_q[a, i] == 0 and sol.q_after[a, i] >= 1:
            yield ("sell", a, i, +1)


def _apply(sol: Solution, move) -> Solution | None:
    side, a, i, step = move
    d = sol.data
    buy, sell, lots = sol.buy_q.copy(), sol.sell_q.copy(), sol.lot_sell_q.copy()
    if side == "buy":
        buy[a, i] += step
        return Solution(d, buy, sell, lots, sol.contracts_q)
    if a in d.taxable:
        mine = np.flatnonzero((d.lot_account == a) & (d.lot_security == i))
        tax = coefficients(d)
        if step < 0:
            sold = mine[lots[mine] >= 1]
            if sold.size == 0:
                return None
            k = sold[np.argmax(tax[sold])]
        else:
            room = mine[d.lot_q[mine] - lots[mine] >= 1]
            if room.size == 0:
                return None
            k = room[np.argmin(tax[room])]
        lots[k] += step
        sell[a, i] = lots[mine].sum()
    else:
        sell[a, i] += step
    return Solution(d, buy, sell, lots, sol.contracts_q)
