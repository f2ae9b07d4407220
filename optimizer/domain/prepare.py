"""Numeric view of a household under a policy: every array a fraction of household value.

Units (docs/units): ``V`` is household value after cash flows; holdings, cash, trades, costs and
taxes inside the optimizer are fractions of ``V``. Results convert back to shares and currency.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain import targets as target_rules
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.household import CASH, Household
from cvxrebalance.optimizer.domain.overlay_data import OverlayData, prepare_overlay
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.wash import WashState, wash_state


@dataclass(frozen=True)
class Lot:
    """One tax lot of a taxable account and its place in the lot-slot array."""

    t: int  # index among taxable accounts
    account: int  # index among all accounts
    security: int
    slot: int
    lot_id: str
    quantity: float
    cost_basis: float
    acquired: dt.date
    term: str  # "short" | "long"


@dataclass
class Prepared:
    """Arrays for one household and policy (shapes: A accounts, N securities, C classes)."""

    household: Household
    policy: Policy
    account_ids: list[str]
    account_types: list[str]
    security_ids: list[str]
    classes: list[str]  # non-cash asset classes
    price: np.ndarray  # (N,) currency per share
    V0: float  # value before flows
    V: float  # value after flows: the unit of everything below
    q0: np.ndarray  # (A, N) shares held
    h0: np.ndarray  # (A, N) value held / V
    cash_cur: np.ndarray  # (A,) cash before flows, currency
    flow_cur: np.ndarray  # (A,) cash flows, currency
    cash0: np.ndarray  # (A,) (cash + flow) / V
    min_cash: np.ndarray  # (A,) / V
    liquid: np.ndarray  # (N,) bool
    taxable: list[int]  # account indices of taxable accounts
    K: int  # lot slots per (taxable account, security)
    lots: list[Lot]
    lot_q: np.ndarray  # (T, N, K) shares
    lot_gain: np.ndarray  # (T, N, K) gain per share sold, currency
    lot_rate: np.ndarray  # (T, N, K) tax rate by term
    lot_short: np.ndarray  # (T, N, K) short-term slot (False for empty slots)
    ytd_short: float  # year-to-date realized gains of the taxable accounts, currency
    ytd_long: float
    X: np.ndarray  # (N, C) security -> class membership
    target: np.ndarray  # (C,) effective class targets (strategic + live tilt)
    strategic: np.ndarray  # (C,)
    tilt: np.ndarray  # (C,)
    lower: np.ndarray  # (C,) band edges
    upper: np.ndarray  # (C,)
    cash_target: float
    cash_lower: float
    cash_upper: float
    ref: np.ndarray  # (C,) class weights the tracking term pulls toward
    cash_ref: float
    bench: np.ndarray  # (N,) security-level benchmark the tracking term uses
    bench_target: np.ndarray  # (N,) the same for the targets (reported tracking error)
    risk_M: np.ndarray  # (N, r): S_sec = M M' + diag(d^2)
    risk_m_cash: np.ndarray  # (r,)
    risk_d: np.ndarray  # (N,)
    risk_M_f: np.ndarray  # (J, r) contracts' factor rows (per unit notional)
    risk_d_f: np.ndarray  # (J,) contracts' specific (basis) risk
    risk_hedge: np.ndarray  # (r,) benchmark shift for hedged currencies
    overlay: OverlayData
    wash: WashState
    targets_detail: target_rules.Targets
    notes: list[str] = field(default_factory=list)
    _columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def A(self) -> int:
        return len(self.account_ids)

    @property
    def N(self) -> int:
        return len(self.security_ids)

    @property
    def C(self) -> int:
        return len(self.classes)

    @property
    def securities(self) -> pd.DataFrame:
        return self.household.securities

    def column(self, name: str) -> np.ndarray:
        """A securities.csv column as an array in security order (read once, then cached)."""
        if name not in self._columns:
            self._columns[name] = self.household.securities[name].to_numpy()
        return self._columns[name]

    @property
    def linear_cost(self) -> np.ndarray:
        """(N,) half spread + commission: the linear cost per unit of value traded."""
        return self.column("half_spread") + self.column("commission")

    def shape_key(self) -> tuple:
        """What decides the compiled problem's structure (see cvxrebalance.optimizer.pipeline.problem)."""
        return (self.A, self.N, self.C, self.K, self.risk_M.shape[1], tuple(self.taxable),
                self.overlay.J)


