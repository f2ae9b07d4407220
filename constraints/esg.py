"""ESG screens: excluded securities are never bought (policy "sell": also sold down to zero), and
the value-weighted ESG score of scored holdings stays >= ``[esg] min_score``.

The score constraint is linear: sum_i (s_i - min) * w_i >= 0 over scored securities i, i.e. the
weighted average sum s_i w_i / sum w_i >= min without dividing by a variable.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import Model, Violation


def excluded(data) -> np.ndarray:
    return data.column("esg_excluded").astype(bool)


def score_coef(data) -> np.ndarray:
    s = data.column("esg_score").astype(float)
    return np.where(np.isnan(s), 0.0, s - data.policy.esg.min_score)


def portfolio_score(data, weights: np.ndarray) -> float | None:
    """Value-weighted ESG score of the scored holdings (None when nothing scored is held)."""
    s = data.column("esg_score").astype(float)
    scored = ~np.isnan(s)
    total = weights[scored].sum()
    return float((s[scored] * weights[scored]).sum() / total) if total > 0 else None


class Esg:
    name = "esg"

    def buy_allowed(self, data) -> np.ndarray:
        return np.broadcast_to(~excluded(data), (data.A, data.N)).copy()

    def sell_mask(self, data) -> np.ndarray:
        """(A, N) positions that policy "sell" forces to zero (liquid excluded holdings)."""
        on = data.policy.esg.excluded == "sell"
        return np.broadcast_to(excluded(data) & data.liquid & on, (data.A, data.N)) * 1.0

    def declare(self, m: Model) -> None:
        d = m.data
        if d.policy.esg.min_score > 0:
            # sum_i (s_i - min) * (held_i + net_i) >= margin over scored securities
            g = score_coef(d)
            margin = float(m.margins.get("esg", np.zeros(1))[0])
            m.program.constrain("esg.min_score", g @ m.net + g @ d.h0.sum(0), lo=margin,
                                lo_labels=["esg.min_score"])
        mask = self.sell_mask(d).ravel() > 0
        if mask.any():
            # Excluded holdings after trading (buys of them are forbidden): sum (held - sold) <= 0.
            after = (d.h0.ravel()[mask] - m.sold.rows(mask)).sum()
            m.program.constrain("esg.sell_excluded", after, hi=0.0, hi_labels=["esg.sell_excluded"])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        out = []
        ex = excluded(d)
        for a, i in zip(*np.nonzero((sol.buy_q > 0) & ex[None, :]), strict=True):
            out.append(Violation(self.name, f"bought excluded {d.security_ids[i]} in {d.account_ids[a]}",
                                 sol.buy_q[a, i], "shares"))
        mask = self.sell_mask(d) > 0
        for a, i in zip(*np.nonzero(mask & (sol.q_after > 1e-9)), strict=True):
            out.append(Violation(self.name, f"excluded {d.security_ids[i]} not sold in {d.account_ids[a]}",
                                 sol.q_after[a, i], "shares"))
        if d.policy.esg.min_score > 0:
            avg = portfolio_score(d, sol.weights_after())
            if avg is not None and avg < d.policy.esg.min_score - 1e-6:
                out.append(Violation(self.name, f"score {avg:.4f} < min", d.policy.esg.min_score - avg, "score"))
        return out


RULE = Esg()
