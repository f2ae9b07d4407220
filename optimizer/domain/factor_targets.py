"""factor_targets.csv: targets and bands on factor exposures, and the exposures themselves.

With a factor risk model (``factor_loadings.csv`` + ``factor_covariance.csv``) a household may
set a target, and optionally band edges, on the exposure to any factor of the model (duration in
years on a rate factor, an equity beta, a value or momentum loading), in the factor's own units
per unit of household value. The exposure to factor k counts the overlay:

    x_k = sum_i w_i B_ik + c b_cash_k + sum_j f_j b_f_jk

with w the security weights, c the household's cash weight and f each contract's signed notional,
all fractions of household value (over V before trading, over the value after trading after it),
and B, b_cash, b_f the risk model's loadings (the same rows the tracking-error term uses).

The band rows (``constraints.factor_bands``) keep lower_k <= x_k <= upper_k after trading; the
drift term (``cost_models.factor_drift``) prices factor_weight * F_kk * (x_k - ref_k)^2, with
ref_k the target, or under ``[trigger] rebalance_to = "tolerance"`` and ``fraction`` the same
reference the asset classes get (see ``reference``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.program import Affine
from cvxrebalance.optimizer.domain.tables import Column, duplicates, nonneg, parse_table, rows

if TYPE_CHECKING:
    from cvxrebalance.optimizer.domain.prepare import Prepared
    from cvxrebalance.optimizer.domain.risk_model import RiskModel
    from cvxrebalance.optimizer.domain.solution import Solution

FILE = "factor_targets.csv"
FACTOR_TARGETS = {
    "factor": Column("str", required=True),
    "target": Column("float", required=True),
    "lower": Column("float", default=np.nan),
    "upper": Column("float", default=np.nan),
    # Half-width around the target, in the factor's units: fills the edges left blank.
    "band": Column("float", default=np.nan, check=nonneg),
}
COLUMNS = ["factor", "target", "lower", "upper"]
EXPOSURE = "factor_exposure"  # the program's block of auxiliary exposure variables
REACH = 1000.0  # a target or edge is at most this many times the largest loading on its factor


def empty_factor_targets() -> pd.DataFrame:
    """A factor-target table with no rows (the case has no factor_targets.csv)."""
    return pd.DataFrame({"factor": pd.Series(dtype=object), **{c: pd.Series(dtype=float) for c in COLUMNS[1:]}})


def parse_factor_targets(frame: pd.DataFrame | None, risk: RiskModel, factor_files: bool,
                         problems: list[Problem]) -> pd.DataFrame:
    """The typed, checked factor targets: ``factor, target, lower, upper`` (NaN: no edge on that
    side; ``band`` folded into the blank edges).

    Parameters
    ----------
    frame : DataFrame or None
        factor_targets.csv as read (text cells) or typed; None: no factor targets.
    risk : RiskModel
        The household's risk model; its loadings' columns are the factors that may be named.
    factor_files : bool
        Whether the risk model was given as factor files (a covariance is not a factor model).
    problems : list of Problem
        Every problem found is appended (file, line, field).
    """
    if frame is None:
        return empty_factor_targets()
    fac = parse_table(frame, FILE, FACTOR_TARGETS, problems)
    if not len(fac):
        return empty_factor_targets()
    if not factor_files:
        problems.append(Problem(FILE, None, None, "factor targets need a factor risk model (factor_loadings.csv "
                                "and factor_covariance.csv), not covariance.csv"))
    duplicates(fac, ["factor"], FILE, problems)
    known = [str(c) for c in risk.loadings.columns] if risk.kind == "factor" else []
    for line, row in rows(fac):
        if risk.kind == "factor" and row.factor is not None and row.factor not in known:
            hint = difflib.get_close_matches(row.factor, known, n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else f"; factors: {', '.join(known)}"
            problems.append(Problem(FILE, line, "factor", f"unknown factor {row.factor!r} (not a column of "
                                    f"factor_loadings.csv){more}"))
        if risk.kind == "factor" and row.factor in known:
            # REACH x the largest loading on the factor is beyond any leverage the overlay limits
            # allow: a larger exposure is a unit error (and overflowed the drift term's squares).
            reach = REACH * float(risk.loadings[row.factor].abs().max())
            for col in ("target", "lower", "upper", "band"):
                value = getattr(row, col)
                if reach > 0 and abs(value) > reach:
                    problems.append(Problem(FILE, line, col, f"{value:g} is beyond any reachable exposure: at "
                                            f"most {reach:g} ({REACH:g} x the largest loading on {row.factor!r})"))
        if not np.isnan(row.band) and not (np.isnan(row.lower) or np.isnan(row.upper)):
            problems.append(Problem(FILE, line, "band", "give band or both lower and upper, not all three "
                                    "(band fills a blank edge)"))
    fac = fac.copy()
    half = fac["band"].to_numpy(float)
    fac["lower"] = fac["lower"].where(fac["lower"].notna(), fac["target"] - half)
    fac["upper"] = fac["upper"].where(fac["upper"].notna(), fac["target"] + half)
    for line, row in rows(fac):
        if np.isnan(row.target):
            continue
        if row.lower > row.target + 1e-12:
            problems.append(Problem(FILE, line, "lower", f"lower {row.lower:g} is above the target {row.target:g}"))
        if row.upper < row.target - 1e-12:
            problems.append(Problem(FILE, line, "upper", f"upper {row.upper:g} is below the target {row.target:g}"))
    return fac[COLUMNS]


@dataclass(frozen=True)
class FactorTargets:
    """The household's factor targets as arrays over its T targeted factors."""

    names: list[str]
    column: np.ndarray  # (T,) the factor's column in the risk model's loadings
    target: np.ndarray  # (T,)
    lower: np.ndarray  # (T,) -inf: no lower edge
    upper: np.ndarray  # (T,) +inf: no upper edge
    ref: np.ndarray  # (T,) the exposure the drift term pulls toward
    variance: np.ndarray  # (T,) F_kk, the factor's own variance
    scale: np.ndarray  # (T,) the largest |loading| of a security, contract or cash on the factor
    before: np.ndarray  # (T,) exposure before trading (holdings and cash after flows, over V)

    @property
    def T(self) -> int:
        return len(self.names)

    @property
    def banded(self) -> np.ndarray:
        """(T,) mask of the factors with at least one band edge."""
        return np.isfinite(self.lower) | np.isfinite(self.upper)


