"""What-if shocks: instantaneous returns applied to prices, then the rebalance they imply.

``shock(household, {"us_equity": -0.34, "bonds": 0.03}, policy)`` moves every security of a
shocked class (or a security named by its id, which takes precedence) by its return, and every
futures contract or swap of a shocked class by the class's return times its exposure per unit
notional (its variation margin, contracts x multiplier x price x return, settles in the carrying
account's cash; a swap is then at par again). Both households, shocked and not, are
rebalanced under the same policy and compared side by side (``ShockResult.comparison``).

``HISTORICAL`` names shocks measured on the bundled market data (``historical(name)``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
from cvxrebalance.optimizer.pipeline.result import RebalanceResult

# name -> (bundled case, first date, last date, {class: series}, meaning). The shock is the
# cumulative return of each series over the periods ending on the dates from first to last.
HISTORICAL = {
    "2008": ("us_stocks_bonds_monthly", "2008-09-30", "2009-02-28",
             {"us_equity": ["US_STOCKS"], "bonds": ["US_BONDS"]},
             "September 2008 to February 2009: the US stock market and the Aaa-yield bond, monthly"),
    "2020-03": ("sp500_daily", "2020-02-20", "2020-03-23", {"us_equity": None},
                "2020-02-19 close to 2020-03-23 close: the 20 bundled S&P 500 stocks, equally weighted"),
}


@dataclass
class ShockResult:
    """A household rebalanced with and without a shock.

    Attributes
    ----------
    returns : dict[str, float]
        The return applied to each security and contract (those not moved are left out).
    base, shocked : RebalanceResult
        The rebalance without and with the shock.
    """

    returns: dict[str, float]
    base: RebalanceResult
    shocked: RebalanceResult

    @property
    def comparison(self) -> pd.DataFrame:
        """Rows: household value, each class's weight before and after trading, trades, traded
        value, costs, tax, tracking error before and after; columns ``no_shock``, ``shock``,
        ``difference``."""
        rows = {name: _facts(r) for name, r in (("no_shock", self.base), ("shock", self.shocked))}
        out = pd.DataFrame(rows)
        out["difference"] = out["shock"] - out["no_shock"]
        return out


def _facts(r: RebalanceResult) -> dict[str, float]:
    s = r.summary
    out = {"household_value": s["household_value"]}
    for c, v in s["asset_classes"].items():
        out[f"before_{c}"] = v["before"]
        out[f"after_{c}"] = v["after"]
    out.update(trades=s["trade_count"], traded=float(r.solution.traded), costs=s["costs"],
               tax=s["taxes"]["tax_exact"], tracking_error_before=s["tracking_error"]["before"],
               tracking_error_after=s["tracking_error"]["after"])
    return out


def shock(household: Household, shocks: dict[str, float], policy: Policy | None = None) -> ShockResult:
    """Apply instantaneous returns and rebalance, side by side with no shock.

    Parameters
    ----------
    household : Household
    shocks : dict of str -> float
        Asset class or security id (or futures contract id) -> simple return (-0.34 is -34%).
    policy : Policy, optional

    Returns
    -------
    ShockResult

    Raises
    ------
    ValidationError
        A name that is neither an asset class nor a security or contract, or a return <= -1
        or not finite.

    Examples
    --------
    >>> from cvxrebalance import load_case
    >>> from cvxrebalance.scenarios import case_path
    >>> from cvxrebalance.scenarios.shocks import shock
    >>> h, p = load_case(case_path("four_accounts"))
    >>> r = shock(h, {"stocks": -0.34}, p)
    >>> bool(r.comparison.loc["household_value", "difference"] < 0)
    True
    """
    policy = policy or Policy()
    shocked, returns = shocked_household(household, shocks)
    return ShockResult(returns, rebalance(household, policy), rebalance(shocked, policy))


def shocked_household(household: Household, shocks: dict[str, float]) -> tuple[Household, dict[str, float]]:
    """The household after the shock, and the return applied to each security and contract."""
    sec, fut = household.securities, household.futures
    classes = set(sec["asset_class"]) | set(fut["asset_class"]) - {""}
    ids = set(sec["security_id"]) | set(fut["contract_id"])
    problems = []
    for name, r in shocks.items():
        if name not in classes and name not in ids:
            problems.append(Problem("shock", None, name, "not an asset class, security or contract of the household "
                                    f"(its classes: {', '.join(sorted(classes))})"))
        elif not isinstance(r, int | float) or not math.isfinite(r) or r <= -1:
            problems.append(Problem("shock", None, name, f"the return must be a number > -1, got {r!r}"))
    if problems:
        raise ValidationError(problems)

    def moved(ids_, classes_) -> np.ndarray:
        return np.array([float(shocks.get(i, shocks.get(c, 0.0))) for i, c in zip(ids_, classes_, strict=True)])

    r_sec = moved(sec["security_id"], sec["asset_class"])
    new_sec = sec.copy()
    new_sec["price"] = sec["price"].to_numpy(float) * (1 + r_sec)
    returns = {s: float(r) for s, r in zip(sec["security_id"], r_sec, strict=True) if r}
    acc = household.accounts
    if len(fut):
        # A contract moves by its class's return times its exposure per unit notional (a Treasury
        # future or swap: its duration over the class's), unless it is shocked by its own id.
        by_class = np.array([float(shocks.get(c, 0.0)) for c in fut["asset_class"]]) * fut["exposure"].to_numpy(float)
        r_fut = np.array([float(shocks.get(c, b)) for c, b in zip(fut["contract_id"], by_class, strict=True)])
        new_fut = fut.copy()
        swap = (fut["source"] == "swaps.csv").to_numpy()  # settled through collateral: at par again
        new_fut["price"] = np.where(swap, 1.0, fut["price"].to_numpy(float) * (1 + r_fut))
        pnl = (fut["position"] * fut["multiplier"] * fut["price"]).to_numpy(float) * r_fut
        acc = acc.copy()
        cash = acc["cash"].to_numpy(float).copy()
        index = {a: k for k, a in enumerate(acc["account_id"])}
        np.add.at(cash, [index[a] for a in fut["account_id"]], pnl)  # variation margin
        acc["cash"] = cash
        returns |= {c: float(r) for c, r in zip(fut["contract_id"], r_fut, strict=True) if r}
    else:
        new_fut = fut
    return dataclasses.replace(household, securities=new_sec, accounts=acc, futures=new_fut), returns


def historical(name: str) -> dict[str, float]:
    """A named historical shock, per asset class, measured on the bundled data (``HISTORICAL``).

    Raises
    ------
    ValidationError
        An unknown name.
    """
    from cvxrebalance.scenarios import case_path
    from cvxrebalance.scenarios.market import load_market

    if name not in HISTORICAL:
        raise ValidationError([Problem("shock", None, name, f"unknown historical shock; one of {', '.join(HISTORICAL)}")])
    case, first, last, series, _ = HISTORICAL[name]
    returns = load_market(case_path(case)).returns.loc[first:last]
    out = {}
    for cls, cols in series.items():
        cols = cols or [c for c in returns.columns if c != "cash"]
        out[cls] = float((1 + returns[cols]).prod().mean() - 1)  # equally weighted, bought at the start
    return out
