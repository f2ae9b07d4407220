"""Client restrictions (restrictions.csv): no_buy, no_hold and class substitutes, in closed-form
households; the checker and the independent checker catch each one broken; an infeasible
restriction names itself.

Jones (100,000, one IRA, no costs, bands off): LMT (equity, tag defense) 100 x 100, VTI (equity)
250 x 200, BND (bonds) 800 x 50: equity 60% and bonds 40%, on target.

Smith (100,000, no costs, no gains): tax (taxable) VTI 250 x 200 and BND 500 x 50; ira VTI 50 x 200
and BND 300 x 50: equity 60% and bonds 40%, on target. "In taxable accounts hold muni_bonds (MUB,
100) in place of bonds" with bonds sold there (no_hold). MUB's risk is BND's (the covariance rows
are equal), so tracking error is indifferent to the split; the benchmark spreads the bonds target
over bonds and munis by current value (all BND), so the optimum keeps as much BND as it can: the
ira (25,000) holds 25,000 of the 40,000 of bonds (sells its 50 VTI, buys 200 BND) and tax sells
its 500 BND and buys 150 MUB and 50 VTI.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from builders import policy
from independent_check import independent_violations

from cvxrebalance import Household, InfeasibilityError, check, rebalance
from cvxrebalance.optimizer.domain.solution import Solution

NO_BANDS = {"bands": {"rule": "none"}}
COV = pd.DataFrame({"id": ["equity", "bonds", "muni_bonds"], "equity": [0.0225, 0.0, 0.0],
                    "bonds": [0.0, 0.0036, 0.0036], "muni_bonds": [0.0, 0.0036, 0.0036]})


def jones(restrictions: list[dict], cash: float = 0.0, targets: list[dict] | None = None,
          liquid_lmt: bool = True, vti_spread: float = 0.0) -> Household:
    sec = pd.DataFrame([
        {"security_id": "LMT", "asset_class": "equity", "price": 100, "tag": "defense;aerospace",
         "liquid": liquid_lmt},
        {"security_id": "VTI", "asset_class": "equity", "price": 200, "tag": "", "half_spread": vti_spread},
        {"security_id": "BND", "asset_class": "bonds", "price": 50, "tag": ""},
    ])
    acc = pd.DataFrame([{"account_id": "ira", "type": "tax_deferred", "cash": cash}])
    hol = pd.DataFrame([{"account_id": "ira", "security_id": s, "quantity": q}
                        for s, q in (("LMT", 100), ("VTI", 250), ("BND", 800))])
    tgt = pd.DataFrame(targets or [{"asset_class": "equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4}])
    return Household.from_frames(sec, acc, hol, tgt, covariance=COV.iloc[:2, :3], name="jones",
                                 restrictions=pd.DataFrame(restrictions))


def smith(rule: str = "no_hold", tax: tuple[int, int] = (250, 500), ira: tuple[int, int] = (50, 300),
          contribution: float = 0.0) -> Household:
    """Smith: ``tax`` and ``ira`` are the (VTI, BND) shares held."""
    sec = pd.DataFrame([
        {"security_id": "VTI", "asset_class": "equity", "price": 200},
        {"security_id": "BND", "asset_class": "bonds", "price": 50},
        {"security_id": "MUB", "asset_class": "muni_bonds", "price": 100},
    ])
    acc = pd.DataFrame([{"account_id": "tax", "type": "taxable", "cash": 0, "cash_flow": contribution},
                        {"account_id": "ira", "type": "tax_deferred", "cash": 0}])
    lots = [{"account_id": "tax", "security_id": s, "quantity": q, "lot_id": s, "cost_basis": p,
             "acquired": "2020-01-02"} for s, q, p in (("VTI", tax[0], 200), ("BND", tax[1], 50)) if q]
    hol = pd.DataFrame(lots + [{"account_id": "ira", "security_id": s, "quantity": q}
                               for s, q in (("VTI", ira[0]), ("BND", ira[1])) if q])
    tgt = pd.DataFrame([{"asset_class": "equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4}])
    res = pd.DataFrame([{"household_id": "smith", "account_type": "taxable", "asset_class": "bonds", "rule": rule,
                         "substitute": "muni_bonds"}])
    return Household.from_frames(sec, acc, hol, tgt, covariance=COV, name="smith", restrictions=res)


def trades(result) -> dict[tuple[str, str, str], float]:
    t = result.trades
    return {(a, s, side): q for a, s, side, q in zip(t["account_id"], t["security_id"], t["side"], t["quantity"],
                                                    strict=True)}


def tampered(result, **changes) -> Solution:
    """The result's solution with some (A, N) share arrays changed."""
    s = result.solution
    return Solution(s.data, changes.get("buy_q", s.buy_q), changes.get("sell_q", s.sell_q),
                    changes.get("lot_sell_q", s.lot_sell_q))


