"""transactions.csv: recent trades, for the wash-sale rule across every account of the household.

Columns ``account_id, security_id, date, side, quantity, price``; optional ``realized_gain`` for
sells (negative: a loss). A sell without it is taken as a loss sale (the conservative reading:
buying back could be a wash sale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.tables import Column, parse_table, positive

TRANSACTIONS = {
    "account_id": Column("str", required=True),
    "security_id": Column("str", required=True),
    "date": Column("date", required=True),
    "side": Column("str", required=True),
    "quantity": Column("float", required=True, check=positive),
    "price": Column("float", required=True, check=positive),
    "realized_gain": Column("float", default=np.nan),
}


def parse_transactions(df: pd.DataFrame | None, sec: pd.DataFrame, acc: pd.DataFrame,
                       problems: list[Problem]) -> pd.DataFrame:
    """Typed, checked transactions (empty when the case has none)."""
    if df is None:
        return _EMPTY.copy()
    tx = parse_table(df, "transactions.csv", TRANSACTIONS, problems)
    if sec is None or acc is None:
        return tx
    f = "transactions.csv"
    ids, accounts = set(sec["security_id"]), set(acc["account_id"])
    for i, row in tx.iterrows():
        if row["account_id"] and row["account_id"] not in accounts:
            problems.append(Problem(f, i, "account_id", f"unknown account {row['account_id']!r}"))
        if row["security_id"] and row["security_id"] not in ids:
            problems.append(Problem(f, i, "security_id", f"unknown security {row['security_id']!r}"))
        if row["side"] not in (None, "buy", "sell"):
            problems.append(Problem(f, i, "side", f"{row['side']!r} is not buy or sell"))
    return tx


_EMPTY = parse_table(pd.DataFrame({c: [] for c in TRANSACTIONS}), "transactions.csv", TRANSACTIONS, [])
