"""Compile a declared Program into the minimal sparse QP and solve it with PIQP directly.

The minimal form (what PIQP sees):

    minimize    1/2 z' P z + c' z            (z: the free variables only)
    subject to  A z = b,   h_l <= G z <= h_u,   x_l <= z <= x_u

- a variable whose bounds meet (lo == hi: a forbidden trade, a fixed contract) is not a variable:
  its value moves into the rows' constants;
- bounds are PIQP's native variable bounds, never rows;
- a row left without coefficients is checked against its constant and dropped;
- ``|| M x + e ||^2`` adds ``2 M'M`` to P and ``2 M'e`` to c (exact; modules keep M sparse by
  declaring auxiliary variables where M'M would be dense, as the factor risk term does);
- the objective is divided by ``scale`` so the solver sees O(1) numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cvxrebalance.optimizer.domain.program import Affine, Program

FEAS_TOL = 1e-9  # a row without variables must hold its constant to this


class TriviallyInfeasible(Exception):
    """A row with no free variable left whose constant breaks its bounds."""

    def __init__(self, row: str) -> None:
        super().__init__(row)
        self.row = row


@dataclass
class QP:
    """The minimal QP of a program, and the map back to the program's variables."""

    P: sp.csc_matrix
    c: np.ndarray
    const: float
    A: sp.csc_matrix
    b: np.ndarray
    G: sp.csc_matrix
    h_l: np.ndarray
    h_u: np.ndarray
    x_l: np.ndarray
    x_u: np.ndarray
    free: np.ndarray  # (n_free,) index into the program's variables
    fixed_x: np.ndarray  # (n,) values of the fixed variables (free ones: 0)
    scale: float
    # Where each program row went, so a re-solve can move row bounds without re-assembling:
    # the constant moved into it, its family's slice of rows, and its index in A (eq) or G (ineq).
    row_const: np.ndarray | None = None
    families: dict[str, slice] | None = None
    in_A: np.ndarray | None = None  # (m,) index into A's rows, -1 if not an equality
    in_G: np.ndarray | None = None  # (m,) index into G's rows, -1 if not an inequality

    def set_rows(self, family: str, lo: np.ndarray, hi: np.ndarray) -> bool:
        """Give the rows of ``family`` new bounds ``lo <= row <= hi``, in place; False (and no
        change) if that would change which rows are equalities or inequalities."""
        rows = np.arange(self.row_const.size)[self.families[family]]
        lo = np.broadcast_to(lo, rows.shape) - self.row_const[rows]
        hi = np.broadcast_to(hi, rows.shape) - self.row_const[rows]
        eq, ineq = self.in_A[rows], self.in_G[rows]
        if (((eq >= 0) != (lo == hi)) | ((eq < 0) & (ineq < 0))).any():
            return False
        self.b[eq[eq >= 0]] = hi[eq >= 0]
        self.h_l[ineq[ineq >= 0]] = lo[ineq >= 0]
        self.h_u[ineq[ineq >= 0]] = hi[ineq >= 0]
        return True

    def full(self, z: np.ndarray) -> np.ndarray:
        """The program's variable vector from the free variables' values."""
        x = self.fixed_x.copy()
        x[self.free] = z
        return x

    def objective(self, z: np.ndarray) -> float:
        """The program's objective (unscaled, constants included) at ``z``; ``P`` holds the upper
        triangle, so z'Pz counts the diagonal once and each off-diagonal pair once."""
        Pz = self.P @ z + self.P.T @ z - self.P.diagonal() * z
        return float((0.5 * z @ Pz + self.c @ z) * self.scale + self.const)


def _coo(program: Program, expr: Affine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns in the program's variable order, values) of an expression's terms."""
    rows, cols, vals = [], [], []
    for name, (r, c, v) in expr.terms.items():
        rows.append(r)
        cols.append(c + program.blocks[name].offset)
        vals.append(v)
    if not rows:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _stack(program: Program, exprs: list[Affine]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One COO triplet for several expressions stacked row-wise, and their constants."""
    parts, offset = [], 0
    for e in exprs:
        r, c, v = _coo(program, e)
        parts.append((r + offset, c, v))
        offset += e.size
    if not parts:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0)
    r, c, v = (np.concatenate(x) for x in zip(*parts, strict=True))
    const = np.concatenate([e.const for e in exprs])
    keep = v != 0
    return r[keep], c[keep], v[keep], const


