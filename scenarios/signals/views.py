"""``views``: hand-entered views with a conviction.

``views = {us_equity = 0.03}`` with ``conviction`` c in [0, 1]: ``use = "tilt"`` tilts each named
class by c * view, funded by ``funded_by``; ``use = "alpha"`` makes c * view the class's expected
active return (annual) in the objective, weighted by ``[objective] alpha_weight``, so the
optimizer trades the view against tracking error, costs and taxes. A view holds at every date.
"""

from __future__ import annotations

import pandas as pd

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, fund

KIND = "views"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    index = inputs.returns.index
    view = pd.DataFrame({k: spec.conviction * v for k, v in spec.views.items()}, index=index)
    if spec.use == "alpha":
        return History("alpha", view.reindex(columns=inputs.classes, fill_value=0.0), view)
    return History("tilt", fund(view, spec.funded_by, inputs), view)
