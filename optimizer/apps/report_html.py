"""``cvxrebalance report OUT_DIR``: HTML proposals from written results, and a batch dashboard.

A single result directory (``run --out``: summary.json beside trades.csv, lots.csv ...) gets a
``report.html``; a batch OUT_DIR (``households/`` and ``manifest.json``) gets one per household
and a ``dashboard.html`` that charts the households by tracking error, trades and taxes and
lists the errors, each household linked to its report. The per-household page is the one
``RebalanceResult.to_html()`` renders (``optimizer.pipeline.html_report.render_html``), fed
with the tables read back from the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.apps.batch import KEY, read_result_csv
from cvxrebalance.optimizer.domain.output import write_files
from cvxrebalance.optimizer.pipeline.html_report import _page, _pyplot, esc, render_html, svg_figure, table
from cvxrebalance.optimizer.pipeline.result import FUTURES_COLUMNS, LOT_COLUMNS, TRADE_COLUMNS


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    """A result CSV as written (ids as text), or an empty table with its columns when absent."""
    if path.is_file() and path.stat().st_size > 0:
        return read_result_csv(path)
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def household_html(result_dir: str | Path) -> str:
    """The proposal page of one written result directory (summary.json, trades.csv, lots.csv and
    futures.csv when present).

    Raises
    ------
    FileNotFoundError
        The directory has no summary.json.
    """
    d = Path(result_dir)
    if not (d / "summary.json").is_file():
        raise FileNotFoundError(f"{d}: no summary.json (not a result directory)")
    summary = json.loads((d / "summary.json").read_text())
    futures = _read(d / "futures.csv", FUTURES_COLUMNS)
    return render_html(summary, _read(d / "trades.csv", TRADE_COLUMNS), _read(d / "lots.csv", LOT_COLUMNS),
                       futures if len(futures) else None)


def _scatter(rows: pd.DataFrame) -> str:
    """Each household's tracking error before (x) against after (y), sized by its trades and
    colored by its tax, with the no-change diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    before, after = 100 * rows["te_before"], 100 * rows["te_after"]
    points = ax.scatter(before, after, s=20 + 8 * rows["trades"], c=rows["tax"], cmap="viridis",
                        alpha=0.8, edgecolors="#333")
    top = float(max(before.max(), after.max(), 1e-6)) * 1.05
    ax.plot([0, top], [0, top], ls="--", color="#999", lw=1, label="no change")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("tracking error before (%)")
    ax.set_ylabel("tracking error after (%)")
    ax.set_title("Households: tracking error before vs after (size: trades, color: tax)")
    fig.colorbar(points, ax=ax, label="tax (currency)")
    ax.legend(frameon=False, fontsize=8)
    return svg_figure(fig, "dashboard-scatter")


