"""The tactical boundary framework: how signals' tilts are held, combined and limited.

In order (docs/signals.md):
1. Time, per signal (``hold``): a signal holds a tilt while its tilts keep their signs; once it
   has held one for more than ``max_days`` calendar days the tilt goes to zero until the signs
   change. A tilt that goes to zero reverts ``"immediate"``-ly or ``"linear"``-ly over
   ``reversion_periods`` periods (k/n of the last tilt left after n - k periods).
2. Combination: the signals' tilts and the live hand tilt of targets.csv add up.
3. Size, per class (``limit``): each class's tilt is clipped to +-max_tilt and to keep its
   weight in [0, 1]; then the larger side (positive or negative tilts) is scaled down so the
   tilts still sum to zero.
4. Risk: when the tilts' ex-ante tracking error sqrt(t' S t) (S: the classes' covariance under
   the household's risk model) exceeds ``[tactical] risk_budget``, every tilt is scaled by
   budget / TE.
Every change a limit makes is a ``Clip``, reported with the limit that made it. Each signal's
share of the final tilt of a class is its share of the combined tilt before the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec

CLIP_COLUMNS = ["date", "signal", "asset_class", "limit", "before", "after"]
TOL = 1e-12


@dataclass
class Clip:
    """One tilt a limit changed: ``limit`` is "max_days", "max_tilt", "weight_bounds",
    "net_zero" (scaled to keep the tilts summing to zero) or "risk_budget"; or "max_band_multiplier
    (lower|upper)" holding a band multiplier (signal "bands"; before and after are multipliers)."""

    date: pd.Timestamp
    signal: str
    asset_class: str
    limit: str
    before: float
    after: float


def hold(values: pd.DataFrame, spec: SignalSpec) -> tuple[pd.DataFrame, pd.Series]:
    """Step 1 for one signal: its tilts under ``max_days`` and the reversion protocol, and the
    dates on which ``max_days`` cut a tilt."""
    v = values.to_numpy(float)
    out = np.zeros_like(v)
    days = values.index.to_numpy().astype("datetime64[D]")
    cut = np.zeros(len(v), bool)
    n = int(spec.reversion_periods) if spec.reversion == "linear" else 1
    pattern, since, base, left = None, None, np.zeros(v.shape[1]), 0
    last = np.zeros(v.shape[1])
    for t in range(len(v)):
        signs = tuple(np.sign(np.where(np.abs(v[t]) > TOL, v[t], 0.0)))
        want = v[t]
        if not any(signs):
            pattern = None
        else:
            if signs != pattern:
                pattern, since = signs, days[t]
            if spec.max_days and (days[t] - since).astype(int) > spec.max_days:
                want, cut[t] = np.zeros_like(want), True
        if np.abs(want).max(initial=0.0) > TOL:
            out[t], left = want, 0
        elif n > 1 and (left or np.abs(last).max(initial=0.0) > TOL):
            if not left:  # a reversion starts from the last tilt held
                base, left = last, n
            left -= 1
            out[t] = base * left / n
        last = out[t]
    return pd.DataFrame(out, index=values.index, columns=values.columns), pd.Series(cut, index=values.index)


def limit(date: pd.Timestamp, tilts: pd.DataFrame, strategic: np.ndarray, max_tilt: np.ndarray,
          cov: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray, list[Clip]]:
    """Steps 2-4 on one date. ``tilts``: sources (signals, "targets.csv") x classes.

    Returns the final tilt per class, each source's share of it (sources x classes) and the clips.
    """
    classes = list(tilts.columns)
    combined = tilts.to_numpy(float).sum(0)
    clips: list[Clip] = []

    def record(why: str, before: np.ndarray, after: np.ndarray) -> None:
        clips.extend(Clip(date, "combined", classes[k], why, float(before[k]), float(after[k]))
                     for k in np.flatnonzero(np.abs(after - before) > 1e-10))

    t = np.clip(combined, -max_tilt, max_tilt)
    record("max_tilt", combined, t)
    bounded = np.clip(t, -strategic, 1.0 - strategic)
    record("weight_bounds", t, bounded)
    pos, neg = bounded[bounded > 0].sum(), -bounded[bounded < 0].sum()
    t = bounded.copy()
    if pos > neg + TOL:
        t[t > 0] *= neg / pos
    elif neg > pos + TOL:
        t[t < 0] *= pos / neg
    record("net_zero", bounded, t)
    te = tracking_error(t, cov)
    if budget and te > budget:
        scaled = t * budget / te
        record("risk_budget", t, scaled)
        t = scaled
    share = np.divide(tilts.to_numpy(float), combined, out=np.zeros(tilts.shape), where=np.abs(combined) > TOL)
    return t, share * t, clips


def tracking_error(tilt: np.ndarray, cov: np.ndarray) -> float:
    """Ex-ante tracking error of a class tilt, sqrt(t' S t)."""
    return float(np.sqrt(max(tilt @ cov @ tilt, 0.0)))