def bucket(n: int) -> int:
    """Round a size up to 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (a power of two or 1.5 times one), so
    households of similar shape share one compiled problem; padded lot slots have zero capacity,
    so there is no numerical difference, and at most a third of the slots are padding."""
    k = 1
    while True:
        for size in (k, k + k // 2):
            if size >= n:
                return size
        k *= 2


def long_term(acquired: dt.date, as_of: dt.date) -> bool:
    """Held more than one year at the trade date (IRS: the day after the anniversary)."""
    try:
        anniversary = acquired.replace(year=acquired.year + 1)
    except ValueError:  # Feb 29
        anniversary = dt.date(acquired.year + 1, 3, 1)
    return as_of > anniversary


def prepare(household: Household, policy: Policy) -> Prepared:
    """Turn a validated household and policy into the optimizer's arrays.

    Raises
    ------
    ValidationError
        For problems that need both the household and the policy (e.g. lots acquired after the
        as-of date, withdrawals larger than the household).
    """
    problems: list[Problem] = []
    sec, acc, hol = household.securities, household.accounts, household.holdings
    sids = list(sec["security_id"])
    aids = list(acc["account_id"])
    s_idx = {s: i for i, s in enumerate(sids)}
    a_idx = {a: i for i, a in enumerate(aids)}
    A, N = len(aids), len(sids)
    price = sec["price"].to_numpy(float)
    liquid = sec["liquid"].to_numpy(bool)
    as_of = policy.tax.as_of

    q0 = np.zeros((A, N))
    h_acc, h_sec = hol["account_id"].tolist(), hol["security_id"].tolist()
    np.add.at(q0, ([a_idx[a] for a in h_acc], [s_idx[s] for s in h_sec]), hol["quantity"].to_numpy(float))
    cash_cur = acc["cash"].to_numpy(float)
    flow_cur = acc["cash_flow"].to_numpy(float)
    V0 = float((q0 * price).sum() + cash_cur.sum())
    V = V0 + float(flow_cur.sum())
    for i, (c, f) in enumerate(zip(cash_cur, flow_cur, strict=True)):
        if c + f < 0 and not (q0[i] * price * liquid).sum() >= -(c + f):
            problems.append(Problem("accounts.csv", int(acc.index[i]), "cash_flow",
                                    f"withdrawal {-f:,.2f} exceeds the account's liquid value"))
    if V <= 0:
        problems.append(Problem("accounts.csv", None, "cash_flow", "household value after flows is not positive"))

    # Tax lots of taxable accounts, packed into (T, N, K) slots.
    types = list(acc["type"])
    taxable = [i for i, t in enumerate(types) if t == "taxable"]
    t_of = {a: t for t, a in enumerate(taxable)}
    slot_count: dict[tuple[int, int], int] = {}
    lots: list[Lot] = []
    columns = [hol[c].tolist() for c in ("lot_id", "quantity", "cost_basis", "acquired")]
    for r, a_id, s_id, lot_id, quantity, basis, acquired in zip(hol.index.tolist(), h_acc, h_sec, *columns,
                                                                 strict=True):
        a = a_idx[a_id]
        if a not in t_of:
            continue
        if acquired > as_of:
            problems.append(Problem("holdings.csv", int(r), "acquired",
                                    f"lot acquired {acquired} after the as-of date {as_of}"))
        i = s_idx[s_id]
        k = slot_count.get((a, i), 0)
        slot_count[(a, i)] = k + 1
        term = "long" if long_term(acquired, as_of) else "short"
        lots.append(Lot(t_of[a], a, i, k, str(lot_id), float(quantity), float(basis), acquired, term))
    # Tilts without their own max_tilt are held to the policy's default.
    default_max = policy.tactical.max_tilt
    for r, row in household.targets.iterrows():
        if np.isnan(row["max_tilt"]) and abs(row["tilt"]) > default_max + 1e-12:
            problems.append(Problem("targets.csv", int(r), "tilt",
                                    f"|tilt| {abs(row['tilt']):.6g} exceeds max_tilt {default_max:.6g} "
                                    "(the policy's [tactical] default)"))
    if problems:
        raise ValidationError(problems)
    K = bucket(max([1, *slot_count.values()]))
    T = len(taxable)
    lot_q = np.zeros((T, N, K))
    lot_gain = np.zeros((T, N, K))
    lot_rate = np.zeros((T, N, K))
    lot_short = np.zeros((T, N, K), bool)
    rates = {"short": policy.tax.short_term_rate, "long": policy.tax.long_term_rate}
    for lot in lots:
        lot_q[lot.t, lot.security, lot.slot] = lot.quantity
        lot_gain[lot.t, lot.security, lot.slot] = price[lot.security] - lot.cost_basis
        lot_rate[lot.t, lot.security, lot.slot] = rates[lot.term]
        lot_short[lot.t, lot.security, lot.slot] = lot.term == "short"

    # Asset classes, targets, bands.
    sec_class = list(sec["asset_class"])
    tgt = household.targets
    tgt_classes = (
        [c for c in tgt["id"] if c != CASH] if household.target_by == "asset_class" else []
    )
    classes = sorted(set(sec_class) | set(tgt_classes))
    c_idx = {c: k for k, c in enumerate(classes)}
    X = np.zeros((N, len(classes)))
    for i, c in enumerate(sec_class):
        X[i, c_idx[c]] = 1.0
    h0 = q0 * price / V
    cash0 = (cash_cur + flow_cur) / V
    x_now = X.T @ h0.sum(0)
    cash_now = float(cash0.sum())
    targets = target_rules.effective_targets(household, policy, classes, sids)
    notes = list(targets.notes)
    lower, upper = target_rules.band_edges(targets.target, policy.bands)
    cash_lower, cash_upper = (0.0, 1.0)
    if targets.cash_banded:
        lo_c, hi_c = target_rules.band_edges(np.array([targets.cash_target]), policy.bands)
        cash_lower, cash_upper = float(lo_c[0]), float(hi_c[0])
    for k, c in enumerate(classes):
        lo, hi = targets.lower.get(c), targets.upper.get(c)
        lower[k] = lower[k] if lo is None else lo
        upper[k] = upper[k] if hi is None else hi
    if CASH in targets.lower:
        cash_lower = targets.lower[CASH]
    if CASH in targets.upper:
        cash_upper = targets.upper[CASH]

    ref, cash_ref = target_rules.reference(
        policy, targets.target, lower, upper, x_now, targets.cash_target, cash_lower, cash_upper,
        cash_now,
    )
    bench = _benchmark(targets, ref, targets.target, X, h0.sum(0))
    bench_target = _benchmark(targets, targets.target, targets.target, X, h0.sum(0))
    overlay = prepare_overlay(household, policy, aids, types, classes, V)
    risk = _risk_factors(household, sids, overlay.ids, bench, cash_ref, policy.overlay.hedge_ratio)
    return Prepared(
        household=household, policy=policy, account_ids=aids, account_types=types,
        security_ids=sids, classes=classes, price=price, V0=V0, V=V, q0=q0, h0=h0,
        cash_cur=cash_cur, flow_cur=flow_cur, cash0=cash0,
        min_cash=acc["min_cash"].to_numpy(float) / V, liquid=liquid, taxable=taxable, K=K,
        lots=lots, lot_q=lot_q, lot_gain=lot_gain, lot_rate=lot_rate, lot_short=lot_short,
        ytd_short=float(acc["ytd_short_gain"].to_numpy(float)[taxable].sum()),
        ytd_long=float(acc["ytd_long_gain"].to_numpy(float)[taxable].sum()), X=X,
        target=targets.target, strategic=targets.strategic, tilt=targets.tilt,
        lower=lower, upper=upper, cash_target=targets.cash_target, cash_lower=cash_lower,
        cash_upper=cash_upper, ref=ref, cash_ref=cash_ref, bench=bench,
        bench_target=bench_target, risk_M=risk["M"], risk_m_cash=risk["m_cash"],
        risk_d=risk["d"], risk_M_f=risk["M_f"], risk_d_f=risk["d_f"],
        risk_hedge=risk["hedge"], overlay=overlay, notes=notes,
        wash=wash_state(household, policy, sids, {aids[a] for a in taxable}), targets_detail=targets,
    )


def _class_shares(X: np.ndarray, held: np.ndarray, k: int) -> np.ndarray:
    """(N,) each security's share of class k: by current value, equal when the class holds nothing."""
    members = X[:, k] > 0
    value = held * members
    return value / value.sum() if value.sum() > 0 else members / max(members.sum(), 1)


def _benchmark(targets, ref, target, X, held) -> np.ndarray:
    """Security-level benchmark weights whose class sums are ``ref``.

    Model portfolios give security weights directly (scaled per class when ``ref`` differs from the
    target, as in rebalance-to-tolerance). Class targets are spread over the class's securities in
    proportion to current value, or equally when the class holds nothing.
    """
    N, C = X.shape
    if targets.security_weights is not None:
        base = targets.security_weights.copy()
    else:
        base = sum((target[k] * _class_shares(X, held, k) for k in range(C)), np.zeros(N))
    class_base = X.T @ base
    scale = np.divide(ref, class_base, out=np.zeros(C), where=class_base > 1e-15)
    bench = base * (X @ scale)
    # A class with a reference but no base weight (target 0, out-of-band holdings): spread by value.
    for k in np.flatnonzero((class_base <= 1e-15) & (ref > 0)):
        bench += ref[k] * _class_shares(X, held, k)
    return bench


def _risk_factors(household: Household, sids: list[str], cids: list[str], bench: np.ndarray,
                  cash_ref: float, hedge_ratio: dict[str, float]) -> dict[str, np.ndarray]:
    """Square-root factor form of the covariance over securities, contracts and cash:
    S = M M' + diag(d^2) with M = B L and F = L L' (rows: securities, contracts, cash).

    ``hedge`` (r,) shifts the benchmark's factor exposure for currency hedges: the benchmark keeps
    (1 - hedge ratio) of its exposure to a hedged currency, so y = L'(B'w + ... - y_bench) gains
    L' (h_c * (B'bench)_c) on each hedged currency c.
    """
    rm = household.risk
    F = rm.factor_cov.to_numpy(float)
    w, U = np.linalg.eigh((F + F.T) / 2)
    L = U * np.sqrt(np.clip(w, 0, None))
    rows = sids + cids + [CASH]
    load = rm.loadings.reindex(rows).fillna(0.0)
    B = load.to_numpy(float)
    M_all = B @ L
    spec = np.sqrt(rm.specific.reindex(sids + cids).fillna(0.0).to_numpy(float))
    N, J = len(sids), len(cids)
    shift = np.zeros(B.shape[1])
    for k, factor in enumerate(load.columns):
        h = hedge_ratio.get(factor, 0.0)
        if h:
            shift[k] = h * (B[:N, k] @ bench + B[-1, k] * cash_ref)
    return {"M": M_all[:N], "M_f": M_all[N:N + J], "m_cash": M_all[-1], "d": spec[:N],
            "d_f": spec[N:], "hedge": L.T @ shift}
