"""cvxrebalance: household rebalancing by one convex program, checked before it is returned.

The public API:

>>> from optimizer import load_case, rebalance
>>> from scenarios import case_path
>>> household, policy = load_case(case_path("example"))
>>> result = rebalance(household, policy)
>>> sorted(result.trades.columns)  # doctest: +NORMALIZE_WHITESPACE
['account_id', 'cost', 'price', 'quantity', 'security_id', 'side', 'value']
"""

from optimizer.case_io import load_case
from optimizer.checker import check, verify
from optimizer.errors import (
    CheckError,
    CvxRebalanceError,
    InfeasibilityError,
    Problem,
    SolverError,
    ValidationError,
)
from optimizer.household import Household, RiskModel
from optimizer.policy import Policy
from optimizer.problem import TemplateCache
from optimizer.rebalance import rebalance
from optimizer.result import RebalanceResult

__version__ = "0.1.0"

__all__ = [
    "CheckError",
    "CvxRebalanceError",
    "Household",
    "InfeasibilityError",
    "Policy",
    "Problem",
    "RebalanceResult",
    "RiskModel",
    "SolverError",
    "TemplateCache",
    "ValidationError",
    "check",
    "load_case",
    "rebalance",
    "verify",
]
