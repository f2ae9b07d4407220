"""``momentum_bands``: asymmetric bands, wider on the side a trending class is moving.

With m_k the class's momentum over ``lookback`` periods (``base.excess_return``): m_k > 0 (rising)
multiplies the upper half-width by ``widen``, m_k < 0 the lower one, so a trend is let run
further before it is traded against; the other side stays as the policy's rule sets it.
"""

from __future__ import annotations

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, excess_return

KIND = "momentum_bands"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    m = excess_return(inputs, spec.classes, int(spec.lookback))
    upper = (m > 0) * (spec.widen - 1.0) + 1.0
    lower = (m < 0) * (spec.widen - 1.0) + 1.0
    return History("bands", lower.astype(float), m, upper=upper.astype(float))