def factor_targets(data: Prepared) -> FactorTargets:
    """The prepared factor targets of a household and policy (computed once per ``Prepared``)."""
    if "factor_targets" not in data.memo:
        data.memo["factor_targets"] = _prepare(data)
    return data.memo["factor_targets"]


def _prepare(data: Prepared) -> FactorTargets:
    fac = data.household.factor_targets
    if not len(fac):  # most households: nothing to read from the risk model
        empty = np.zeros(0)
        return FactorTargets([], np.zeros(0, int), empty, empty, empty, empty, empty, empty, empty)
    columns = [str(c) for c in data.household.risk.loadings.columns]
    names = [str(f) for f in fac["factor"]]
    col = np.array([columns.index(f) for f in names], int)
    target = fac["target"].to_numpy(float)
    lower = np.nan_to_num(fac["lower"].to_numpy(float), nan=-np.inf)
    upper = np.nan_to_num(fac["upper"].to_numpy(float), nan=np.inf)
    rf = data.risk
    F = data.household.risk.factor_cov.to_numpy(float)
    B = _columns(data, col)
    before = B.T @ data.h0.sum(0) + rf.b_cash[col] * float(data.cash0.sum()) + rf.b_f[:, col].T @ data.overlay.f0
    ref, lower, upper = reference(data.policy, target, lower, upper, before)
    scale = np.max(np.abs(np.vstack([B, rf.b_f[:, col], rf.b_cash[col][None, :]])), axis=0, initial=0.0)
    return FactorTargets(names, col, target, lower, upper, ref, np.diag(F)[col].copy(), np.maximum(scale, 1e-12),
                         before)


def _columns(data: Prepared, col: np.ndarray) -> np.ndarray:
    """(N, T) the securities' loadings on the targeted factors."""
    return np.asarray(data.risk.B[:, col].todense()).reshape(data.N, len(col))


