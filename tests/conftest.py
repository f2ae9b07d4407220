"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
from builders import household
from hypothesis import settings

from cvxrebalance import Household


@pytest.fixture
def seed_household() -> Household:
    """Seed 002's worked example in one tax-deferred account, without costs."""
    return household(
        securities=[
            {"security_id": "VTI", "asset_class": "stocks", "price": 220},
            {"security_id": "VXUS", "asset_class": "stocks", "price": 58},
            {"security_id": "BND", "asset_class": "bonds", "price": 75},
            {"security_id": "VNQ", "asset_class": "real_estate", "price": 85},
        ],
        accounts=[{"account_id": "ira", "type": "tax_deferred", "cash": 0}],
        holdings=[
            {"account_id": "ira", "security_id": s, "quantity": q}
            for s, q in [("VTI", 5000), ("VXUS", 2000), ("BND", 8000), ("VNQ", 1000)]
        ],
        targets=[
            {"asset_class": "stocks", "weight": 0.6},
            {"asset_class": "bonds", "weight": 0.3},
            {"asset_class": "real_estate", "weight": 0.1},
        ],
    )


# CI runs the property tests on a fixed set of examples (reproducible landings); locally they
# draw new examples every run.
if os.environ.get("CI"):
    settings.register_profile("ci", derandomize=True, deadline=None)
    settings.load_profile("ci")
