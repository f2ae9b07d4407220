"""Preferred securities (constraints.priority): buys go to the best-ranked security an account may
hold; lower ranks only where a rule forbids the better ones."""

from __future__ import annotations

from builders import household, policy

from cvxrebalance import check, rebalance


def bonds_household(ranks: dict[str, float] | None):
    """Two accounts 80% equity against a 60/40 target; three bond ETFs of equal risk (the class
    covariance sees them alike), and BND may not be held in the Roth."""
    ranks = ranks or {}
    bonds = [{"security_id": s, "asset_class": "bonds", "price": p, "half_spread": 0.0002,
              **({"priority": ranks[s]} if s in ranks else {}),
              **({"allowed_account_types": "taxable;tax_deferred"} if s == "BND" else {})}
             for s, p in (("BND", 74.0), ("BNDX", 50.0), ("AGG", 98.0))]
    return household(
        [{"security_id": "EQ", "asset_class": "equity", "price": 100.0, "half_spread": 0.0002}, *bonds],
        [{"account_id": "ira", "type": "tax_deferred", "cash": 0.0},
         {"account_id": "roth", "type": "tax_exempt", "cash": 0.0}],
        [{"account_id": "ira", "security_id": "EQ", "quantity": 800},
         {"account_id": "ira", "security_id": "AGG", "quantity": 200},
         {"account_id": "roth", "security_id": "EQ", "quantity": 400},
         {"account_id": "roth", "security_id": "AGG", "quantity": 100}],
        [{"asset_class": "equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4}])


def bought(r) -> dict[str, set[str]]:
    buys = r.trades[r.trades["side"] == "buy"]
    return {a: set(buys.loc[buys["account_id"] == a, "security_id"]) for a in ("ira", "roth")}


def test_buys_go_to_the_primary_and_to_the_next_rank_where_the_primary_is_forbidden():
    r = rebalance(bonds_household({"BND": 1, "BNDX": 2, "AGG": 3}), policy(bands={"rule": "none"}))
    assert bought(r) == {"ira": {"BND"}, "roth": {"BNDX"}}  # BND may not be held in the Roth
    assert check(r.solution) == []


def test_without_ranks_the_objective_decides():
    """Without ranks the accounts add to the bond ETF they already hold (AGG): the ranks above
    are what moved the buys to BND and BNDX."""
    r = rebalance(bonds_household(None), policy(bands={"rule": "none"}))
    assert bought(r) == {"ira": {"AGG"}, "roth": {"AGG"}}


def test_the_checker_flags_a_buy_below_an_allowed_better_rank():
    from cvxrebalance.optimizer.domain.solution import Solution

    r = rebalance(bonds_household({"BND": 1, "BNDX": 2, "AGG": 3}), policy(bands={"rule": "none"}))
    s = r.solution
    buy = s.buy_q.copy()
    d = s.data
    buy[d.account_ids.index("ira"), d.security_ids.index("AGG")] = 1
    found = check(Solution(d, buy, s.sell_q, s.lot_sell_q, s.contracts_q))
    assert any(v.constraint == "priority" and "AGG" in v.where for v in found)


def test_a_primary_whose_buys_a_loss_sale_blocks_hands_the_class_to_the_next_rank():
    """Harvest mode, a $24,000 loss in VTI (priority 1) against a $50,000 year-to-date gain; VTI
    is 74.5% of the household against a 74% target. The first solve sells some VTI (a loss
    sale), so the wash-sale decision blocks VTI's buys; the
    re-solve may then buy ITOT (priority 2) and sells the whole loss lot into it. That re-solve
    opens a trade the first program had closed: it cannot reuse the first solve's workspace,
    which only ever lowers bounds (it used to, and kept ITOT closed: no harvest)."""
    securities = [{"security_id": "VTI", "asset_class": "us_equity", "price": 100, "half_spread": 0.0002,
                   "priority": 1},
                  {"security_id": "ITOT", "asset_class": "us_equity", "price": 100, "half_spread": 0.0002,
                   "priority": 2},
                  {"security_id": "BND", "asset_class": "bonds", "price": 100, "half_spread": 0.0002}]
    h = household(securities,
                  [{"account_id": "tax", "type": "taxable", "cash": 1000, "ytd_long_gain": 50_000.0}],
                  [{"account_id": "tax", "security_id": "VTI", "quantity": 1200, "lot_id": "vti-loss",
                    "cost_basis": 120, "acquired": "2025-01-06"},
                   {"account_id": "tax", "security_id": "BND", "quantity": 400, "lot_id": "bnd",
                    "cost_basis": 100, "acquired": "2020-01-06"}],
                  [{"asset_class": "us_equity", "weight": 0.74}, {"asset_class": "bonds", "weight": 0.26}],
                  vols={"us_equity": 0.16, "bonds": 0.05}, corr=0.1)
    r = rebalance(h, policy(bands={"rule": "none"}, tax={"harvest": True, "as_of": "2026-11-20"}))
    trades = set(zip(r.trades["security_id"], r.trades["side"], r.trades["quantity"], strict=True))
    # The whole loss lot sold; ITOT bought to the 74% target (119,140 of 161,000: 1,191 shares).
    assert trades == {("VTI", "sell", 1200), ("ITOT", "buy", 1191), ("BND", "buy", 18)}
    assert r.summary["taxes"]["tax"] == -4800.0  # 20% of the $24,000 loss
    assert check(r.solution) == []
