"""Tactical signals: one module per ``[signals.NAME] kind``, one interface (``base``).

Each module's ``history(spec, inputs)`` gives the signal at every date of the market data from
the data up to that date only; ``scenarios.tactical`` combines the signals under the governance
limits and applies them to a single rebalance or to each decision of a backtest. Definitions:
docs/signals.md.
"""

from __future__ import annotations

from cvxrebalance.optimizer.domain.signal_spec import SignalSpec
from cvxrebalance.scenarios.signals import (
    macro,
    momentum,
    momentum_bands,
    trend,
    valuation,
    views,
    volatility_bands,
    volatility_target,
)
from cvxrebalance.scenarios.signals.base import History, Inputs

MODULES = {m.KIND: m for m in (momentum, trend, volatility_target, volatility_bands, momentum_bands, valuation,
                               macro, views)}


def history(spec: SignalSpec, inputs: Inputs) -> History:
    """The signal ``spec`` at every date of ``inputs`` (see the kind's module)."""
    return MODULES[spec.kind].history(spec, inputs)


__all__ = ["History", "Inputs", "MODULES", "history"]
