"""The ticket pass (optimizer.pipeline.tickets): minimums, trade limits, ticket costs, round lots."""

from __future__ import annotations

import numpy as np
import pytest
from builders import household, policy
from golden_cases import random_household

from cvxrebalance import ValidationError, check, rebalance
from cvxrebalance.cost_models import objective_value
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.domain.solution import Solution

SECURITIES = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0},
              {"security_id": "EQ2", "asset_class": "eq", "price": 40.0},
              {"security_id": "BD", "asset_class": "fi", "price": 50.0},
              {"security_id": "BD2", "asset_class": "fi", "price": 20.0}]
TARGETS = [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}]


def two_iras(roth_cash: float = 300.0, roth_flow: float = 0.0, securities=SECURITIES):
    """An IRA worth $96,000 (EQ 700 x $100, BD 500 x $50, $1,000 cash) and a Roth worth $2,500
    (EQ2 40 x $40, BD2 30 x $20, cash), both 73/27 against a 60/40 target. Without ticket rules
    each account sells its equity fund and buys one bond fund (four trades, two of $500 or
    less); with ``[trades] spread = "pro_rata"`` both accounts buy both bond funds (six)."""
    return household(securities,
                     [{"account_id": "ira", "type": "tax_exempt", "cash": 1000.0},
                      {"account_id": "roth", "type": "tax_exempt", "cash": roth_cash, "cash_flow": roth_flow}],
                     [{"account_id": "ira", "security_id": "EQ", "quantity": 700.0},
                      {"account_id": "ira", "security_id": "BD", "quantity": 500.0},
                      {"account_id": "roth", "security_id": "EQ2", "quantity": 40.0},
                      {"account_id": "roth", "security_id": "BD2", "quantity": 30.0}], TARGETS)


def test_without_ticket_rules_small_trades_remain():
    """The baseline the ticket rules act on. By default each account buys the bond class through
    the fund it holds (one security per class per account): four trades, the Roth's two under
    $500. The pro-rata spread adds a buy of the other bond fund in each account (BD2 in the IRA,
    BD in the Roth): six trades, four of $500 or less."""
    r = rebalance(two_iras(), policy(bands={"rule": "none"}))
    assert sorted(zip(r.trades["account_id"], r.trades["security_id"], r.trades["side"], strict=True)) == [
        ("ira", "BD", "buy"), ("ira", "EQ", "sell"), ("roth", "BD2", "buy"), ("roth", "EQ2", "sell")]
    assert (r.trades["value"] <= 500).sum() == 2 and check(r.solution) == []
    pro_rata = rebalance(two_iras(), policy(bands={"rule": "none"}, trades={"spread": "pro_rata"}))
    assert len(pro_rata.trades) == 6 and (pro_rata.trades["value"] <= 500).sum() == 4
    # The same move at a negligible cost: objectives within 1e-6 of household value (10 cents here).
    assert abs(r.summary["objective"]["value"] - pro_rata.summary["objective"]["value"]) < 1e-6


def test_min_value_removes_small_trades_and_re_solves_the_rest():
    """With min_value = $500 the Roth's trades (all under $500) go; the IRA's two re-solved
    trades carry the whole move: 126 EQ sold ($12,600) and 272 BD bought ($13,600), which spends
    the IRA's $1,000 of cash exactly (cash 1,000 + 12,600 - 13,600 = 0)."""
    r = rebalance(two_iras(), policy(bands={"rule": "none"}, trades={"min_value": 500.0}))
    assert sorted(zip(r.trades["security_id"], r.trades["side"], r.trades["quantity"], strict=True)) == [
        ("BD", "buy", 272), ("EQ", "sell", 126)]
    assert r.summary["accounts"]["ira"]["cash_after"] == 0.0
    assert check(r.solution) == []


def test_a_per_security_minimum_overrides_the_policy():
    secs = [dict(s, min_value=50.0) if s["security_id"] in ("EQ2", "BD2") else s for s in SECURITIES]
    r = rebalance(two_iras(securities=secs), policy(bands={"rule": "none"}, trades={"min_value": 500.0}))
    roth = r.trades[r.trades["account_id"] == "roth"]
    assert len(roth) > 0 and (roth["value"] >= 50).all()
    assert (r.trades.loc[r.trades["account_id"] == "ira", "value"] >= 500).all()


def test_a_minimum_never_leaves_a_withdrawal_unfunded():
    """The Roth has no cash and a $250 withdrawal: it must sell at least $250, under a $1,000
    minimum. The sale is raised to the minimum, or to the whole holding when that is smaller
    (EQ2's is $1,600, BD2's $600): never dropped."""
    h = two_iras(roth_cash=0.0, roth_flow=-250.0)
    r = rebalance(h, policy(bands={"rule": "none"}, trades={"min_value": 1000.0}))
    sells = r.trades[(r.trades["account_id"] == "roth") & (r.trades["side"] == "sell")]
    assert sells["value"].sum() >= 250
    whole = {"EQ2": 40, "BD2": 30}
    assert all(v >= 1000 or q == whole[s] for s, v, q in zip(sells["security_id"], sells["value"],
                                                            sells["quantity"], strict=True))
    assert r.summary["accounts"]["roth"]["cash_after"] >= 0 and check(r.solution) == []


