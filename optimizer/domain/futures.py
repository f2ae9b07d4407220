"""futures.csv and swaps.csv: the overlay's contracts (equity index and Treasury futures,
currency forwards, interest-rate swaps (``optimizer.domain.swaps``)).

Every contract is a signed notional to the optimizer, with exposures from the risk model, costs
per contract and on notional, and margin held in the account that carries it. Treasury futures
get their duration from the cheapest-to-deliver: BPV(future) = BPV(CTD) / conversion factor,
duration per unit notional = BPV(future) / (notional * 1e-4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.swaps import SWAP_TERMS, parse_swaps
from cvxrebalance.optimizer.domain.tables import Column, duplicates, nonneg, parse_table, positive, rows

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
    "instrument": Column("str", default="future", check=lambda x: None if x in ("future", "forward") else
                         f"must be future or forward (swaps go in swaps.csv), got {x!r}"),
    "counterparty": Column("str", default=""),  # an OTC contract's counterparty (blank: exchange-cleared)
}


def empty_futures() -> pd.DataFrame:
    """A futures table with no contracts (the case has no futures.csv)."""
    return _EMPTY.copy()


def _typed_empty() -> pd.DataFrame:
    empty = parse_table(pd.DataFrame({c: [] for c in FUTURES}), "futures.csv", FUTURES, [])
    empty["source"] = pd.Series(dtype=object)
    empty["futures_duration"] = pd.Series(dtype=float)
    for t in SWAP_TERMS:
        empty[t] = pd.Series(dtype=float)
    return empty


_EMPTY = _typed_empty()


def parse_futures(futures: pd.DataFrame | None, sec: pd.DataFrame, acc: pd.DataFrame,
                  problems: list[Problem], swaps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Typed, checked contract table (futures.csv rows, then swaps.csv rows) with
    ``futures_duration`` and ``exposure`` filled in; ``source`` names each row's file."""
    swap_rows = parse_swaps(swaps, problems)
    if futures is None and swap_rows is None:
        return empty_futures()
    fut = parse_table(futures, "futures.csv", FUTURES, problems) if futures is not None else empty_futures()
    fut = fut.copy()
    fut["source"] = "futures.csv"
    for t in SWAP_TERMS:
        fut[t] = np.nan
    # Duration per unit notional of a Treasury future (BPV of the CTD over its conversion factor).
    fut["futures_duration"] = fut["ctd_bpv"] / fut["conversion_factor"] / (fut["price"] * fut["multiplier"] * 1e-4)
    if swap_rows is not None:
        swap_rows = swap_rows.rename(columns={"swap_duration": "futures_duration"})
        fut = pd.concat([fut, swap_rows[fut.columns]]) if len(fut) else swap_rows[fut.columns]
    accounts = set(acc["account_id"])
    ids = set(sec["security_id"])
    seen: dict[str, str] = {}
    for i, row in rows(fut):
        f = row.source
        if row.account_id and row.account_id not in accounts:
            problems.append(Problem(f, i, "account_id", f"unknown account {row.account_id!r}"))
        if row.contract_id in ids:
            problems.append(Problem(f, i, "contract_id" if f == "futures.csv" else "swap_id",
                                    "a contract id may not repeat a security id"))
        if f == "futures.csv" and row.position != round(row.position):
            problems.append(Problem(f, i, "position", "contracts are whole numbers"))
        if np.isnan(row.ctd_bpv) != np.isnan(row.conversion_factor):
            problems.append(Problem(f, i, "ctd_bpv", "give ctd_bpv and conversion_factor together"))
        if f == "swaps.csv" and seen.get(row.contract_id) == "futures.csv":
            problems.append(Problem(f, i, "swap_id", f"{row.contract_id!r} is also a contract in futures.csv"))
        seen.setdefault(row.contract_id, f)
    duplicates(fut[fut["source"] == "futures.csv"], ["contract_id"], "futures.csv", problems)
    # Class exposure per unit notional: given, or the future's duration over the hedged class's.
    from_duration = fut["futures_duration"] / fut["duration"]
    exposure = fut["exposure"].where(fut["exposure"].notna(), from_duration)
    fut["exposure"] = exposure.where(exposure.notna(), 1.0)
    return fut