def with_trade(result, row: dict) -> SimpleNamespace:
    """The result's tables with one more trade (for the independent checker)."""
    extra = pd.DataFrame([{"price": 1.0, "value": 0.0, "cost": 0.0, **row}])
    return SimpleNamespace(trades=pd.concat([result.trades, extra], ignore_index=True), lots=result.lots,
                           summary=result.summary, futures=result.futures)


def test_no_hold_sells_exactly_the_tagged_holding_and_buys_the_rest_of_its_class():
    h = jones([{"tag": "defense", "rule": "no_hold"}])
    r = rebalance(h, policy(**NO_BANDS))
    assert trades(r) == {("ira", "LMT", "sell"): 100, ("ira", "VTI", "buy"): 50}  # 10,000 each
    reason = r.trades.set_index("security_id").loc["LMT", ["reason", "reason_detail"]].tolist()
    assert reason == ["restriction", "jones's no_hold tag 'defense' in every account (restrictions.csv line 2)"]
    assert check(r.solution) == [] and independent_violations(h, policy(**NO_BANDS), r) == []


def test_no_buy_keeps_the_holding_and_buys_the_class_elsewhere():
    # 20,000 more to invest (120,000): equity needs 12,000 more, bonds 8,000, none of it in LMT.
    # LMT trades for free and VTI costs 0.1%, so without the rule equity is bought as LMT; with it,
    # the 12,000 for equity buys 59 VTI (12,000 / (200 x 1.001) = 59.9, in whole shares).
    h = jones([{"security_id": "LMT", "rule": "no_buy"}], cash=20_000, vti_spread=0.001)
    r = rebalance(h, policy(**NO_BANDS))
    assert {k[:2]: q for k, q in trades(r).items()} == {("ira", "VTI"): 59, ("ira", "BND"): 160}
    assert r.solution.q_after[0, 0] == 100  # LMT kept
    free = rebalance(jones([], cash=20_000, vti_spread=0.001), policy(**NO_BANDS))
    assert trades(free) == {("ira", "LMT", "buy"): 120, ("ira", "BND", "buy"): 160}


def test_a_restriction_binds_only_in_its_accounts():
    sec = pd.DataFrame([{"security_id": "LMT", "asset_class": "equity", "price": 100, "tag": "defense"},
                        {"security_id": "VTI", "asset_class": "equity", "price": 200, "tag": ""}])
    acc = pd.DataFrame([{"account_id": "roth", "type": "tax_exempt", "cash": 0},
                        {"account_id": "ira", "type": "tax_deferred", "cash": 0}])
    hol = pd.DataFrame([{"account_id": a, "security_id": "LMT", "quantity": 100} for a in ("roth", "ira")])
    tgt = pd.DataFrame([{"asset_class": "equity", "weight": 1.0}])
    h = Household.from_frames(sec, acc, hol, tgt, covariance=COV.iloc[:1, :2],
                              restrictions=pd.DataFrame([{"account_id": "roth", "tag": "defense", "rule": "no_hold"}]))
    r = rebalance(h, policy(**NO_BANDS))
    assert trades(r) == {("roth", "LMT", "sell"): 100, ("roth", "VTI", "buy"): 50}


