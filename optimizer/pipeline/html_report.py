"""The household proposal as one self-contained HTML page (issue 13).

One renderer, ``render_html``, takes plain tables: the summary dict (``summary.json``) and the
trades, lots and futures tables (``trades.csv``, ``lots.csv``, ``futures.csv``). It serves both
``RebalanceResult.to_html()`` (tables in memory) and ``cvxrebalance report OUT_DIR`` (the same
tables read back from the written files), so the two never differ.

The page is read by an advisor and shown to a client: what it says is in plain words (each
trade's reason from ``summary["trade_words"]``, the client's restrictions by number, the checks
as a count); the technical detail behind it (reason codes, file lines, check names, the solver)
stays on the page in collapsed "Technical detail" sections for the advisor.

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

from cvxrebalance.optimizer.domain.restrictions import ACCOUNT_TYPE_WORDS
from cvxrebalance.optimizer.pipeline.reasons import REASON_WORDS

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
details.tech{margin:.6em 0;color:#444;font-size:.9em}details.tech>summary{cursor:pointer;color:#555}
.note{color:#555}
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
    ax.vlines(x[banded], lo[banded], hi[banded], color="#d62728", lw=3, alpha=0.5, label="allowed range")
    ax.scatter(x, 100 * classes["target"], marker="_", s=600, color="#d62728", lw=2.5, label="target", zorder=3)
    ax.set_xticks(x, [str(c) for c in classes.index], rotation=20, ha="right")
    ax.set_ylabel("% of household value")
    ax.set_title("Asset classes before and after, against target and allowed range")
    ax.legend(frameon=False, ncols=4, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return svg_figure(fig, "drift")


def bar_chart(labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str,
              salt: str) -> str:
    """Grouped bars, one group per label and one bar per series (a legend when there are two or
    more series)."""
    plt = _pyplot()
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [str(s) for s in labels], rotation=20, ha="right")
    pad = max(0.0, (3 - len(labels)) / 2)  # one or two groups: narrow bars, not the whole width
    ax.set_xlim(-0.5 - pad, len(labels) - 0.5 + pad)
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return svg_figure(fig, salt)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def account_type_words(kind: object) -> str:
    """An account type as a client reads it (``tax_deferred`` -> ``Tax-deferred``)."""
    return _capital(ACCOUNT_TYPE_WORDS.get(str(kind), str(kind)))


def location_changes(summary: dict, trades: pd.DataFrame) -> pd.DataFrame:
    """Net value traded per account type and security (buys minus sells, currency): the detail
    behind ``class_location``."""
    if not len(trades):
        return pd.DataFrame(columns=["account_type", "security_id", "sold", "bought", "net"])
    types = {aid: a["type"] for aid, a in summary.get("accounts", {}).items()}
    t = trades.assign(account_type=trades["account_id"].map(lambda a: types.get(str(a), "unknown")).astype(object),
                      sold=np.where(trades["side"] == "sell", trades["value"], 0.0),
                      bought=np.where(trades["side"] == "buy", trades["value"], 0.0))
    out = t.groupby(["account_type", "security_id"], sort=True)[["sold", "bought"]].sum().reset_index()
    out["net"] = out["bought"] - out["sold"]
    return out.astype({"account_type": object, "security_id": object})


def class_location(summary: dict) -> pd.DataFrame:
    """Value of each asset class (and cash) per account type before and after trading, and the
    change (``summary["location"]``), classes in the drift table's order; empty for a summary
    written before the location was recorded."""
    order = {c: n for n, c in enumerate(summary.get("asset_classes", {}))}
    rows = [(kind, cls, v["before"], v["after"])
            for kind, classes in summary.get("location", {}).items()
            for cls, v in sorted(classes.items(), key=lambda kv: order.get(kv[0], len(order)))]
    out = pd.DataFrame(rows, columns=["account_type", "asset_class", "before", "after"]).astype(
        {"account_type": object, "asset_class": object, "before": float, "after": float})
    out["change"] = out["after"] - out["before"]
    return out


def _section(title: str, *body: str, ident: str = "") -> str:
    ident = f' id="{esc(ident)}"' if ident else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{''.join(body)}</section>"


def technical(*body: str, ident: str = "") -> str:
    """A collapsed "Technical detail" block for the advisor (``body``: HTML already escaped)."""
    ident = f' id="{esc(ident)}"' if ident else ""
    return f'<details class="tech"{ident}><summary>Technical detail</summary>{"".join(body)}</details>'


def _items(texts: Iterable[object]) -> str:
    return "<ul>" + "".join(f"<li>{esc(t)}</li>" for t in texts) + "</ul>"


def _page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            # no network: nothing is fetched, whatever a text says
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def _header(s: dict, trades: pd.DataFrame) -> str:
    """Values, date, why the household trades (or not) and tracking error, in plain words."""
    trigger = s["trigger"]
    te = s["tracking_error"]
    flows = s["household_value_after_flows"]
    values = (f"Household value {_num(s['household_value'])}"
              + (f" ({_num(flows)} after cash flows)" if abs(flows - s["household_value"]) >= 0.005 else "")
              + (f"; {_num(s['household_value_after'])} after the proposed trades" if len(trades) else "")
              + (f" (estimated trading costs {_num(s['costs'])})" if s.get("costs") else "")
              + f". As of {esc(s.get('as_of', ''))}.")
    words = trigger.get("words", trigger["reasons"])
    why = "; ".join(map(str, words)) or "none given"
    verdict = f"Why now: {esc(why)}." if s["rebalanced"] else f"No trades proposed: {esc(why)}."
    if s.get("transition"):
        verdict = _transition_words(s["transition"])
    tracking = (f"Tracking error against the target portfolio (estimated yearly): {te['before']:.2%} before, "
                f"{te['after']:.2%} after.")
    if te["after"] > te["before"] + 1e-6:
        client_rule = bool(len(trades)) and trades["reason"].astype(str).isin(
            ["restriction", "substitute", "esg_sell_down"]).any()
        tracking += (" It rises because the client's restrictions and screens keep the portfolio from holding "
                     "exactly the target portfolio's securities." if client_rule else
                     " It rises because the trades serve other goals of the policy (cash, taxes, costs); each "
                     "trade's reason says which.")
    detail = (f"<p>Trigger rule {esc(trigger['mode'])}, rebalance to {esc(trigger.get('rebalance_to', ''))}; "
              f"solver {esc(s.get('solver', {}).get('name'))} ({esc(s.get('solver', {}).get('status'))}).</p>"
              + _items(trigger["reasons"]))
    return (f'<p class="meta" id="header">{values} {verdict}</p><p class="meta" id="tracking">{tracking}</p>'
            + technical(detail, ident="header-detail"))


def _transition_words(move: dict) -> str:
    """A move to another model portfolio, in plain words: where this step leaves it."""
    text = (f"Why now: the portfolio is moving from the {esc(move['from'])} model to the {esc(move['to'])} "
            "model; the allowed ranges apply again once it is there.")
    budget = move.get("gain_budget")
    if budget is not None:
        text += (f" This step realizes {_num(move['realized_gain'])} of gains, against a limit of "
                 f"{_num(budget)} per rebalance")
        text += " (the limit is reached)." if move.get("budget_binds") else "."
    text += (" The move is complete." if move.get("complete") else
             " The move is not complete: it continues at the next rebalance.")
    return text


def _restrictions(s: dict) -> str:
    """The client's restrictions, numbered as the trade reasons name them."""
    rows = s.get("restrictions", [])
    if not rows:
        return ""
    items = "".join(f"<li>Restriction {int(r['number'])}: {esc(r['words'])}</li>" for r in rows)
    return _section("Client restrictions", f'<ul id="restrictions-list">{items}</ul>',
                    technical(_items(r["detail"] for r in rows)), ident="restrictions")


