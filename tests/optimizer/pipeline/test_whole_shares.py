"""The exact whole-share search (optimizer.pipeline.whole_shares) against exhaustive enumeration.

Tiny households (one account, one security per class, shares worth 2-9% of the household, narrow
bands) are where whole shares decide feasibility. Every whole-share trade list of such a
household can be enumerated and put to the checker, so the tests compare the product's verdicts
with the complete answer: a proof of infeasibility only where no list passes, a result wherever
one does.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from builders import household, policy

from cvxrebalance import InfeasibilityError, rebalance
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.domain.solution import Solution
from cvxrebalance.optimizer.pipeline import checker, whole_shares

SEEDS = range(40)


def tiny(seed: int, tickets: bool = False):
    """One account (taxable with one lot per security, or tax-exempt), two or three securities of
    different classes, cash targets and narrow absolute bands drawn from ``seed``; with
    ``tickets``, a $1,500 minimum trade and round lots of 3 shares."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4))
    classes = ["eq", "fi", "re"][:n]
    kind = ["taxable", "tax_exempt"][seed % 2]
    cash = float(np.round(rng.uniform(1_000, 6_000), 2))
    securities, holdings = [], []
    for i, c in enumerate(classes):
        price = float(np.round(rng.uniform(200, 900), 2))
        securities.append({"security_id": f"S{i}", "asset_class": c, "price": price,
                           "half_spread": float(rng.choice([0.0, 0.001])), "lot_size": 3.0 if tickets else 1.0})
        q = int(rng.integers(0, 12))
        if q:
            row = {"account_id": "A", "security_id": f"S{i}", "quantity": float(q)}
            if kind == "taxable":
                row |= {"lot_id": f"L{i}", "cost_basis": float(np.round(price * rng.uniform(0.5, 1.5), 2)),
                        "acquired": "2020-01-15"}
            holdings.append(row)
    if not holdings:
        holdings.append({"account_id": "A", "security_id": "S0", "quantity": 3.0, "lot_id": "L0",
                         "cost_basis": 100.0, "acquired": "2020-01-15"} if kind == "taxable" else
                        {"account_id": "A", "security_id": "S0", "quantity": 3.0})
    accounts = [{"account_id": "A", "type": kind, "cash": cash,
                 "min_cash": float(np.round(rng.uniform(0, 0.3) * cash, 2))}]
    w = rng.dirichlet(np.ones(n + 1))
    targets = [{"asset_class": c, "weight": float(x)} for c, x in zip(classes, w, strict=False)]
    targets.append({"asset_class": "cash", "weight": float(1 - w[:n].sum())})
    h = household(securities, accounts, holdings, targets)
    p = policy(bands={"rule": "absolute", "absolute": float(rng.choice([0.01, 0.02, 0.04]))},
               trigger={"rebalance_to": ["target", "tolerance"][seed % 3 % 2]},
               trades={"min_value": 1500.0 if tickets else 0.0})
    return h, p


def every_list(h, p) -> list[Solution]:
    """Every whole-share trade list of a tiny household that the checker passes (one account, so
    a position's trade is its change in shares; a sale takes from the one lot)."""
    d = prepare(h, p)
    ranges = []
    for i in range(d.N):
        # A class weight after trading lies within [n p / V, n p / (0.98 V)] (costs are under 2%
        # of V here), so counts outside the band widened by 0.02 cannot pass.
        k = d.X[i].argmax()
        lo, hi = (d.lower[k] - 0.02) * d.V / d.price[i], (d.upper[k] + 0.02) * d.V / d.price[i]
        ranges.append(range(max(0, int(np.floor(lo))), int(np.ceil(hi)) + 1))
    passing = []
    for counts in itertools.product(*ranges):
        change = np.array(counts, float) - d.q0[0]
        buy = np.maximum(change, 0.0)[None, :]
        sell = np.maximum(-change, 0.0)[None, :]
        lots = sell[0, d.lot_security] if d.L else np.zeros(0)
        sol = Solution(d, buy, sell, lots)
        if not checker.check(sol):
            passing.append(sol)
    return passing


@pytest.mark.parametrize("tickets", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_verdict_agrees_with_enumeration(seed, tickets):
    """With ticket rules too: the enumeration's checker holds every list to the minimum and the
    round lots, and so must the search's proof."""
    h, p = tiny(seed, tickets)
    passing = every_list(h, p)
    try:
        result = rebalance(h, p)
    except InfeasibilityError as exc:
        assert not passing, f"a whole-share list passes the checker, yet: {exc}"
        text = str(exc)
        assert "proved that no whole-share trade list" in text or "fractional shares" not in text
        return
    assert result.summary["checks"]["passed"] and checker.check(result.solution) == []


@pytest.mark.parametrize("tickets", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_search_finds_a_list_exactly_when_one_exists(seed, tickets):
    """The search itself, on the original policy and from no starting point: its second stage
    (every position free) finds a list that passes the checker, or proves there is none."""
    h, p = tiny(seed, tickets)
    passing = every_list(h, p)
    found = whole_shares.search(prepare(h, p), {}, None)
    if passing:
        assert found.solution is not None, found.status
        assert checker.check(found.solution) == []
    else:
        assert found.solution is None and (found.status, found.stage) == ("infeasible", 2)


def test_a_band_narrower_than_one_share_is_proven_infeasible():
    """The 5/25 band of a 0.2% class whose one security costs 0.31% a share: no count of shares
    fits (0 is under the band, 1 over it)."""
    securities = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0},
                  {"security_id": "FI", "asset_class": "fi", "price": 310.0}]
    h = household(securities, [{"account_id": "A", "type": "tax_exempt", "cash": 40_000.0}],
                  [{"account_id": "A", "security_id": "EQ", "quantity": 600.0}],
                  [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.002},
                   {"asset_class": "cash", "weight": 0.398}])
    p = policy(bands={"rule": "5/25"})
    with pytest.raises(InfeasibilityError, match="proved that no whole-share trade list") as info:
        rebalance(h, p)
    assert any(name.startswith("bands.") and "fi" in name for name, _ in info.value.conflicts)
    assert every_list(h, p) == []
