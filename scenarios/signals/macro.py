"""``macro``: a regime label of signals.csv (e.g. "expansion", "recession") mapped to a tilt.

On a market date the latest label on or before it counts; its tilt is ``regimes[label]``, the
classes' total tilt, split pro rata to their strategic weights and funded by ``funded_by``.
Before the first label there is no tilt. A label with no entry in ``regimes`` is an error when
the series is read (``scenarios.tactical``), so a typo never silently means "no tilt".
"""

from __future__ import annotations

import pandas as pd

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, fund, spread
from cvxrebalance.scenarios.signals.valuation import as_of

KIND = "macro"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    label = as_of(inputs.series[spec.series].astype(object), inputs.returns.index)
    total = label.map(spec.regimes).astype(float).fillna(0.0)
    tilt = fund(spread(total, spec.classes, inputs), spec.funded_by, inputs)
    return History("tilt", tilt, pd.DataFrame({"regime": label}))