def _drift(s: dict) -> str:
    """Each class before and after against its target and range; a class the household neither
    targets nor holds is left out (named in the technical detail)."""
    classes = pd.DataFrame(s["asset_classes"]).T
    for c in ("target", "lower", "upper", "before", "after"):
        classes[c] = classes[c].astype(float)
    empty = (classes[["target", "before", "after"]].abs() < 1e-9).all(axis=1) & (classes.index != "cash")
    hidden, classes = list(classes.index[empty]), classes[~empty]
    drift = pd.DataFrame({"Asset class": classes.index.astype(str).astype(object),
                          "Target %": 100 * classes["target"], "Range from %": 100 * classes["lower"],
                          "Range to %": 100 * classes["upper"], "Before %": 100 * classes["before"],
                          "After %": 100 * classes["after"],
                          "After vs target %": 100 * (classes["after"] - classes["target"])})
    note = (technical(f"<p>Not shown: classes with no target and no holdings before or after "
                      f"({esc(', '.join(map(str, hidden)))}).</p>") if hidden else "")
    return _section("Asset allocation before and after", f"<figure id=\"drift-chart\">{drift_chart(classes)}</figure>",
                    table(drift, css_id="drift-table"), note, ident="drift")


def _trades(s: dict, trades: pd.DataFrame) -> str:
    """The trades with their reasons in plain words; the reason codes, their meaning and the
    technical detail collapsed."""
    if not len(trades):
        return _section("Trades", "<p>None.</p>", ident="trades")
    words = {(w["account_id"], w["security_id"], w["side"]): w["words"] for w in s.get("trade_words", [])}
    types = {aid: a.get("type") for aid, a in s.get("accounts", {}).items()}
    key = [tuple(map(str, k)) for k in zip(trades["account_id"], trades["security_id"], trades["side"], strict=True)]
    reason = trades["reason"].astype(str)
    # a summary written before trade_words: the code's meaning
    why = [words.get(k) or _capital(REASON_WORDS.get(r, r)) for k, r in zip(key, reason, strict=True)]
    shown = pd.DataFrame({
        "Account": [f"{a} ({account_type_words(types[a])})" if types.get(a) else a for a, _, _ in key],
        "Security": [k[1] for k in key], "Action": [k[2].capitalize() for k in key],
        "Shares": trades["quantity"], "Price": trades["price"], "Value": trades["value"],
        "Est. cost": trades["cost"], "Why": why}).astype({"Account": object, "Security": object,
                                                           "Action": object, "Why": object})
    codes = pd.DataFrame({"Reason code": list(dict.fromkeys(reason))}).astype(object)
    codes["Meaning"] = codes["Reason code"].map(lambda r: REASON_WORDS.get(r, "")).astype(object)
    detail = pd.DataFrame({"account_id": [k[0] for k in key], "security_id": [k[1] for k in key],
                           "side": [k[2] for k in key], "reason": reason,
                           "reason_detail": trades["reason_detail"].astype(str)}).astype(object)
    return _section(f"Trades ({len(trades)})", table(shown, {"Shares": "{:,.10g}"}, css_id="trades-table"),
                    technical(table(detail, css_id="trades-detail-table"),
                              table(codes, css_id="reason-legend")), ident="trades")


