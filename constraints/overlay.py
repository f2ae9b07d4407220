"""The futures/forwards overlay: bounds per contract, gross and net limits, margin in cash.

- lo_j <= f_j <= hi_j for the notional after trading (per-contract maximum; an expiring contract
  is closed (0); ``cash_only`` keeps today's contracts; whole-contract rounding fixes them);
- sum_j |f_j| <= gross_limit and |sum_j f_j| <= net_limit (fractions of household value at the
  decision, after flows, like every limit here);
- sum_{j facing c} |f_j| <= cap_c per OTC counterparty c (``[overlay] counterparty_limit`` or
  ``counterparty_limits``; exchange-cleared contracts, with a blank counterparty, count for none);
- the carrying account keeps initial margin plus a variation-margin buffer in cash:
  cash_a >= min_cash_a + sum_{j in a} (margin_j / notional_j + buffer) |f_j|;
- ``overlay_only``: no cash trades at all.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints.base import MONEY_TOL, WEIGHT_TOL, Model, Violation


def margin_matrix(data) -> np.ndarray:
    """(A, J) margin per unit |notional| for the account that carries each contract."""
    ov = data.overlay
    m = np.zeros((data.A, ov.J))
    m[ov.account, np.arange(ov.J)] = ov.margin_rate
    return m


def margin_required(sol) -> np.ndarray:
    """Cash each account must keep for its contracts, currency."""
    d = sol.data
    ov = d.overlay
    return margin_matrix(d) @ (np.abs(sol.contracts_q) * ov.notional)


BOUNDS = "overlay.bounds"  # the rows that hold each contract's notional after trading


def fixed_notional(data, contracts: np.ndarray) -> np.ndarray:
    """(J,) notional after trading, fractions of V, of whole ``contracts``: the bounds of the
    ``BOUNDS`` rows once the contracts are chosen (a re-solve moves only these)."""
    return contracts * data.overlay.notional / data.V


class Overlay:
    name = "overlay"

    def buy_allowed(self, data) -> np.ndarray:
        return np.full((data.A, data.N), data.policy.overlay.instruments != "overlay_only")

    sell_allowed = buy_allowed

    def declare(self, m: Model) -> None:
        if not m.J:
            return
        d, p = m.data, m.program
        ov, pol = d.overlay, d.policy.overlay
        lo, hi = ov.lo.copy(), ov.hi.copy()
        fixed = m.margins.get("contracts")
        if fixed is not None:  # whole contracts chosen: notional fixed
            lo = hi = fixed_notional(d, fixed)
        p.constrain(BOUNDS, m.f_after, lo, hi)
        # size >= |notional after|: what margin and the gross limit are charged on.
        size = p.var("overlay.size", ov.J)
        p.constrain("overlay.size", size - m.f_after, lo=0.0)
        p.constrain("overlay.size_neg", size + m.f_after, lo=0.0)
        p.constrain("overlay.gross", size.sum(), hi=pol.gross_limit, hi_labels=["overlay.gross_limit"])
        p.constrain("overlay.net", m.f_after.sum(), lo=-pol.net_limit, hi=pol.net_limit,
                    lo_labels=["overlay.net_limit"], hi_labels=["overlay.net_limit"])
        caps = ov.counterparty_caps(d.policy)
        if caps:
            names = list(caps)
            p.constrain("overlay.counterparty", ov.counterparty_matrix(names) @ size, hi=np.array(list(caps.values())),
                        hi_labels=[f"overlay.counterparty_limit[{c}]" for c in names])
        carrying = np.unique(ov.account)
        floor = d.min_cash + m.margins.get("cash", np.zeros(d.A))
        margin = margin_matrix(d)[carrying]
        p.constrain("overlay.margin", m.cash.rows(carrying) - margin @ size, lo=floor[carrying],
                    lo_labels=[f"overlay.margin[{a}]" for a in carrying])

    def check(self, sol) -> list[Violation]:
        d = sol.data
        ov = d.overlay
        p = d.policy.overlay
        out: list[Violation] = []
        if not ov.J:
            return out
        q = sol.contracts_q
        for j in np.flatnonzero(np.abs(q - np.round(q)) > 1e-9):
            out.append(Violation(self.name, f"fractional contracts {ov.ids[j]}", abs(q[j] - round(q[j])), "contracts"))
        f = q * ov.notional / d.V
        for j in range(ov.J):
            if f[j] < ov.lo[j] - WEIGHT_TOL or f[j] > ov.hi[j] + WEIGHT_TOL:
                out.append(Violation(self.name, f"bounds {ov.ids[j]}", float(max(ov.lo[j] - f[j], f[j] - ov.hi[j]))))
        # cash_only (contracts kept, expiring ones closed) is checked by the bounds above.
        if p.instruments == "overlay_only" and (sol.buy_q.any() or sol.sell_q.any()):
            out.append(Violation(self.name, "overlay_only traded securities", float(sol.traded), "currency"))
        # Limits of the value at decision, as the rows hold them (over the value after trading,
        # which costs lower, a contract at the limit would pass it).
        if np.abs(f).sum() > p.gross_limit + WEIGHT_TOL:
            out.append(Violation(self.name, "gross_limit", float(np.abs(f).sum() - p.gross_limit)))
        if abs(f.sum()) > p.net_limit + WEIGHT_TOL:
            out.append(Violation(self.name, "net_limit", float(abs(f.sum()) - p.net_limit)))
        for c, cap in ov.counterparty_caps(d.policy).items():  # a credit line: of the value at decision
            gross = float(ov.counterparty_matrix([c])[0] @ np.abs(f))
            if gross > cap + WEIGHT_TOL:
                out.append(Violation(self.name, f"counterparty_limit[{c}]", gross - cap))
        short = d.min_cash * d.V + margin_required(sol) - sol.cash_after
        for a in np.intersect1d(np.flatnonzero(short > MONEY_TOL), ov.account):  # elsewhere: the cash rule's
            out.append(Violation(self.name, f"margin[{d.account_ids[a]}]", float(short[a]), "currency"))
        return out


RULE = Overlay()
