"""swaps.csv: interest-rate swaps as overlay instruments beside futures and forwards.

A swap line is a plain-vanilla fixed-for-floating swap of one tenor, struck at par (its fixed rate
is the par swap rate, so a new swap has zero value and no cash changes hands at inception). The
optimizer decides a signed notional: positive receives fixed (adds duration, like a long bond),
negative pays fixed. Notional trades in whole ``increment`` units.

Duration per unit notional of a fresh par swap, receiving fixed (a par bond less a floating-rate
note that has just reset; c the fixed rate, m and m_f the fixed and floating payments a year,
T the tenor in years):

    D_fixed = (1 - (1 + c/m)^(-m T)) / c          (modified duration of a par bond; T when c = 0)
    D_float = (1 / m_f) / (1 + c / m_f)
    D_swap  = D_fixed - D_float,    DV01 per unit notional = D_swap * 1e-4

or ``dv01`` (currency per basis point per ``increment`` of notional) when given. Costs: a swap's
bid/ask is quoted in rate; ``half_spread_bp`` basis points of rate cost half_spread_bp * 1e-4 *
D_swap per unit notional traded. Swaps need no exchange margin but a collateral reserve, kept in
cash in the carrying account: ``collateral`` (fraction of notional) or, when blank, the value
change of a ``[overlay] collateral_move`` parallel rate move, D_swap * collateral_move.

In a backtest a swap line is a constant-maturity position: its own column of the market data
(``returns.csv``, named by ``swap_id``) is its return per unit notional, each period's P&L is
settled in the carrying account's cash (collateralized), and the line is struck at par again.

Each swap line becomes one row of the overlay's contract table (``optimizer.domain.futures``):
price 1 (par), multiplier ``increment``, ``futures_duration`` D_swap, so bounds, costs, reserve,
whole-unit rounding, the risk model (``rate_factor``, ``asset_class`` + ``duration``) and the
results treat futures, forwards and swaps alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.tables import (
    Column,
    duplicates,
    has_problem,
    nonneg,
    parse_table,
    positive,
    whole_positive,
)

MAX_SPREAD_BP = 10_000  # a half spread of 100 percentage points of rate: beyond it, a unit error
# The cells a swap's duration is computed from: a problem in one of them is not repeated as "no duration".
TERMS = ("fixed_rate", "tenor", "fixed_frequency", "float_frequency", "dv01")

SWAPS = {
    "swap_id": Column("str", required=True),
    "account_id": Column("str", required=True),
    "counterparty": Column("str", required=True),
    "fixed_rate": Column("float", required=True, check=lambda x: None if -0.05 < x < 1 else
                         f"must be an annual rate in (-0.05, 1), got {x:g}"),
    "tenor": Column("float", required=True, check=lambda x: None if 0 < x <= 100 else
                    f"must be years in (0, 100], got {x:g}"),
    "fixed_frequency": Column("float", default=2.0, check=whole_positive),  # payments a year
    "float_frequency": Column("float", default=4.0, check=whole_positive),
    "position": Column("float", default=0.0),
    "increment": Column("float", default=100_000.0, check=positive),
    "half_spread_bp": Column("float", default=0.0, check=lambda x: None if 0 <= x <= MAX_SPREAD_BP else
                             f"must be basis points of rate in [0, {MAX_SPREAD_BP:,}], got {x:g}"),
    "commission": Column("float", default=0.0, check=nonneg),
    "collateral": Column("float", default=np.nan, check=lambda x: None if 0 <= x <= 1 else
                         f"must be a fraction of notional in [0, 1], got {x:g}"),
    "dv01": Column("float", default=np.nan, check=positive),
    "max_notional": Column("float", default=np.nan, check=nonneg),
    "asset_class": Column("str", default=""),
    "duration": Column("float", default=np.nan, check=positive),
    "exposure": Column("float", default=np.nan),
    "rate_factor": Column("str", default=""),
    "currency": Column("str", default=""),
}


# A swap line's own terms, kept on its contract row (NaN on a future's) for the results and checks.
SWAP_TERMS = ("fixed_rate", "tenor", "fixed_frequency", "float_frequency", "collateral", "dv01", "half_spread_bp")


def swap_duration(fixed_rate, tenor, fixed_frequency=2.0, float_frequency=4.0) -> np.ndarray:
    """Modified duration per unit notional of a par receive-fixed swap that has just reset.

    Examples
    --------
    A 5-year swap at 4%, semiannual fixed against quarterly floating:

    >>> round(float(swap_duration(0.04, 5.0)), 4)
    4.2438
    """
    c = np.asarray(fixed_rate, float)
    T = np.asarray(tenor, float)
    m = np.asarray(fixed_frequency, float)
    mf = np.asarray(float_frequency, float)
    small = np.abs(c) < 1e-12
    safe = np.where(small, 1.0, c)
    annuity = np.where(small, T, (1.0 - (1.0 + safe / m) ** (-m * T)) / safe)
    return annuity - (1.0 / mf) / (1.0 + c / mf)


def parse_swaps(swaps: pd.DataFrame | None, problems: list[Problem]) -> pd.DataFrame | None:
    """swaps.csv as contract rows in the layout of futures.csv (``None`` without swaps).

    Each row keeps its swaps.csv line in the index and ``source = "swaps.csv"``, so problems found
    later (accounts, risk model) name the right file and line.
    """
    if swaps is None:
        return None
    f = "swaps.csv"
    sw = parse_table(swaps, f, SWAPS, problems)
    duplicates(sw, ["swap_id"], f, problems)
    inc = sw["increment"].to_numpy(float)
    pos = sw["position"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):  # a bad increment is reported above
        units = pos / inc
    for line, u in zip(sw.index, units, strict=True):
        if np.isfinite(u) and abs(u - round(u)) > 1e-9:
            problems.append(Problem(f, line, "position", "the notional held must be a whole number of increments"))
    tenor = sw["tenor"].to_numpy(float)
    periods = tenor * sw["fixed_frequency"].to_numpy(float)
    for line, n in zip(sw.index, periods, strict=True):  # a fresh par swap pays whole fixed periods
        if np.isfinite(n) and n > 0 and abs(n - round(n)) > 1e-9 and not any(
                has_problem(problems, f, line, c) for c in ("tenor", "fixed_frequency")):
            problems.append(Problem(f, line, "tenor", f"a fresh par swap's tenor is a whole number of fixed-leg "
                                    f"periods; tenor x fixed_frequency is {n:g}"))
    with np.errstate(divide="ignore", invalid="ignore"):  # bad cells are reported above
        given = sw["dv01"].to_numpy(float) / (inc * 1e-4)
        computed = swap_duration(sw["fixed_rate"].to_numpy(float), tenor,
                                 sw["fixed_frequency"].to_numpy(float), sw["float_frequency"].to_numpy(float))
    duration = np.where(np.isnan(given), computed, given)
    for line, d, g, t in zip(sw.index, duration, given, tenor, strict=True):
        if any(has_problem(problems, f, line, c) for c in TERMS):
            continue
        if np.isfinite(d) and d <= 0:
            problems.append(Problem(f, line, "tenor", f"a swap this short has no duration ({d:.4f}); give dv01"))
        elif np.isfinite(g) and g > t:  # a par swap's duration is below its tenor: dv01 is in other units
            problems.append(Problem(f, line, "dv01", f"implies a duration of {g:.4g} years, longer than the tenor "
                                    f"({t:g}); dv01 is currency per basis point per increment of notional"))
    return pd.DataFrame({
        "contract_id": sw["swap_id"], "price": 1.0, "multiplier": inc, "account_id": sw["account_id"],
        "position": np.round(units), "margin": sw["collateral"] * inc, "commission": sw["commission"],
        "half_spread": sw["half_spread_bp"].to_numpy(float) * 1e-4 * duration, "expiry": None, "underlying": sw["swap_id"],
        "asset_class": sw["asset_class"], "exposure": sw["exposure"], "currency": sw["currency"],
        "max_contracts": np.floor(sw["max_notional"].to_numpy(float) / inc + 1e-9),
        "ctd_bpv": np.nan, "conversion_factor": np.nan, "duration": sw["duration"], "rate_factor": sw["rate_factor"],
        "counterparty": sw["counterparty"], "instrument": "swap", "source": f, "swap_duration": duration,
        **{t: sw[t] for t in SWAP_TERMS},
    }, index=sw.index)
