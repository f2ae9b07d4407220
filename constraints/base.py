"""What every constraint family shares: the model's shared variables, and the rule interface.

A constraint module exposes one object, ``RULE``, with
- ``name``: a short identifier used in error messages;
- ``declare(m: Model) -> None``: its rows and bounds over the shared variables, declared once
  in the model vocabulary (``optimizer.domain.program``); the pipeline compiles them both to
  the minimal QP and to the cvxpy reference;
- ``check(sol) -> list[Violation]``: an independent check of a finished, rounded result, from
  share quantities and prices only (never from solver variables);
- optionally ``buy_allowed(data)``, ``sell_allowed(data)`` ((A, N) masks) and
  ``lot_allowed(data)`` ((L,) mask): the trades the rule forbids; they become variable bounds
  (so the minimal QP has no variable for a forbidden trade) and the rounding step obeys them.

Adding a rule means adding one module with a ``RULE`` (and its test file): the package finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from cvxrebalance.optimizer.domain.program import Affine, Program

if TYPE_CHECKING:
    from cvxrebalance.optimizer.domain.prepare import Prepared
    from cvxrebalance.optimizer.domain.solution import Solution

# Tolerances of the checker: weights (fractions) and money (currency units).
WEIGHT_TOL = 1e-7
MONEY_TOL = 0.01


@dataclass(frozen=True)
class Violation:
    """A rule a result breaks: which constraint, where, and by how much (weight or currency)."""

    constraint: str
    where: str
    amount: float
    unit: str = "weight"
    index: int | None = None  # the class (bands, cash last), account (cash) or budget (tax_rules) it concerns

    def __str__(self) -> str:
        return f"{self.constraint} [{self.where}] violated by {self.amount:.6g} ({self.unit})"


class Rule(Protocol):
    name: str

    def declare(self, m: Model) -> None: ...

    def check(self, sol: Solution) -> list[Violation]: ...


class MaskRule:
    """Base of rules that only restrict which trades happen (masks) or only check."""

    def declare(self, m: Model) -> None:
        return None


class Model:
    """The shared variables of one rebalance, all fractions of household value ``V``.

    Variable blocks (declared here, bounded by the rules):
    - ``buy`` (A*N, positions flattened ``a * N + i``), ``0 <= buy <= 1``;
    - ``sell`` (A*N) in tax-deferred and tax-exempt accounts, ``0 <= sell <= held``;
    - ``lots`` (L) in taxable accounts, ``0 <= lot sale <= lot value``: one variable per real
      lot; a taxable position's sale is the sum of its lots' (``sold`` below);
    - ``net`` (N): the household's net trade per security, ``net = sum_a (buy - sold)``, which
      feeds the class and factor rows (so those rows have one entry per security);
    - ``cash`` (A): cash after trading; the cash rule writes its balance;
    - ``fbuy``, ``fsell`` (J): overlay notional bought and sold.

    ``margins`` carries what the pipeline learned in earlier solves of the same household
    (rounding repairs, the impact estimate, fixed contracts).
    """

    def __init__(self, data: Prepared, margins: dict[str, np.ndarray] | None = None,
                 program: Program | None = None) -> None:
        self.data = data
        self.margins = margins or {}
        self.program = p = program or Program()
        A, N, L, J = data.A, data.N, data.L, data.overlay.J
        taxable_position = np.zeros((A, N), bool)
        taxable_position[data.taxable] = True
        # A position's buy never exceeds the household (the unit): a bound that is never active
        # but keeps the first-order fallback (OSQP) from wandering along a linear objective.
        self.buy = p.var("buy", A * N, hi=1.0)
        self.sell_var = p.var("sell", A * N, hi=np.where(taxable_position, 0.0, data.h0).ravel())
        self.lots = p.var("lots", L, hi=data.lot_q * data.price[data.lot_security] / data.V)
        self.sold = self.sell_var + self.lots.group(data.lot_position, A * N)  # every position's sale
        self.net = p.var("net", N, lo=-np.inf)
        security = np.tile(np.arange(N), A)  # of each position
        p.constrain("net_trade", self.net - (self.buy - self.sold).group(security, N), lo=0.0, hi=0.0)
        self.cash = p.var("cash", A, lo=-np.inf)
        self.traded = self.buy + self.sold  # (A*N) value traded per position
        if J:
            self.fbuy = p.var("fbuy", J)
            self.fsell = p.var("fsell", J)
            self.ftrade = self.fbuy - self.fsell
            self.f_after = self.ftrade + data.overlay.f0
        self.J = J

    def per_account(self, per_position: Affine, weight: np.ndarray | None = None) -> Affine:
        """(A) sums over each account's positions of an (A*N) expression, times ``weight`` (A, N)."""
        A, N = self.data.A, self.data.N
        e = per_position if weight is None else per_position * np.asarray(weight, float).ravel()
        return e.group(np.repeat(np.arange(A), N), A)

    @property
    def class_weight(self) -> Affine:
        """(C) class weights after trading that the bands apply to: physical, plus the overlay's
        exposure when ``[bands] on = "exposure"``."""
        d = self.data
        on_exposure = d.policy.bands.on == "exposure"
        x0 = d.X.T @ d.h0.sum(0) + (d.overlay.G.T @ d.overlay.f0 if on_exposure else 0.0)
        w = self.net.group(d.class_of, d.C) + x0
        if self.J and on_exposure:
            w = w + d.overlay.G.T @ self.ftrade
        return w

    @property
    def cash_weight(self) -> Affine:
        """(1) household cash after trading."""
        return self.cash.sum()
