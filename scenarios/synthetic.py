"""Synthetic households of a chosen size, for benchmarks and scale tests.

Securities spread over five asset classes with a class-level annual covariance; one taxable
account holds the tax lots, the others are tax-deferred and tax-exempt.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.household import Household

CLASSES = ["us_equity", "intl_equity", "bonds", "real_estate", "commodities"]
VOLS = np.array([0.16, 0.18, 0.05, 0.20, 0.22])
TARGET = np.array([0.40, 0.20, 0.30, 0.06, 0.02])  # + 2% cash


def synthetic_household(n_securities: int = 100, n_accounts: int = 3, n_lots: int = 500,
                        seed: int = 0, drift: float = 0.06, n_contracts: int = 0) -> Household:
    """A random household: ``n_lots`` tax lots in the taxable account, holdings elsewhere.

    Parameters
    ----------
    n_securities, n_accounts, n_lots : int
        Shape of the household (the first account is taxable).
    seed : int
        Random seed; the same seed gives the same household.
    drift : float
        How far equities are pushed above target (weight), so there is something to do.
    n_contracts : int
        Overlay contracts carried by the taxable account, one per asset class in turn (equity
        index, bond, ... futures with a little basis risk).

    Examples
    --------
    >>> h = synthetic_household(20, 3, 60, seed=1)
    >>> len(h.securities), len(h.accounts), int((h.holdings["account_id"] == "acct0").sum())
    (20, 3, 60)
    """
    rng = np.random.default_rng(seed)
    cls = np.array([CLASSES[i % len(CLASSES)] for i in range(n_securities)])
    price = np.round(rng.uniform(20, 400, n_securities), 2)
    securities = pd.DataFrame({
        "security_id": [f"SEC{i:04d}" for i in range(n_securities)],
        "asset_class": cls, "price": price,
        "half_spread": rng.choice([0.0002, 0.0005, 0.001], n_securities),
        "esg_score": np.round(rng.uniform(2, 9, n_securities), 1),
    })
    types = ["taxable", "tax_deferred", "tax_exempt"]
    accounts = pd.DataFrame({
        "account_id": [f"acct{a}" for a in range(n_accounts)],
        "type": [types[a % 3] if a else "taxable" for a in range(n_accounts)],
        "cash": np.round(rng.uniform(5_000, 30_000, n_accounts), 2),
    })
    # Target value per security: class target spread equally, equities tilted up by ``drift``.
    w = np.zeros(n_securities)
    tilt = TARGET + np.array([drift / 2, drift / 2, -drift, 0, 0])
    for k, c in enumerate(CLASSES):
        members = cls == c
        w[members] = tilt[k] / max(members.sum(), 1)
    value = 2_000_000 * w * rng.uniform(0.7, 1.3, n_securities)
    rows = []
    taxable_share = 0.5
    lot_sec = rng.choice(n_securities, n_lots)
    counts = np.bincount(lot_sec, minlength=n_securities)
    for i in range(n_securities):
        if counts[i]:
            per_lot = value[i] * taxable_share / counts[i] / price[i]
            for k in range(counts[i]):
                days = int(rng.integers(30, 3650))
                rows.append({"account_id": "acct0", "security_id": securities.security_id[i],
                             "quantity": max(1.0, round(per_lot * rng.uniform(0.5, 1.5))),
                             "lot_id": f"L{i}-{k}",
                             "cost_basis": round(price[i] * rng.uniform(0.4, 1.3), 2),
                             "acquired": str(pd.Timestamp("2026-11-20") - pd.Timedelta(days=days))[:10]})
        for a in range(1, n_accounts):
            q = round(value[i] * (1 - taxable_share) / (n_accounts - 1) / price[i])
            if q > 0 and rng.random() < 0.7:
                rows.append({"account_id": f"acct{a}", "security_id": securities.security_id[i],
                             "quantity": float(q)})
    holdings = pd.DataFrame(rows)
    targets = pd.DataFrame({"asset_class": [*CLASSES, "cash"], "weight": [*TARGET, 0.02]})
    corr = np.full((5, 5), 0.3) + 0.7 * np.eye(5)
    cov = pd.DataFrame(np.outer(VOLS, VOLS) * corr, index=CLASSES, columns=CLASSES)
    futures = pd.DataFrame([
        {"contract_id": f"FUT{j}", "price": float(np.round(rng.uniform(1000, 5000), 1)),
         "multiplier": 50.0, "account_id": "acct0", "asset_class": CLASSES[j % len(CLASSES)],
         "margin": 10_000.0, "commission": 2.0, "half_spread": 0.0001}
        for j in range(n_contracts)
    ]) if n_contracts else None
    specific = pd.DataFrame({"id": [f"FUT{j}" for j in range(n_contracts)],
                             "variance": [0.01**2] * n_contracts}) if n_contracts else None
    return Household.from_frames(securities, accounts, holdings, targets,
                                 covariance=cov.reset_index(names="asset_class"),
                                 futures=futures, specific_variance=specific,
                                 name=f"synthetic-{seed}")
