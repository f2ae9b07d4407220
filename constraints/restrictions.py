"""Client restrictions (restrictions.csv, ``optimizer.domain.restrictions``): ``no_buy`` and
``no_hold`` on a security, a tag or an asset class, in some accounts or in all.

A restricted position is never bought: a mask, so the minimal QP has no variable for the buy.
A ``no_hold`` row's holdings are sold down to zero: one row per restriction line,

    sum over the line's held positions of (held - sold) <= 0,

elastic, so an infeasible policy (a no_hold on the only security of a class a tight band keeps,
or on an illiquid holding) names the line. Buys a mask forbids cannot be relaxed by the elastic
program: ``explain`` names the restrictions behind a band that needed them. Where a substitute
class may be bought is the location rule's (``constraints.location``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from cvxrebalance.constraints.base import Model, Violation
from cvxrebalance.optimizer.domain.restrictions import of

SHARE_TOL = 1e-9


def sell_down(data) -> np.ndarray:
    """(A, N) the first no_hold row covering each held position (-1: none)."""
    if not len(data.household.restrictions):
        return np.full((data.A, data.N), -1)
    return np.where(data.q0 > 0, of(data).first_sell_down(), -1)


class Restrictions:
    name = "restrictions"

    def buy_allowed(self, data) -> np.ndarray:
        if not len(data.household.restrictions):
            return np.ones((data.A, data.N), bool)
        return ~of(data).buy_forbidden

    def declare(self, m: Model) -> None:
        d = m.data
        if not len(d.household.restrictions):
            return
        res = of(d)
        held = d.h0 > 0
        lines = [r for r in np.flatnonzero(res.no_hold) if (res.position[r] & held).any()]
        if not lines:
            return
        covered = [np.flatnonzero((res.position[r] & held).ravel()) for r in lines]
        to = np.repeat(np.arange(len(lines)), [c.size for c in covered])
        at = np.concatenate(covered)
        M = sp.csr_matrix((np.ones(at.size), (to, at)), shape=(len(lines), d.A * d.N))
        m.program.constrain("restrictions.no_hold", M @ (d.h0.ravel() - m.sold), hi=0.0,
                            hi_labels=[res.label(r) for r in lines])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        if not len(d.household.restrictions):
            return []
        res = of(d)
        out = []
        for r in range(len(res.rule)):
            for a, i in zip(*np.nonzero(res.position[r] & (sol.buy_q > SHARE_TOL)), strict=True):
                out.append(Violation(self.name, f"{d.account_ids[a]} bought {d.security_ids[i]} against "
                                     f"{res.text(r)}", float(sol.buy_q[a, i]), "shares"))
            if res.rule[r] == "no_hold":
                for a, i in zip(*np.nonzero(res.position[r] & (sol.q_after > SHARE_TOL)), strict=True):
                    out.append(Violation(self.name, f"{d.account_ids[a]} still holds {d.security_ids[i]} "
                                         f"against {res.text(r)}", float(sol.q_after[a, i]), "shares"))
        return out


def explain(data, side: str, k: int) -> list[str]:
    """Why class ``k``'s band could not be met on ``side`` ("lower" or "upper"), as far as the
    restrictions go: the buys they forbid (bounds the elastic program cannot relax) when the
    class had to rise."""
    if side != "lower" or not len(data.household.restrictions):
        return []
    res = of(data)
    members = data.class_of == k
    name = data.classes[k]
    lines = []
    for r in range(len(res.rule)):
        hit = res.position[r] & members[None, :] & data.liquid[None, :]
        if hit.any():
            sids = ", ".join(data.security_ids[i] for i in np.flatnonzero(hit.any(0)))
            where = ", ".join(data.account_ids[a] for a in np.flatnonzero(hit.any(1)))
            lines.append(f"{name}: buys of {sids} in {where} are forbidden by {res.text(r)}")
    for i in np.flatnonzero(members & (~res.stand_in_ok).any(0)):
        lines.append(f"{name}: {res.stand_in_text[i]}")
    return lines


def explain_sell_down(data, label: str) -> list[str]:
    """A no_hold row named among the conflicts that would sell an illiquid holding (never traded)."""
    if not len(data.household.restrictions):
        return []
    res = of(data)
    lines = []
    for r in range(len(res.rule)):
        if res.label(r) != label:
            continue
        stuck = res.position[r] & (data.q0 > 0) & ~data.liquid[None, :]
        for a, i in zip(*np.nonzero(stuck), strict=True):
            lines.append(f"{res.text(r)} would sell {data.security_ids[i]} in {data.account_ids[a]}, which is "
                         "illiquid and never traded")
    return lines


RULE = Restrictions()