def test_a_held_restriction_trades_even_when_the_trigger_says_no():
    h = jones([{"tag": "aerospace", "rule": "no_hold"}])
    r = rebalance(h, policy(trigger={"mode": "threshold"}))  # every class inside its band
    assert r.summary["rebalanced"] and ("ira", "LMT", "sell") in trades(r)
    assert any("not trading would break restrictions" in x for x in r.summary["trigger"]["reasons"])


def test_the_checkers_catch_a_broken_restriction():
    h = jones([{"tag": "defense", "rule": "no_hold"}])
    r = rebalance(h, policy(**NO_BANDS))
    kept = np.zeros_like(r.solution.sell_q)
    found = check(tampered(r, sell_q=kept, buy_q=np.zeros_like(kept)))
    assert [v.where for v in found if v.constraint == "restrictions"] == [
        "ira still holds LMT against no_hold tag 'defense' in every account (restrictions.csv line 2)"]
    bought = r.solution.buy_q.copy()
    bought[0, 0] = 5  # LMT
    assert any(v.constraint == "restrictions" and v.where.startswith("ira bought LMT against no_hold tag")
               for v in check(tampered(r, buy_q=bought)))
    bad = with_trade(r, {"account_id": "ira", "security_id": "LMT", "side": "buy", "quantity": 5})
    found = independent_violations(h, policy(**NO_BANDS), bad)
    assert "ira bought 5 LMT against restrictions.csv line 2 (no_hold)" in found
    assert "ira still holds 5 LMT against restrictions.csv line 2 (no_hold)" in found


@pytest.mark.parametrize("solver", ["PIQP", "CLARABEL"])
def test_the_muni_client_holds_munis_in_taxable_and_bonds_in_the_ira(solver):
    h, p = smith(), policy(**NO_BANDS, solver={"name": solver})
    r = rebalance(h, p)
    assert trades(r) == {("tax", "BND", "sell"): 500, ("tax", "MUB", "buy"): 150, ("tax", "VTI", "buy"): 50,
                         ("ira", "VTI", "sell"): 50, ("ira", "BND", "buy"): 200}
    after = r.solution.q_after
    assert after[0].tolist() == [300, 0, 150] and after[1].tolist() == [0, 500, 0]  # tax, ira: VTI, BND, MUB
    assert r.summary["asset_classes"]["bonds"]["after"] == pytest.approx(0.4)  # MUB counts as bonds
    assert "muni_bonds" not in r.summary["asset_classes"]
    detail = r.trades.set_index(["account_id", "security_id"]).loc[("tax", "BND"), "reason_detail"]
    assert detail == ("smith's no_hold asset_class 'bonds' in taxable accounts, muni_bonds in its place "
                      "(restrictions.csv line 2)")
    assert check(r.solution) == [] and independent_violations(h, p, r) == []


def test_a_substitute_with_a_zero_target_row_stays_an_empty_class():
    """A batch's shared targets.csv may list muni_bonds at 0 (for households holding munis without
    a substitute): for Smith it is an empty class and the munis count as bonds."""
    tgt = pd.DataFrame([{"asset_class": "equity", "weight": 0.6}, {"asset_class": "bonds", "weight": 0.4},
                        {"asset_class": "muni_bonds", "weight": 0.0}])
    h = smith()
    sec = pd.DataFrame({c: h.securities[c].tolist() for c in ("security_id", "asset_class", "price")})
    h = Household.from_frames(sec, h.accounts.reset_index(drop=True), h.holdings.reset_index(drop=True), tgt,
                              covariance=COV, restrictions=h.restrictions.reset_index(drop=True), name="smith")
    p = policy(bands={"rule": "5/25"})
    r = rebalance(h, p)
    assert trades(r) == trades(rebalance(smith(), p))
    classes = r.summary["asset_classes"]
    assert classes["muni_bonds"]["after"] == 0 and classes["bonds"]["after"] == pytest.approx(0.4)
    assert independent_violations(h, p, r) == []


