"""The interface every signal shares, and the pieces several kinds use.

A signal is a module with ``KIND`` (its ``[signals.NAME] kind``) and ``history(spec, inputs) ->
History``: its value at every date of the market data, row ``t`` computed from rows up to and
including ``t`` only (rolling windows that end at ``t``; a test truncates the data at each date
and finds the same row). Before a window is full the signal is NaN and acts as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.optimizer.domain.tables import CASH


@dataclass
class Inputs:
    """What a signal reads.

    Attributes
    ----------
    returns : DataFrame
        Simple returns per period of each asset class (its benchmark mix of securities) and of
        ``cash``; dates x classes.
    periods_per_year : int
        P, the annualization factor of the data's frequency.
    strategic : Series
        Strategic weight per class, ``cash`` included (the funding shares).
    series : dict of name -> Series
        User series from signals.csv (dates -> number or label).
    """

    returns: pd.DataFrame
    periods_per_year: int
    strategic: pd.Series
    series: dict[str, pd.Series]

    @property
    def classes(self) -> list[str]:
        return list(self.returns.columns)


@dataclass
class History:
    """A signal over time. ``use`` is what it acts on: "tilt" (``values``: dates x classes, each
    row summing to zero), "bands" (``values``: the lower band half-width's multiplier,
    ``upper``: the upper one's, both >= 1) or "alpha" (``values``: expected active return per
    class). ``raw`` is the signal's own reading (a momentum, a z-score, a volatility ratio) for
    the report."""

    use: str
    values: pd.DataFrame
    raw: pd.DataFrame
    upper: pd.DataFrame | None = None


def fund(tilt: pd.DataFrame, funded_by: tuple[str, ...], inputs: Inputs) -> pd.DataFrame:
    """Each row's net tilt taken from the ``funded_by`` classes pro rata to their strategic
    weights (equally when those are all zero), so the row sums to zero."""
    share = inputs.strategic.reindex(list(funded_by)).fillna(0.0).to_numpy(float)
    share = share / share.sum() if share.sum() > 0 else np.full(len(share), 1.0 / len(share))
    net = tilt.sum(axis=1).to_numpy()
    out = tilt.reindex(columns=inputs.classes, fill_value=0.0).copy()
    for f, w in zip(funded_by, share, strict=True):
        out[f] = out[f] - net * w
    return out


def spread(total: pd.Series, classes: tuple[str, ...], inputs: Inputs) -> pd.DataFrame:
    """A group tilt per date (``total``) split over ``classes`` pro rata to their strategic
    weights (equally when those are all zero)."""
    w = inputs.strategic.reindex(list(classes)).fillna(0.0).to_numpy(float)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    return pd.DataFrame(np.outer(total.to_numpy(float), w), index=total.index, columns=list(classes))


def excess_return(inputs: Inputs, classes: tuple[str, ...], lookback: int, skip: int = 0) -> pd.DataFrame:
    """Time-series momentum: each class's total return over the ``lookback`` periods ending
    ``skip`` periods before ``t``, minus cash's over the same periods:
    prod(1 + r_k) - prod(1 + r_cash) over rows t-skip-lookback+1 .. t-skip."""
    growth = (1.0 + inputs.returns[[*classes, CASH]]).rolling(lookback, min_periods=lookback).apply(np.prod, raw=True)
    growth = growth.shift(skip)
    return growth[list(classes)].sub(growth[CASH], axis=0)


def volatility(returns: pd.DataFrame | pd.Series, window: int, periods_per_year: int):
    """Realized volatility: the sample standard deviation (ddof = 1) of the last ``window``
    period returns, annualized by sqrt(P); ``window`` 0 takes every return so far."""
    roll = returns.expanding(min_periods=2) if window == 0 else returns.rolling(window, min_periods=window)
    return roll.std(ddof=1) * np.sqrt(periods_per_year)


def shaped(spec: SignalSpec, x: pd.DataFrame) -> pd.DataFrame:
    """A reading as a tilt: ``mode = "sign"``: size * sign(x); ``"linear"``: clip(scale * x, -size, size)."""
    return spec.size * np.sign(x) if spec.mode == "sign" else (spec.scale * x).clip(-spec.size, spec.size)


def tilt_history(spec: SignalSpec, raw: pd.DataFrame, tilt: pd.DataFrame, inputs: Inputs) -> History:
    """A per-class tilt (NaN: none yet) funded by the spec's ``funded_by``."""
    return History("tilt", fund(tilt.fillna(0.0), spec.funded_by, inputs), raw)
