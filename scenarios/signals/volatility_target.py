"""``volatility_target``: hold the classes at the weight that targets a volatility.

The classes' composite return is their strategic mix, r_g = sum_k s_k r_k / sum_k s_k; its
realized volatility sigma is the sample standard deviation (ddof = 1) of the last ``window``
period returns, annualized by sqrt(P). The classes' total weight is min(cap, target_vol / sigma),
split pro rata to their strategic weights; the difference from their strategic total goes to
(or comes from) the ``safe`` class, cash by default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, spread, volatility

KIND = "volatility_target"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    s = inputs.strategic.reindex(list(spec.classes)).fillna(0.0)
    mix = s / s.sum() if s.sum() > 0 else pd.Series(1.0 / len(s), index=s.index)
    composite = inputs.returns[list(spec.classes)] @ mix
    sigma = volatility(composite, int(spec.window), inputs.periods_per_year)
    weight = np.minimum(spec.cap, spec.target_vol / sigma.where(sigma > 0))
    total = (weight - s.sum()).fillna(0.0)
    tilt = spread(total, spec.classes, inputs).reindex(columns=inputs.classes, fill_value=0.0)
    tilt[spec.safe] = tilt[spec.safe] - total
    raw = pd.DataFrame({"volatility": sigma, "weight": weight})
    return History("tilt", tilt, raw)
