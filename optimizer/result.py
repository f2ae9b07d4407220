"""The rebalance result: DataFrames, a JSON summary, and atomic writing of the output files."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cost_models import default_costs
from cost_models.tax import Tax
from cost_models.tracking_error import variance
from optimizer.prepare import Prepared
from optimizer.problem import ContinuousSolution
from optimizer.solution import Solution

TRADE_COLUMNS = ["account_id", "security_id", "side", "quantity", "price", "value", "cost"]
LOT_COLUMNS = ["account_id", "security_id", "lot_id", "quantity", "cost_basis", "proceeds",
               "gain", "term"]


@dataclass
class RebalanceResult:
    """What a rebalance decided, checked.

    Attributes
    ----------
    trades : DataFrame
        One row per position traded, whole shares (columns ``TRADE_COLUMNS``).
    lots : DataFrame
        One row per tax lot sold (columns ``LOT_COLUMNS``).
    asset_classes : DataFrame
        Per asset class (and cash): target, lower, upper, before, after.
    summary : dict
        Everything ``summary.json`` holds.
    """

    trades: pd.DataFrame
    lots: pd.DataFrame
    asset_classes: pd.DataFrame
    summary: dict
    solution: Solution = field(repr=False)

    @classmethod
    def build(cls, data: Prepared, sol: Solution, cont: ContinuousSolution | None, checks: dict,
              reasons: list[str], rebalanced: bool, seconds: float) -> RebalanceResult:
        trades = _trades(data, sol)
        lots = _lots(data, sol)
        classes = _asset_classes(data, sol)
        te_before = np.sqrt(variance(data, data.h0.sum(0), float(data.cash0.sum()), target=True))
        te_after = np.sqrt(variance(data, sol.weights_after(), sol.cash_weight_after,
                                    sol.overlay_after(), target=True))
        terms = {c.name: c.evaluate(sol) for c in default_costs()}
        taxes = {k: round(v, 2) for k, v in Tax.realized(sol).items()}
        notes = list(data.notes)
        if taxes["gross_loss"] < 0:
            notes.append("realized losses are not credited against gains yet: the tax is on each "
                         "lot's gain (gain netting comes with the tax-netting model)")
        o = data.policy.objective
        objective = (o.risk_weight * terms["risk"] + o.cost_weight * (terms["cost"] + terms["overlay_cost"])
                     + o.tax_weight * terms["tax"] + o.location_weight * terms["location"])
        acc_before = (data.q0 * data.price).sum(1) + data.cash_cur
        acc_after = (sol.q_after * data.price).sum(1) + sol.cash_after
        summary = {
            "household": data.household.name,
            "household_value": round(data.V0, 2),
            "household_value_after_flows": round(data.V, 2),
            "household_value_after": round(sol.value_after, 2),
            "rebalanced": rebalanced,
            "trigger": {"mode": data.policy.trigger.mode, "reasons": reasons,
                        "rebalance_to": data.policy.trigger.rebalance_to},
            "asset_classes": {
                name: {k: round(float(row[k]), 8) for k in
                       ("strategic", "tilt", "target", "lower", "upper", "before", "after")}
                for name, row in classes.iterrows()
            },
            "tracking_error": {"before": float(te_before), "after": float(te_after)},
            "costs": round(float(sol.costs.sum()), 2),
            "taxes": taxes,
            "turnover": sol.traded / 2 / data.V,
            "esg_score": _esg_scores(data, sol),
            "trade_count": len(trades),
            "objective": {"value": objective, **terms},
            "accounts": {
                aid: {"type": data.account_types[a], "value_before": round(float(acc_before[a]), 2),
                      "cash_flow": round(float(data.flow_cur[a]), 2),
                      "value_after": round(float(acc_after[a]), 2),
                      "cash_after": round(float(sol.cash_after[a]), 2),
                      "costs": round(float(sol.costs[a]), 2)}
                for a, aid in enumerate(data.account_ids)
            },
            "solver": {"name": cont.solver if cont else None,
                       "status": cont.status if cont else "not run (no trade triggered)",
                       "time_ms": round(cont.time_ms, 3) if cont else 0.0,
                       "attempts": [list(x) for x in cont.attempts] if cont else []},
            "time_ms": round(seconds * 1e3, 3),
            "checks": checks,
            "notes": notes,
        }
        return cls(trades, lots, classes, summary, sol)

    def write(self, out_dir: str | Path) -> Path:
        """Write trades.csv, lots.csv and summary.json into ``out_dir``; all of them or none.

        Each file is first written in full to a temporary name in ``out_dir`` and only then renamed
        over its final name, so a crash never leaves a half-written or mixed result. Other files in
        ``out_dir`` are left alone.

        Raises
        ------
        OSError
            ``out_dir`` is a file, or cannot be created or written.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} is a file, not a directory")
        out.mkdir(parents=True, exist_ok=True)
        contents = {
            "trades.csv": self.trades.to_csv(index=False),
            "lots.csv": self.lots.to_csv(index=False),
            "summary.json": json.dumps(self.summary, indent=2, default=str) + "\n",
        }
        staged: dict[str, str] = {}
        try:
            for name, text in contents.items():
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
                staged[name] = tmp
                try:
                    f = os.fdopen(fd, "w")
                except BaseException:
                    os.close(fd)
                    raise
                with f:
                    f.write(text)
                os.chmod(tmp, 0o644)
            for name, tmp in staged.items():
                os.replace(tmp, out / name)
        finally:
            for tmp in staged.values():
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return out

    def to_text(self) -> str:
        """The terminal summary: drift table, trade list, totals."""
        from optimizer.report import render

        return render(self)


