"""``momentum``: time-series momentum and cross-sectional relative strength.

m_k = prod(1 + r_k) - prod(1 + r_cash) over the ``lookback`` periods ending ``skip`` periods
before the date (``base.excess_return``). ``mode = "sign"``: tilt size * sign(m_k);
``"linear"``: clip(scale * m_k, -size, size); the classes' net tilt is taken from ``funded_by``.
``"relative"``: the classes are ranked by m_k (1 the weakest, n the strongest; ties share a rank)
and tilted size * (rank - (n + 1) / 2) / ((n - 1) / 2), from -size to +size, summing to zero.
"""

from __future__ import annotations

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, excess_return, shaped, tilt_history

KIND = "momentum"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    m = excess_return(inputs, spec.classes, int(spec.lookback), int(spec.skip))
    if spec.mode == "relative":
        n = len(spec.classes)
        score = (m.rank(axis=1) - (n + 1) / 2) / ((n - 1) / 2)
        tilt = spec.size * score.where(m.notna().all(axis=1), axis=0)  # all ranked or none
        return History("tilt", tilt.fillna(0.0).reindex(columns=inputs.classes, fill_value=0.0), m)
    return tilt_history(spec, m, shaped(spec, m), inputs)
