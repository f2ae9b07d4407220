"""The interface every constraint family shares: build into the problem, check a result.

A constraint module exposes one object with
- ``name``: a short identifier used in error messages;
- ``parameters(data, margins) -> dict[str, ndarray]``: numeric values of its cvxpy Parameters
  (called on every re-solve, so a compiled problem is reused across households of one shape);
- ``build(ctx) -> list[cvxpy.Constraint]``: its constraints, written DPP-compliant;
- ``check(sol) -> list[Violation]``: an independent check of a finished, rounded result, from
  share quantities and prices only (never from solver variables).
Modules may also restrict trades with ``buy_allowed(data)`` / ``sell_allowed(data)`` masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import cvxpy as cp
import numpy as np

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
    index: int | None = None  # the class (bands, cash last) or account (cash) it concerns

    def __str__(self) -> str:
        return f"{self.constraint} [{self.where}] violated by {self.amount:.6g} ({self.unit})"


class Constraint(Protocol):
    name: str

    def parameters(self, data: Prepared, margins: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def build(self, ctx: Context) -> list[cp.Constraint]: ...

    def check(self, sol: Solution) -> list[Violation]: ...


class MaskRule:
    """Base of rules that only restrict which positions trade (via buy_allowed/sell_allowed
    masks read by cvxrebalance.constraints.holdings) or only check: no parameters, no constraints of their own."""

    def parameters(self, data: Prepared, margins: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {}

    def build(self, ctx: Context) -> list[cp.Constraint]:
        return []


@dataclass
class Context:
    """Variables and parameters shared by every module while one problem is assembled.

    All variables are fractions of household value: ``buy``/``sell`` (A, N), ``lot_sell`` (one
    (N, K) variable per taxable account), ``cash`` (A,) post-trade cash.
    """

    A: int
    N: int
    C: int
    K: int
    taxable: tuple[int, ...]
    risk_rank: int = 0
    J: int = 0
    elastic: bool = False
    params: dict[str, cp.Parameter] = field(default_factory=dict)
    slacks: dict[str, tuple[cp.Variable, list[str]]] = field(default_factory=dict)
    extra_constraints: list[cp.Constraint] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.buy = cp.Variable((self.A, self.N), nonneg=True, name="buy")
        self.sell = cp.Variable((self.A, self.N), nonneg=True, name="sell")
        self.lot_sell = [
            cp.Variable((self.N, self.K), nonneg=True, name=f"lot_sell_{t}")
            for t in range(len(self.taxable))
        ]
        self.cash = cp.Variable(self.A, name="cash")
        # Household net trade per security; class and cash weights after trading.
        self.net = cp.sum(self.buy - self.sell, axis=0)
        self.cash_weight = cp.sum(self.cash)
        self.class_weight = self.param("X", (self.N, self.C)).T @ self.net + self.param(
            "x0", (self.C,)
        )
        # Overlay: contracts bought / sold as signed notional (fractions of V); notional after
        # trading is f0 + fnet. Bands see G_band' fnet (G_band = 0 when bands are on physical only).
        if self.J:
            self.fbuy = cp.Variable(self.J, nonneg=True, name="contracts_bought")
            self.fsell = cp.Variable(self.J, nonneg=True, name="contracts_sold")
            self.fnet = self.fbuy - self.fsell
            # A variable (not fnet + f0) so that parameters may multiply it: DPP.
            self.f_after = cp.Variable(self.J, name="overlay_notional")
            self.extra_constraints.append(self.f_after == self.fnet + self.param("f0", (self.J,)))
            self.class_weight = self.class_weight + self.param("G_band", (self.J, self.C)).T @ self.fnet

    def param(self, name: str, shape: tuple[int, ...], nonneg: bool = False) -> cp.Parameter:
        """The named Parameter, created on first use (modules share e.g. ``X``)."""
        if name not in self.params:
            self.params[name] = cp.Parameter(shape, name=name, nonneg=nonneg)
        return self.params[name]

    def slack(self, name: str, labels: list[str]) -> cp.Expression | float:
        """Elastic slack for a family of constraints (zero unless this is the elastic re-solve)."""
        if not self.elastic:
            return 0.0
        var = cp.Variable(len(labels), nonneg=True, name=f"slack_{name}")
        self.slacks[name] = (var, labels)
        return var


def shared_parameters(data: Prepared) -> dict[str, np.ndarray]:
    """Values of the parameters the Context itself creates."""
    ov = data.overlay
    G_band = ov.G if data.policy.bands.on == "exposure" else np.zeros_like(ov.G)
    return {"X": data.X, "x0": data.X.T @ data.h0.sum(0) + G_band.T @ ov.f0, "f0": ov.f0,
            "G_band": G_band}