def test_piqp_and_clarabel_agree_on_restricted_households():
    for h in (smith(), smith("no_buy"), jones([{"tag": "defense", "rule": "no_hold"}], cash=7_000)):
        a = rebalance(h, policy(**NO_BANDS, solver={"name": "PIQP"}))
        b = rebalance(h, policy(**NO_BANDS, solver={"name": "CLARABEL"}))
        assert trades(a) == trades(b)


def test_no_buy_substitute_keeps_taxable_bonds_and_buys_munis_with_new_money():
    # tax VTI 300 + BND 300, ira BND 500 (100,000); 20,000 contributed to tax must go to equity
    # (12,000) and bonds (8,000). The ira holds only bonds and no cash, and tax may not buy BND:
    # it keeps its 300 BND and buys 80 MUB and 60 VTI.
    h = smith("no_buy", tax=(300, 300), ira=(0, 500), contribution=20_000)
    r = rebalance(h, policy(**NO_BANDS))
    assert trades(r) == {("tax", "MUB", "buy"): 80, ("tax", "VTI", "buy"): 60}
    assert independent_violations(h, policy(**NO_BANDS), r) == []


def test_the_checkers_catch_a_substitute_bought_outside_its_accounts():
    h = smith()
    r = rebalance(h, policy(**NO_BANDS))
    bought = r.solution.buy_q.copy()
    bought[1, 2] = 10  # MUB in the ira
    found = [v.where for v in check(tampered(r, buy_q=bought)) if v.constraint == "location"]
    assert found == ["ira may not buy MUB (muni_bonds) stands in for bonds only in tax (restrictions.csv substitute)"]
    bad = with_trade(r, {"account_id": "ira", "security_id": "MUB", "side": "buy", "quantity": 10})
    assert "ira bought 10 MUB, a substitute (muni_bonds) outside the accounts it stands in for" in \
        independent_violations(h, policy(**NO_BANDS), bad)
    bonds = with_trade(r, {"account_id": "tax", "security_id": "BND", "side": "buy", "quantity": 10})
    assert "tax bought 10 BND against restrictions.csv line 2 (no_hold)" in \
        independent_violations(h, policy(**NO_BANDS), bonds)


def test_no_hold_on_the_only_security_of_a_banded_class_is_infeasible_and_named():
    # Defense is its own class at 10% with a 5-point band; its only security must be sold.
    targets = [{"asset_class": "equity", "weight": 0.5}, {"asset_class": "bonds", "weight": 0.4},
               {"asset_class": "defense", "weight": 0.1}]
    sec = pd.DataFrame([{"security_id": "LMT", "asset_class": "defense", "price": 100, "tag": "defense"},
                        {"security_id": "VTI", "asset_class": "equity", "price": 200},
                        {"security_id": "BND", "asset_class": "bonds", "price": 50}])
    acc = pd.DataFrame([{"account_id": "ira", "type": "tax_deferred", "cash": 0}])
    hol = pd.DataFrame([{"account_id": "ira", "security_id": s, "quantity": q}
                        for s, q in (("LMT", 100), ("VTI", 250), ("BND", 800))])
    cov = pd.DataFrame({"id": ["equity", "bonds", "defense"], "equity": [0.0225, 0, 0.01],
                        "bonds": [0, 0.0036, 0], "defense": [0.01, 0, 0.04]})
    h = Household.from_frames(sec, acc, hol, pd.DataFrame(targets), covariance=cov,
                              restrictions=pd.DataFrame([{"tag": "defense", "rule": "no_hold"}]))
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, policy(bands={"rule": "absolute", "absolute": 0.05}))
    # 5 points short in all (LMT's 10% against a 5% floor); the elastic program may split them.
    label = "restrictions.no_hold[line 2: tag 'defense' in every account]"
    conflicts = dict(err.value.conflicts)
    assert set(conflicts) <= {label, "bands.lower[defense]"} and sum(conflicts.values()) == pytest.approx(0.05)
    if "bands.lower[defense]" in conflicts:  # the band's side of it is a trade bound: explained
        assert ("defense: buys of LMT in ira are forbidden by no_hold tag 'defense' in every account "
                "(restrictions.csv line 2)") in str(err.value)
    else:
        assert label in str(err.value)


