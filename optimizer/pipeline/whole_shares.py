"""Exact whole-share repair: the program's rows as a MILP with share counts integer (scipy's HiGHS).

When rounding, re-solving with margins and one-share repairs all leave a limit broken, the
question "is there a whole-share trade list that meets the policy?" is a feasibility problem
over integers, and a MILP answers it exactly:

- every trade variable of the program (``buy``, ``sell``, ``lots``; fractions of V) is tied to
  an integer share count: ``x_j = p_j / V * (k_j + f_j * b_j)``, with ``f_j`` the fractional part
  of a holding and ``b_j`` a binary that closes it out (``k_j = floor(holding)`` when ``b_j = 1``),
  as rounding may;
- the band rows are written as the checker reads them, over the value after trading rather
  than over V: ``lo * value_after <= class value <= hi * value_after`` (linear, since costs are);
- buys and untaxed sales count ``lot_size`` units, each trade 0 or at least its minimum
  (semi-integer variables; a sale may always be the whole holding);
- the objective is the L1 distance, in value, from the continuous optimum: the nearest
  whole-share list.

``search`` runs two stages. The first frees only the positions the continuous solution traded
(the rest stay untraded), under the wash-sale decisions and contracts already made. If it has
no solution, the second frees every position and every contract count (integer), decides each
wash group exactly with a binary (bought or loss-sold, never both), reopens what the ticket pass
closed, and leaves out the impact estimate (impact only lowers cash) and the trade-count limits:
a relaxation of the whole-share problem, so "no solution" there proves that no whole-share list
meets the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from cvxrebalance.constraints.bands import banded_rows
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution
from cvxrebalance.optimizer.pipeline.assemble import QP, TriviallyInfeasible, assemble
from cvxrebalance.optimizer.pipeline.problem import ContinuousSolution, declare

TIME_LIMIT = 10.0  # seconds per stage; beyond it nothing is proven
ROW_SCALE = 1e3  # HiGHS's feasibility tolerance (1e-7) on rows x 1e3: 1e-10 of household value
KEEP = ("contracts", "impact_trade")  # margins the first stage keeps (the rounding margins go)


@dataclass
class Found:
    """A stage's answer: ``solution`` (None if none), and ``status``: "found", "infeasible"
    (proven, in the second stage) or HiGHS's word for stopping early."""

    solution: Solution | None
    status: str
    stage: int


def search(data: Prepared, margins: dict[str, np.ndarray], cont: ContinuousSolution | None,
           first_stage: bool = True) -> Found:
    """The nearest whole-share trade list that meets the policy (see the module docstring);
    ``first_stage=False`` goes straight to the exhaustive stage."""
    if first_stage:
        first = _stage(data, {k: v for k, v in margins.items() if k in KEEP}, cont, touched_only=True)
        if first.solution is not None:
            return first
    w, t = data.wash, data.tickets
    saved = set(w.block_buy), set(w.block_loss), t.closed_buy, t.closed_sell
    w.block_buy.clear()  # decided exactly by the second stage's binaries
    w.block_loss.clear()
    t.set(np.zeros_like(t.closed_buy), np.zeros_like(t.closed_sell))  # the ticket pass's choices too
    try:
        return _stage(data, {}, cont, touched_only=False)
    finally:
        w.block_buy |= saved[0]
        w.block_loss |= saved[1]
        t.set(saved[2], saved[3])


