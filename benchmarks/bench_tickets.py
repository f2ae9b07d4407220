"""Ticket statistics of a synthetic batch under two policies (issue: trade lists an advisor would
sign).

    python3 benchmarks/bench_tickets.py --households 500 [--securities 40 --accounts 3 --lots 120]
    python3 benchmarks/bench_tickets.py --compare spread --households 200

``--compare tickets`` (the default): each household is rebalanced under the default policy
("plain") and under the same policy with ``[trades] min_value``, ``ticket_cost`` and
``max_trades_per_account`` ("ticketed").
``--compare spread``: under ``[trades] spread = "pro_rata"`` (buys spread over every security of
a class in every account) and under the default ``"one_per_class"``, both without ticket rules.

Reported per variant: median trades (and buys) per household, the largest number of securities
of one class bought in one account (median over households, and the most), the share of trades
under $500 and under the minimum, and the change of the objective (second list minus first, in
basis points of household value: median, 95th percentile, largest), with the tickets charged to
both lists and without them. A first list that, charged the tickets, breaks a cash rule is left
out of the first comparison. Both lists are scored under the first variant's rules (the looser:
it allows the second list too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from cvxrebalance import InfeasibilityError, Policy, check, rebalance  # noqa: E402
from cvxrebalance.cost_models import objective_value  # noqa: E402
from cvxrebalance.optimizer.domain.prepare import prepare  # noqa: E402
from cvxrebalance.optimizer.domain.solution import Solution  # noqa: E402
from cvxrebalance.scenarios.synthetic import synthetic_household  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", choices=("tickets", "spread"), default="tickets",
                    help="plain vs ticket rules, or [trades] spread pro_rata vs one_per_class")
    ap.add_argument("--households", type=int, default=500)
    ap.add_argument("--securities", type=int, default=40)
    ap.add_argument("--accounts", type=int, default=3)
    ap.add_argument("--lots", type=int, default=120)
    ap.add_argument("--min-value", type=float, default=1000.0)
    ap.add_argument("--ticket-cost", type=float, default=10.0)
    ap.add_argument("--max-per-account", type=int, default=6)
    args = ap.parse_args()
    plain_policy = Policy.from_dict({"tax": {"as_of": "2026-11-20"}})
    rules = {"min_value": args.min_value, "ticket_cost": args.ticket_cost,
             "max_trades_per_account": float(args.max_per_account)}
    if args.compare == "tickets":
        variants = {"plain": plain_policy, "ticketed": plain_policy.replace(trades=rules)}
    else:
        rules = {"spread": "pro_rata vs one_per_class"}
        variants = {"pro_rata": plain_policy.replace(trades={"spread": "pro_rata"}), "one_per_class": plain_policy}
    (first, first_policy), (second, _) = variants.items()
    # Both lists scored under the first variant's rules, tickets charged (costs_only) or not.
    scoring = {"with_tickets": first_policy.replace(trades={"ticket_cost": args.ticket_cost}),
               "without_tickets": first_policy}
    stats = {name: {"trades": [], "buys": [], "per_class": [], "values": []} for name in variants}
    change_bp: dict[str, list[float]] = {name: [] for name in scoring}
    infeasible = unexplained = 0
    for seed in range(args.households):
        h = synthetic_household(args.securities, args.accounts, args.lots, seed=seed)
        try:
            results = {name: rebalance(h, p) for name, p in variants.items()}
        except InfeasibilityError:
            infeasible += 1
            continue
        for name, r in results.items():
            buys = r.trades[r.trades["side"] == "buy"]
            classes = h.securities.set_index("security_id")["asset_class"]
            per_class = buys.groupby(["account_id", buys["security_id"].map(classes)]).size()
            stats[name]["trades"].append(len(r.trades))
            stats[name]["buys"].append(len(buys))
            stats[name]["per_class"].append(int(per_class.max()) if len(per_class) else 0)
            stats[name]["values"] += r.trades["value"].tolist()
        if args.compare == "tickets":
            # Below the minimum other than by selling a whole holding (allowed) or by a trade the
            # rules needed (noted in the summary): should be none.
            sol, held = results[second].solution, results[second].solution.data.q0
            small = ((sol.buy_q > 0) & (sol.buy_value < args.min_value)) | (
                (sol.sell_q > 0) & (sol.sell_value < args.min_value) & (sol.sell_q != held))
            unexplained += int((small & ~sol.data.tickets.exempt).sum())
        for name, p in scoring.items():
            data = prepare(h, p)
            a, b = (Solution(data, r.solution.buy_q, r.solution.sell_q, r.solution.lot_sell_q, r.solution.contracts_q)
                    for r in (results[first], results[second]))
            if not [v for v in check(a) if v.constraint != "tickets"]:
                change_bp[name].append((objective_value(b)[0] - objective_value(a)[0]) * 1e4)
    out = {"households": args.households, "infeasible": infeasible, "rules": rules}
    if args.compare == "tickets":
        out["ticketed_under_min_value_unexplained"] = unexplained
    for name, st in stats.items():
        values = np.array(st["values"])
        out[name] = {"median_trades": statistics.median(st["trades"]), "median_buys": statistics.median(st["buys"]),
                     "trades": int(values.size),
                     "most_bought_of_one_class_in_one_account": {"median": statistics.median(st["per_class"]),
                                                                 "max": max(st["per_class"])},
                     "share_under_500": round(float((values < 500).mean()), 4),
                     "share_under_min_value": round(float((values < args.min_value).mean()), 4)}
    out[f"objective_change_bp ({second} - {first})"] = {
        name: {"compared": len(x), "median": round(statistics.median(x), 4),
               "p95": round(float(np.percentile(x, 95)), 4), "max": round(max(x), 4)}
        for name, x in change_bp.items() if x}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