def test_a_forbidden_buy_behind_a_band_is_explained():
    # Bonds at 20% against a 40% +- 5 band and the only bond fund may not be bought: the band is
    # what the elastic program can name; the explanation names the restriction (a trade bound).
    h = jones([{"security_id": "BND", "rule": "no_buy"}], cash=0.0)
    hol = h.holdings.copy()
    hol.loc[hol["security_id"] == "BND", "quantity"] = 300.0  # 15,000 of 75,000
    import dataclasses
    h = dataclasses.replace(h, holdings=hol)
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, policy(bands={"rule": "absolute", "absolute": 0.05}))
    assert "bands.lower[bonds]" in [n for n, _ in err.value.conflicts]
    assert ("bonds: buys of BND in ira are forbidden by no_buy security_id 'BND' in every account "
            "(restrictions.csv line 2)") in str(err.value)


def test_no_hold_on_an_illiquid_holding_is_infeasible_and_says_why():
    h = jones([{"tag": "defense", "rule": "no_hold"}], liquid_lmt=False)
    with pytest.raises(InfeasibilityError) as err:
        rebalance(h, policy(**NO_BANDS))
    label = "restrictions.no_hold[line 2: tag 'defense' in every account]"
    assert [n for n, _ in err.value.conflicts] == [label]
    assert dict(err.value.conflicts)[label] == pytest.approx(0.1)  # LMT's 10% stays
    assert ("no_hold tag 'defense' in every account (restrictions.csv line 2) would sell LMT in ira, which is "
            "illiquid and never traded") in str(err.value)


@pytest.mark.parametrize("seed", range(12))
def test_random_households_with_restrictions_pass_both_checkers(seed):
    """The property family (golden_cases.random_household) with random rules: a tag on some
    securities sold down in some account type, a class not bought in one account, a security not
    bought anywhere. The result passes both checkers, or the verdict is a true infeasibility."""
    import dataclasses

    from golden_cases import random_household

    from cvxrebalance.optimizer.domain.errors import Problem
    from cvxrebalance.optimizer.domain.prepare import prepare
    from cvxrebalance.optimizer.domain.restrictions import class_targets, parse_restrictions
    from cvxrebalance.optimizer.pipeline.problem import Solver

    h, p = random_household(seed)
    if seed % 3:  # mostly without bands or a turnover limit, which leave most of the family feasible
        p = p.replace(bands={"rule": "none"}, limits={"turnover": 1.0}, trigger={"rebalance_to": "target"})
    rng = np.random.default_rng(seed)
    sec = h.securities.assign(tag=[("sin",) if rng.random() < 0.3 else () for _ in range(len(h.securities))])
    sec.loc[sec.index[-1], "tag"] = ("sin",)  # at least one security carries it
    rows = [{"tag": "sin", "rule": "no_hold", "account_type": str(rng.choice(["taxable", "tax_deferred"]))},
            {"account_id": str(rng.choice(h.accounts["account_id"])), "asset_class": "eq", "rule": "no_buy"},
            {"security_id": str(rng.choice(sec["security_id"])), "rule": "no_buy"}]
    problems: list[Problem] = []
    res = parse_restrictions(pd.DataFrame(rows), sec, h.accounts, class_targets(h.targets, "id"), h.name, problems)
    assert problems == []
    h = dataclasses.replace(h, securities=sec, restrictions=res)
    try:
        r = rebalance(h, p)
    except InfeasibilityError as exc:
        proven = ("proved that no whole-share trade list meets it" in str(exc)
                  or "found no whole-share trade list" in str(exc))
        assert Solver(prepare(h, p)).solve() is None or proven, str(exc)
        return
    assert check(r.solution) == [] and independent_violations(h, p, r) == []
    sold_down = r.solution.q_after * of_rows(r, "no_hold")
    assert not sold_down.any()


