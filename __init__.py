"""cvxrebalance: household rebalancing by one convex program, checked before it is returned.

The public API, ``import cvxrebalance as cr``:

>>> import cvxrebalance as cr
>>> household, policy = cr.load_case(cr.case_path("example"))
>>> result = cr.rebalance(household, policy)
>>> list(result.trades.columns)  # doctest: +NORMALIZE_WHITESPACE
['account_id', 'security_id', 'side', 'quantity', 'price', 'value', 'cost', 'reason', 'reason_detail']
>>> result.trades.loc[0, ["security_id", "side", "reason"]].tolist()
['XOM', 'sell', 'band_breach']

The packages, in layers that import one way (a test checks it):

- ``cvxrebalance.optimizer.domain``: the household, its tables and readers, the policy, the numeric
  view of a household under a policy, a trade list in shares, and the model vocabulary;
- ``cvxrebalance.constraints`` and ``cvxrebalance.cost_models``: one module per rule and per
  objective term, each declaring its rows once and checking a finished result;
- ``cvxrebalance.optimizer.pipeline``: assembly, solvers, whole shares, checks, the result;
- ``cvxrebalance.optimizer.apps`` and ``cvxrebalance.scenarios``: command line, batch,
  benchmarks, bundled cases.

Names are imported on first use, so ``import cvxrebalance`` (and the command line's ``--help``)
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "load_case": "cvxrebalance.optimizer.domain.case_io",
    "CheckError": "cvxrebalance.optimizer.domain.errors",
    "CvxRebalanceError": "cvxrebalance.optimizer.domain.errors",
    "InfeasibilityError": "cvxrebalance.optimizer.domain.errors",
    "OutputError": "cvxrebalance.optimizer.domain.errors",
    "Problem": "cvxrebalance.optimizer.domain.errors",
    "SolverError": "cvxrebalance.optimizer.domain.errors",
    "ValidationError": "cvxrebalance.optimizer.domain.errors",
    "Household": "cvxrebalance.optimizer.domain.household",
    "RiskModel": "cvxrebalance.optimizer.domain.household",
    "Policy": "cvxrebalance.optimizer.domain.policy",
    "check": "cvxrebalance.optimizer.pipeline.checker",
    "verify": "cvxrebalance.optimizer.pipeline.checker",
    "rebalance": "cvxrebalance.optimizer.pipeline.rebalance",
    "RebalanceResult": "cvxrebalance.optimizer.pipeline.result",
    "case_path": "cvxrebalance.scenarios",
    "list_cases": "cvxrebalance.scenarios",
    "backtest": "cvxrebalance.scenarios.backtests",
    "BacktestResult": "cvxrebalance.scenarios.backtests",
    "Market": "cvxrebalance.scenarios.market",
    "load_market": "cvxrebalance.scenarios.market",
}

__all__ = [
    "BacktestResult",
    "CheckError",
    "CvxRebalanceError",
    "Household",
    "InfeasibilityError",
    "Market",
    "OutputError",
    "Policy",
    "Problem",
    "RebalanceResult",
    "RiskModel",
    "SolverError",
    "ValidationError",
    "backtest",
    "case_path",
    "check",
    "list_cases",
    "load_case",
    "load_market",
    "rebalance",
    "verify",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from cvxrebalance.optimizer.domain.case_io import load_case
    from cvxrebalance.optimizer.domain.errors import (
        CheckError,
        CvxRebalanceError,
        InfeasibilityError,
        OutputError,
        Problem,
        SolverError,
        ValidationError,
    )
    from cvxrebalance.optimizer.domain.household import Household, RiskModel
    from cvxrebalance.optimizer.domain.policy import Policy
    from cvxrebalance.optimizer.pipeline.checker import check, verify
    from cvxrebalance.optimizer.pipeline.rebalance import rebalance
    from cvxrebalance.optimizer.pipeline.result import RebalanceResult
    from cvxrebalance.scenarios import case_path, list_cases
    from cvxrebalance.scenarios.backtests import BacktestResult, backtest
    from cvxrebalance.scenarios.market import Market, load_market


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cvxrebalance' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
