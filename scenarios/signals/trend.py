"""``trend``: the class's total-return level against its ``window``-period moving average.

x_k = L_k / mean(L_k over the last ``window`` levels, today's included) - 1, with L_k the
class's total-return level. ``mode = "sign"``: tilt size * sign(x_k); ``"linear"``:
clip(scale * x_k, -size, size); the net tilt is taken from ``funded_by``.
"""

from __future__ import annotations

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, shaped, tilt_history

KIND = "trend"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    level = (1.0 + inputs.returns[list(spec.classes)]).cumprod()
    window = int(spec.window)
    x = level / level.rolling(window, min_periods=window).mean() - 1.0
    return tilt_history(spec, x, shaped(spec, x), inputs)
