"""Wash sales across every account of the household (tax-deferred and tax-exempt included).

A wash group is a security and its substantially identical substitutes (securities.csv
``wash_group``; default: the security alone). With W = ``[tax] wash_window_days`` (30):
- no loss sale in a group bought in the W days up to the as-of date (transactions.csv, any account);
- no purchase, in any account, of a group sold at a loss in a taxable account in those W days;
- inside one rebalance a group is bought or loss-sold, never both. If a solve does both in some
  group, the side of every group it traded is decided in one pass (``decide``) and the re-solve
  forbids the other sides (``WashState.block_buy`` / ``block_loss``), so a decided group never
  pairs again; only a group no solve had traded can, which costs one more re-solve.
Purchases in the 30 days *after* today are outside what a rebalance controls.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MaskRule, Violation

TRADE_TOL = 1e-9  # shares, in a finished result
DECIDE_TOL = 1e-7  # fraction of household value, in a continuous solution


def loss_sold_groups(data, lot_sell_q: np.ndarray, tol: float = TRADE_TOL) -> set[int]:
    """Groups with a loss lot sold."""
    sold = (lot_sell_q > tol) & (data.lot_gain < 0)
    return {int(g) for g in np.unique(data.wash.group[data.lot_security[sold]])}


def bought_groups(data, buy: np.ndarray, tol: float = TRADE_TOL) -> set[int]:
    """Groups bought in any account."""
    return {int(data.wash.group[i]) for i in np.flatnonzero((buy > tol).any(axis=0))}


def decide(data, buy: np.ndarray, lot_sell: np.ndarray) -> tuple[set[int], set[int]] | None:
    """After a solve (trades in fractions of household value) that both buys and loss-sells some
    group, decide the side of every group the solve traded; return the groups whose buys and
    whose loss sales this newly blocked (None: nothing to decide), which ``reverse`` undoes.

    - bought and loss-sold: the larger side by value wins (Moehle, Kochenderfer, Boyd and Ang
      2021, "Tax-aware portfolio construction via convex optimization", sec. 5);
    - only bought: loss sales blocked; only loss-sold: buys blocked, so the re-solve keeps every
      traded group on the side this solve chose and cannot pair it anew.
    Groups the solve left alone stay open (blocking them would forgo harvests the re-solve may
    find); only they can pair in the re-solve, which then decides them the same way.
    """
    bought = bought_groups(data, buy, DECIDE_TOL)
    loss_sold = loss_sold_groups(data, lot_sell, DECIDE_TOL)
    both = bought & loss_sold
    if not both:
        return None
    w = data.wash
    before = (set(w.block_buy), set(w.block_loss))
    for g in both:
        members = w.group == g
        bought_value = buy[:, members].sum()
        loss_value = (lot_sell * members[data.lot_security] * (data.lot_gain < 0)).sum()
        (w.block_buy if loss_value >= bought_value else w.block_loss).add(g)
    w.block_buy.update(loss_sold - both)
    w.block_loss.update(bought - both)
    return w.block_buy - before[0], w.block_loss - before[1]


def reverse(data, new_buy_blocks: set[int], new_loss_blocks: set[int]) -> None:
    """Take the other side of a decision: groups whose buys it blocked may be bought but not
    loss-sold, and the other way round (the rule allows either)."""
    w = data.wash
    w.block_buy -= new_buy_blocks
    w.block_loss -= new_loss_blocks
    w.block_buy |= new_loss_blocks
    w.block_loss |= new_buy_blocks


class WashSales(MaskRule):
    name = "wash_sales"

    def buy_allowed(self, data) -> np.ndarray:
        blocked = set(data.wash.recent_loss) | data.wash.block_buy
        ok = ~np.isin(data.wash.group, list(blocked))
        return np.broadcast_to(ok, (data.A, data.N)).copy()

    def lot_allowed(self, data) -> np.ndarray:
        blocked = set(data.wash.recent_buy) | data.wash.block_loss
        in_blocked = np.isin(data.wash.group, list(blocked))[data.lot_security]
        return ~(in_blocked & (data.lot_gain < 0))

    def check(self, sol) -> list[Violation]:
        d = sol.data
        w = d.wash
        out = []
        bought = bought_groups(d, sol.buy_q)
        loss_sold = loss_sold_groups(d, sol.lot_sell_q)
        for g in sorted(loss_sold & set(w.recent_buy)):
            out.append(Violation(self.name, f"loss sale in {w.names[g]} ({w.recent_buy[g]})", 1.0, "group"))
        for g in sorted(bought & set(w.recent_loss)):
            out.append(Violation(self.name, f"purchase of {w.names[g]} ({w.recent_loss[g]})", 1.0, "group"))
        for g in sorted(bought & loss_sold):
            out.append(Violation(self.name, f"{w.names[g]} both bought and sold at a loss", 1.0, "group"))
        return out


RULE = WashSales()