def _stage(data: Prepared, margins: dict[str, np.ndarray], cont: ContinuousSolution | None,
           touched_only: bool) -> Found:
    stage = 1 if touched_only else 2
    m = declare(data, margins)
    program = m.program
    program.rows = [r for r in program.rows if r.name not in ("bands", "bands.cash")]
    _exact_bands(m)
    program.linear, program.squares = [], []  # the MILP has its own objective
    try:
        qp = assemble(program)
    except TriviallyInfeasible:
        return Found(None, "infeasible", stage)
    cols = _integer_columns(data, program, qp)
    target = _target(data, program, qp, cont)
    floor_k = cols.hi_k.copy()  # whole units of a holding a close-out sells
    if touched_only:  # untraded positions stay untraded
        still = (np.abs(target[cols.z]) <= 1e-12)
        cols.hi_k[still] = 0.0
        cols.lo_k[still] = 0.0
    n_z, n_k = qp.free.size, cols.z.size
    frac = np.flatnonzero(cols.f > 0)
    n_b = frac.size
    overlay_trades = np.flatnonzero(np.isin(qp.free, _offsets(program, ("fbuy", "fsell"))))
    J = 0 if "contracts" in margins else data.overlay.J  # contract counts are variables here
    groups = _wash_groups(data, program, qp) if not touched_only else []
    n_g = len(groups)
    dist = np.r_[cols.z, overlay_trades]  # L1 distance on trades and overlay trades
    n_d = dist.size
    limits = data.policy.trades.max_trades or data.policy.trades.max_trades_per_account
    counted = np.unique(cols.position[~data.tickets.exempt.ravel()[cols.position]]) if limits else np.zeros(0, int)
    n_y = counted.size  # a binary per position the trade limits count: 1 if it trades
    # Round trips: a binary per position that could be both bought and sold picks the side.
    open_ = cols.hi_k > 0
    AN = data.A * data.N
    sides = [np.bincount(cols.position[(cols.kind == 0) & open_], minlength=AN) > 0,
             np.bincount(cols.position[(cols.kind > 0) & open_], minlength=AN) > 0]
    both = np.flatnonzero(sides[0] & sides[1])
    n_r = both.size
    # Taxable positions with a round lot or a minimum: their lots' sales add up to m whole lots
    # (semi-integer: 0 or at least the minimum) or to the whole holding (binary c).
    taxed = np.unique(cols.position[(cols.kind == 2) & open_])
    sec = taxed % data.N
    taxed = taxed[(data.lot_size[sec] > 1) | ((data.min_trade_value[sec] > 0) & ~data.tickets.exempt.ravel()[taxed])]
    n_m = taxed.size
    n = n_z + n_k + n_b + J + n_g + n_d + n_y + n_r + 2 * n_m
    oy, o_r, om = n_z + n_k + n_b + J + n_g + n_d, n_z + n_k + n_b + J + n_g + n_d + n_y, n - 2 * n_m
    ok, ob, oj, og, od = n_z, n_z + n_k, n_z + n_k + n_b, n_z + n_k + n_b + J, n_z + n_k + n_b + J + n_g

    blocks, lo, hi = [], [], []

    def add(matrix: sp.spmatrix, lo_r: np.ndarray, hi_r: np.ndarray) -> None:
        blocks.append(sp.csr_matrix(matrix) * ROW_SCALE)
        lo.append(np.asarray(lo_r, float) * ROW_SCALE)
        hi.append(np.asarray(hi_r, float) * ROW_SCALE)

    pad = lambda M: sp.hstack([M, sp.csr_matrix((M.shape[0], n - n_z))])  # noqa: E731
    if qp.A.shape[0]:
        add(pad(qp.A), qp.b, qp.b)
    if qp.G.shape[0]:
        add(pad(qp.G), qp.h_l, qp.h_u)
    # Link: x_j - p_j/V * (k_j + f_j b_j) = 0.
    r = np.arange(n_k)
    link = sp.coo_matrix((np.r_[np.ones(n_k), -cols.unit, -cols.unit[frac] * cols.f[frac]],
                          (np.r_[r, r, frac], np.r_[cols.z, ok + r, ob + np.arange(n_b)])), shape=(n_k, n))
    add(link, np.zeros(n_k), np.zeros(n_k))
    if n_b:  # closing out (b = 1) sells every whole share too: k - floor(h) b >= 0, and a sale
        # that may only be the whole holding has k - floor(h) b <= 0 as well
        rb = np.arange(n_b)
        close = sp.coo_matrix((np.r_[np.ones(n_b), -floor_k[frac]], (np.r_[rb, rb], np.r_[ok + frac, ob + rb])),
                              shape=(n_b, n))
        add(close, np.zeros(n_b), np.where(cols.close_only[frac], 0.0, np.inf))
    if J:  # whole contracts: f0 + fbuy - fsell = notional / V * n
        fb, fs = (_offsets(program, (name,)) for name in ("fbuy", "fsell"))
        where = {int(c): k for k, c in enumerate(qp.free)}
        rows_, cols_, vals = [], [], []
        for j in range(J):
            for col, sign in ((fb[j], 1.0), (fs[j], -1.0)):
                if int(col) in where:
                    rows_.append(j), cols_.append(where[int(col)]), vals.append(sign)
            rows_.append(j), cols_.append(oj + j), vals.append(-data.overlay.notional[j] / data.V)
        fixed = qp.fixed_x[fb] - qp.fixed_x[fs] + data.overlay.f0
        add(sp.coo_matrix((vals, (rows_, cols_)), shape=(J, n)), -fixed, -fixed)
    for g, (buys, losses) in enumerate(groups):  # buys <= U (1 - z), loss sales <= U z
        u_b, u_l = qp.x_u[buys].sum(), qp.x_u[losses].sum()
        row = sp.coo_matrix((np.r_[np.ones(buys.size), u_b], (np.zeros(buys.size + 1, int), np.r_[buys, og + g])),
                            shape=(1, n))
        add(row, [-np.inf], [u_b])
        row = sp.coo_matrix((np.r_[np.ones(losses.size), -u_l], (np.zeros(losses.size + 1, int),
                                                                  np.r_[losses, og + g])), shape=(1, n))
        add(row, [-np.inf], [0.0])
    # d >= |x - target| on the trade columns.
    rd = np.arange(n_d)
    for sign in (1.0, -1.0):
        row = sp.coo_matrix((np.r_[np.ones(n_d), -sign * np.ones(n_d)], (np.r_[rd, rd], np.r_[od + rd, dist])),
                            shape=(n_d, n))
        add(row, -sign * target[dist], np.full(n_d, np.inf))

    if n_y:  # k <= hi * y on every counted column; sum y <= the limits
        slot = np.full(data.A * data.N, -1)
        slot[counted] = np.arange(n_y)
        on = np.flatnonzero(slot[cols.position] >= 0)
        r = np.arange(on.size)
        add(sp.coo_matrix((np.r_[np.ones(on.size), -cols.hi_k[on]],
                           (np.r_[r, r], np.r_[ok + on, oy + slot[cols.position[on]]])), shape=(on.size, n)),
            np.full(on.size, -np.inf), np.zeros(on.size))
        t = data.policy.trades
        groups = ([(counted // data.N == a, t.max_trades_per_account) for a in range(data.A)]
                  if t.max_trades_per_account else []) + ([(np.ones(n_y, bool), t.max_trades)] if t.max_trades else [])
        for members, limit in groups:
            idx = oy + np.flatnonzero(members)
            add(sp.coo_matrix((np.ones(idx.size), (np.zeros(idx.size, int), idx)), shape=(1, n)), [-np.inf], [limit])
    if n_r:  # buy <= hi r; sale <= hi (1 - r)
        slot = np.full(AN, -1)
        slot[both] = np.arange(n_r)
        on = np.flatnonzero(slot[cols.position] >= 0)
        buy = cols.kind[on] == 0
        r = np.arange(on.size)
        add(sp.coo_matrix((np.r_[np.ones(on.size), np.where(buy, -1.0, 1.0) * cols.hi_k[on]],
                           (np.r_[r, r], np.r_[ok + on, o_r + slot[cols.position[on]]])), shape=(on.size, n)),
            np.full(on.size, -np.inf), np.where(buy, 0.0, cols.hi_k[on]))
    m_lo = m_hi = np.zeros(0)
    if n_m:  # sum of lot sales = lot m + part c, and c = 1 only with m at its most
        lot = data.lot_size[taxed % data.N]
        held = data.q0.ravel()[taxed]
        m_hi = np.floor(held / lot + 1e-9)
        part = held - m_hi * lot
        fixed = _shares(data, program, qp, qp.fixed_x)
        lot_cols = program.blocks["lots"].offset + np.arange(data.L)
        fixed_sold = np.bincount(data.lot_position, weights=fixed[lot_cols], minlength=AN)[taxed]
        slot = np.full(AN, -1)
        slot[taxed] = np.arange(n_m)
        on = np.flatnonzero((slot[cols.position] >= 0) & (cols.kind == 2))
        rows_ = slot[cols.position[on]]
        on_b = np.flatnonzero(np.isin(frac, on))  # lots' own close-out binaries add shares too
        rm = np.arange(n_m)
        add(sp.coo_matrix((np.r_[np.ones(on.size), cols.f[frac[on_b]], -lot, -part],
                           (np.r_[rows_, slot[cols.position[frac[on_b]]], rm, rm],
                            np.r_[ok + on, ob + on_b, om + rm, om + n_m + rm])), shape=(n_m, n)),
            -fixed_sold, -fixed_sold)
        price = data.price[taxed % data.N] * lot
        need = np.where(data.tickets.exempt.ravel()[taxed], 0.0, np.ceil(data.min_trade_value[taxed % data.N] / price - 1e-9))
        m_lo = np.minimum(need, m_hi)
        all_or_none = (need > m_hi) & (part > 0)  # below the minimum unless the whole holding
        add(sp.coo_matrix((np.r_[np.ones(n_m), -m_hi], (np.r_[rm, rm], np.r_[om + rm, om + n_m + rm])), shape=(n_m, n)),
            np.zeros(n_m), np.where(all_or_none, 0.0, np.inf))
    semi = cols.lo_k > 0  # a trade of 0 or of at least lo_k units (scipy: semi-integer)
    lb = np.r_[qp.x_l, cols.lo_k, np.zeros(n_b), np.full(J, -np.inf), np.zeros(n_g + n_d + n_y + n_r), m_lo,
               np.zeros(n_m)]
    ub = np.r_[qp.x_u, cols.hi_k, np.where(cols.hi_k[frac] > 0, 1.0, 0.0) if touched_only else np.ones(n_b),
               np.full(J, np.inf), np.ones(n_g), np.full(n_d, np.inf), np.ones(n_y + n_r), m_hi, np.ones(n_m)]
    integrality = np.r_[np.zeros(n_z), np.where(semi, 3, 1), np.ones(n_b + J + n_g), np.zeros(n_d),
                        np.ones(n_y + n_r), np.where(m_lo > 0, 3, 1), np.ones(n_m)]
    c = np.r_[np.zeros(n_z + n_k + n_b + J + n_g), np.ones(n_d), np.zeros(n_y + n_r + 2 * n_m)]
    res = milp(c, constraints=LinearConstraint(sp.vstack(blocks).tocsr(), np.concatenate(lo), np.concatenate(hi)),
               integrality=integrality, bounds=Bounds(lb, ub),
               options={"time_limit": TIME_LIMIT, "mip_rel_gap": 1e-4})
    if res.x is None:
        return Found(None, "infeasible" if res.status == 2 else res.message, stage)
    x = qp.full(res.x[:n_z])
    shares = np.round(res.x[ok:ob])
    shares[frac] += cols.f[frac] * np.round(res.x[ob:oj])
    shares *= cols.size
    held = _shares(data, program, qp, x)
    held[qp.free[cols.z]] = shares
    contracts_q = np.round(res.x[oj:og]) if J else margins.get("contracts")
    return Found(_solution(data, program, held, contracts_q), "found", stage)


@dataclass
class _Columns:
    z: np.ndarray  # trade columns among the free variables
    unit: np.ndarray  # p / V of each
    f: np.ndarray  # fractional part of the holding a sell may close out, in units (0: none)
    hi_k: np.ndarray  # most whole units
    lo_k: np.ndarray  # fewest units of a trade (0: any; else 0 or at least this: semi-integer)
    size: np.ndarray  # shares per unit
    position: np.ndarray  # flat position a * N + i of each
    kind: np.ndarray  # 0 buy, 1 untaxed sale, 2 taxable lot sale
    close_only: np.ndarray  # a sale whose minimum exceeds the holding's whole units: all or none


def _offsets(program, names: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([program.blocks[b].offset + np.arange(program.blocks[b].size)
                           for b in names if b in program.blocks] or [np.zeros(0, int)])


def _per_column(data: Prepared, program) -> tuple[np.ndarray, ...]:
    """Over the program's trade variables (buy, sell, lots in that order): their offsets, the
    price of a unit, the most units (inf for buys), the shares in a unit, the fewest units of
    a trade (0: any) and whether a sale may only be the whole holding (its minimum is more than
    the holding's whole units). Buys and untaxed sales trade in ``lot_size`` units of at least the minimum
    trade (a sale at most down to the whole holding, which is always allowed); a taxable lot's
    sale is in shares and its position's round lot and minimum are left to the checker (a
    relaxation)."""
    A, N = data.A, data.N
    cols = _offsets(program, ("buy", "sell", "lots"))
    lot = np.tile(data.lot_size, A)
    size = np.r_[lot, lot, np.ones(data.L)]
    price = np.r_[np.tile(data.price, A), np.tile(data.price, A), data.price[data.lot_security]] * size
    most = np.r_[np.full(A * N, np.inf), data.q0.ravel() / lot, data.lot_q]
    fewest = np.ceil(np.tile(data.min_trade_value, A) / price[:A * N] - 1e-9)
    exempt = data.tickets.exempt.ravel()
    fewest = np.where(exempt, 0.0, fewest)
    # A sale below the minimum is allowed only as the whole holding: its fewest units are then
    # those whole units (and the pipeline adds that the fraction goes too: ``close_only``).
    whole_units = np.floor(most[A * N:2 * A * N] + 1e-9)
    close_only = np.r_[np.zeros(A * N, bool), fewest > whole_units, np.zeros(data.L, bool)]
    fewest = np.r_[fewest, np.minimum(fewest, whole_units), np.zeros(data.L)]
    return cols, price, most, size, fewest, close_only


def _integer_columns(data: Prepared, program, qp: QP) -> _Columns:
    cols, price, most, size, fewest, close_only = _per_column(data, program)
    where = np.full(program.n, -1)
    where[qp.free] = np.arange(qp.free.size)
    free = where[cols] >= 0
    z = where[cols[free]]
    unit = price[free] / data.V
    most = most[free]
    whole = np.floor(np.minimum(most, qp.x_u[z] / unit) + 1e-9)
    part = np.where(np.isfinite(most), most, 0.0)
    part = part - np.floor(part + 1e-9)
    f = np.where((part > 1e-9) & (qp.x_u[z] / unit >= most - 1e-9), part, 0.0)
    AN = data.A * data.N
    position = np.r_[np.arange(AN), np.arange(AN), data.lot_position][free]
    kind = np.r_[np.zeros(AN, int), np.ones(AN, int), np.full(data.L, 2)][free]
    return _Columns(z, unit, f, whole, np.minimum(fewest[free], whole), size[free], position, kind,
                    close_only[free])


def _target(data: Prepared, program, qp: QP, cont: ContinuousSolution | None) -> np.ndarray:
    """The continuous optimum over the free variables (zero where unknown)."""
    x = np.zeros(program.n)
    if cont is not None:
        A, N = data.A, data.N
        taxable = np.zeros((A, N), bool)
        taxable[data.taxable] = True
        parts = {"buy": cont.buy.ravel(), "sell": np.where(taxable, 0.0, cont.sell).ravel(), "lots": cont.lot_sell}
        if data.overlay.J:
            delta = cont.f - data.overlay.f0
            parts |= {"fbuy": np.maximum(delta, 0.0), "fsell": np.maximum(-delta, 0.0)}
        for name, value in parts.items():
            b = program.blocks[name]
            x[b.offset:b.offset + b.size] = value
    return x[qp.free]


def _wash_groups(data: Prepared, program, qp: QP) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per wash group that could be both bought and loss-sold: its buy columns and its loss-lot
    columns among the free variables."""
    where = np.full(program.n, -1)
    where[qp.free] = np.arange(qp.free.size)
    buy = program.blocks["buy"].offset + np.arange(data.A * data.N)
    lots = program.blocks["lots"].offset + np.arange(data.L)
    buy_group = np.tile(data.wash.group, data.A)
    out = []
    for g in range(len(data.wash.names)):
        b = where[buy[buy_group == g]]
        loss = where[lots[(data.wash.group[data.lot_security] == g) & (data.lot_gain < 0)]]
        b, loss = b[b >= 0], loss[loss >= 0]
        if b.size and loss.size:
            out.append((b, loss))
    return out


def _exact_bands(m) -> None:
    """Band rows over the value after trading: lo * value <= class value <= hi * value, with
    value = held + net trades + cash after (all in fractions of V), as the checker reads them."""
    d, p = m.data, m.program
    lo, hi, rows = banded_rows(m, {})  # the policy's own edges, no rounding margins
    value = m.net.sum() + m.cash.sum() + float(d.h0.sum())
    weights = [m.class_weight.rows(np.array([k])) if k < d.C else m.cash_weight for k in rows]
    for k, w in zip(rows, weights, strict=True):
        p.constrain("bands.exact", w - value * lo[k], lo=0.0)
        p.constrain("bands.exact", w - value * hi[k], hi=0.0)


def _shares(data: Prepared, program, qp: QP, x: np.ndarray) -> np.ndarray:
    """Share counts of every trade variable of ``x`` (a holding closed out stays exact)."""
    cols, price, most, size, _, _ = _per_column(data, program)
    out = np.zeros(program.n)
    q = x[cols] * data.V / price
    out[cols] = np.where(np.abs(q - most) < 1e-6, most, np.round(q)) * size
    return out


def _solution(data: Prepared, program, held: np.ndarray, contracts) -> Solution:
    A, N = data.A, data.N
    part = {b: held[program.blocks[b].offset:program.blocks[b].offset + program.blocks[b].size]
            for b in ("buy", "sell", "lots")}
    lots = part["lots"].copy()
    sell = part["sell"].reshape(A, N).copy()
    sell[data.taxable] = data.lots_by_position(lots)[data.taxable]
    return Solution(data, part["buy"].reshape(A, N).copy(), sell, lots, contracts)

