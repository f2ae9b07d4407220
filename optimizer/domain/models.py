"""Model portfolios and per-household policies: ``models.csv`` and ``households.csv``.

An advisor's book runs on a few model portfolios (Conservative 30/70 ... Aggressive 90/10), each
household assigned to one, with its own policy file and its own tax rates and limits:

- ``models.csv``: ``model_id`` plus the columns of ``targets.csv``; each model's rows are a
  targets table of their own (checked as one);
- ``households.csv``: ``household_id, model_id``, an optional ``policy`` (a TOML file in the
  ``policies/`` folder beside it, by file name, ``.toml`` optional) and optional per-household
  overrides of common policy keys (``OVERRIDES``; a blank cell keeps the policy's value), and
  ``previous_model_id`` for a household moving to another model (a transition: its realized
  gains are capped by ``[tax] gain_budget`` at every rebalance, so a move the budget binds is
  phased over several; ``transition`` reports where it stands).

A household's policy is its ``policy`` file (else the shared ``policy.toml``) with its overrides
applied (``household_policy``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.tables import Column, file_lines, parse_table
from cvxrebalance.optimizer.domain.targets import band_edges

# households.csv column -> the policy section and key it overrides.
OVERRIDES = {
    "short_term_rate": ("tax", "short_term_rate"),
    "long_term_rate": ("tax", "long_term_rate"),
    "gain_budget": ("tax", "gain_budget"),
    "min_value": ("trades", "min_value"),
    "turnover": ("limits", "turnover"),
    "risk_weight": ("objective", "risk_weight"),
    "cost_weight": ("objective", "cost_weight"),
    "tax_weight": ("objective", "tax_weight"),
}
HOUSEHOLDS = {
    "household_id": Column("str"),
    "model_id": Column("str", required=True),
    "previous_model_id": Column("str", default=""),  # a transition from this model (``transition``)
    "policy": Column("str", default=""),
    **{name: Column("float", default=np.nan) for name in OVERRIDES},
}


def split_models(models: pd.DataFrame, problems: list[Problem]) -> dict[str, pd.DataFrame]:
    """models.csv as one targets table per ``model_id`` (each keeps its file lines)."""
    if "model_id" not in models.columns:
        problems.append(Problem("models.csv", 1, "model_id", "required column is missing"))
        return {}
    lines = file_lines(models)
    ids = models["model_id"].astype(object).where(models["model_id"].notna(), "").map(str).str.strip()
    out: dict[str, pd.DataFrame] = {}
    for line, mid in zip(lines, ids, strict=True):
        if not mid:
            problems.append(Problem("models.csv", line, "model_id", "missing value"))
    body = models.drop(columns="model_id").set_axis(lines)
    for mid in dict.fromkeys(ids):
        if mid:
            part = body[(ids == mid).to_numpy()]
            part.attrs["file_lines"] = True
            out[mid] = part
    return out


def model_problems(problems: list[Problem], model_id: str) -> list[Problem]:
    """A model's targets problems as models.csv's (its rows are a targets table)."""
    return [Problem("models.csv", p.row, p.field, f"model {model_id!r}: {p.message}") if p.file == "targets.csv"
            else p for p in problems]


def read_policies(folder: Path) -> dict[str, Policy | list[Problem]]:
    """Every ``*.toml`` of a ``policies/`` folder by file name without ``.toml``: the policy, or
    the problems reading it found (they fail only the households that name it; plain data, so
    the table travels to worker processes)."""
    out: dict[str, Policy | list[Problem]] = {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
        try:
            out[path.stem] = Policy.from_toml(path)
        except ValidationError as exc:
            out[path.stem] = [Problem(f"policies/{path.name}", p.row, p.field, p.message) for p in exc.problems]
    return out


def assignment(frame: pd.DataFrame, models: dict[str, pd.DataFrame]) -> tuple[int, pd.Series]:
    """The one households.csv row of a household (its line and typed values).

    Raises
    ------
    ValidationError
        The household is listed twice, or its row is bad (unknown model, a non-number override).
    """
    problems: list[Problem] = []
    rows = parse_table(frame, "households.csv", {k: v for k, v in HOUSEHOLDS.items() if k != "household_id"},
                       problems)
    lines = file_lines(frame)
    if len(rows) != 1:
        problems.append(Problem("households.csv", lines[1] if len(lines) > 1 else None, "household_id",
                                f"the household has {len(rows)} rows; give it one (lines {', '.join(map(str, lines))})"))
    elif rows["model_id"].iat[0] and rows["model_id"].iat[0] not in models:
        problems.append(Problem("households.csv", lines[0], "model_id",
                                f"unknown model {rows['model_id'].iat[0]!r}; models.csv has "
                                f"{', '.join(sorted(models)) or 'none'}"))
    elif rows["previous_model_id"].iat[0] and rows["previous_model_id"].iat[0] not in models:
        problems.append(Problem("households.csv", lines[0], "previous_model_id",
                                f"unknown model {rows['previous_model_id'].iat[0]!r}"))
    if problems:
        raise ValidationError(problems)
    return lines[0], rows.iloc[0]


def in_transition(row: pd.Series | None) -> bool:
    """Whether a households.csv row moves the household to another model."""
    return row is not None and bool(row["previous_model_id"]) and row["previous_model_id"] != row["model_id"]


def transition_policy(policy: Policy) -> Policy:
    """The policy of a rebalance inside a transition: it always trades toward the new model and
    the new model's bands do not bind until the move is done (they would force the whole move
    at once), so ``[tax] gain_budget`` sets how far each rebalance goes."""
    return policy.replace(bands={"rule": "none"}, trigger={"mode": "always", "rebalance_to": "target"})


def _half_width(target: float, bands) -> float:
    lo, hi = band_edges(np.array([target]), bands)
    return float(min(target - lo[0], hi[0] - target)) + 1e-9


def transition(row: pd.Series, policy: Policy, summary: dict, bands=None,
               lots: pd.DataFrame | None = None) -> dict | None:
    """Where a household moving between models stands after a rebalance (``None`` when it is
    not moving): from and to, the gain budget and whether it bound, and whether the move is
    complete (every class inside the new model's bands under ``bands``, the household's own
    band policy; cash is what the move leaves).

    The budget binds when the net realized gain is within a share of it: whole shares leave up
    to one share's gain of each position sold unused (``lots``, the lots sold: their largest
    gain per share, per position), so 1,930 of a 2,000 budget can be the budget binding."""
    if not in_transition(row):
        return None
    before, after = row["previous_model_id"], row["model_id"]
    bands = bands or policy.bands
    taxes = summary["taxes"]
    net = taxes["short_term_gain"] + taxes["long_term_gain"]
    budget = policy.tax.gain_budget
    inside = all(abs(c["after"] - c["target"]) <= _half_width(c["target"], bands)
                 for name, c in summary["asset_classes"].items() if name != "cash")
    slack = 1.0
    if lots is not None and len(lots):
        per_share = (lots["gain"] / lots["quantity"]).clip(lower=0.0)
        slack += float(per_share.groupby([lots["account_id"], lots["security_id"]]).max().sum())
    return {"from": before, "to": after, "gain_budget": None if budget < 0 else budget,
            "realized_gain": round(net, 2), "budget_binds": bool(budget >= 0 and net >= budget - slack),
            "complete": inside, "tracking_error_after": summary["tracking_error"]["after"]}


def household_policy(row: pd.Series, line: int, shared: Policy,
                     policies: dict[str, Policy | list[Problem]]) -> Policy:
    """The household's policy: its ``policy`` file (else ``shared``) with its overrides.

    Raises
    ------
    ValidationError
        An unknown or unreadable policy file, or an override out of its key's range, naming
        households.csv's line and column.
    """
    name = str(row["policy"]).removesuffix(".toml")
    base = shared
    if name:
        if name not in policies:
            raise ValidationError([Problem("households.csv", line, "policy", (
                f"no policy file policies/{name}.toml; policies/ has {', '.join(sorted(policies)) or 'none'}"))])
        base = policies[name]
        if isinstance(base, list):
            raise ValidationError(base)
    changes: dict[str, dict[str, float]] = {}
    for column, (section, key) in OVERRIDES.items():
        value = row[column]
        if not np.isnan(value):
            changes.setdefault(section, {})[key] = float(value)
    if not changes:
        return base
    try:
        return base.replace(**changes)
    except ValidationError as exc:  # name the cell that set the key
        where = {f"{s}.{k}": c for c, (s, k) in OVERRIDES.items()}
        raise ValidationError([Problem("households.csv", line, where.get(p.field, p.field), p.message)
                               for p in exc.problems]) from exc