def _bars(rows: pd.DataFrame) -> str:
    """Tracking error before and after per household, worst first (at most 40 shown)."""
    plt = _pyplot()
    top = rows.sort_values("te_before", ascending=False).head(40)
    x = np.arange(len(top))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.3 * len(top) + 2), 3.8))
    ax.bar(x - 0.2, 100 * top["te_before"], 0.4, label="before", color="#9e9e9e")
    ax.bar(x + 0.2, 100 * top["te_after"], 0.4, label="after", color="#1f77b4")
    ax.set_xticks(x, list(top["household"]), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("tracking error (%)")
    ax.set_title("Households by drift (tracking error before, worst first)")
    ax.legend(frameon=False, fontsize=8)
    return svg_figure(fig, "dashboard-bars")


def dashboard_html(out_dir: Path, rows: pd.DataFrame, errors: pd.DataFrame) -> str:
    """The batch dashboard: charts of the households and tables of households and errors.

    Parameters
    ----------
    out_dir : Path
        The batch OUT_DIR (named in the title only).
    rows : DataFrame
        One row per household with a result: household, link, te_before, te_after, trades,
        tax, costs, rebalanced, checks.
    errors : DataFrame
        errors.csv (household_id, error, reason).
    """
    body = [f"<h1>Batch dashboard: {esc(out_dir.name)}</h1>",
            f'<p class="meta">{len(rows)} households with a result, {len(errors)} errors; '
            f"{int(rows['rebalanced'].sum()) if len(rows) else 0} rebalanced, "
            f"{int(rows['trades'].sum()) if len(rows) else 0} trades, "
            f"tax {rows['tax'].sum() if len(rows) else 0:,.2f}.</p>"]
    if len(rows):
        body.append(f'<section id="charts"><h2>Households</h2><figure id="scatter-chart">{_scatter(rows)}</figure>'
                    f'<figure id="drift-bars">{_bars(rows)}</figure></section>')
        shown = rows.sort_values("te_before", ascending=False)
        table_rows = pd.DataFrame({
            "household": shown["household"].astype(object),
            "rebalanced": shown["rebalanced"].map({True: "yes", False: "no"}).astype(object),
            "tracking error before %": 100 * shown["te_before"], "after %": 100 * shown["te_after"],
            "trades": shown["trades"], "costs": shown["costs"], "tax": shown["tax"],
            "checks": shown["checks"].astype(object)})
        body.append('<section id="households"><h2>Households by drift</h2>'
                    + table(table_rows, {"tracking error before %": "{:.4f}", "after %": "{:.4f}", "trades": "{:,.0f}"},
                            css_id="households-table", links={"household": list(shown["link"])}) + "</section>")
    err = errors[[c for c in (KEY, "error", "reason") if c in errors.columns]].astype(str).astype(object)
    # A long error (a ValidationError lists every problem) shows its first line; the rest folds.
    body.append('<section id="errors"><h2>Errors</h2>'
                + (table(err, css_id="errors-table", fold=["reason"]) if len(err) else "<p>None.</p>") + "</section>")
    return _page(f"Batch dashboard: {out_dir.name}", body)


def report(out_dir: str | Path) -> list[Path]:
    """Write the HTML reports of a result directory or a batch OUT_DIR; returns the files written.

    Raises
    ------
    FileNotFoundError
        ``out_dir`` is neither a result directory (summary.json) nor a batch OUT_DIR
        (households/ or manifest.json).
    """
    out = Path(out_dir)
    if (out / "summary.json").is_file():
        write_files(out, {"report.html": household_html(out)})
        return [out / "report.html"]
    if not ((out / "households").is_dir() or (out / "manifest.json").is_file()):
        raise FileNotFoundError(f"{out}: neither a result directory (summary.json) nor a batch OUT_DIR "
                                "(households/, manifest.json)")
    written, rows = [], []
    for hdir in sorted((out / "households").glob("*/")) if (out / "households").is_dir() else []:
        if not (hdir / "summary.json").is_file():
            continue
        write_files(hdir, {"report.html": household_html(hdir)})
        written.append(hdir / "report.html")
        s = json.loads((hdir / "summary.json").read_text())
        rows.append({"household": str(s.get("household", hdir.name)), "link": f"households/{hdir.name}/report.html",
                     "te_before": float(s["tracking_error"]["before"]), "te_after": float(s["tracking_error"]["after"]),
                     "trades": int(s.get("trade_count", 0)), "costs": float(s.get("costs", 0.0)),
                     "tax": float(s["taxes"]["tax"]), "rebalanced": bool(s.get("rebalanced")),
                     "checks": "passed" if s.get("checks", {}).get("passed") else "FAILED"})
    path = out / "errors.csv"  # all text (read_result_csv would take "error" for a number column)
    errors = (pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() and path.stat().st_size
              else pd.DataFrame(columns=[KEY, "error", "reason"]))
    frame = pd.DataFrame(rows, columns=["household", "link", "te_before", "te_after", "trades", "costs", "tax",
                                        "rebalanced", "checks"])
    write_files(out, {"dashboard.html": dashboard_html(out, frame, errors)})
    written.append(out / "dashboard.html")
    return written


__all__ = ["dashboard_html", "household_html", "report"]
