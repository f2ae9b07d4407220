"""Ticket rules: minimum trade sizes, round lots and trade-count limits (``[trades]`` and the
securities.csv columns ``min_value``, ``min_shares``, ``lot_size``).

None of them is convex, so the program only carries what the ticket pass decided
(optimizer.pipeline.tickets): positions it closed (bounds at 0) and trades it raised to their
minimum (``margins["ticket_floor"]``: buy >= floor, sale >= floor). The check reads the finished
trade list: every trade at or above its minimum and a multiple of its lot size (selling a whole
holding is always allowed), and no more trades than the limits, except trades the pass kept
because a rule needs them (``TicketState.exempt``).
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, Model, Violation

SHARE_TOL = 1e-9


def whole_holding(data, sell_q: np.ndarray) -> np.ndarray:
    """(A, N) sales of the entire holding (exempt from minimums and round lots)."""
    return (sell_q > 0) & (np.abs(sell_q - data.q0) <= SHARE_TOL)


class Tickets:
    name = "tickets"

    def buy_allowed(self, data) -> np.ndarray:
        return ~data.tickets.closed_buy

    def sell_allowed(self, data) -> np.ndarray:
        return ~data.tickets.closed_sell

    def declare(self, m: Model) -> None:
        floor = m.margins.get("ticket_floor")
        if floor is None:
            return
        buy_floor, sell_floor = floor[0], floor[1]
        if (buy_floor > 0).any():
            m.program.bound("buy", lo=buy_floor, where=buy_floor > 0)
        on = np.flatnonzero(sell_floor > 0)
        if on.size:
            m.program.constrain("tickets.min_sale", m.sold.rows(on), lo=sell_floor[on])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        if not d.has_ticket_rules:  # every checker run (in every repair step) asks
            return []
        out: list[Violation] = []
        ids = lambda a, i: f"{d.account_ids[a]}/{d.security_ids[i]}"  # noqa: E731
        whole = whole_holding(d, sol.sell_q)
        exempt = d.tickets.exempt
        for side, q in (("buy", sol.buy_q), ("sell", sol.sell_q)):
            value = q * d.price
            small = (q > SHARE_TOL) & (value < d.min_trade_value - MONEY_TOL) & ~exempt
            if side == "sell":
                small &= ~whole
            for a, i in zip(*np.nonzero(small), strict=True):
                out.append(Violation(self.name, f"min_value {side} {ids(a, i)}",
                                     float(d.min_trade_value[i] - value[a, i]), "currency"))
            units = q / d.lot_size
            odd = np.abs(units - np.round(units)) > SHARE_TOL
            if side == "sell":
                odd &= ~whole
            for a, i in zip(*np.nonzero(odd), strict=True):
                out.append(Violation(self.name, f"lot_size {side} {ids(a, i)}", float(q[a, i] % d.lot_size[i]), "shares"))
        counted = ((sol.buy_q > SHARE_TOL) | (sol.sell_q > SHARE_TOL)) & ~exempt
        t = d.policy.trades
        if t.max_trades and counted.sum() > t.max_trades:
            out.append(Violation(self.name, "max_trades", float(counted.sum() - t.max_trades), "trades"))
        if t.max_trades_per_account:
            for a in np.flatnonzero(counted.sum(1) > t.max_trades_per_account):
                out.append(Violation(self.name, f"max_trades_per_account[{d.account_ids[a]}]",
                                     float(counted[a].sum() - t.max_trades_per_account), "trades", index=int(a)))
        return out


RULE = Tickets()
