"""Synthetic households of a chosen size, for benchmarks, batch tests and scale tests.

A *universe* (securities over five asset classes, targets, an annual class covariance, optional
futures) is shared; each household draws its own accounts and lots from a seed. The first
account is taxable and holds the lots; the others are tax-deferred and tax-exempt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.household import Household

CLASSES = ["us_equity", "intl_equity", "bonds", "real_estate", "commodities"]
VOLS = np.array([0.16, 0.18, 0.05, 0.20, 0.22])
TARGET = np.array([0.40, 0.20, 0.30, 0.06, 0.02])  # + 2% cash


@dataclass
class Universe:
    """Tables every household shares."""

    securities: pd.DataFrame
    targets: pd.DataFrame
    covariance: pd.DataFrame
    specific_variance: pd.DataFrame | None
    n_contracts: int


def synthetic_universe(n_securities: int = 100, n_contracts: int = 0, seed: int = 0) -> Universe:
    """Securities spread over CLASSES with random prices and spreads; 2% cash target."""
    rng = np.random.default_rng(seed)
    cls = np.array([CLASSES[i % len(CLASSES)] for i in range(n_securities)])
    securities = pd.DataFrame({
        "security_id": [f"SEC{i:04d}" for i in range(n_securities)],
        "asset_class": cls, "price": np.round(rng.uniform(20, 400, n_securities), 2),
        "half_spread": rng.choice([0.0002, 0.0005, 0.001], n_securities),
        "esg_score": np.round(rng.uniform(2, 9, n_securities), 1),
    })
    targets = pd.DataFrame({"asset_class": [*CLASSES, "cash"], "weight": [*TARGET, 0.02]})
    corr = np.full((5, 5), 0.3) + 0.7 * np.eye(5)
    cov = pd.DataFrame(np.outer(VOLS, VOLS) * corr, index=CLASSES, columns=CLASSES)
    specific = pd.DataFrame({"id": [f"FUT{j}" for j in range(n_contracts)],
                             "variance": [0.01**2] * n_contracts}) if n_contracts else None
    return Universe(securities, targets, cov.reset_index(names="asset_class"), specific, n_contracts)


def synthetic_accounts(universe: Universe, n_accounts: int = 3, n_lots: int = 500, seed: int = 0,
                       drift: float = 0.06) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(accounts, holdings, futures) of one household; equities drift above target by ``drift``."""
    rng = np.random.default_rng(seed + 1_000_003)
    sec = universe.securities
    n_securities = len(sec)
    cls, price = sec["asset_class"].to_numpy(), sec["price"].to_numpy()
    # acct0 is the taxable account holding the lots; the others alternate between the two
    # account types that carry no lots (a fourth account used to be taxable without lots).
    others = ["tax_deferred", "tax_exempt"]
    accounts = pd.DataFrame({
        "account_id": [f"acct{a}" for a in range(n_accounts)],
        "type": [others[(a - 1) % 2] if a else "taxable" for a in range(n_accounts)],
        "cash": np.round(rng.uniform(5_000, 30_000, n_accounts), 2),
    })
    w = np.zeros(n_securities)
    tilt = TARGET + np.array([drift / 2, drift / 2, -drift, 0, 0])
    for k, c in enumerate(CLASSES):
        members = cls == c
        w[members] = tilt[k] / max(members.sum(), 1)
    value = 2_000_000 * w * rng.uniform(0.7, 1.3, n_securities)
    rows = []
    taxable_share = 0.5 if n_accounts > 1 else 1.0
    counts = np.bincount(rng.choice(n_securities, n_lots), minlength=n_securities)
    for i in range(n_securities):
        sid = sec["security_id"].iat[i]
        for k in range(counts[i]):
            days = int(rng.integers(30, 3650))
            rows.append({"account_id": "acct0", "security_id": sid,
                         "quantity": max(1.0, round(value[i] * taxable_share / counts[i] / price[i] * rng.uniform(0.5, 1.5))),
                         "lot_id": f"L{i}-{k}", "cost_basis": round(price[i] * rng.uniform(0.4, 1.3), 2),
                         "acquired": str(pd.Timestamp("2026-11-20") - pd.Timedelta(days=days))[:10]})
        for a in range(1, n_accounts):
            q = round(value[i] * (1 - taxable_share) / (n_accounts - 1) / price[i])
            if q > 0 and rng.random() < 0.7:
                rows.append({"account_id": f"acct{a}", "security_id": sid, "quantity": float(q)})
    futures = pd.DataFrame([
        {"contract_id": f"FUT{j}", "price": float(np.round(rng.uniform(1000, 5000), 1)),
         "multiplier": 50.0, "account_id": "acct0", "asset_class": CLASSES[j % len(CLASSES)],
         "margin": 10_000.0, "commission": 2.0, "half_spread": 0.0001}
        for j in range(universe.n_contracts)
    ]) if universe.n_contracts else None
    return accounts, pd.DataFrame(rows), futures


def synthetic_household(n_securities: int = 100, n_accounts: int = 3, n_lots: int = 500,
                        seed: int = 0, drift: float = 0.06, n_contracts: int = 0) -> Household:
    """A random household: ``n_lots`` tax lots in the taxable account, holdings elsewhere.

    Parameters
    ----------
    n_securities, n_accounts, n_lots : int
        Shape of the household (the first account is taxable).
    seed : int
        Random seed; the same seed gives the same household (and universe).
    drift : float
        How far equities are pushed above target (weight), so there is something to do.
    n_contracts : int
        Overlay contracts carried by the taxable account, one per asset class in turn.

    Examples
    --------
    >>> h = synthetic_household(20, 3, 60, seed=1)
    >>> len(h.securities), len(h.accounts), int((h.holdings["account_id"] == "acct0").sum())
    (20, 3, 60)
    """
    u = synthetic_universe(n_securities, n_contracts, seed)
    accounts, holdings, futures = synthetic_accounts(u, n_accounts, n_lots, seed, drift)
    return Household.from_frames(u.securities, accounts, holdings, u.targets, covariance=u.covariance,
                                 futures=futures, specific_variance=u.specific_variance,
                                 name=f"synthetic-{seed}")