def _esg_scores(data: Prepared, sol: Solution) -> dict | None:
    """Value-weighted ESG score of scored holdings before and after (None without scores)."""
    s = data.column("esg_score").astype(float)
    scored = ~np.isnan(s)
    if not scored.any():
        return None

    def avg(w: np.ndarray) -> float | None:
        return float((s[scored] * w[scored]).sum() / w[scored].sum()) if w[scored].sum() > 0 else None

    return {"before": avg(data.h0.sum(0)), "after": avg(sol.weights_after()),
            "min": data.policy.esg.min_score or None}


def _trades(data: Prepared, sol: Solution) -> pd.DataFrame:
    lin = data.column("half_spread") + data.column("commission")
    impact = data.column("impact")
    rows = []
    for side, q in (("sell", sol.sell_q), ("buy", sol.buy_q)):
        for a, i in zip(*np.nonzero(q > 0), strict=True):
            value = float(q[a, i] * data.price[i])
            cost = value * lin[i] + impact[i] * value**2 / data.V
            rows.append((data.account_ids[a], data.security_ids[i], side, float(q[a, i]),
                         float(data.price[i]), round(value, 2), round(cost, 2)))
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


def _lots(data: Prepared, sol: Solution) -> pd.DataFrame:
    rows = []
    for lot in data.lots:
        q = float(sol.lot_sell_q[lot.t, lot.security, lot.slot])
        if q <= 0:
            continue
        price = data.price[lot.security]
        rows.append((data.account_ids[lot.account], data.security_ids[lot.security], lot.lot_id, q,
                     lot.cost_basis, round(q * price, 2), round(q * (price - lot.cost_basis), 2),
                     lot.term))
    return pd.DataFrame(rows, columns=LOT_COLUMNS)


def _asset_classes(data: Prepared, sol: Solution) -> pd.DataFrame:
    # "before" is where the rebalance starts: holdings and cash after the cash flows, over V.
    before = np.append(data.X.T @ data.h0.sum(0), data.cash0.sum())
    after = np.append(sol.class_after, sol.cash_weight_after)
    return pd.DataFrame(
        {"strategic": np.append(data.strategic, data.cash_target),
         "tilt": np.append(data.tilt, 0.0),
         "target": np.append(data.target, data.cash_target),
         "lower": np.append(data.lower, data.cash_lower),
         "upper": np.append(data.upper, data.cash_upper),
         "before": before, "after": after},
        index=pd.Index([*data.classes, "cash"], name="asset_class"),
    )
