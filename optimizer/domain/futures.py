"""futures.csv: the overlay's contracts (equity index and Treasury futures, currency forwards).

Every contract is a signed notional to the optimizer, with exposures from the risk model, costs
per contract and on notional, and margin held in the account that carries it. Treasury futures
get their duration from the cheapest-to-deliver: BPV(future) = BPV(CTD) / conversion factor,
duration per unit notional = BPV(future) / (notional * 1e-4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.tables import Column, duplicates, nonneg, parse_table, positive

FUTURES = {
    "contract_id": Column("str", required=True),
    "price": Column("float", required=True, check=positive),
    "multiplier": Column("float", required=True, check=positive),
    "account_id": Column("str", required=True),
    "position": Column("float", default=0.0),
    "margin": Column("float", default=0.0, check=nonneg),
    "commission": Column("float", default=0.0, check=nonneg),
    "half_spread": Column("float", default=0.0, check=nonneg),
    "expiry": Column("date"),
    "underlying": Column("str", default=""),
    "asset_class": Column("str", default=""),
    "exposure": Column("float", default=np.nan),
    "currency": Column("str", default=""),
    "max_contracts": Column("float", default=np.nan, check=nonneg),
    "ctd_bpv": Column("float", default=np.nan, check=positive),
    "conversion_factor": Column("float", default=np.nan, check=positive),
    "duration": Column("float", default=np.nan, check=positive),
    "rate_factor": Column("str", default=""),
}


def empty_futures() -> pd.DataFrame:
    """A futures table with no contracts (the case has no futures.csv)."""
    return _EMPTY.copy()


_EMPTY = parse_table(pd.DataFrame({c: [] for c in FUTURES}), "futures.csv", FUTURES, [])
_EMPTY["futures_duration"] = pd.Series(dtype=float)


def parse_futures(futures: pd.DataFrame | None, sec: pd.DataFrame, acc: pd.DataFrame,
                  problems: list[Problem]) -> pd.DataFrame:
    """Typed, checked futures table with ``futures_duration`` and ``exposure`` filled in."""
    if futures is None:
        return empty_futures()
    fut = parse_table(futures, "futures.csv", FUTURES, problems)
    f = "futures.csv"
    duplicates(fut, ["contract_id"], f, problems)
    accounts = set(acc["account_id"])
    ids = set(sec["security_id"])
    for i, row in fut.iterrows():
        if row["account_id"] and row["account_id"] not in accounts:
            problems.append(Problem(f, i, "account_id", f"unknown account {row['account_id']!r}"))
        if row["contract_id"] in ids:
            problems.append(Problem(f, i, "contract_id", "a contract id may not repeat a security id"))
        if row["position"] != round(row["position"]):
            problems.append(Problem(f, i, "position", "contracts are whole numbers"))
        if np.isnan(row["ctd_bpv"]) != np.isnan(row["conversion_factor"]):
            problems.append(Problem(f, i, "ctd_bpv", "give ctd_bpv and conversion_factor together"))
    fut = fut.copy()
    notional = fut["price"] * fut["multiplier"]
    # Duration per unit notional of a Treasury future (BPV of the CTD over its conversion factor).
    fut["futures_duration"] = fut["ctd_bpv"] / fut["conversion_factor"] / (notional * 1e-4)
    # Class exposure per unit notional: given, or the future's duration over the hedged class's.
    from_duration = fut["futures_duration"] / fut["duration"]
    exposure = fut["exposure"].where(fut["exposure"].notna(), from_duration)
    fut["exposure"] = exposure.where(exposure.notna(), 1.0)
    return fut
