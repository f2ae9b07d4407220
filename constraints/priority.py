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
  3. held in the account before not held (add to a position rather than open one);
  4. the linear trading cost (``half_spread + commission``), lowest first;
  5. the value the account holds, largest first;
  6. the benchmark weight, largest first (the household's largest holding);
  7. ``security_id``, in text order: never the order rows are stored in, so a book read from a
     database, whose rows have no order, buys what it buys from files. Where that would pick
     the wrong vehicle (a single stock over the class's fund), give the class priorities.
  Cost comes before the size of the holding: on synthetic households this keeps the objective
  where the pro-rata spread had it (benchmarks/bench_tickets.py --compare spread), while the
  largest holding first paid dearer spreads, a median 0.07 bp of household value (0.7 bp at the
  95th percentile), and held no fewer positions.
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


def ranking(data) -> tuple[np.ndarray, np.ndarray]:
    """The (N,) group of each security whose buys are ranked (-1: none) and the (A, N) rank of
    each security in its group per account (lower is better; NaN: unranked). Groups are the
    classes with priorities and the substitutes (``substitutes``) of the other classes.
    Computed once per household and policy."""
    if "priority.ranking" not in data.memo:
        data.memo["priority.ranking"] = _ranking(data)
    return data.memo["priority.ranking"]


def _ranking(data) -> tuple[np.ndarray, np.ndarray]:
    rank = np.full((data.A, data.N), np.nan)
    explicit = data.column("priority").astype(float) if data.household.priorities else np.full(data.N, np.nan)
    ranked_class = np.isin(data.class_of, data.class_of[~np.isnan(explicit)])
    group = np.where(ranked_class, data.class_of, -1)
    rank[:, ranked_class] = explicit[ranked_class]
    implicit = substitutes(data)
    implicit[ranked_class] = -1  # priorities decide those classes
    inside = np.flatnonzero(implicit >= 0)
    if inside.size:
        group[inside] = data.C + implicit[inside]  # ids after the classes'
        keys = [k[:, inside] for k in _implicit_keys(data)]
        # Sorted by group, then by the keys (lexsort: the last key first); a security's rank is
        # its place after its group's first.
        for a in range(data.A):
            order = inside[np.lexsort([k[a] for k in reversed(keys)] + [group[inside]])]
            g = group[order]
            rank[a, order] = np.arange(g.size) - np.searchsorted(g, g)
    return group, rank


def substitutes(data) -> np.ndarray:
    """(N,) group of each security the risk model cannot tell apart from another (same class,
    same loadings, no specific variance; -1: none), when ``[trades] spread = "one_per_class"``,
    the covariance is over asset classes and targets are by class (else -1 everywhere)."""
    group = np.full(data.N, -1)
    if (data.policy.trades.spread != "one_per_class" or data.household.target_by != "asset_class"
            or data.household.risk.kind != "class" or not data.N):
        return group
    key = np.column_stack([data.class_of, data.risk.B.toarray()])
    order = np.lexsort(key.T)
    new = np.r_[True, (np.diff(key[order], axis=0) != 0).any(axis=1)]  # a row unlike the one before
    group[order] = np.cumsum(new) - 1
    group[data.risk.d > 0] = -1  # specific risk: not interchangeable
    ids, count = np.unique(group[group >= 0], return_counts=True)
    group[np.isin(group, ids[count < 2])] = -1  # alone: nothing to choose between
    return group


def _implicit_keys(data) -> list[np.ndarray]:
    """(A, N) sort keys of the default ranking, most important first (lower is better)."""
    A, N = data.A, data.N
    keys = []
    if data.policy.esg.min_score > 0:
        keys.append(np.broadcast_to(-esg.score_coef(data), (A, N)))
    if data.policy.objective.location_weight > 0:
        drag = {t: data.column(f"drag_{t}").astype(float) for t in set(data.account_types)}
        keys.append(np.array([drag[t] for t in data.account_types]).reshape(A, N))
    keys += [(data.h0 <= 0).astype(float), np.broadcast_to(data.linear_cost, (A, N)), -data.h0,
             np.broadcast_to(-data.bench, (A, N)), np.broadcast_to(_id_order(data.security_ids), (A, N))]
    return keys


def _id_order(ids) -> np.ndarray:
    """(N,) each security's place in ``security_id`` order: the last tie-break, so the choice
    never depends on the order the rows were stored in (a file, a database table)."""
    order = np.empty(len(ids), int)
    order[np.argsort(np.asarray(ids, dtype=str), kind="stable")] = np.arange(len(ids))
    return order


def restrict(data, buy_ok: np.ndarray) -> np.ndarray:
    """``buy_ok`` (A, N) with only the best-ranked buyable security of each ranked group left
    in each account (every member where none is ranked and buyable)."""
    group, rank = ranking(data)
    inside = np.flatnonzero(group >= 0)
    if not inside.size:
        return buy_ok
    order = inside[np.argsort(group[inside], kind="stable")]  # each group's members together
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    r = rank[:, order]
    best = np.minimum.reduceat(np.where(buy_ok[:, order] & ~np.isnan(r), r, np.inf), starts, axis=1)
    best = np.repeat(best, np.diff(np.r_[starts, g.size]), axis=1)  # (A, members): their group's best
    out = buy_ok.copy()
    out[:, order] &= np.isinf(best) | (r == best)  # inf: no ranked member buyable
    return out


class Priority(MaskRule):
    name = "priority"

    def check(self, sol) -> list[Violation]:
        from cvxrebalance.constraints import rule_buy_mask, trade_masks  # the package lists every rule

        d = sol.data
        group = ranking(d)[0]
        if not (group >= 0).any():
            return []
        # Buys the other rules allow but the ranking does not (the others report their own).
        ranked = trade_masks(d)[0]
        bad = (sol.buy_q > 0) & rule_buy_mask(d) & ~ranked
        out = []
        for a, i in zip(*np.nonzero(bad), strict=True):
            primary = ", ".join(d.security_ids[j] for j in np.flatnonzero((group == group[i]) & ranked[a]))
            out.append(Violation(self.name, f"{d.account_ids[a]} buys {d.security_ids[i]} while {primary}, "
                                 "ranked above it in its class, may be bought", float(sol.buy_q[a, i]), "shares"))
        return out


RULE = Priority()
