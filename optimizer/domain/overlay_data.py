"""Numeric view of the overlay: contracts as signed notionals in fractions of household value."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.restrictions import stand_ins
from cvxrebalance.optimizer.domain.tables import rows

BIG = 10.0  # bound on |notional| / V of any contract when no limit applies (never active)


@dataclass
class OverlayData:
    """Arrays over the J contracts of a household (J may be 0)."""

    ids: list[str]
    notional: np.ndarray  # (J,) currency per contract: price * multiplier
    q0: np.ndarray  # (J,) contracts held
    f0: np.ndarray  # (J,) notional held / V (signed)
    account: np.ndarray  # (J,) index of the carrying account
    G: np.ndarray  # (J, C) asset-class exposure per unit notional
    cost_rate: np.ndarray  # (J,) commission / notional + half spread: cost per unit notional traded
    margin_rate: np.ndarray  # (J,) initial margin / notional + policy buffer, per unit |notional|
    lo: np.ndarray  # (J,) bounds on notional after / V
    hi: np.ndarray
    rolls: list[tuple[str, str | None]] = field(default_factory=list)  # (expiring, next or None)
    counterparty: list[str] = field(default_factory=list)  # (J,) "" for an exchange-cleared contract

    def counterparty_caps(self, policy) -> dict[str, float]:
        """Gross-notional cap per counterparty, fractions of V: ``[overlay] counterparty_limits``
        by name, else ``counterparty_limit`` (0: none)."""
        ov = policy.overlay
        names = sorted({c for c in self.counterparty if c})
        caps = {c: ov.counterparty_limits.get(c, ov.counterparty_limit or np.inf) for c in names}
        return {c: cap for c, cap in caps.items() if np.isfinite(cap)}

    def counterparty_matrix(self, names: list[str]) -> np.ndarray:
        """(len(names), J) 1 where a contract faces the counterparty."""
        return np.array([[float(c == n) for c in self.counterparty] for n in names]).reshape(len(names), self.J)

    @property
    def J(self) -> int:
        return len(self.ids)


def prepare_overlay(household, policy, account_ids, account_types, classes, V) -> OverlayData:
    """Bounds, costs, margin and exposures of every contract under the policy.

    Raises
    ------
    ValidationError
        A contract carried by an account type the policy does not allow to hold futures.
    """
    fut = household.futures
    J = len(fut)
    ov = policy.overlay
    if not J:  # no contracts: empty arrays of the right shapes
        empty = np.zeros(0)
        return OverlayData([], empty, empty, empty, np.zeros(0, int), np.zeros((0, len(classes))),
                           empty, empty, empty, empty)
    notional = fut["price"].to_numpy(float) * fut["multiplier"].to_numpy(float)
    q0 = fut["position"].to_numpy(float)
    f0 = q0 * notional / V
    a_idx = {a: i for i, a in enumerate(account_ids)}
    account = np.array([a_idx[a] for a in fut["account_id"]], int)
    c_idx = {c: k for k, c in enumerate(classes)}
    G = np.zeros((J, len(classes)))
    stand_in = stand_ins(household.restrictions)  # a substitute class's contract counts as its class's
    for j, (c, e) in enumerate(zip(fut["asset_class"], fut["exposure"], strict=True)):
        c = stand_in.get(c, c)
        if c in c_idx:
            G[j, c_idx[c]] = e
    problems = []
    for line, src, a in zip(fut.index, fut["source"], account, strict=True):
        if account_types[a] not in ov.accounts:
            problems.append(Problem(src, int(line), "account_id",
                                    f"{account_ids[a]} is {account_types[a]}; the policy's [overlay] "
                                    f"accounts allow futures only in {', '.join(ov.accounts)}"))
    if problems:
        raise ValidationError(problems)
    cost_rate = (fut["commission"].to_numpy(float) / notional + fut["half_spread"].to_numpy(float)) if J else np.zeros(0)
    # Futures: initial margin plus the policy's variation-margin buffer. Swaps: their collateral
    # reserve, given or the value change of a collateral_move rate move (duration x move).
    swap = (fut["source"] == "swaps.csv").to_numpy()
    margin = fut["margin"].to_numpy(float) / notional
    reserve = np.where(np.isnan(margin), fut["futures_duration"].to_numpy(float) * ov.collateral_move, margin)
    margin_rate = np.where(swap, reserve, margin + ov.margin_buffer)
    cap = fut["max_contracts"].to_numpy(float) * notional / V
    hi = np.where(np.isnan(cap), BIG, cap)
    lo = -hi
    rolls: list[tuple[str, str | None]] = []
    if ov.instruments == "cash_only":  # contracts stay as they are (expiring ones close below)
        lo, hi = f0.copy(), f0.copy()
    if ov.horizon is not None:
        contracts = [row for _, row in rows(fut)]
        for j, row in enumerate(contracts):
            if row.expiry is not None and row.expiry < ov.horizon:
                lo[j] = hi[j] = 0.0  # closed, and rolled into the next contract if one is listed
                later = [(r.expiry, r.contract_id) for r in contracts
                         if r.underlying == row.underlying and r.underlying and r.expiry is not None
                         and r.expiry >= ov.horizon]
                # cash_only closes an expiring contract but rolls nothing (no new overlay).
                nxt = min(later)[1] if later and ov.instruments != "cash_only" else None
                rolls.append((row.contract_id, nxt))
    return OverlayData(list(fut["contract_id"]), notional, q0, f0, account, G, cost_rate,
                       margin_rate, lo, hi, rolls, list(fut["counterparty"]))