def _taxes(s: dict, lots: pd.DataFrame) -> str:
    """Realized gains, the tax they cost, and the lots sold."""
    tx = s["taxes"]
    taxes = pd.DataFrame({"Term": ["Short-term", "Long-term"],
                          "Realized now": [tx["short_term_gain"], tx["long_term_gain"]],
                          "Earlier this year": [tx["ytd_short_gain"], tx["ytd_long_gain"]]}).astype({"Term": object})
    carried = tx.get("loss_carried_forward", 0.0)
    text = (f"<p>Estimated tax due to these sales: {_num(tx['tax_exact'])}. Gains realized {_num(tx['gross_gain'])}, "
            f"losses realized {_num(abs(tx['gross_loss']))}"
            + (f"; a loss of {_num(carried)} carries forward to later years" if carried else "") + ".</p>")
    lot_part = ""
    if len(lots):
        lt = pd.DataFrame({"Account": lots["account_id"], "Security": lots["security_id"], "Lot": lots["lot_id"],
                           "Bought on": lots["acquired"], "Shares": lots["quantity"],
                           "Cost basis": lots["cost_basis_total"], "Proceeds": lots["proceeds_total"],
                           "Gain": lots["gain"], "Term": lots["term"]})
        for c in ("Account", "Security", "Lot", "Bought on", "Term"):
            lt[c] = lt[c].astype(str).astype(object)
        by_term = lots.groupby(lots["term"].astype(str))["gain"].sum()
        lot_part = (f"<figure id=\"tax-chart\">"
                    f"{bar_chart(list(by_term.index), {'realized gain': list(by_term.values)}, 'Realized gain by term', 'currency', 'tax')}"
                    f"</figure><h3>Tax lots sold ({len(lots)})</h3>{table(lt, {'Shares': '{:,.10g}'}, css_id='lots-table')}")
    detail = (f"<p>The optimizer's tax term {_num(tx['tax'])} (a net loss valued at the policy's loss value); "
              f"under exact netting rules {_num(tx['tax_exact'])}.</p>")
    return _section("Tax impact", text, table(taxes, css_id="tax-table"), lot_part, technical(detail), ident="taxes")


