"""The readable terminal summary of a result."""

from __future__ import annotations

import pandas as pd


def _pct(x: float) -> str:
    return f"{100 * x + 0.0:6.2f}%" if abs(x) >= 5e-5 else f"{0:6.2f}%"


def _band(lo: float, hi: float) -> str:
    return "none" if lo <= 0 and hi >= 1 else f"{_pct(lo)} to {_pct(hi)}"


def _left(text: pd.Series) -> pd.Series:
    """Text padded to one width, so the table shows it left-aligned (it right-aligns columns)."""
    return text.str.ljust(int(text.str.len().max())) if len(text) else text


def _edges(lo: float, hi: float) -> str:
    """A factor band in the factor's units (NaN: no edge on that side)."""
    if lo == lo and hi == hi:
        return f"{lo:.4f} to {hi:.4f}"
    if lo == lo:
        return f"at least {lo:.4f}"
    return f"at most {hi:.4f}" if hi == hi else "none"


def _factors(fd: pd.DataFrame, overlay: bool) -> list[str]:
    """The factor drift table: each factor's exposure before and after against its target."""
    num = "{:.4f}".format
    table = pd.DataFrame({
        "target": fd["target"].map(num),
        "band": [_edges(lo, hi) for lo, hi in zip(fd["lower"], fd["upper"], strict=True)],
        "before": fd["before"].map(num), "drift before": (fd["before"] - fd["target"]).map(num),
        "after": fd["after"].map(num), "drift after": (fd["after"] - fd["target"]).map(num),
    })
    if overlay:
        table.insert(5, "of which overlay", fd["overlay_after"].map(num))
    return ["Factor exposures (per unit of household value, in each factor's units)", table.to_string()]


def _valuations(vals: dict) -> list[str]:
    """The stale illiquid valuations and their roll-forward, one row per security."""
    table = pd.DataFrame({
        "valued": [v["valuation_date"] for v in vals.values()],
        "days": [v["days_stale"] for v in vals.values()],
        "proxy": [v["proxy"] or "none" for v in vals.values()],
        "proxy return": ["" if v["proxy"] is None else f"{v['proxy_return']:+.2%}" for v in vals.values()],
        "beta": ["" if v["proxy"] is None else f"{v['beta']:g}" for v in vals.values()],
        "reported": [f"{v['reported_value']:,.2f}" for v in vals.values()],
        "adjusted": [f"{v['adjusted_value']:,.2f}" for v in vals.values()],
        "adjustment": [f"{v['adjustment']:+,.2f} ({v['adjustment_pct']:+.2f}%)" for v in vals.values()],
    }, index=pd.Index(list(vals), name="security"))
    total = sum(v["adjustment"] for v in vals.values())
    return [f"Illiquid valuations (adjusted = reported x (1 + beta x proxy return); in value and bands: "
            f"{total:+,.2f})", table.to_string()]


