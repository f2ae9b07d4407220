"""The household proposal as one self-contained HTML page (issue 13).

One renderer, ``render_html``, takes plain tables: the summary dict (``summary.json``) and the
trades, lots and futures tables (``trades.csv``, ``lots.csv``, ``futures.csv``). It serves both
``RebalanceResult.to_html()`` (tables in memory) and ``cvxrebalance report OUT_DIR`` (the same
tables read back from the written files), so the two never differ.

The page loads nothing: styles are inline and charts are inline SVG drawn by matplotlib (the
``report`` extra; imported only when a page is rendered). Every text that comes from the
household's files (ids, reasons, notes) is escaped.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.t,th.t{text-align:left}
.meta{color:#555}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
figure{margin:.5em 0}.scroll{overflow-x:auto}svg{max-width:100%;height:auto}
td.fold{max-width:40em;overflow-wrap:anywhere}td.fold details{margin-top:.2em}
.fold pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0;font-size:.95em}
"""
FOLD_CHARS = 120  # a folded cell shows its first line up to this many characters


def esc(value: object) -> str:
    """Any value as HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(x: object, fmt: str = "{:,.2f}") -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return esc(x)
    return "" if v != v else esc(fmt.format(v + 0.0))


def folded(text: object, limit: int = FOLD_CHARS) -> str:
    """Escaped text that shows its first line (at most ``limit`` characters) with the whole text
    in a collapsed ``<details>`` when it is longer or has more lines.

    Examples
    --------
    >>> folded("short")
    'short'
    >>> folded("line one" + chr(10) + "<b>two</b>").split("<details>")[0]
    'line one &hellip;'
    """
    whole = "" if text is None else str(text)
    first = whole.split("\n", 1)[0]
    if len(first) <= limit and first == whole.rstrip("\n"):
        return esc(whole)
    cut = first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] or first[:limit]
    return f"{esc(cut)} &hellip;<details><summary>Full text</summary><pre>{esc(whole)}</pre></details>"


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None, css_id: str = "",
          links: dict[str, Sequence[str]] | None = None, fold: Iterable[str] = ()) -> str:
    """A DataFrame as an escaped HTML table; numbers right-aligned by ``formats`` (default two
    decimals), text left-aligned. ``links`` maps a column to an href per row (escaped too);
    ``fold`` names text columns whose long or multi-line cells are shortened (``folded``)."""
    formats = formats or {}
    links = links or {}
    fold = set(fold)
    ident = f' id="{esc(css_id)}"' if css_id else ""
    text_cols = {c for c in frame.columns if frame[c].dtype == object}
    head = "".join(f'<th class="{"t" if c in text_cols else ""}">{esc(c)}</th>' for c in frame.columns)
    rows = []
    for r, row in enumerate(frame.itertuples(index=False, name=None)):
        cells = []
        for c, v in zip(frame.columns, row, strict=True):
            if c in text_cols:
                inner = folded(v) if c in fold else esc(v)
                if c in links:
                    inner = f'<a href="{esc(links[c][r])}">{inner}</a>'
                cells.append(f'<td class="t{" fold" if c in fold else ""}">{inner}</td>')
            else:
                cells.append(f"<td>{_num(v, formats.get(c, '{:,.2f}'))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def svg_figure(fig: object, salt: str) -> str:
    """A matplotlib figure as inline ``<svg>`` (text kept as text, ids salted per chart so two
    charts on one page never share a clip-path id)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _pyplot():
    """pyplot on the headless Agg backend, math text off (a ``$`` in an id is only a dollar)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - the report extra is missing
        raise ImportError("HTML reports draw their charts with matplotlib: "
                          "pip install 'cvxrebalance[report]'") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["text.parse_math"] = False
    return plt


def drift_chart(classes: pd.DataFrame) -> str:
    """Bars of each class's weight before and after, the target as a marker and the band as a
    vertical range, in percent of household value."""
    plt = _pyplot()
    n = len(classes)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * n + 2), 3.8))
    ax.bar(x - 0.2, 100 * classes["before"], 0.4, label="before", color="#9e9e9e")
    ax.bar(x + 0.2, 100 * classes["after"], 0.4, label="after", color="#1f77b4")
    lo, hi = 100 * classes["lower"].clip(lower=0), 100 * classes["upper"].clip(upper=1)
    banded = ~((classes["lower"] <= 0) & (classes["upper"] >= 1))
    ax.vlines(x[banded], lo[banded], hi[banded], color="#d62728", lw=3, alpha=0.5, label="band")
    ax.scatter(x, 100 * classes["target"], marker="_", s=600, color="#d62728", lw=2.5, label="target", zorder=3)
    ax.set_xticks(x, [str(c) for c in classes.index], rotation=20, ha="right")
    ax.set_ylabel("% of household value")
    ax.set_title("Asset classes: before and after vs target and band")
    ax.legend(frameon=False, ncols=4, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return svg_figure(fig, "drift")


def bar_chart(labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str,
              salt: str) -> str:
    """Grouped bars, one group per label and one bar per series."""
    plt = _pyplot()
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [str(s) for s in labels], rotation=20, ha="right")
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return svg_figure(fig, salt)


def location_changes(summary: dict, trades: pd.DataFrame) -> pd.DataFrame:
    """Net value traded per account type and security (buys minus sells, currency): where the
    trades move money between taxable, tax-deferred and tax-exempt accounts."""
    if not len(trades):
        return pd.DataFrame(columns=["account_type", "security_id", "sold", "bought", "net"])
    types = {aid: a["type"] for aid, a in summary.get("accounts", {}).items()}
    t = trades.assign(account_type=trades["account_id"].map(lambda a: types.get(str(a), "unknown")).astype(object),
                      sold=np.where(trades["side"] == "sell", trades["value"], 0.0),
                      bought=np.where(trades["side"] == "buy", trades["value"], 0.0))
    out = t.groupby(["account_type", "security_id"], sort=True)[["sold", "bought"]].sum().reset_index()
    out["net"] = out["bought"] - out["sold"]
    return out.astype({"account_type": object, "security_id": object})


def _section(title: str, *body: str, ident: str = "") -> str:
    ident = f' id="{esc(ident)}"' if ident else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{''.join(body)}</section>"


def _page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            # no network: nothing is fetched, whatever a text says
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def render_html(summary: dict, trades: pd.DataFrame, lots: pd.DataFrame,
                futures: pd.DataFrame | None = None) -> str:
    """The proposal page of one household.

    Parameters
    ----------
    summary : dict
        ``RebalanceResult.summary`` or ``summary.json`` as read.
    trades, lots, futures : DataFrame
        The result's tables in ``TRADE_COLUMNS``, ``LOT_COLUMNS``, ``FUTURES_COLUMNS`` (futures
        may be None or empty without an overlay).

    Returns
    -------
    str
        A whole HTML document that fetches nothing.
    """
    s = summary
    name = str(s.get("household", ""))
    reasons = "; ".join(map(str, s["trigger"]["reasons"])) or "none"
    te = s["tracking_error"]
    body = [f"<h1>Rebalance proposal: {esc(name)}</h1>",
            '<p class="meta" id="header">'
            f"Household value {_num(s['household_value'])} (after cash flows {_num(s['household_value_after_flows'])}; "
            f"after trading {_num(s['household_value_after'])}). "
            f"As of {esc(s.get('as_of', ''))}. "
            f"{'Rebalanced' if s['rebalanced'] else 'No rebalance'} ({esc(s['trigger']['mode'])}): {esc(reasons)}. "
            f"Tracking error {te['before']:.4%} &rarr; {te['after']:.4%}.</p>"]
    classes = pd.DataFrame(s["asset_classes"]).T
    for c in ("target", "lower", "upper", "before", "after"):
        classes[c] = classes[c].astype(float)
    drift = pd.DataFrame({"asset_class": classes.index.astype(str).astype(object),
                          "target %": 100 * classes["target"], "lower %": 100 * classes["lower"],
                          "upper %": 100 * classes["upper"], "before %": 100 * classes["before"],
                          "after %": 100 * classes["after"],
                          "drift after %": 100 * (classes["after"] - classes["target"])})
    body.append(_section("Drift before and after", f"<figure id=\"drift-chart\">{drift_chart(classes)}</figure>",
                         table(drift, css_id="drift-table"), ident="drift"))
    if len(trades):
        shown = trades.copy()
        for c in ("account_id", "security_id", "side", "reason", "reason_detail"):
            shown[c] = shown[c].astype(str).astype(object)
        body.append(_section(f"Trades ({len(trades)})", table(shown, {"quantity": "{:,.4g}", "price": "{:,.4f}"},
                                                            css_id="trades-table"), ident="trades"))
    else:
        body.append(_section("Trades", "<p>None.</p>", ident="trades"))
    tx = s["taxes"]
    taxes = pd.DataFrame({"term": ["short", "long"], "net gain": [tx["short_term_gain"], tx["long_term_gain"]],
                          "year to date": [tx["ytd_short_gain"], tx["ytd_long_gain"]]}).astype({"term": object})
    lot_part = ""
    if len(lots):
        lt = lots[["account_id", "security_id", "lot_id", "acquired", "quantity", "cost_basis_total",
                   "proceeds_total", "gain", "term"]].copy()
        for c in ("account_id", "security_id", "lot_id", "acquired", "term"):
            lt[c] = lt[c].astype(str).astype(object)
        by_term = lots.groupby(lots["term"].astype(str))["gain"].sum()
        lot_part = (f"<figure id=\"tax-chart\">"
                    f"{bar_chart(list(by_term.index), {'realized gain': list(by_term.values)}, 'Realized gain by term', 'currency', 'tax')}"
                    f"</figure><h3>Lots sold ({len(lots)})</h3>{table(lt, {'quantity': '{:,.4g}'}, css_id='lots-table')}")
    body.append(_section("Tax impact", f"<p>Tax {_num(tx['tax'])} (exact netting rules {_num(tx['tax_exact'])}); "
                         f"gains {_num(tx['gross_gain'])}, losses {_num(tx['gross_loss'])}; "
                         f"loss carried forward {_num(tx['loss_carried_forward'])}.</p>",
                         table(taxes, css_id="tax-table"), lot_part, ident="taxes"))
    loc = location_changes(s, trades)
    loc_body = []
    if len(loc):
        net = loc.pivot_table(index="security_id", columns="account_type", values="net", aggfunc="sum", fill_value=0.0)
        series = {str(c): list(net[c]) for c in net.columns}
        loc_body.append("<figure id=\"location-chart\">"
                        f"{bar_chart(list(net.index), series, 'Net traded value by account type', 'currency', 'location')}"
                        "</figure>")
    loc_body.append(table(loc, css_id="location-table") if len(loc) else "<p>No trades, no location change.</p>")
    body.append(_section("Location changes (net traded value by account type)", *loc_body, ident="location"))
    if futures is not None and len(futures):
        fut = futures.copy()
        for c in fut.columns:
            if fut[c].dtype == object or c in ("contract_id", "instrument", "counterparty", "account_id", "roll_to",
                                               "reason", "reason_detail"):
                fut[c] = fut[c].fillna("").astype(str).astype(object)
        parts = [table(fut, {"contracts_before": "{:,.0f}", "contracts_after": "{:,.0f}", "trade": "{:,.0f}"},
                       css_id="overlay-table")]
        cmp = s.get("cash_only_comparison")
        if cmp and "error" not in cmp.get("cash_only", {}):
            ct = pd.DataFrame(cmp).T
            ct.insert(0, "plan", ct.index.astype(str).astype(object))
            ct["tracking_error"] = 100 * ct["tracking_error"].astype(float)
            ct = ct.rename(columns={"tracking_error": "tracking error %"})
            parts.append("<h3>With the overlay vs cash trades only</h3>"
                         + table(ct.astype({c: float for c in ct.columns if c != "plan"}),
                                 {"trade_count": "{:,.0f}", "objective": "{:.6g}", "tracking error %": "{:.4f}"},
                                 css_id="cash-only-table"))
        elif cmp:
            parts.append(f"<p>Cash trades only: not possible under this policy "
                         f"({esc(cmp['cash_only']['error'].splitlines()[0])}).</p>")
        body.append(_section("Overlay", *parts, ident="overlay"))
    checks = s.get("checks", {})
    ok = bool(checks.get("passed"))
    notes = "".join(f"<li>{esc(n)}</li>" for n in s.get("notes", []))
    body.append(_section("Checks",
                         f"<p class=\"{'ok' if ok else 'bad'}\" id=\"checks\">{'passed' if ok else 'FAILED'}</p>"
                         f"<p>{esc(', '.join(map(str, checks.get('families', []))))}</p>"
                         + (f"<ul>{notes}</ul>" if notes else ""), ident="checks-section"))
    return _page(f"Rebalance proposal: {name}", body)