def _location(s: dict, trades: pd.DataFrame) -> str:
    """Each asset class per account type before and after (charted by its change), with the
    securities traded per account type as detail."""
    loc = class_location(s)
    body = []
    if len(loc) and (loc["change"].abs() >= 0.005).any():
        net = loc.pivot_table(index="asset_class", columns="account_type", values="change", aggfunc="sum",
                              fill_value=0.0, sort=False)
        series = {account_type_words(c): list(net[c]) for c in net.columns}
        body.append("<figure id=\"location-chart\">"
                    f"{bar_chart(list(net.index), series, 'Change in value by asset class and account type', 'currency', 'location')}"
                    "</figure>")
    if len(loc):
        shown = pd.DataFrame({"Account type": loc["account_type"].map(account_type_words).astype(object),
                              "Asset class": loc["asset_class"], "Before": loc["before"], "After": loc["after"],
                              "Change": loc["change"]})
        body.append(table(shown, css_id="location-table"))
    by_security = location_changes(s, trades)
    if len(by_security):
        body.append('<details id="location-securities"><summary>By security</summary>'
                    + table(by_security, css_id="location-security-table") + "</details>")
    if not body:
        body.append("<p>No trades, no location change.</p>")
    return _section("Where each asset class is held (by account type)", *body, ident="location")


def _overlay(s: dict, futures: pd.DataFrame) -> str:
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
    return _section("Overlay", *parts, ident="overlay")


def _checks(s: dict) -> str:
    """Whether the independent checks passed, as a count; their names in the technical detail."""
    checks = s.get("checks", {})
    ok = bool(checks.get("passed"))
    families = [str(f) for f in checks.get("families", [])]
    verdict = (f"All {len(families)} independent checks of the proposal passed." if ok else
               "The independent checks FAILED: do not send this proposal.")
    notes = s.get("notes", [])
    detail = (f"<p>Checks: {esc(', '.join(families))}; violations: {esc(checks.get('violations', 0))}.</p>"
              + (_items(f"{k}: {v}" for k, v in checks.get("not_applied", {}).items())
                 if checks.get("not_applied") else ""))
    return _section("Checks", f"<p class=\"{'ok' if ok else 'bad'}\" id=\"checks\">{esc(verdict)}</p>",
                    (f"<h3>Notes</h3>{_items(notes)}" if notes else ""), technical(detail, ident="checks-detail"),
                    ident="checks-section")


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
    name = str(summary.get("household", ""))
    body = [f"<h1>Rebalance proposal: {esc(name)}</h1>", _header(summary, trades), _restrictions(summary),
            _drift(summary), _trades(summary, trades), _taxes(summary, lots), _location(summary, trades)]
    if futures is not None and len(futures):
        body.append(_overlay(summary, futures))
    body.append(_checks(summary))
    return _page(f"Rebalance proposal: {name}", body)