def of_rows(result, rule: str) -> np.ndarray:
    """(A, N) the positions the result's household restricts with ``rule``."""
    from cvxrebalance.optimizer.domain.restrictions import of

    res = of(result.solution.data)
    picked = [r for r in range(len(res.rule)) if res.rule[r] == rule]
    return res.position[picked].any(0) if picked else np.zeros(result.solution.q_after.shape, bool)


def test_a_substitute_trade_says_it_stands_in_for_its_class():
    """MUB bought in the taxable account is there because munis stand in for bonds there: reason
    ``substitute`` (it was ``drift``, or ``rebalance`` when no term explained it)."""
    r = rebalance(smith(), policy(**NO_BANDS))
    t = r.trades.set_index(["account_id", "security_id"])
    assert t.loc[("tax", "MUB"), ["reason", "reason_detail"]].tolist() == [
        "substitute", "MUB stands in for bonds in taxable accounts (client rule: restrictions.csv line 2)"]
    words = {(w["account_id"], w["security_id"]): w["words"] for w in r.summary["trade_words"]}
    assert words[("tax", "MUB")] == "Stands in for bonds in taxable accounts (client restriction 1)"
    # New money: the buy also invests the contribution, and says so; VTI is a plain contribution.
    h = smith("no_buy", tax=(300, 300), ira=(0, 500), contribution=20_000)
    t = rebalance(h, policy(**NO_BANDS)).trades.set_index("security_id")
    assert t.loc["MUB", ["reason", "reason_detail"]].tolist() == [
        "substitute", "MUB stands in for bonds in taxable accounts (client rule: restrictions.csv line 2); "
        "invests the 20,000.00 contributed to tax"]
    assert t.loc["VTI", "reason"] == "contribution"


def test_the_client_reads_each_restriction_by_number_in_plain_words():
    """The proposal names a restriction as the client knows it (the household's own row number,
    plain words); the technical text with the file line stays in the summary for the advisor."""
    r = rebalance(jones([{"tag": "defense", "rule": "no_hold"}]), policy(trigger={"mode": "threshold"}))
    assert r.summary["restrictions"] == [
        {"number": 1, "words": "no holdings tagged defense in any account", "rule": "no_hold",
         "detail": "no_hold tag 'defense' in every account (restrictions.csv line 2)"}]
    words = {(w["security_id"], w["side"]): w["words"] for w in r.summary["trade_words"]}
    assert words[("LMT", "sell")] == "Required by client restriction 1: no holdings tagged defense in any account"
    assert words[("VTI", "buy")] == ("Bought in place of the LMT sold in ira \u2014 required by client restriction 1: "
                                     "no holdings tagged defense in any account")
    trigger = r.summary["trigger"]
    assert trigger["words"] == ["the client's restrictions require selling some holdings"]
    assert trigger["reasons"] == ["not trading would break restrictions: ira still holds LMT against no_hold tag "
                                  "'defense' in every account (restrictions.csv line 2)"]
    s = rebalance(smith(), policy(**NO_BANDS)).summary
    assert s["restrictions"][0]["words"] == "no bonds in taxable accounts (muni_bonds held in their place)"
    assert rebalance(jones([]), policy(**NO_BANDS)).summary["restrictions"] == []
