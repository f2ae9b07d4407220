"""Wash-sale state of a household: its wash groups and the groups recent trades block.

A wash group is a security and its substantially identical substitutes (securities.csv
``wash_group``; default: the security alone). The rule itself is constraints.wash_sales.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from cvxrebalance.optimizer.domain.tables import rows


@dataclass
class WashState:
    """Groups, and the groups recent trades block, with the trade that blocks them."""

    group: np.ndarray  # (N,) group index per security
    names: list[str]
    recent_buy: dict[int, str] = field(default_factory=dict)  # group -> reason (blocks loss sales)
    recent_loss: dict[int, str] = field(default_factory=dict)  # group -> reason (blocks buys)
    block_buy: set[int] = field(default_factory=set)  # decided inside this rebalance
    block_loss: set[int] = field(default_factory=set)


def wash_state(household, policy, sids: list[str], taxable_ids: set[str]) -> WashState:
    """Wash groups and the blocks that recent transactions impose."""
    sec = household.securities
    labels = [g if g else s for s, g in zip(sec["security_id"], sec["wash_group"], strict=True)]
    names = sorted(set(labels))
    index = {g: k for k, g in enumerate(names)}
    state = WashState(np.array([index[g] for g in labels], int), names)
    group_of = dict(zip(sids, state.group, strict=True))
    start = policy.tax.as_of - dt.timedelta(days=policy.tax.wash_window_days)
    for _, row in rows(household.transactions):
        if not start <= row.date <= policy.tax.as_of:
            continue
        g = group_of[row.security_id]
        if row.side == "buy":
            state.recent_buy.setdefault(g, f"{row.security_id} bought {row.date} in {row.account_id}")
        elif row.account_id in taxable_ids and not (row.realized_gain >= 0):
            what = "at a loss" if row.realized_gain < 0 else "(gain not given: taken as a loss)"
            state.recent_loss.setdefault(g, f"{row.security_id} sold {what} {row.date} in {row.account_id}")
    return state