def _csc(r: np.ndarray, c: np.ndarray, v: np.ndarray, shape: tuple[int, int]) -> sp.csc_matrix:
    """Canonical CSC (sorted, duplicates summed, exact zeros dropped) from COO triplets, in one
    sort: what PIQP reads, without scipy's COO -> CSR -> CSC conversions."""
    m, n = shape
    key = c.astype(np.int64) * m + r
    order = np.argsort(key, kind="stable")
    key, v = key[order], v[order]
    first = np.r_[True, key[1:] != key[:-1]] if key.size else np.zeros(0, bool)
    data = np.bincount(np.cumsum(first) - 1, weights=v) if key.size else np.zeros(0)
    key = key[first]
    keep = data != 0  # repeated entries that cancel
    data, key = data[keep], key[keep]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(key // m, minlength=n), out=indptr[1:])
    return sp.csc_matrix((data, (key % m).astype(np.int32), indptr.astype(np.int32)), shape=shape)


def assemble(program: Program, scale: float = 1.0) -> QP:
    """The minimal QP of ``program`` (see the module docstring).

    Raises
    ------
    TriviallyInfeasible
        A row whose variables are all fixed breaks its bounds (an infeasible policy).
    """
    n = program.n
    lo = np.concatenate([b.lo for b in program.blocks.values()]) if n else np.zeros(0)
    hi = np.concatenate([b.hi for b in program.blocks.values()]) if n else np.zeros(0)
    fixed = lo >= hi
    fixed_x = np.where(fixed, np.where(np.isfinite(lo), lo, 0.0), 0.0)
    free = np.flatnonzero(~fixed)
    new_col = np.full(n, -1)
    new_col[free] = np.arange(free.size)
    nf = free.size

    # Rows: move the fixed variables into the constants, split equalities from inequalities.
    r, c, v, const = _stack(program, [rows.expr for rows in program.rows])
    lo_r = np.concatenate([rows.lo for rows in program.rows]) if program.rows else np.zeros(0)
    hi_r = np.concatenate([rows.hi for rows in program.rows]) if program.rows else np.zeros(0)
    m = const.size
    on_fixed = fixed[c]
    const = const + np.bincount(r[on_fixed], weights=v[on_fixed] * fixed_x[c[on_fixed]], minlength=m)
    r, c, v = r[~on_fixed], new_col[c[~on_fixed]], v[~on_fixed]
    M = _csc(r, c, v, (m, nf))
    lo_r, hi_r = lo_r - const, hi_r - const
    empty = np.bincount(M.indices, minlength=m) == 0
    bad = empty & ((lo_r > FEAS_TOL * (1 + np.abs(const))) | (hi_r < -FEAS_TOL * (1 + np.abs(const))))
    if bad.any():
        names = np.repeat([rows.name for rows in program.rows], [rows.expr.size for rows in program.rows])
        raise TriviallyInfeasible(str(names[np.flatnonzero(bad)[0]]))
    eq = ~empty & (lo_r == hi_r)
    ineq = ~empty & ~eq & (np.isfinite(lo_r) | np.isfinite(hi_r))
    A, b = _rows_of(r, c, v, eq, nf), hi_r[eq]
    G, h_l, h_u = _rows_of(r, c, v, ineq, nf), lo_r[ineq], hi_r[ineq]
    starts = np.cumsum([0] + [rows.expr.size for rows in program.rows])
    families = {rows.name: slice(a, b_) for rows, a, b_ in zip(program.rows, starts[:-1], starts[1:], strict=True)}
    in_A = np.where(eq, np.cumsum(eq) - 1, -1)
    in_G = np.where(ineq, np.cumsum(ineq) - 1, -1)

    # Objective: linear pieces, then sums of squares as 2 M'M and 2 M'e.
    q = np.zeros(n)
    total = 0.0
    for _, e in program.linear:
        rr, cc, vv = _coo(program, e)
        np.add.at(q, cc, vv)
        total += float(e.const[0])
    P = sp.csc_matrix((nf, nf))
    q_free = np.zeros(nf)
    if program.squares:
        r2, c2, v2, e2 = _stack(program, [e for _, e in program.squares])
        on_fixed = fixed[c2]
        e2 = e2 + np.bincount(r2[on_fixed], weights=v2[on_fixed] * fixed_x[c2[on_fixed]], minlength=e2.size)
        total += float(e2 @ e2)
        if (~on_fixed).any():
            M = _csc(r2[~on_fixed], new_col[c2[~on_fixed]], v2[~on_fixed], (e2.size, nf))
            P = (M.T @ M).tocoo()
            q_free = 2.0 * (M.T @ e2)
    total += float(q @ fixed_x)
    c_free = q[free] + q_free
    # Quadratic terms on fixed variables were folded into e2 above, so only linear parts remain.
    # PIQP reads the upper triangle of P, in canonical (sorted, summed) CSC form; so do A and G.
    P = sp.coo_matrix(P)
    upper = P.row <= P.col
    P = _csc(P.row[upper], P.col[upper], P.data[upper] * (2.0 / scale), (nf, nf))
    return QP(P=P, c=c_free / scale, const=total, A=A, b=b, G=G, h_l=h_l, h_u=h_u,
              x_l=lo[free], x_u=hi[free], free=free, fixed_x=fixed_x, scale=scale,
              row_const=const, families=families, in_A=in_A, in_G=in_G)


def _rows_of(r: np.ndarray, c: np.ndarray, v: np.ndarray, keep: np.ndarray, ncols: int) -> sp.csc_matrix:
    """The rows ``keep`` (a mask over rows) of the COO triplets, renumbered, as canonical CSC."""
    new_row = np.cumsum(keep) - 1
    on = keep[r]
    return _csc(new_row[r[on]], c[on], v[on], (int(keep.sum()), ncols))


@dataclass
class Outcome:
    """A solver's answer on a QP: status ("optimal", "infeasible" or another word), the free
    variables' values and the objective, with the solve's wall time."""

    status: str
    z: np.ndarray | None
    objective: float
    seconds: float
    iterations: int = 0


class Piqp:
    """A PIQP workspace for one QP structure: the first ``solve`` sets it up; later ones solve
    again after the QP's row or variable bounds changed in place (``QP.set_rows``, ``x_u``),
    reusing PIQP's symbolic factorization and memory (PIQP's update: setup, update, solve)."""

    def __init__(self, qp: QP, settings: dict) -> None:
        import piqp

        self.qp = qp
        self.solver = piqp.SparseSolver()
        for key, value in settings.items():
            setattr(self.solver.settings, key, value)
        self._ready = False

    def solve(self) -> Outcome:
        t0 = time.perf_counter()
        qp, has_A, has_G = self.qp, self.qp.A.shape[0] > 0, self.qp.G.shape[0] > 0
        if not self._ready:
            self.solver.setup(qp.P, qp.c, qp.A if has_A else None, qp.b if has_A else None,
                              qp.G if has_G else None, qp.h_l if has_G else None,
                              qp.h_u if has_G else None, qp.x_l, qp.x_u)
            self._ready = True
        else:
            self.solver.update(b=qp.b if has_A else None, h_l=qp.h_l if has_G else None,
                               h_u=qp.h_u if has_G else None, x_l=qp.x_l, x_u=qp.x_u)
        return self._outcome(self.solver.solve(), time.perf_counter() - t0)

    def duals(self) -> np.ndarray:
        """The last solve's multipliers of the equality rows ``A z = b``."""
        return np.asarray(self.solver.result.y, float).copy()

    def _outcome(self, status, seconds: float) -> Outcome:
        import piqp

        info = self.solver.result.info
        if status == piqp.PIQP_SOLVED:
            z = np.asarray(self.solver.result.x, float).copy()
            return Outcome("optimal", z, self.qp.objective(z), seconds, int(info.iter))
        word = {piqp.PIQP_PRIMAL_INFEASIBLE: "infeasible", piqp.PIQP_DUAL_INFEASIBLE: "unbounded",
                piqp.PIQP_MAX_ITER_REACHED: "iteration limit", piqp.PIQP_NUMERICS: "numerical trouble"}
        return Outcome(word.get(status, str(status)), None, float("nan"), seconds, int(info.iter))


def solve_piqp(qp: QP, settings: dict) -> Outcome:
    """Setup and solve with PIQP's sparse interface."""
    return Piqp(qp, settings).solve()
