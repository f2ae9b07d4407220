"""``volatility_bands``: wider bands while a class is more volatile than usual.

ratio_k = sigma_k(``window``) / sigma_k(``long_window``; 0: every return so far), each the
annualized sample standard deviation of the class's returns (``base.volatility``). Both band
half-widths of class k are multiplied by clip(ratio_k, 1, max_multiplier): bands never narrow.
"""

from __future__ import annotations

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals.base import History, Inputs, volatility

KIND = "volatility_bands"


def history(spec: SignalSpec, inputs: Inputs) -> History:
    r = inputs.returns[list(spec.classes)]
    short = volatility(r, int(spec.window), inputs.periods_per_year)
    long = volatility(r, int(spec.long_window), inputs.periods_per_year)
    ratio = short / long.where(long > 0)
    multiplier = ratio.clip(1.0, spec.max_multiplier).fillna(1.0)
    return History("bands", multiplier, ratio, upper=multiplier.copy())
