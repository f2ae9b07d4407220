"""Builders: small households written inline, so each test shows its own numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvxrebalance import Household, Policy  # noqa: F401  (re-exported for tests)


def household(
    securities: list[dict],
    accounts: list[dict],
    holdings: list[dict],
    targets: list[dict],
    vols: dict[str, float] | None = None,
    corr: float = 0.3,
    covariance: pd.DataFrame | None = None,
    futures: list[dict] | None = None,
    specific: dict[str, float] | None = None,
    extra_factors: list[str] = (),
    swaps: list[dict] | None = None,
) -> Household:
    """A household from row dicts; the risk model defaults to a class covariance with ``vols``
    (annual, default 15% for every class and for ``extra_factors`` such as currencies) and one
    correlation ``corr`` between them. ``specific`` gives specific variances (basis risk)."""
    sec = pd.DataFrame(securities)
    if covariance is None:
        classes = sorted(set(sec["asset_class"])) + list(extra_factors)
        v = np.array([(vols or {}).get(c, 0.15) for c in classes])
        R = np.full((len(classes), len(classes)), corr)
        np.fill_diagonal(R, 1.0)
        cov = pd.DataFrame(np.outer(v, v) * R, index=classes, columns=classes)
        covariance = cov.reset_index(names="asset_class")
    return Household.from_frames(
        sec, pd.DataFrame(accounts), pd.DataFrame(holdings), pd.DataFrame(targets),
        covariance=covariance,
        futures=pd.DataFrame(futures) if futures else None,
        specific_variance=pd.DataFrame({"id": list(specific), "variance": list(specific.values())})
        if specific else None,
        swaps=pd.DataFrame(swaps) if swaps else None,
    )


def policy(**sections) -> Policy:
    """A policy from keyword sections, e.g. ``policy(bands={"rule": "none"})``."""
    return Policy.from_dict({"tax": {"as_of": "2026-11-20"}, **sections})




def two_account_household(**overrides) -> Household:
    """A taxable account with lots and an IRA; US equity overweight, bonds underweight.

    Securities: EQ (us_equity, 100), EQ2 (us_equity, 50), BD (bonds, 50), MUNI (bonds, 40; taxable
    only), PE (private_equity, 10, illiquid), SIN (us_equity, 80, ESG-excluded).
    """
    securities = [
        {"security_id": "EQ", "asset_class": "us_equity", "price": 100, "esg_score": 6, "half_spread": 0.0005},
        {"security_id": "EQ2", "asset_class": "us_equity", "price": 50, "esg_score": 7, "half_spread": 0.0005},
        {"security_id": "BD", "asset_class": "bonds", "price": 50, "esg_score": 5, "half_spread": 0.0002},
        {"security_id": "MUNI", "asset_class": "bonds", "price": 40, "esg_score": 5, "half_spread": 0.001,
         "allowed_account_types": "taxable"},
        {"security_id": "PE", "asset_class": "private_equity", "price": 10, "liquid": False},
        {"security_id": "SIN", "asset_class": "us_equity", "price": 80, "esg_score": 1,
         "esg_excluded": True, "half_spread": 0.0005},
    ]
    accounts = [
        {"account_id": "tax", "type": "taxable", "cash": 5_000, "min_cash": 1_000},
        {"account_id": "ira", "type": "tax_deferred", "cash": 1_000},
    ]
    holdings = [
        {"account_id": "tax", "security_id": "EQ", "quantity": 1000, "lot_id": "EQ-old",
         "cost_basis": 40, "acquired": "2015-03-02"},
        {"account_id": "tax", "security_id": "EQ", "quantity": 500, "lot_id": "EQ-new",
         "cost_basis": 95, "acquired": "2026-06-01"},
        {"account_id": "tax", "security_id": "EQ", "quantity": 300, "lot_id": "EQ-loss",
         "cost_basis": 120, "acquired": "2024-01-10"},
        {"account_id": "tax", "security_id": "SIN", "quantity": 200, "lot_id": "SIN-1",
         "cost_basis": 60, "acquired": "2020-05-05"},
        {"account_id": "ira", "security_id": "EQ", "quantity": 600},
        {"account_id": "ira", "security_id": "BD", "quantity": 1200},
        {"account_id": "ira", "security_id": "PE", "quantity": 2000},
    ]
    targets = [
        {"asset_class": "us_equity", "weight": 0.55},
        {"asset_class": "bonds", "weight": 0.35},
        {"asset_class": "private_equity", "weight": 0.07},
        {"asset_class": "cash", "weight": 0.03},
    ]
    args = {"securities": securities, "accounts": accounts, "holdings": holdings, "targets": targets,
            "vols": {"us_equity": 0.16, "bonds": 0.05, "private_equity": 0.25}}
    args.update(overrides)
    return household(**args)


def lagged_fund_household(scale: float = 1.0, cells: dict[str, dict] | None = None, **fund) -> Household:
    """A $10,000,000 endowment (one tax-exempt account, no cash, no costs) whose private-equity
    fund is reported at $1,000,000 (1,000 shares at 1,000); ``fund`` adds the valuation columns
    to the fund's row (securities.csv line 4), ``cells`` to any row by security id, and ``scale``
    multiplies every price (the valuation columns' money is the caller's).

    Reported weights: equity 54% (50,000 EQ at 108), bonds 36% (36,000 BD at 100), private equity
    10%. Targets 56/34/10 with bands 53.75-60, 30-40 and 5-15: inside every band as reported.
    Securities: EQ (line 2), BD (line 3), PE (line 4, illiquid), PE2 (line 5, illiquid, not held).
    """
    securities = [
        {"security_id": "EQ", "asset_class": "equity", "price": 108.0 * scale},
        {"security_id": "BD", "asset_class": "bonds", "price": 100.0 * scale},
        {"security_id": "PE", "asset_class": "private_equity", "price": 1000.0 * scale, "liquid": False,
         **fund},
        {"security_id": "PE2", "asset_class": "private_equity", "price": 500.0 * scale, "liquid": False},
    ]
    securities = [{**row, **(cells or {}).get(row["security_id"], {})} for row in securities]
    return household(
        securities, [{"account_id": "endow", "type": "tax_exempt", "cash": 0.0}],
        [{"account_id": "endow", "security_id": "EQ", "quantity": 50_000},
         {"account_id": "endow", "security_id": "BD", "quantity": 36_000},
         {"account_id": "endow", "security_id": "PE", "quantity": 1_000}],
        [{"asset_class": "equity", "weight": 0.56, "lower": 0.5375, "upper": 0.60},
         {"asset_class": "bonds", "weight": 0.34, "lower": 0.30, "upper": 0.40},
         {"asset_class": "private_equity", "weight": 0.10, "lower": 0.05, "upper": 0.15}])


# The lagged fund's valuation: reported on 2026-09-30, when its proxy EQ stood at 100 (108 now:
# +8%), beta 1.2, so 1,000,000 x (1 + 1.2 x 0.08) = 1,096,000.
LAGGED = {"valuation_date": "2026-09-30", "proxy": "EQ", "proxy_price": 100.0, "proxy_beta": 1.2}
