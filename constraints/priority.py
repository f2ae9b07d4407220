"""Preferred securities: each account buys a class through one security, the best-ranked one it
may buy.

Ranks are explicit or implicit:
- securities.csv ``priority`` (1 = the class's primary buy): in each account a class whose
  securities carry priorities is bought only through the best-ranked security the account may
  buy under every other rule (location, ESG, wash sales, illiquidity, restrictions); unranked
  securities of a ranked class only where no ranked one may be bought. Explicit ranks apply
  under any risk model and ``[trades] spread``.
- ``[trades] spread = "one_per_class"`` (the default), for classes without priorities: members
  of a class that are substitutes to the risk model (a class-level covariance, the same loadings
  (class and currency) and no specific variance) are ranked per account by
  1. the ESG score, highest first, when ``[esg] min_score`` is set (so the ranking never makes
     the score harder to reach);
  2. the location drag in the account's type, lowest first, when ``location_weight`` is set;
  3. the value the account holds, largest first (add to the existing position);
  4. the linear trading cost (``half_spread + commission``), lowest first;
  5. the benchmark weight, largest first (the household's largest holding);
  6. securities.csv order.
  With a security-level covariance or a factor model, with security targets (a model
  portfolio) and with members carrying specific risk, the securities are not interchangeable
  and buys are not restricted. ``spread = "pro_rata"`` leaves unranked classes to the
  objective, whose tie-break (``cost_models.tracking_error.TIE_QUAD``) spreads them in
  proportion to the benchmark over every member and account.

Sells are never restricted. Applied as the last step of the trade masks
(``constraints.trade_masks``), since it ranks what every other rule allows.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints import esg
from cvxrebalance.constraints.base import MaskRule, Violation


def ranking(data) -> tuple[list[np.ndarray], np.ndarray]:
    """The groups whose buys are ranked, as (N,) member masks, and the (A, N) rank of each
    security in its group per account (lower is better; NaN: unranked). Computed once per
    household and policy."""
    if "priority.ranking" not in data.memo:
        data.memo["priority.ranking"] = _ranking(data)
    return data.memo["priority.ranking"]


def _ranking(data) -> tuple[list[np.ndarray], np.ndarray]:
    rank = np.full((data.A, data.N), np.nan)
    groups = []
    explicit = data.column("priority").astype(float) if data.household.priorities else np.full(data.N, np.nan)
    ranked_classes = np.unique(data.class_of[~np.isnan(explicit)])
    for k in ranked_classes:
        members = data.class_of == k
        groups.append(members)
        rank[:, members] = explicit[members]
    keys = _implicit_keys(data)
    for members in substitutes(data):
        if np.isin(data.class_of[members], ranked_classes).any():
            continue
        groups.append(members)
        idx = np.flatnonzero(members)
        for a in range(data.A):
            order = np.lexsort([key[a, idx] for key in reversed(keys)])  # lexsort: last key first
            rank[a, idx[order]] = np.arange(idx.size)
    return groups, rank


def substitutes(data) -> list[np.ndarray]:
    """(N,) masks of the groups of two or more securities the risk model cannot tell apart (same
    class, same loadings, no specific variance), when ``[trades] spread = "one_per_class"``, the
    covariance is over asset classes and targets are by class; else none."""
    if (data.policy.trades.spread != "one_per_class" or data.household.target_by != "asset_class"
            or data.household.risk.kind != "class" or not data.N):
        return []
    key = np.column_stack([data.class_of, data.risk.B.toarray()])
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = np.where(data.risk.d > 0, -1, group.ravel())  # specific risk: not interchangeable
    out = [group == g for g in np.unique(group[group >= 0])]
    return [members for members in out if members.sum() > 1]


def _implicit_keys(data) -> list[np.ndarray]:
    """(A, N) sort keys of the default ranking, most important first (lower is better)."""
    A, N = data.A, data.N
    keys = []
    if data.policy.esg.min_score > 0:
        keys.append(np.broadcast_to(-esg.score_coef(data), (A, N)))
    if data.policy.objective.location_weight > 0:
        drag = {t: data.column(f"drag_{t}").astype(float) for t in set(data.account_types)}
        keys.append(np.array([drag[t] for t in data.account_types]).reshape(A, N))
    keys += [-data.h0, np.broadcast_to(data.linear_cost, (A, N)), np.broadcast_to(-data.bench, (A, N)),
             np.broadcast_to(np.arange(N), (A, N))]
    return keys


def restrict(data, buy_ok: np.ndarray) -> np.ndarray:
    """``buy_ok`` (A, N) with only the best-ranked buyable security of each ranked group left
    in each account (every member where none is ranked and buyable)."""
    groups, rank = ranking(data)
    if not groups:
        return buy_ok
    out = buy_ok.copy()
    for members in groups:
        r = rank[:, members]
        best = np.fmin.reduce(np.where(buy_ok[:, members], r, np.nan), axis=1)  # NaN: none buyable
        out[:, members] &= np.isnan(best)[:, None] | (r == best[:, None])
    return out


class Priority(MaskRule):
    name = "priority"

    def check(self, sol) -> list[Violation]:
        from cvxrebalance.constraints import rule_buy_mask, trade_masks  # the package lists every rule

        d = sol.data
        groups = ranking(d)[0]
        if not groups:
            return []
        # Buys the other rules allow but the ranking does not (the others report their own).
        ranked = trade_masks(d)[0]
        bad = (sol.buy_q > 0) & rule_buy_mask(d) & ~ranked
        out = []
        for a, i in zip(*np.nonzero(bad), strict=True):
            members = next(g for g in groups if g[i])
            primary = ", ".join(d.security_ids[j] for j in np.flatnonzero(members & ranked[a]))
            out.append(Violation(self.name, f"{d.account_ids[a]} buys {d.security_ids[i]} while {primary}, "
                                 "ranked above it in its class, may be bought", float(sol.buy_q[a, i]), "shares"))
        return out


RULE = Priority()
