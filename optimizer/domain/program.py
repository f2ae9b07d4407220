"""The model vocabulary: blocks of variables with bounds, affine expressions over them, rows
``lo <= expr <= hi`` and objective pieces (linear, and sums of squares).

Constraint and cost modules declare the rebalance in these terms, once. The pipeline compiles
one declaration two ways: into the minimal sparse QP that PIQP solves directly
(``optimizer.pipeline.assemble``), and into a readable cvxpy problem (``optimizer.pipeline.reference``)
that the tests and the fallback solvers use. Nothing here knows about households.

A QP in this vocabulary is

    minimize    sum_k c_k' x + const  +  sum_s || M_s x + e_s ||^2
    subject to  lo_r <= A_r x + a_r <= hi_r     (rows; lo_r == hi_r: an equality)
                lo_b <= x_b <= hi_b              (bounds of each block)

Rows and bounds can carry *elastic* labels: the elastic version of a program (``elastic()``)
relaxes exactly those with a penalized slack, to name the constraints of an infeasible policy.

Examples
--------
>>> import numpy as np
>>> p = Program()
>>> x = p.var("x", 2, lo=0.0)
>>> p.constrain("budget", x.sum(), lo=-np.inf, hi=1.0, hi_labels=["budget"])
>>> p.minimize_squares("distance", x - np.array([1.0, 1.0]))
>>> [b.name for b in p.blocks.values()], [r.name for r in p.rows]
(['x'], ['budget'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

INF = np.inf


@dataclass
class Block:
    """``size`` variables named ``name`` with bounds; ``lo_labels``: elastic lower bounds."""

    name: str
    size: int
    offset: int
    lo: np.ndarray
    hi: np.ndarray
    lo_labels: list[str | None] | None = None


def _csr(m, shape: tuple[int, int]) -> sp.csr_matrix:
    out = sp.csr_matrix(m, dtype=float)
    if out.shape != shape:
        raise ValueError(f"coefficient matrix of shape {out.shape}, expected {shape}")
    return out


class Affine:
    """``sum_b M_b x_b + const``: an expression with ``size`` rows over named blocks.

    Supports ``+``, ``-``, unary ``-``, ``matrix @ expr`` (sparse or dense), ``expr * vector``
    (row scaling), ``sum()`` and ``rows(index)``.
    """

    __array_ufunc__ = None  # numpy defers ``ndarray @ Affine`` and ``ndarray + Affine`` to us
    __array_priority__ = 100

    def __init__(self, size: int, terms: dict[str, sp.csr_matrix] | None = None,
                 const: np.ndarray | float = 0.0) -> None:
        self.size = size
        self.terms = terms or {}
        self.const = np.broadcast_to(np.asarray(const, float), (size,)).copy()

    def _combine(self, other, sign: float) -> Affine:
        if not isinstance(other, Affine):
            return Affine(self.size, dict(self.terms), self.const + sign * np.asarray(other, float))
        if other.size != self.size:
            raise ValueError(f"adding expressions of {self.size} and {other.size} rows")
        terms = dict(self.terms)
        for name, m in other.terms.items():
            terms[name] = terms[name] + sign * m if name in terms else sign * m
        return Affine(self.size, terms, self.const + sign * other.const)

    def __add__(self, other) -> Affine:
        return self._combine(other, 1.0)

    __radd__ = __add__

    def __sub__(self, other) -> Affine:
        return self._combine(other, -1.0)

    def __rsub__(self, other) -> Affine:
        return (-self)._combine(other, 1.0)

    def __neg__(self) -> Affine:
        return Affine(self.size, {n: -m for n, m in self.terms.items()}, -self.const)

    def __rmatmul__(self, matrix) -> Affine:
        m = sp.csr_matrix(matrix, dtype=float)
        if m.shape[1] != self.size:
            raise ValueError(f"({m.shape[0]}, {m.shape[1]}) @ expression of {self.size} rows")
        return Affine(m.shape[0], {n: (m @ t).tocsr() for n, t in self.terms.items()}, m @ self.const)

    def __mul__(self, scale) -> Affine:
        """Row-wise scaling by a vector (or a scalar)."""
        s = np.broadcast_to(np.asarray(scale, float), (self.size,))
        return sp.diags(s) @ self

    __rmul__ = __mul__

    def sum(self) -> Affine:
        return np.ones((1, self.size)) @ self

    def rows(self, index) -> Affine:
        """The rows ``index`` (an integer array or a boolean mask)."""
        idx = np.arange(self.size)[index]
        pick = sp.csr_matrix((np.ones(idx.size), (np.arange(idx.size), idx)), shape=(idx.size, self.size))
        return pick @ self


@dataclass
class Rows:
    """``lo <= expr <= hi``; ``*_labels`` name the rows whose side is elastic (None: hard)."""

    name: str
    expr: Affine
    lo: np.ndarray
    hi: np.ndarray
    lo_labels: list[str | None] | None = None
    hi_labels: list[str | None] | None = None


@dataclass
class Program:
    """A declared QP: variable blocks, rows and objective pieces (see the module docstring)."""

    blocks: dict[str, Block] = field(default_factory=dict)
    rows: list[Rows] = field(default_factory=list)
    linear: list[tuple[str, Affine]] = field(default_factory=list)  # 1-row expressions
    squares: list[tuple[str, Affine]] = field(default_factory=list)
    is_elastic: bool = False

    @property
    def n(self) -> int:
        """Number of variables."""
        return sum(b.size for b in self.blocks.values())

    def var(self, name: str, size: int, lo=0.0, hi=INF, lo_labels: list[str | None] | None = None) -> Affine:
        """Declare a block of variables and return it as an expression."""
        if name in self.blocks:
            raise ValueError(f"variable block {name!r} declared twice")
        lo_a = np.broadcast_to(np.asarray(lo, float), (size,)).copy()
        hi_a = np.broadcast_to(np.asarray(hi, float), (size,)).copy()
        self.blocks[name] = Block(name, size, self.n, lo_a, hi_a, lo_labels)
        return Affine(size, {name: sp.identity(size, format="csr")})

    def bound(self, name: str, lo=None, hi=None, where=None, lo_labels: list[str] | None = None) -> None:
        """Tighten the bounds of block ``name`` (on the entries ``where``, a mask; default all);
        ``lo_labels`` makes the lower bounds elastic (see ``elastic``)."""
        b = self.blocks[name]
        mask = np.ones(b.size, bool) if where is None else np.asarray(where, bool)
        if lo is not None:
            b.lo = np.where(mask, np.maximum(b.lo, lo), b.lo)
        if hi is not None:
            b.hi = np.where(mask, np.minimum(b.hi, hi), b.hi)
        if lo_labels is not None:
            b.lo_labels = list(lo_labels)

    def constrain(self, name: str, expr: Affine, lo=-INF, hi=INF, lo_labels: list[str] | None = None,
                  hi_labels: list[str] | None = None) -> None:
        """Add the rows ``lo <= expr <= hi`` (``lo == hi``: equalities)."""
        lo_a = np.broadcast_to(np.asarray(lo, float), (expr.size,)).copy()
        hi_a = np.broadcast_to(np.asarray(hi, float), (expr.size,)).copy()
        for labels in (lo_labels, hi_labels):
            if labels is not None and len(labels) != expr.size:
                raise ValueError(f"{name}: {len(labels)} labels for {expr.size} rows")
        self.rows.append(Rows(name, expr, lo_a, hi_a, lo_labels, hi_labels))

    def minimize(self, name: str, expr: Affine) -> None:
        """Add a linear objective piece (a one-row expression, constant included)."""
        if expr.size != 1:
            raise ValueError(f"{name}: a linear objective piece has one row, not {expr.size}")
        self.linear.append((name, expr))

    def minimize_squares(self, name: str, expr: Affine) -> None:
        """Add ``|| expr ||^2`` to the objective."""
        self.squares.append((name, expr))

    def elastic(self) -> Program:
        """The phase-one program: every elastic row side and bound gets a slack >= 0 and the
        objective is the sum of the slacks (an L1 penalty, so few constraints give)."""
        out = Program(is_elastic=True)
        for b in self.blocks.values():
            lo = b.lo.copy()
            if b.lo_labels is not None:
                soft = np.array([lab is not None for lab in b.lo_labels]) & np.isfinite(b.lo)
                lo[soft] = -INF
            out.blocks[b.name] = Block(b.name, b.size, b.offset, lo, b.hi.copy())
        for b in self.blocks.values():
            if b.lo_labels is not None:
                soft = np.flatnonzero([lab is not None and np.isfinite(b.lo[k]) for k, lab in enumerate(b.lo_labels)])
                if soft.size:
                    x = Affine(b.size, {b.name: sp.identity(b.size, format="csr")}).rows(soft)
                    out.rows.append(Rows(f"{b.name}.lower", x, b.lo[soft], np.full(soft.size, INF),
                                         [b.lo_labels[k] for k in soft], None))
        for r in self.rows:
            out.rows.append(Rows(r.name, r.expr, r.lo, r.hi, r.lo_labels, r.hi_labels))
        relaxed: list[Rows] = []
        for r in out.rows:
            expr = r.expr
            for side, labels, sign in (("lo", r.lo_labels, 1.0), ("hi", r.hi_labels, -1.0)):
                if labels is None:
                    continue
                edge = r.lo if side == "lo" else r.hi
                soft = np.flatnonzero([lab is not None and np.isfinite(edge[k]) for k, lab in enumerate(labels)])
                if not soft.size:
                    continue
                name = f"slack:{r.name}:{side}"
                s = out.var(name, soft.size)
                out.blocks[name].lo_labels = [labels[k] for k in soft]  # the names of the slacks
                place = sp.csr_matrix((np.full(soft.size, sign), (soft, np.arange(soft.size))),
                                      shape=(r.expr.size, soft.size))
                expr = expr + place @ s
                out.minimize(name, s.sum())
            relaxed.append(Rows(r.name, expr, r.lo, r.hi))
        out.rows = relaxed
        return out

    def slacks(self) -> list[tuple[str, str]]:
        """(block name, label) of every slack of an elastic program, in variable order."""
        return [(b.name, lab) for b in self.blocks.values() if b.name.startswith("slack:")
                for lab in (b.lo_labels or [])]
