"""``valuation``: a user series (a CAPE, a yield spread) mapped to a tilt by its z-score.

On each observation of the signals.csv series x (dated; a value is known from its date on):
z = (x - mean) / sd over the last ``window`` observations (0: every one so far), ddof = 1, once
``min_observations`` exist. On a market date the latest observation on or before it counts. The
classes' total tilt is clip(direction * scale * z, -size, size), split pro rata to their
strategic weights, funded by ``funded_by``; ``direction = -1`` (the default) tilts away from the
classes when the series is high (an expensive market).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, fund, spread

KIND = "valuation"


def zscore(x: pd.Series, window: int, min_observations: int) -> pd.Series:
    """Each observation's z-score against the observations up to it (ddof = 1)."""
    roll = x.expanding(min_periods=max(min_observations, 2)) if window == 0 else \
        x.rolling(window, min_periods=max(min_observations, 2))
    sd = roll.std(ddof=1)
    return (x - roll.mean()) / sd.where(sd > 0)


def as_of(series: pd.Series, dates: pd.DatetimeIndex) -> pd.Series:
    """The latest value dated on or before each date (NaN before the first)."""
    return series.reindex(series.index.union(dates)).ffill().reindex(dates)


def history(spec: SignalSpec, inputs: Inputs) -> History:
    x = inputs.series[spec.series].astype(float)
    z = as_of(zscore(x, int(spec.window), int(spec.min_observations)), inputs.returns.index)
    total = np.clip(spec.direction * spec.scale * z, -spec.size, spec.size).fillna(0.0)
    tilt = fund(spread(total, spec.classes, inputs), spec.funded_by, inputs)
    return History("tilt", tilt, pd.DataFrame({"value": as_of(x, inputs.returns.index), "z": z}))
