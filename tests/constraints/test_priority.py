"""Preferred securities (constraints.priority): buys go to the best-ranked security an account may
hold; lower ranks only where a rule forbids the better ones. Without priorities, one security per
class per account where the class's securities are substitutes to the risk model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import household, policy

from cvxrebalance import check, rebalance
from cvxrebalance.constraints import priority
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.domain.solution import Solution


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


# ---------------------------------------------------------------------------------------------
# Without priorities: one security per class per account ([trades] spread = "one_per_class")

BOND_PRICES = {"BND": 74.0, "BNDX": 50.0, "AGG": 98.0}


def etf_household(overrides: dict[str, dict] | None = None, new_account: bool = False, drop=(), **risk):
    """An IRA and a Roth, each 73% equity against a 60/40 target, holding all three bond ETFs:
    the IRA most of AGG by value (150 x $98 = $14,700; BND $7,400, BNDX $5,000), the Roth most
    of BNDX (200 x $50 = $10,000; BND $3,700, AGG $2,940). Household value $163,740: reaching
    60% equity sells 217 of the 1,200 EQ shares ($21,756 is 217.56 shares). A class covariance
    unless ``risk`` gives another model (``household``'s keywords). ``new_account`` adds a
    taxable account with $20,000 of cash and no holdings; ``drop`` lists (account, security)
    holdings left out."""
    overrides = overrides or {}
    sec = [{"security_id": "EQ", "asset_class": "equity", "price": 100.0, "half_spread": 0.0002}]
    sec += [{"security_id": s, "asset_class": "bonds", "price": p, "half_spread": 0.0002, **overrides.get(s, {})}
            for s, p in BOND_PRICES.items()]
    held = [(a, s, q) for a, s, q in (
        ("ira", "EQ", 800), ("ira", "BND", 100), ("ira", "BNDX", 100), ("ira", "AGG", 150),
        ("roth", "EQ", 400), ("roth", "BND", 50), ("roth", "BNDX", 200), ("roth", "AGG", 30)) if (a, s) not in drop]
    accounts = [{"account_id": "ira", "type": "tax_deferred", "cash": 0.0},
                {"account_id": "roth", "type": "tax_exempt", "cash": 0.0}]
    accounts += [{"account_id": "new", "type": "taxable", "cash": 20_000.0}] if new_account else []
    return household(sec, accounts,
                     [{"account_id": a, "security_id": s, "quantity": q} for a, s, q in held],
                     [{"asset_class": "equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4}], **risk)


def tickets(r) -> set[tuple[str, str, str]]:
    return set(zip(r.trades["account_id"], r.trades["security_id"], r.trades["side"], strict=True))


def every_pair(accounts=("ira", "roth"), bonds=tuple(BOND_PRICES)) -> set[tuple[str, str, str]]:
    return {(a, "EQ", "sell") for a in accounts} | {(a, b, "buy") for a in accounts for b in bonds}


NONE = {"bands": {"rule": "none"}}


def test_each_account_buys_a_class_through_the_etf_it_holds_most_of():
    """Pro rata, both accounts buy all three ETFs (six bond tickets); by default the IRA adds
    to AGG and the Roth to BNDX (two). The same 217 EQ shares are sold, every dollar of them goes
    into bonds (no cash: proceeds less costs), and the objective moves by 1e-6 of household
    value or less (16 cents here): the risk model sees the three ETFs alike."""
    h = etf_household()
    r = rebalance(h, policy(**NONE))
    old = rebalance(h, policy(**NONE, trades={"spread": "pro_rata"}))
    assert tickets(old) == every_pair()
    assert tickets(r) == {("ira", "EQ", "sell"), ("roth", "EQ", "sell"), ("ira", "AGG", "buy"),
                          ("roth", "BNDX", "buy")}
    for result in (r, old):
        sells = result.trades[result.trades["side"] == "sell"]
        buys = result.trades[result.trades["side"] == "buy"]
        assert sells["quantity"].sum() == 217
        assert 0 <= sells["value"].sum() - buys["value"].sum() <= 100  # less than one ETF share unspent
        assert check(result.solution) == []
    assert abs(r.summary["objective"]["value"] - old.summary["objective"]["value"]) <= 1e-6


@pytest.mark.parametrize(("rule", "expected"), [
    # BNDX may not be held in a Roth: the Roth's next rank is BND ($3,700 held against AGG's $2,940).
    ({"BNDX": {"allowed_account_types": "taxable;tax_deferred"}}, {("ira", "AGG"), ("roth", "BND")}),
    # AGG is excluded by the ESG screen: the IRA's next rank is BND ($7,400 against BNDX's $5,000).
    ({"AGG": {"esg_excluded": True}}, {("ira", "BND"), ("roth", "BNDX")}),
], ids=["location", "esg"])
def test_where_a_rule_forbids_the_primary_the_next_rank_is_bought(rule, expected):
    r = rebalance(etf_household(rule), policy(**NONE))
    buys = r.trades[r.trades["side"] == "buy"]
    assert set(zip(buys["account_id"], buys["security_id"], strict=True)) == expected
    assert check(r.solution) == []


def test_without_a_class_covariance_securities_are_not_interchangeable():
    """A covariance over securities (bond ETFs 95% correlated, not identical), or a class
    covariance with specific risk per ETF: the risk model tells the ETFs apart, so nothing is
    ranked and both accounts buy all three, as pro rata."""
    ids = ["EQ", *BOND_PRICES]
    vol = np.array([0.15, 0.05, 0.05, 0.05])
    corr = np.full((4, 4), 0.95)
    corr[0, :] = corr[:, 0] = 0.3
    np.fill_diagonal(corr, 1.0)
    by_security = pd.DataFrame(np.outer(vol, vol) * corr, index=ids, columns=ids).reset_index(names="id")
    for h in (etf_household(covariance=by_security), etf_household(specific=dict.fromkeys(BOND_PRICES, 1e-4))):
        assert (priority.ranking(prepare(h, policy()))[0] == -1).all()
        r = rebalance(h, policy(**NONE))
        assert tickets(r) == every_pair()
        assert check(r.solution) == []


def test_a_model_portfolio_is_not_restricted():
    """Targets per security say how much of each ETF to hold: nothing to choose between."""
    h = etf_household()
    weights = {"EQ": 0.6, "BND": 0.1, "BNDX": 0.1, "AGG": 0.2}
    targets = pd.DataFrame({"security_id": list(weights), "weight": list(weights.values())})
    model = type(h).from_frames(h.securities, h.accounts, h.holdings, targets,
                                covariance=h.risk.factor_cov.reset_index(names="asset_class"))
    assert model.target_by == "security_id"
    assert (priority.ranking(prepare(model, policy()))[0] == -1).all()


def test_substitutes_share_class_and_currency():
    """A EUR bond ETF loads the EUR row of the covariance too: it is not a substitute of the
    dollar ones, which still rank against each other."""
    h = etf_household({"BNDX": {"currency": "EUR"}}, extra_factors=["EUR"])
    data = prepare(h, policy())
    group = dict(zip(data.security_ids, priority.substitutes(data), strict=True))
    assert group["BND"] == group["AGG"] >= 0 and group["BNDX"] == group["EQ"] == -1
    r = rebalance(h, policy(**NONE))
    buys = r.trades[r.trades["side"] == "buy"]
    assert not buys.groupby("account_id")["security_id"].apply(lambda s: {"BND", "AGG"} <= set(s)).any()
    assert check(r.solution) == []


def test_the_default_ranking():
    """Held before not held, then the cheapest, the largest holding, the household's largest
    (benchmark) weight. Before all of them: with [esg] min_score the best-scored ETF (buying any
    other would only make the minimum harder to reach); with location_weight the lowest drag in
    the account's type."""

    def first(h, p) -> dict[str, str]:
        data = prepare(h, p)
        _, rank = priority.ranking(data)  # EQ, alone in its class, is unranked (NaN)
        return {data.account_ids[a]: data.security_ids[int(np.nanargmin(rank[a]))] for a in range(data.A)}

    assert first(etf_household(), policy()) == {"ira": "AGG", "roth": "BNDX"}  # same cost: most held
    # An account holding none, same costs: the household's largest holding (the largest
    # benchmark weight: AGG, $17,640 of the $43,740 of bonds).
    assert first(etf_household(new_account=True), policy())["new"] == "AGG"
    # BND trades at half the spread: the IRA adds to its (smaller) BND holding; the Roth, which
    # holds no BND here, adds to its largest (BNDX) rather than open a position; the new
    # account buys the cheapest.
    cheap = etf_household({"BND": {"half_spread": 0.0001}}, new_account=True, drop=[("roth", "BND")])
    assert first(cheap, policy()) == {"ira": "BND", "roth": "BNDX", "new": "BND"}
    scored = etf_household({"BND": {"esg_score": 9.0}, "BNDX": {"esg_score": 5.0}, "AGG": {"esg_score": 6.0}})
    assert first(scored, policy(esg={"min_score": 5.5})) == {"ira": "BND", "roth": "BND"}
    assert first(scored, policy()) == {"ira": "AGG", "roth": "BNDX"}  # no minimum: scores do not rank
    # AGG drags in the IRA's type, BNDX in the Roth's: each account's next by holdings is BND.
    dragged = etf_household({"AGG": {"drag_tax_deferred": 0.004}, "BNDX": {"drag_tax_exempt": 0.004}})
    assert first(dragged, policy(objective={"location_weight": 1.0})) == {"ira": "BND", "roth": "BND"}
    assert first(dragged, policy()) == {"ira": "AGG", "roth": "BNDX"}


def test_the_last_tie_break_is_the_security_id_not_the_row_order():
    """A new account, and bonds that tie on every key (no holdings of the household at all):
    the first security_id (AGG) is bought whichever row comes first, as a database, whose rows
    have no order, returns them."""

    def bought(order):
        sec = [{"security_id": "EQ", "asset_class": "equity", "price": 100.0}]
        sec += [{"security_id": s, "asset_class": "bonds", "price": 50.0} for s in order]
        h = household(sec, [{"account_id": "new", "type": "tax_deferred", "cash": 10_000.0}],
                      [{"account_id": "new", "security_id": "EQ", "quantity": 100.0}],
                      [{"asset_class": "equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4}])
        r = rebalance(h, policy(**NONE))
        return set(r.trades.loc[(r.trades["side"] == "buy") & (r.trades["security_id"] != "EQ"), "security_id"])

    assert bought(["BNDX", "BND", "AGG"]) == bought(["AGG", "BND", "BNDX"]) == {"AGG"}


def test_pro_rata_and_explicit_priorities_override_the_default():
    h = etf_household()
    assert tickets(rebalance(h, policy(**NONE, trades={"spread": "pro_rata"}))) == every_pair()
    ranked = etf_household({"BNDX": {"priority": 1}, "BND": {"priority": 2}})  # AGG unranked: last
    r = rebalance(ranked, policy(**NONE))
    buys = r.trades[r.trades["side"] == "buy"]
    assert set(zip(buys["account_id"], buys["security_id"], strict=True)) == {("ira", "BNDX"), ("roth", "BNDX")}


def test_the_checker_flags_a_buy_of_another_etf_than_the_accounts_primary():
    r = rebalance(etf_household(), policy(**NONE))
    s = r.solution
    d = s.data
    buy = s.buy_q.copy()
    buy[d.account_ids.index("ira"), d.security_ids.index("BND")] = 1
    found = check(Solution(d, buy, s.sell_q, s.lot_sell_q, s.contracts_q))
    assert [v.where for v in found if v.constraint == "priority"] == [
        "ira buys BND while AGG, ranked above it in its class, may be bought"]
    # A buy another rule forbids is that rule's violation, not also the ranking's.
    located = rebalance(etf_household({"BNDX": {"allowed_account_types": "tax_deferred"}}), policy(**NONE))
    s = located.solution
    buy = s.buy_q.copy()
    buy[s.data.account_ids.index("roth"), s.data.security_ids.index("BNDX")] = 1
    found = check(Solution(s.data, buy, s.sell_q, s.lot_sell_q, s.contracts_q))
    assert [v.constraint for v in found if "BNDX" in v.where] == ["location"]