def render(result) -> str:
    """Drift table before/after, the trade list and the totals, as plain text."""
    s = result.summary
    value = f"Household {s['household']}: value {s['household_value']:,.2f}"
    if s["household_value_after_flows"] != s["household_value"]:
        value += f" ({s['household_value_after_flows']:,.2f} after cash flows; weights are over this)"
    lines = [value]
    if not s["rebalanced"]:
        lines.append("No rebalance: " + "; ".join(s["trigger"]["reasons"]))
    else:
        lines.append("Rebalanced: " + "; ".join(s["trigger"]["reasons"]))
    ac = result.asset_classes
    drift = pd.DataFrame({
        "target": ac["target"].map(_pct),
        "band": [_band(lo, hi) for lo, hi in zip(ac["lower"], ac["upper"], strict=True)],
        "before": ac["before"].map(_pct),
        "drift before": (ac["before"] - ac["target"]).map(_pct),
        "after": ac["after"].map(_pct),
        "drift after": (ac["after"] - ac["target"]).map(_pct),
    })
    if len(result.futures):  # the overlay's part of the weights after
        drift.insert(5, "of which overlay", ac["overlay_after"].map(_pct))
    lines += ["", "Asset classes (weights of household value)", drift.to_string()]
    if s.get("currency_exposure"):  # a currency hedge shows here, not in the class table
        fx = pd.DataFrame(s["currency_exposure"]).T
        table = pd.DataFrame({"target": fx["target"].map(_pct), "hedge ratio": fx["hedge_ratio"].map("{:g}".format),
                              "before": fx["before"].map(_pct), "after": fx["after"].map(_pct),
                              "of which overlay": fx["overlay_after"].map(_pct)})
        table.index.name = "currency"
        lines += ["", "Currency exposures (weights of household value)", table.to_string()]
    if len(result.factor_drift):
        lines += ["", *_factors(result.factor_drift, bool(len(result.futures)))]
    if s.get("illiquid_valuations"):
        lines += ["", *_valuations(s["illiquid_valuations"])]
    if len(result.trades):
        t = result.trades.copy()
        t["quantity"] = t["quantity"].map(lambda q: f"{q:,.0f}" if q == int(q) else f"{q:,.4f}")
        t["value"] = t["value"].map("{:,.2f}".format)
        t["cost"] = t["cost"].map("{:,.2f}".format)
        t["reason"] = _left(t["reason"] + ": " + t.pop("reason_detail"))
        lines += ["", f"Trades ({len(t)})", t.to_string(index=False)]
    else:
        lines += ["", "Trades: none"]
    if len(result.futures):
        f = result.futures.copy()
        f["notional_after"] = f["notional_after"].map("{:,.0f}".format)
        f["margin"] = f["margin"].map("{:,.0f}".format)
        f["reason"] = _left((f["reason"] + ": " + f.pop("reason_detail")).where(f["reason"] != "", ""))
        ov = s["overlay"]
        lines += ["", f"Overlay ({ov['instruments']}; gross {ov['gross']:.2%}, net {ov['net']:+.2%} "
                  "of household value)", f.to_string(index=False)]
        for r in ov["rolls"]:
            if r["rolled"]:
                lines.append(f"Roll: {r['from']} -> {r['to']}: {r['from']} expires before the horizon; "
                             f"its {r['contracts']:+.0f} contracts were closed and {r['to']} now holds "
                             f"{r['to_contracts_after']:+.0f}")
            else:
                why = f"its next contract {r['to']} was not needed" if r["to"] else "no next contract is listed"
                lines.append(f"Closed: {r['from']} expires before the horizon; its {r['contracts']:+.0f} "
                             f"contracts were closed, not rolled ({why})")
        if not ov["binding"]:
            lines.append("Binding: none of the overlay's limits")
        lines += [f"Binding: {b}" for b in ov["binding"]]
        if "cash_only_comparison" in s:
            cmp = s["cash_only_comparison"]
            if "error" in cmp["cash_only"]:
                first = cmp["cash_only"]["error"].splitlines()[0]
                lines += ["", f"Cash trades only: not possible under this policy ({first})"]
            else:
                fmt = {"costs": "{:,.2f}".format, "tax": "{:,.2f}".format, "tracking_error": "{:.4%}".format,
                       "trade_count": "{:,.0f}".format, "objective": "{:.6g}".format}
                table = pd.DataFrame(cmp).T
                lines += ["", "With the overlay vs cash trades only",
                          table.to_string(formatters={c: fmt.get(c, str) for c in table.columns})]
    if len(result.lots):
        lines += ["", f"Tax lots sold ({len(result.lots)})", result.lots.to_string(index=False)]
    tx, te, sv = s["taxes"], s["tracking_error"], s["solver"]
    lines += [
        "",
        f"Tracking error  {te['before']:.4%} -> {te['after']:.4%}",
        f"Turnover        {s['turnover']:.4%} (one-way)",
        f"Costs           {s['costs']:,.2f}",
        f"Realized        gains {tx['gross_gain']:,.2f}, losses {tx['gross_loss']:,.2f} "
        f"(net short term {tx['short_term_gain']:,.2f}, long term {tx['long_term_gain']:,.2f})",
        f"Tax             {tx['tax']:,.2f} (netted with year-to-date short {tx['ytd_short_gain']:,.2f}, "
        f"long {tx['ytd_long_gain']:,.2f}; exact netting rules: {tx['tax_exact']:,.2f})",
    ]
    if tx["loss_carried_forward"]:
        lines.append(f"Carried forward a net loss of {tx['loss_carried_forward']:,.2f} (worth "
                     f"{tx['loss_carried_forward_value']:,.2f} now at loss_value)")
    if "relief" in tx and len(result.lots):
        rel = pd.DataFrame(tx["relief"]).T[["short_term_gain", "long_term_gain", "tax", "tax_exact"]]
        lines += ["Lot relief (same quantities)", rel.to_string()]
    wash = s["wash_sales"]
    for group, why in wash["blocked_buys"].items():
        lines.append(f"Wash sale       no purchase of {group}: {why}")
    for group, why in wash["blocked_loss_sales"].items():
        lines.append(f"Wash sale       no loss sale of {group}: {why}")
    for group, what in wash["decided_in_rebalance"].items():
        lines.append(f"Wash sale       {group} {what} in this rebalance")
    if s.get("esg_score"):
        e = s["esg_score"]
        floor = f" (minimum {e['min']:g})" if e.get("min") else ""
        lines.append(f"ESG score       {e['before']:.2f} -> {e['after']:.2f}{floor}")
    solver = (f"{sv['name']} ({sv['status']}, {sv['time_ms']:.1f} ms)" if sv["name"]
              else "not run (nothing to trade)")
    lines += [
        f"Solver          {solver}; total {s['time_ms']:.1f} ms",
        f"Checks          {'passed' if s['checks']['passed'] else 'FAILED'}",
    ]
    lines += [f"Note: {n}" for n in s["notes"]]
    return "\n".join(lines)
