"""A factor-model household whose factor drift has a closed form: two bond funds on one rate
factor, ``duration``.

SHORT (duration 2) and LONG (duration 8), both class ``bonds`` at price 100; by default 20,000
SHORT and 10,000 LONG (value 3,000,000, no cash): weights 2/3 and 1/3, duration 4.0. The factor's
variance is 1e-4 (a 1% yearly rate volatility per year of duration). The class target (bonds
100%) is spread over the funds by current value, so the tracking term's benchmark has duration 4
too. Fully invested, a duration x needs a LONG weight of (x - 2) / 6. Cash is riskless to this
model (a bond of duration 0), so lowering duration may also raise cash; raising it cannot (cash
stays >= 0).
"""

from __future__ import annotations

import pandas as pd

from cvxrebalance import Household, Policy

RATE_VARIANCE = 1e-4
# A Treasury future on the rate factor: notional 110,000, duration per unit notional
# 95 / 0.85 / (110,000 x 1e-4) = 10.16.
TY = {"contract_id": "TYH7", "price": 110, "multiplier": 1000, "account_id": "acct", "ctd_bpv": 95.0,
      "conversion_factor": 0.85, "rate_factor": "duration"}
TY_DURATION = 95 / 0.85 / (110_000 * 1e-4)


def bond_household(factor_targets: list[dict] | None, *, account_type: str = "tax_exempt", cash: float = 0.0,
                   short: float = 20_000, long: float = 10_000, price_short: float = 100.0,
                   price_long: float = 100.0, futures: list[dict] | None = None, variance: float = RATE_VARIANCE,
                   extra_factor: dict[str, float] | None = None, name: str = "duration") -> Household:
    """The two-fund household (see the module docstring). ``cash`` is the account's (the cash
    target is its share of value); ``extra_factor`` adds a second factor ``credit`` with these
    loadings per security id (variance 1e-4); ``name`` renames the rate factor."""
    sec = pd.DataFrame([{"security_id": "SHORT", "asset_class": "bonds", "price": price_short},
                        {"security_id": "LONG", "asset_class": "bonds", "price": price_long}])
    acc = pd.DataFrame([{"account_id": "acct", "type": account_type, "cash": cash}])
    lot = {"cost_basis": 100.0, "acquired": "2020-01-02"} if account_type == "taxable" else {}
    hol = pd.DataFrame([{"account_id": "acct", "security_id": "SHORT", "quantity": short, "lot_id": "s", **lot},
                        {"account_id": "acct", "security_id": "LONG", "quantity": long, "lot_id": "l", **lot}])
    value = short * price_short + long * price_long + cash
    cash_weight = round(cash / value, 12)
    tgt = pd.DataFrame([{"asset_class": "bonds", "weight": 1 - cash_weight}]
                       + ([{"asset_class": "cash", "weight": cash_weight}] if cash else []))
    ids = ["SHORT", "LONG"] + [f["contract_id"] for f in futures or []]
    loadings = pd.DataFrame({"security_id": ids, name: [2.0, 8.0] + [0.0] * (len(ids) - 2)})
    factors = [name]
    if extra_factor is not None:
        loadings["credit"] = [extra_factor.get(s, 0.0) for s in ids]
        factors.append("credit")
    own = {name: variance, "credit": 1e-4}
    fcov = pd.DataFrame({"factor": factors, **{f: [own[f] if f == g else 0.0 for g in factors] for f in factors}})
    return Household.from_frames(sec, acc, hol, tgt, factor_loadings=loadings, factor_covariance=fcov,
                                 futures=pd.DataFrame(futures) if futures else None,
                                 factor_targets=None if factor_targets is None else pd.DataFrame(factor_targets))


def duration_band(target: float = 5.5, lower: float | None = 5.0, upper: float | None = 6.0) -> list[dict]:
    """factor_targets.csv with one row on ``duration``."""
    row = {"factor": "duration", "target": target}
    row |= {"lower": "" if lower is None else lower, "upper": "" if upper is None else upper}
    return [row]


def policy(**sections) -> Policy:
    """No class bands (the bond class is the whole household), trade date 2026-11-20."""
    return Policy.from_dict({"tax": {"as_of": "2026-11-20"}, "bands": {"rule": "none"}, **sections})


def duration_after(result) -> float:
    return float(result.factor_drift.loc["duration", "after"])


def long_weight(duration: float) -> float:
    """LONG's weight for a fully invested duration (the rest in SHORT)."""
    return (duration - 2.0) / 6.0
