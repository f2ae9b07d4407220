"""Deterministic households and policies whose trades were recorded from the first formulation
(the padded cvxpy template of release 0.1.0) in ``tests/data/golden_trades.json``.

``tests/optimizer/test_golden.py`` solves them again and compares: the faster formulation must
reach the same objective and the same trades. ``python tests/golden_cases.py`` rewrites the file
(only ever from a formulation that is trusted).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from builders import household, policy

from cvxrebalance import InfeasibilityError, load_case, rebalance
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.synthetic import synthetic_household

GOLDEN = Path(__file__).parent / "data" / "golden_trades.json"
CLASSES = ["eq", "fi", "re"]
TYPES = ["taxable", "tax_deferred", "tax_exempt"]


def random_tables(seed: int, spreads=(0.0005, 0.001, 0.002), flows=(-0.3, 0.5)):
    """A small random household (also the property tests' family), drawn from a numpy seed."""
    rng = np.random.default_rng(seed)
    n_sec, n_acc = int(rng.integers(2, 8)), int(rng.integers(1, 4))
    securities = []
    for i in range(n_sec):
        securities.append({
            "security_id": f"S{i}",
            "asset_class": CLASSES[i % 3] if i < 3 else CLASSES[int(rng.integers(3))],
            "price": float(np.round(rng.uniform(5, 500), 2)),
            "liquid": bool(i == 0 or rng.random() > 0.15),
            "esg_excluded": bool(i > 0 and rng.random() < 0.15),
            "esg_score": float(np.round(rng.uniform(0, 10), 1)),
            "half_spread": float(rng.choice(list(spreads))),
            "impact": float(rng.choice([0.0, 0.0, 0.05])),
            "allowed_account_types": ";".join(TYPES if rng.random() > 0.2 else ["taxable"]),
        })
    accounts, holdings = [], []
    for a in range(n_acc):
        kind = TYPES[int(rng.integers(3))] if a else "taxable"
        cash = float(np.round(rng.uniform(0, 20_000), 2))
        accounts.append({"account_id": f"A{a}", "type": kind, "cash": cash,
                         "min_cash": float(np.round(rng.uniform(0, 0.5) * cash, 2)),
                         "cash_flow": float(np.round(rng.uniform(*flows) * cash, 2))})
        for i in range(n_sec):
            if rng.random() < 0.6:
                for k in range(int(rng.integers(1, 4)) if kind == "taxable" else 1):
                    row = {"account_id": f"A{a}", "security_id": f"S{i}",
                           "quantity": float(rng.integers(1, 400))}
                    if kind == "taxable":
                        price = securities[i]["price"]
                        row |= {"lot_id": f"L{a}-{i}-{k}",
                                "cost_basis": float(np.round(price * rng.uniform(0.3, 1.5), 2)),
                                "acquired": f"20{int(rng.integers(15, 26))}-0{int(rng.integers(1, 10))}-"
                                            f"1{int(rng.integers(0, 9))}"}
                    holdings.append(row)
    if not holdings:
        holdings.append({"account_id": "A0", "security_id": "S0", "quantity": 10.0, "lot_id": "x",
                         "cost_basis": 1.0, "acquired": "2020-01-01"})
    present = sorted({s["asset_class"] for s in securities})
    w = rng.dirichlet(np.ones(len(present) + 1))
    targets = [{"asset_class": c, "weight": float(x)} for c, x in zip(present, w, strict=False)]
    targets.append({"asset_class": "cash", "weight": float(1 - sum(t["weight"] for t in targets))})
    return household(securities, accounts, holdings, targets, corr=0.2)


def random_household(seed: int):
    """``random_tables(seed)`` with a policy drawn from the same seed."""
    pol = {
        "bands": {"rule": ["none", "5/25", "absolute"][seed % 3]},
        "objective": {"tax_weight": [0.0, 1.0, 5.0][seed % 5 % 3], "risk_weight": [1.0, 100.0, 1e4][seed % 7 % 3]},
        "esg": {"excluded": ["hold", "sell"][seed % 2]},
        "limits": {"turnover": [1.0, 1.0, 0.05][seed % 3]},
        # Rebalancing to tolerance needs bands (rule "none" with "tolerance" is rejected).
        "trigger": {"rebalance_to": ["target", "tolerance"][seed % 4 // 2 if seed % 3 else 0]},
    }
    return random_tables(seed), policy(**pol)


def overlay_variant(seed: int):
    """The bundled overlay case with random contract positions (the expiring one flat) and a
    random overlay policy: bands on exposure or physical holdings, instruments, margin buffer,
    gross and net limits, tax weight."""
    rng = np.random.default_rng(seed)
    household, policy = load_case(case_path("overlay"))
    fut = household.futures.copy()
    fut["position"] = np.where(fut["contract_id"] == "ESZ6", 0.0, rng.integers(-5, 6, len(fut)))
    policy = policy.replace(
        bands={"on": ["exposure", "physical"][seed % 2]},
        overlay={"instruments": ["both", "overlay_only", "both"][seed % 3],
                 "margin_buffer": float(rng.choice([0.0, 0.1, 0.3])), "gross_limit": float(rng.choice([0.2, 0.5, 1.0])),
                 "net_limit": float(rng.choice([0.1, 0.3])), "compare_cash_only": False},
        objective={"tax_weight": float(rng.choice([0.0, 1.0, 5.0]))})
    return dataclasses.replace(household, futures=fut), policy


def cases():
    """(name, household, policy) for every recorded case, under ``[trades] spread = "pro_rata"``:
    the spread the first formulation had (the recorded results compare formulations of one model,
    not the default spread of buys over a class's securities, ``constraints.priority``)."""
    return [(name, h, p.replace(trades={"spread": "pro_rata"})) for name, h, p in _cases()]


def _cases():
    out = []
    for name in ("example", "seed_portfolio", "four_accounts", "endowment", "overlay", "tax_aware"):
        h, p = load_case(case_path(name))
        if name == "endowment":  # recorded before stale valuations were rolled forward: as reported
            h = dataclasses.replace(h, securities=h.securities.assign(
                valuation_date=None, proxy="", proxy_price=np.nan, proxy_return=np.nan, proxy_beta=np.nan))
        out.append((name, h, p))
        if name == "example":
            out.append(("example-tax2", h, p.replace(objective={"tax_weight": 2.0})))
            out.append(("example-tolerance", h, p.replace(trigger={"rebalance_to": "tolerance"})))
        if name == "tax_aware":
            out.append(("tax_aware-harvest", h, p.replace(tax={"harvest": True})))
        if name == "overlay":
            out.append(("overlay-cash_only", h, p.replace(overlay={"instruments": "cash_only"})))
    synth_policy = policy(overlay={"compare_cash_only": False})
    for n_sec, n_lots, seeds, contracts in ((20, 60, range(3), 0), (100, 500, range(3), 0),
                                             (40, 150, range(2), 2)):
        for s in seeds:
            h = synthetic_household(n_sec, 3, n_lots, seed=s, n_contracts=contracts)
            out.append((f"synthetic-{n_sec}-{n_lots}-{contracts}-{s}", h, synth_policy))
    for s in range(40):
        if s % 3 == 0 and s % 4 // 2:
            continue  # recorded with rule "none" and rebalance_to "tolerance", now a rejected policy
        h, p = random_household(s)
        out.append((f"random-{s}", h, p))
    return out


def outcome(h, p) -> dict:
    """What a rebalance decided, in a comparable form."""
    try:
        r = rebalance(h, p)
    except InfeasibilityError as exc:
        return {"status": "infeasible", "conflicts": sorted(n for n, _ in exc.conflicts),
                "whole_shares": "fractional shares" in str(exc)}
    trades = sorted([str(t.account_id), str(t.security_id), str(t.side), float(t.quantity)]
                    for t in r.trades.itertuples())
    lots = sorted([str(t.account_id), str(t.lot_id), float(t.quantity)] for t in r.lots.itertuples())
    contracts = [float(x) for x in r.solution.contracts_q]
    return {"status": "ok", "objective": r.summary["objective"]["value"], "trades": trades,
            "lots": lots, "contracts": contracts}


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({name: outcome(h, p) for name, h, p in cases()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