def test_trade_limits_hold_and_a_needed_trade_is_kept_and_noted():
    r = rebalance(two_iras(), policy(bands={"rule": "none"}, trades={"max_trades": 2}))
    assert len(r.trades) == 2
    r = rebalance(two_iras(), policy(bands={"rule": "none"}, trades={"max_trades_per_account": 1}))
    assert r.trades.groupby("account_id").size().max() == 1
    # Both accounts must raise cash for a withdrawal; one trade for the household cannot.
    h = two_iras(roth_cash=0.0, roth_flow=-250.0)
    acc = h.accounts.copy()
    acc.loc[acc["account_id"] == "ira", "cash_flow"] = -5000.0
    from dataclasses import replace
    r = rebalance(replace(h, accounts=acc), policy(bands={"rule": "none"}, trades={"max_trades": 1}))
    assert {"ira", "roth"} <= set(r.trades.loc[r.trades["side"] == "sell", "account_id"])
    assert any("kept below their minimum or beyond the trade limits" in n for n in r.summary["notes"])


def test_round_lots():
    secs = [dict(s, lot_size=10.0) for s in SECURITIES]
    r = rebalance(two_iras(securities=secs), policy(bands={"rule": "none"}))
    held = {("roth", "EQ2"): 40, ("roth", "BD2"): 30, ("ira", "EQ"): 700, ("ira", "BD"): 500}
    for t in r.trades.itertuples():
        assert t.quantity % 10 == 0 or (t.side == "sell" and t.quantity == held[(t.account_id, t.security_id)])
    assert check(r.solution) == []


def test_round_lots_in_a_taxable_account_move_whole_lots_of_tax_lots():
    from builders import two_account_household

    h = two_account_household()
    sec = h.securities.copy()
    sec["lot_size"] = 25.0
    from dataclasses import replace
    r = rebalance(replace(h, securities=sec), policy())
    assert (r.trades["quantity"] % 25 == 0).all() and check(r.solution) == []
    sold = r.lots.groupby(["account_id", "security_id"])["quantity"].sum()
    trades = r.trades[r.trades["side"] == "sell"].set_index(["account_id", "security_id"])["quantity"]
    for key, q in sold.items():
        assert trades[key] == q


@pytest.mark.parametrize("seed", range(30))
def test_ticket_costs_never_make_the_objective_worse_than_the_plain_list(seed):
    """The objective including a $25 ticket per trade, of the ticketed result, is at most that of
    the plain trade list charged the same tickets (when that list, so charged, keeps every rule:
    the tickets' cash can break a cash band, and then the ticketed result must differ)."""
    h, p = random_household(seed)
    ticketed = p.replace(trades={"ticket_cost": 25.0})
    try:
        plain = rebalance(h, p)
    except Exception:  # noqa: BLE001 - infeasible households have no trade list to compare
        return
    r = rebalance(h, ticketed)
    data = prepare(h, ticketed)
    s = plain.solution
    charged = Solution(data, s.buy_q, s.sell_q, s.lot_sell_q, s.contracts_q)
    if check(charged) == []:
        assert r.summary["objective"]["value"] <= objective_value(charged)[0] + 1e-12
        assert r.summary["trade_count"] <= plain.summary["trade_count"]
    assert np.isclose(r.summary["costs"], r.trades["cost"].sum(), atol=0.01 * (len(r.trades) + 1))


@pytest.mark.parametrize("seed", range(30))
def test_random_households_meet_their_minimums(seed):
    h, p = random_household(seed)
    try:
        r = rebalance(h, p.replace(trades={"min_value": 2000.0, "max_trades_per_account": 3}))
    except Exception as exc:  # noqa: BLE001
        assert type(exc).__name__ == "InfeasibilityError"
        return
    whole = r.trades["side"].eq("sell")  # a whole holding may be sold below the minimum
    held = h.holdings.groupby(["account_id", "security_id"])["quantity"].sum()
    for t in r.trades.itertuples():
        assert t.value >= 2000 - 0.01 or (t.side == "sell" and t.quantity == held[(t.account_id, t.security_id)]) \
            or r.summary["notes"], t
    assert whole is not None and check(r.solution) == []


@pytest.mark.parametrize(("key", "value"), [("min_value", -1.0), ("max_trades", 2.5), ("max_trades", -1.0),
                                            ("ticket_cost", float("nan"))])
def test_bad_trades_keys_are_named(key, value):
    with pytest.raises(ValidationError) as info:
        policy(trades={key: value})
    assert any(p.field == f"trades.{key}" for p in info.value.problems)


def test_a_bad_lot_size_is_named():
    secs = [dict(SECURITIES[0], lot_size=2.5), *SECURITIES[1:]]
    with pytest.raises(ValidationError) as info:
        two_iras(securities=secs)
    assert any(p.field == "lot_size" and "whole number" in p.message for p in info.value.problems)
