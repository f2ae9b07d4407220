"""A backtest's files and charts: comparison.csv, and per policy values.csv, events.csv,
trades.csv, attribution.csv (the return by source, ``scenarios.attribution``; one row per piece,
the total last), clips.csv (every tilt a governance limit changed) and summary.json, and PNG
charts (matplotlib, the ``notebooks`` extra; without it the charts are left out and the tables
are still written)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from cvxrebalance.optimizer.domain.output import frame_csv, write_files


def directory_name(policy: str) -> str:
    """A policy name as a directory name (letters, digits, dot, dash and underscore)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", policy) or "policy"


def _dated(df: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO text (the CSV writer treats non-numbers as text)."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def write(result, out_dir) -> Path:
    """Write every file of ``result`` into ``out_dir`` (created); returns it.

    Nothing is half-written: every policy's directory is made before any file is written (a
    path in the way fails first, with nothing replaced); each policy's files are staged and
    renamed together (``output.write_files``), the charts renamed into place, and
    ``comparison.csv`` comes last."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folders = {name: out / directory_name(name) for name in result.runs}
    for d in folders.values():
        d.mkdir(exist_ok=True)
    for name, run in result.runs.items():
        write_files(folders[name], {
            "values.csv": frame_csv(_dated(run.values.reset_index())),
            "events.csv": frame_csv(_dated(run.events)),
            "trades.csv": frame_csv(_dated(run.trades)),
            "attribution.csv": frame_csv(result.attribution(name).table.rename_axis("piece").reset_index()),
            "clips.csv": frame_csv(_dated(run.clips)),
            "summary.json": json.dumps(run.stats, indent=2, default=float) + "\n"})
    _charts(result, out, folders)
    write_files(out, {"comparison.csv": frame_csv(result.stats.rename_axis("policy").reset_index())})
    return out


def _charts(result, out: Path, folders: dict[str, Path]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the notebooks extra is not installed: tables only
        return
    charts = [(out / "values.png", lambda ax: plot_values(result, ax)),
              (out / "drift.png", lambda ax: plot_drift(result, ax=ax)),
              (out / "costs_taxes.png", lambda ax: plot_costs_taxes(result, ax)),
              *[(folders[name] / "attribution.png", lambda ax, name=name: result.attribution(name).plot(ax))
                for name in result.runs]]
    for path, plot in charts:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        plot(ax)
        fig.tight_layout()
        staged = path.parent / f".{path.name}.tmp"
        try:
            fig.savefig(staged, dpi=100, format="png")
            os.replace(staged, path)
        finally:
            plt.close(fig)
            staged.unlink(missing_ok=True)


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(9, 4.5))
    return ax


def plot_values(result, ax=None):
    ax = _axes(ax)
    for name, run in result.runs.items():
        ax.plot(run.values.index, run.values["value"], label=name)
    ax.set_yscale("log")
    ax.set_title("Household value")
    ax.set_ylabel("value (log scale)")
    ax.legend()
    return ax


def plot_drift(result, asset_class: str | None = None, ax=None):
    ax = _axes(ax)
    first = next(iter(result.runs.values())).values
    classes = [c[len("before_"):] for c in first.columns if c.startswith("before_")]
    asset_class = asset_class or classes[0]
    for name, run in result.runs.items():
        ax.plot(run.values.index, run.values[f"before_{asset_class}"], label=name, linewidth=0.8)
    ax.set_title(f"Weight of {asset_class} before each date's trades")
    ax.yaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.legend()
    return ax


def plot_costs_taxes(result, ax=None):
    ax = _axes(ax)
    for name, run in result.runs.items():
        line, = ax.plot(run.values.index, run.values["cost"].cumsum(), label=f"{name}: costs")
        ax.plot(run.values.index, run.values["tax_paid"].cumsum(), linestyle="--", color=line.get_color(),
                label=f"{name}: taxes")
    ax.set_title("Cumulative trading costs and taxes paid")
    ax.legend(fontsize="small")
    return ax


def comparison_table(result) -> pd.DataFrame:
    """The statistics with readable units (percent, currency), for a notebook or terminal."""
    s = result.stats.astype(float)
    out = pd.DataFrame(index=s.index)
    out["events"] = s["events"].astype(int)
    for c in ("final_value", "after_tax_value", "costs", "taxes_paid"):
        out[c] = s[c].map("{:,.0f}".format)
    for c in ("ann_return", "ann_vol", "max_drawdown", "turnover", "tracking_error"):
        out[c] = s[c].map("{:.2%}".format)
    return out
