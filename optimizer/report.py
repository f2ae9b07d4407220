"""The readable terminal summary of a result."""

from __future__ import annotations

import pandas as pd


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def render(result) -> str:
    """Drift table before/after, the trade list and the totals, as plain text."""
    s = result.summary
    lines = [f"Household {s['household']}: value {s['household_value']:,.2f}"]
    if not s["rebalanced"]:
        lines.append("No rebalance: every asset class is inside its band (trigger 'threshold').")
    else:
        lines.append("Rebalanced: " + "; ".join(s["trigger"]["reasons"]))
    ac = result.asset_classes
    drift = pd.DataFrame({
        "target": ac["target"].map(_pct), "band": [f"{_pct(lo)} -{_pct(hi)}" for lo, hi in
                                                   zip(ac["lower"], ac["upper"], strict=True)],
        "before": ac["before"].map(_pct), "drift": (ac["before"] - ac["target"]).map(_pct),
        "after": ac["after"].map(_pct), "drift after": (ac["after"] - ac["target"]).map(_pct),
    })
    lines += ["", "Asset classes", drift.to_string()]
    if len(result.trades):
        t = result.trades.copy()
        t["value"] = t["value"].map("{:,.2f}".format)
        t["cost"] = t["cost"].map("{:,.2f}".format)
        lines += ["", f"Trades ({len(t)})", t.to_string(index=False)]
    else:
        lines += ["", "Trades: none"]
    if len(result.lots):
        lines += ["", f"Tax lots sold ({len(result.lots)})", result.lots.to_string(index=False)]
    tx = s["taxes"]
    te = s["tracking_error"]
    lines += [
        "",
        f"Tracking error  {te['before']:.4%} -> {te['after']:.4%}",
        f"Turnover        {s['turnover']:.4%} (one-way)",
        f"Costs           {s['costs']:,.2f}",
        f"Realized gains  short {tx['short_term_gain']:,.2f}  long {tx['long_term_gain']:,.2f}  "
        f"tax {tx['tax']:,.2f}",
        f"Solver          {s['solver']['name']} ({s['solver']['status']}, "
        f"{s['solver']['time_ms']:.1f} ms); total {s['time_ms']:.1f} ms",
        f"Checks          {'passed' if s['checks']['passed'] else 'FAILED'}",
    ]
    lines += [f"Note: {n}" for n in s["notes"]]
    return "\n".join(lines)
