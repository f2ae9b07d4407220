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

import dataclasses
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


class Affine:
    """``sum_b M_b x_b + const``: an expression with ``size`` rows over named blocks.

    Each ``M_b`` is kept as COO triplets (rows, columns, values; repeated entries add up), so
    building an expression costs a few numpy operations. Supports ``+``, ``-``, unary ``-``,
    ``matrix @ expr`` (sparse or dense matrix, or a vector for a one-row result),
    ``expr * vector`` (row scaling), ``sum()``, ``rows(index)`` and ``group(to, n)``.
    """

    __array_ufunc__ = None  # numpy defers ``ndarray @ Affine`` and ``ndarray + Affine`` to us
    __array_priority__ = 100

    def __init__(self, size: int, terms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
                 const: np.ndarray | float = 0.0) -> None:
        self.size = size
        self.terms = terms or {}
        self.const = np.broadcast_to(np.asarray(const, float), (size,)).copy()

    @classmethod
    def identity(cls, name: str, size: int) -> Affine:
        i = np.arange(size)
        return cls(size, {name: (i, i, np.ones(size))})

    def matrix(self, name: str, ncols: int) -> sp.csr_matrix:
        """The coefficient matrix of block ``name`` (``size`` x ``ncols``)."""
        r, c, v = self.terms[name]
        return sp.csr_matrix((v, (r, c)), shape=(self.size, ncols))

    def _map(self, fn) -> dict:
        return {n: fn(*t) for n, t in self.terms.items()}

    def _combine(self, other, sign: float) -> Affine:
        if not isinstance(other, Affine):
            return Affine(self.size, dict(self.terms), self.const + sign * np.asarray(other, float))
        if other.size != self.size:
            raise ValueError(f"adding expressions of {self.size} and {other.size} rows")
        terms = dict(self.terms)
        for name, (r, c, v) in other.terms.items():
            if name in terms:
                r0, c0, v0 = terms[name]
                terms[name] = (np.concatenate([r0, r]), np.concatenate([c0, c]), np.concatenate([v0, sign * v]))
            else:
                terms[name] = (r, c, sign * v)
        return Affine(self.size, terms, self.const + sign * other.const)

    def __add__(self, other) -> Affine:
        return self._combine(other, 1.0)

    __radd__ = __add__

    def __sub__(self, other) -> Affine:
        return self._combine(other, -1.0)

    def __rsub__(self, other) -> Affine:
        return (-self)._combine(other, 1.0)

    def __neg__(self) -> Affine:
        return Affine(self.size, self._map(lambda r, c, v: (r, c, -v)), -self.const)

    def __mul__(self, scale) -> Affine:
        """Row-wise scaling by a vector (or a scalar)."""
        s = np.broadcast_to(np.asarray(scale, float), (self.size,))
        return Affine(self.size, self._map(lambda r, c, v: (r, c, v * s[r])), self.const * s)

    __rmul__ = __mul__

    def group(self, to: np.ndarray, n: int) -> Affine:
        """Add row ``k`` into row ``to[k]`` of an ``n``-row result (a sum by group)."""
        to = np.asarray(to)
        return Affine(n, self._map(lambda r, c, v: (to[r], c, v)), np.bincount(to, self.const, minlength=n))

    def sum(self) -> Affine:
        return self.group(np.zeros(self.size, int), 1)

    def rows(self, index) -> Affine:
        """The rows ``index`` (an integer array or a boolean mask), in that order."""
        idx = np.arange(self.size)[index]
        new = np.full(self.size, -1)
        new[idx] = np.arange(idx.size)

        def pick(r, c, v):
            keep = new[r] >= 0
            return new[r[keep]], c[keep], v[keep]

        return Affine(idx.size, self._map(pick), self.const[idx])

    def __rmatmul__(self, matrix) -> Affine:
        if isinstance(matrix, np.ndarray) and matrix.ndim == 1:  # a vector: one row
            if matrix.size != self.size:
                raise ValueError(f"vector of {matrix.size} @ expression of {self.size} rows")
            w = np.asarray(matrix, float)
            return Affine(1, self._map(lambda r, c, v: (np.zeros(r.size, int), c, v * w[r])),
                          np.array([w @ self.const]))
        m = sp.csc_matrix(matrix, dtype=float)
        if m.shape[1] != self.size:
            raise ValueError(f"({m.shape[0]}, {m.shape[1]}) @ expression of {self.size} rows")

        def product(r, c, v):
            # entry (r, c, v) times column r of m: (i, c, m[i, r] * v) for every stored m[i, r]
            start, count = m.indptr[r], np.diff(m.indptr)[r]
            which = np.repeat(np.arange(r.size), count)
            at = np.repeat(start - np.cumsum(count) + count, count) + np.arange(which.size)
            return m.indices[at], c[which], m.data[at] * v[which]

        return Affine(m.shape[0], self._map(product), m @ self.const)


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
        return Affine.identity(name, size)

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

    def with_rows(self, name: str, lo: np.ndarray, hi: np.ndarray) -> Program:
        """The same program with new bounds on the rows ``name`` (blocks and objective shared,
        not copied): a re-solve that moves only those bounds skips declaring again."""
        rows = [dataclasses.replace(r, lo=np.broadcast_to(lo, r.lo.shape).astype(float),
                                    hi=np.broadcast_to(hi, r.hi.shape).astype(float))
                if r.name == name else r for r in self.rows]
        return dataclasses.replace(self, rows=rows)

    def elastic(self, hard: frozenset[str] = frozenset()) -> Program:
        """The phase-one program: every elastic row side and bound gets a slack >= 0 and the
        objective is the sum of the slacks (an L1 penalty, so few constraints give). Those
        labelled in ``hard`` are held as they are."""
        out = Program(is_elastic=True)
        for b in self.blocks.values():
            lo = b.lo.copy()
            if b.lo_labels is not None:
                soft = np.array([lab is not None and lab not in hard for lab in b.lo_labels]) & np.isfinite(b.lo)
                lo[soft] = -INF
            out.blocks[b.name] = Block(b.name, b.size, b.offset, lo, b.hi.copy())
        for b in self.blocks.values():
            if b.lo_labels is not None:
                soft = np.flatnonzero([lab is not None and lab not in hard and np.isfinite(b.lo[k])
                                       for k, lab in enumerate(b.lo_labels)])
                if soft.size:
                    x = Affine.identity(b.name, b.size).rows(soft)
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
                soft = np.flatnonzero([lab is not None and lab not in hard and np.isfinite(edge[k])
                                       for k, lab in enumerate(labels)])
                if not soft.size:
                    continue
                name = f"slack:{r.name}:{side}"
                s = out.var(name, soft.size)
                out.blocks[name].lo_labels = [labels[k] for k in soft]  # the names of the slacks
                placed = Affine(r.expr.size, {name: (soft, np.arange(soft.size), np.full(soft.size, sign))})
                expr = expr + placed
                out.minimize(name, s.sum())
            relaxed.append(Rows(r.name, expr, r.lo, r.hi))
        out.rows = relaxed
        return out