def reference(policy, target: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              now: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exposures the drift term pulls toward, and the band edges, as the asset classes get
    them (``targets.reference``, ``prepare``).

    ``rebalance_to = "target"``: the targets. ``"tolerance"``: a factor outside its band is pulled
    to its inner band, target - inner x (target - lower) (or the upper side's), and a factor inside
    its band to where it is. ``[trigger] fraction`` f < 1 moves f of the way from the current
    exposure to that reference, and a band that excludes the partial step widens to it.

    Examples
    --------
    >>> from cvxrebalance.optimizer.domain.policy import Policy
    >>> p = Policy.from_dict({"trigger": {"rebalance_to": "tolerance"}, "bands": {"inner": 0.5}})
    >>> ref, lo, hi = reference(p, np.array([5.5, 1.0]), np.array([5.0, 0.9]), np.array([6.0, np.inf]),
    ...                         np.array([4.0, 0.95]))
    >>> ref.tolist(), lo.tolist()
    ([5.25, 0.95], [5.0, 0.9])
    """
    if policy.trigger.rebalance_to == "target":
        ref = target.astype(float).copy()
    else:
        inner = policy.bands.inner
        lo_in = np.where(np.isfinite(lower), target - inner * (target - np.where(np.isfinite(lower), lower, 0.0)),
                         -np.inf)
        hi_in = np.where(np.isfinite(upper), target + inner * (np.where(np.isfinite(upper), upper, 0.0) - target),
                         np.inf)
        out = (now < lower - 1e-12) | (now > upper + 1e-12)
        ref = np.where(out, np.clip(now, lo_in, hi_in), now)
    f = policy.trigger.fraction
    if f < 1:
        ref = now + f * (ref - now)
        lower, upper = np.minimum(lower, ref), np.maximum(upper, ref)
    return ref, lower, upper


def exposure(m) -> Affine:
    """(T,) the factor exposures after trading, over V, as the program's auxiliary variables
    ``factor_exposure`` (declared on first use; the band rows and the drift term share them):
    x = B'(h0 + net) + b_cash cash + b_f'(f0 + ftrade), one row per targeted factor with one
    entry per security that loads on it, so the drift term's squares stay T x T.

    ``m`` is the model of ``constraints.base`` (its ``net``, ``cash_weight``, ``ftrade``)."""
    d = m.data
    ft = factor_targets(d)
    if EXPOSURE in m.program.blocks:
        return Affine.identity(EXPOSURE, ft.T)
    rf, col = d.risk, ft.column
    x = m.program.var(EXPOSURE, ft.T, lo=-np.inf)
    held = rf.B[:, col].T @ m.net + rf.b_cash[col][:, None] @ m.cash_weight
    if m.J:
        held = held + rf.b_f[:, col].T @ m.ftrade
    const = _columns(d, col).T @ d.h0.sum(0) + rf.b_f[:, col].T @ d.overlay.f0
    m.program.constrain(EXPOSURE, x - held, lo=const, hi=const)
    return x


def exposure_after(sol: Solution) -> tuple[np.ndarray, np.ndarray]:
    """(T,) the factor exposures of a finished result, over the value after trading, from share
    quantities, contracts and prices only (as the checkers read them), and (T,) the overlay's
    part of them."""
    d = sol.data
    ft = factor_targets(d)
    overlay = d.risk.b_f[:, ft.column].T @ sol.overlay_after()
    held = _columns(d, ft.column).T @ sol.weights_after() + d.risk.b_cash[ft.column] * sol.cash_weight_after
    return held + overlay, overlay


def overlay_before(data: Prepared) -> np.ndarray:
    """(T,) the overlay's part of the exposures before trading."""
    ft = factor_targets(data)
    return data.risk.b_f[:, ft.column].T @ data.overlay.f0


def one_share(data: Prepared, t: int) -> float:
    """The value of one share of the priciest liquid security that loads on targeted factor
    ``t``, as a fraction of household value (any liquid security when none loads on it)."""
    ft = factor_targets(data)
    loads = _columns(data, ft.column[t : t + 1])[:, 0] != 0
    price = np.where(data.liquid & loads, data.price, 0.0)
    if not price.any():
        price = np.where(data.liquid, data.price, 0.0)
    return float(price.max(initial=0.0) / data.V)


def outside_reasons(data: Prepared) -> list[str]:
    """One line per targeted factor whose exposure before trading is outside its band, e.g.
    ``"duration at 4.00 outside 5.00 to 6.00"``."""
    ft = factor_targets(data)
    out = []
    for t in range(ft.T):
        x, lo, hi = ft.before[t], ft.lower[t], ft.upper[t]
        if lo - 1e-12 <= x <= hi + 1e-12:
            continue
        if np.isfinite(lo) and np.isfinite(hi):
            out.append(f"{ft.names[t]} at {x:.2f} outside {lo:.2f} to {hi:.2f}")
        else:
            out.append(f"{ft.names[t]} at {x:.2f} " + (f"below {lo:.2f}" if x < lo else f"above {hi:.2f}"))
    return out
