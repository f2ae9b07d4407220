"""The rebalance result: DataFrames, a JSON summary, and atomic writing of the output files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.constraints.esg import portfolio_score
from cvxrebalance.cost_models import lot_relief, objective_value
from cvxrebalance.cost_models.tax import realized as tax_realized
from cvxrebalance.cost_models.tracking_error import variance
from cvxrebalance.optimizer.domain import restrictions
from cvxrebalance.optimizer.domain.factor_targets import exposure_after, factor_targets, overlay_before
from cvxrebalance.optimizer.domain.output import csv_text, write_files
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution
from cvxrebalance.optimizer.pipeline.exposures import currency_exposures
from cvxrebalance.optimizer.pipeline.lot_choice import carried_forward
from cvxrebalance.optimizer.pipeline.problem import ContinuousSolution
from cvxrebalance.optimizer.pipeline.reasons import futures_reasons, trade_reasons

# reason: one of reasons.REASONS (why the trade is there); reason_detail names the class, band,
# account or amount behind it.
TRADE_COLUMNS = ["account_id", "security_id", "side", "quantity", "price", "value", "cost", "reason",
                 "reason_detail"]
FUTURES_COLUMNS = ["contract_id", "instrument", "counterparty", "account_id", "contracts_before", "contracts_after", "trade",
                   "notional_after", "margin", "cost", "roll_to", "reason", "reason_detail"]
# Per share and in total, named so (a lone "cost_basis" beside a total "proceeds" read as either).
LOT_COLUMNS = ["account_id", "security_id", "lot_id", "acquired", "quantity", "cost_basis_per_share",
               "cost_basis_total", "proceeds_per_share", "proceeds_total", "gain", "term"]
# holdings.csv's own columns: the file can be the next rebalance's (or a backtest step's) input.
HOLDINGS_AFTER_COLUMNS = ["account_id", "security_id", "quantity", "lot_id", "cost_basis", "acquired"]
# factor_drift.csv (households with factor_targets.csv): exposures per unit of household value in
# each factor's units; lower/upper empty where the band has no edge.
FACTOR_COLUMNS = ["factor", "target", "lower", "upper", "before", "after", "overlay_before", "overlay_after"]
# The columns of these tables that hold text (ids, sides, terms, dates); the others are numbers.
TEXT_COLUMNS = {"account_id", "security_id", "side", "lot_id", "term", "contract_id", "instrument", "counterparty",
                "roll_to", "acquired", "reason", "reason_detail"}


Columns = dict[str, np.ndarray]


@dataclass
class RebalanceResult:
    """What a rebalance decided, checked.

    The tables are kept as arrays and become DataFrames on first use, so a caller that reads only
    the summary or the solution (a backtest, a batch's totals) never pays for pandas.

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
    futures : DataFrame
        One row per overlay contract (columns ``FUTURES_COLUMNS``); empty without futures.
    holdings_after : DataFrame
        Every position after the trades in holdings.csv's columns (``HOLDINGS_AFTER_COLUMNS``):
        in taxable accounts one row per lot left, and one per new lot a buy opens (acquired on
        the as-of date at the trade price); elsewhere one row per position.
    factor_drift : DataFrame
        Per factor of factor_targets.csv (the index): target, lower, upper (NaN: no edge),
        before, after, and the overlay's part before and after; empty without factor targets.
    """

    summary: dict
    solution: Solution = field(repr=False)
    tables: dict[str, Columns] = field(repr=False)
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def trades(self) -> pd.DataFrame:
        return self._frame("trades")

    @property
    def lots(self) -> pd.DataFrame:
        return self._frame("lots")

    @property
    def asset_classes(self) -> pd.DataFrame:
        return self._frame("asset_classes")

    @property
    def futures(self) -> pd.DataFrame:
        return self._frame("futures")

    @property
    def factor_drift(self) -> pd.DataFrame:
        return self._frame("factor_drift")

    @property
    def holdings_after(self) -> pd.DataFrame:
        self._holdings_columns()
        return self._frame("holdings_after")

    def _holdings_columns(self) -> Columns:
        """holdings_after's columns, built on first use (by the property or by ``write``)."""
        if "holdings_after" not in self.tables:
            self.tables["holdings_after"] = _holdings_after(self.solution.data, self.solution)
        return self.tables["holdings_after"]

    def _frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            columns = dict(self.tables[name])
            key = {"asset_classes": "asset_class", "factor_drift": "factor"}.get(name)
            index = columns.pop(key) if key else None
            self._frames[name] = pd.DataFrame(columns, index=None if index is None else pd.Index(index, name=key))
        return self._frames[name]

    @classmethod
    def build(cls, data: Prepared, sol: Solution, cont: ContinuousSolution | None, checks: dict,
              reasons: list[str], rebalanced: bool, seconds: float,
              reason_words: list[str] | None = None) -> RebalanceResult:
        """The result of a finished, checked solution (``reason_words``: the trigger's reasons in
        plain words, when they differ from ``reasons``)."""
        trades, words = _trades(data, sol)
        lots = _lots(data, sol)
        classes = _asset_classes(data, sol)
        te_before = np.sqrt(variance(data, data.h0.sum(0), float(data.cash0.sum()), target=True))
        te_after = np.sqrt(variance(data, sol.weights_after(), sol.cash_weight_after,
                                    sol.overlay_after(), target=True))
        objective, terms = objective_value(sol)
        taxes = {k: round(v, 2) + 0.0 for k, v in tax_realized(sol).items()}  # + 0.0: never "-0.0"
        taxes.update(_carried(data, taxes["short_term_gain"], taxes["long_term_gain"]))
        if sol.lot_sell_q.any():
            taxes["relief"] = lot_relief.compare(sol)
        notes = list(data.notes)
        acc_before = (data.q0 * data.price).sum(1) + data.cash_cur
        acc_after = (sol.q_after * data.price).sum(1) + sol.cash_after
        summary = {
            "household": data.household.name,
            "as_of": str(data.policy.tax.as_of),  # the trade date the terms and wash sales use
            "household_value": round(data.V0, 2),
            "household_value_after_flows": round(data.V, 2),
            "household_value_after": round(sol.value_after, 2),
            "rebalanced": rebalanced,
            "trigger": {"mode": data.policy.trigger.mode, "reasons": reasons,
                        "rebalance_to": data.policy.trigger.rebalance_to,
                        "words": list(reasons if reason_words is None else reason_words)},
            "asset_classes": {
                name: {k: round(float(v[c]), 8) for k, v in classes.items() if k != "asset_class"}
                for c, name in enumerate(classes["asset_class"])
            },
            "tracking_error": {"before": float(te_before), "after": float(te_after)},
            "costs": round(float(sol.costs.sum()), 2),
            "taxes": taxes,
            "wash_sales": _wash_summary(data),
            "turnover": sol.traded / 2 / data.V,
            "esg_score": _esg_scores(data, sol),
            "trade_count": len(trades["side"]),
            "objective": {"value": objective + 0.0, **{k: v + 0.0 for k, v in terms.items()}},
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
                       "attempts": [list(x) for x in cont.attempts] if cont else [], "solves": 0},
            "time_ms": round(seconds * 1e3, 3),
            "checks": checks,
            "notes": notes,
            # For the proposal page (html_report): each trade's reason in plain words, the
            # client's restrictions by number, and each class's value per account type.
            "trade_words": [{"account_id": a, "security_id": i, "side": side, "words": w} for a, i, side, w
                            in zip(trades["account_id"], trades["security_id"], trades["side"], words, strict=True)],
            "restrictions": _restriction_rows(data),
            "location": _location(data, sol),
        }
        valuations = _valuations(data)
        if valuations:
            summary["illiquid_valuations"] = valuations
        exposure = currency_exposures(data, sol)
        futures = _futures(data, sol, exposure)
        if exposure:
            summary["currency_exposure"] = exposure
        if data.overlay.J:
            summary["overlay"] = _overlay_summary(data, sol, futures)
        factors = _factor_drift(data, sol)
        if len(factors["factor"]):
            summary["factor_drift"] = {  # an open edge is null (JSON has no infinity)
                name: {k: None if np.isnan(v[t]) else float(v[t]) for k, v in factors.items() if k != "factor"}
                for t, name in enumerate(factors["factor"])}
        tables = {"trades": trades, "lots": lots, "asset_classes": classes, "futures": futures,
                  "factor_drift": factors}
        return cls(summary, sol, tables)

    def write(self, out_dir: str | Path) -> Path:
        """Write trades.csv, lots.csv, holdings_after.csv, summary.json (and futures.csv when the
        household has an overlay, factor_drift.csv when it has factor targets) into ``out_dir``;
        all of them or none.

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
            "trades.csv": csv_text(self.tables["trades"]),
            "lots.csv": csv_text(self.tables["lots"]),
            "holdings_after.csv": csv_text(self._holdings_columns()),
            **({"futures.csv": csv_text(self.tables["futures"])} if len(self.tables["futures"]["contract_id"]) else {}),
            **({"factor_drift.csv": csv_text(self.tables["factor_drift"])}
               if len(self.tables["factor_drift"]["factor"]) else {}),
        }
        # summary.json, written last, records a checksum of each file beside it (``verify_files``).
        checksums = {name: _sha256(text) for name, text in contents.items()}
        contents["summary.json"] = json.dumps({**self.summary, "files": checksums}, indent=2, default=str) + "\n"
        write_files(out, contents)
        for name in ("futures.csv", "factor_drift.csv"):  # one from an earlier result is not this one's
            if name not in contents:
                (out / name).unlink(missing_ok=True)
        return out

    def to_text(self) -> str:
        """The terminal summary: drift table, trade list, totals."""
        from cvxrebalance.optimizer.pipeline.report import render

        return render(self)

    def to_html(self) -> str:
        """The household's proposal as one self-contained HTML page (charts as inline SVG; needs
        matplotlib, the ``report`` extra). The same page ``cvxrebalance report OUT_DIR`` writes
        from the files ``write`` leaves."""
        from cvxrebalance.optimizer.pipeline.html_report import render_html

        return render_html(self.summary, self.trades, self.lots, self.futures)


def _carried(data: Prepared, short: float, long: float) -> dict[str, float]:
    """The year's net loss carried forward (exact netting, currency) and what it is worth now at
    ``[tax] loss_value`` per dollar of tax: c x the rate-weighted net loss (the model's c * net)."""
    t = data.policy.tax
    net = t.short_term_rate * (short + data.ytd_short) + t.long_term_rate * (long + data.ytd_long)
    return {"loss_carried_forward": round(carried_forward(data, short, long), 2) + 0.0,
            "loss_carried_forward_value": round(t.loss_value * max(0.0, -net), 2) + 0.0}


def _esg_scores(data: Prepared, sol: Solution) -> dict | None:
    """Value-weighted ESG score of scored holdings before and after (None without scores)."""
    if np.isnan(data.column("esg_score").astype(float)).all():
        return None
    return {"before": portfolio_score(data, data.h0.sum(0)), "after": portfolio_score(data, sol.weights_after()),
            "min": data.policy.esg.min_score or None}


def _valuations(data: Prepared) -> dict:
    """Per held security with a ``valuation_date``: the reported value (quantity x price as given)
    and the adjusted value the rebalance used, quantity x price x (1 + beta x proxy return)
    (optimizer/domain/valuation.py); empty when no held security has one."""
    v = data.household.valuations
    held = data.q0.sum(0)
    out = {}
    for i in np.flatnonzero(v.dated & (held > 0)):
        reported, adjusted = held[i] * v.reported[i], held[i] * v.price[i]
        proxy = data.column("proxy")[i] or None
        when = data.column("valuation_date")[i]
        out[data.security_ids[i]] = {
            "quantity": float(held[i]), "reported_price": float(v.reported[i]), "adjusted_price": float(v.price[i]),
            "reported_value": round(float(reported), 2), "adjusted_value": round(float(adjusted), 2),
            "adjustment": round(float(adjusted - reported), 2),
            # in percent: 100 x (adjusted / reported - 1) = 100 x beta x proxy return
            "adjustment_pct": round(100 * float(v.beta[i] * v.proxy_return[i]), 8) + 0.0,
            "valuation_date": str(when), "days_stale": (data.policy.tax.as_of - when).days,
            "proxy": proxy, "proxy_return": float(v.proxy_return[i]) if proxy else None,
            "beta": float(v.beta[i]) if proxy else None,
        }
    return out


def _wash_summary(data: Prepared) -> dict:
    """What the wash-sale rule blocked, and why."""
    w = data.wash
    return {"blocked_buys": {w.names[g]: why for g, why in w.recent_loss.items()},
            "blocked_loss_sales": {w.names[g]: why for g, why in w.recent_buy.items()},
            "decided_in_rebalance": {**{w.names[g]: "loss sales blocked" for g in w.block_loss},
                                     **{w.names[g]: "buys blocked" for g in w.block_buy}}}


def _futures(data: Prepared, sol: Solution, exposure: dict) -> Columns:
    ov = data.overlay
    roll_to = dict(ov.rolls)
    margin = ov.margin_rate * ov.notional * np.abs(sol.contracts_q)
    cost = ov.cost_rate * ov.notional * np.abs(sol.contracts_traded)
    fut = data.household.futures
    instrument = np.where(fut["source"] == "swaps.csv", "swap", fut["instrument"]).astype(object)
    columns = [np.asarray(ov.ids, object), instrument, np.asarray(ov.counterparty, object),
               np.asarray(data.account_ids, object)[ov.account],
               _whole(ov.q0 + 0.0), _whole(sol.contracts_q + 0.0), _whole(sol.contracts_traded + 0.0),
               np.round(sol.contracts_q * ov.notional, 2) + 0.0, np.round(margin, 2), np.round(cost, 2),
               np.array([roll_to.get(cid) or "" for cid in ov.ids], object), *futures_reasons(data, sol, exposure)]
    return dict(zip(FUTURES_COLUMNS, columns, strict=True))


def _holdings_after(data: Prepared, sol: Solution) -> Columns:
    """holdings.csv after the trades (see ``RebalanceResult.holdings_after``), in account then
    security order, a position's lots left before the new lot its buy opens. Every batch
    household writes it, so it is built from index arrays, not a loop over positions."""
    as_of = str(data.policy.tax.as_of)
    taxable = np.zeros(data.A, bool)
    taxable[data.taxable] = True
    left = data.lot_q - sol.lot_sell_q
    kept = np.flatnonzero(left > 1e-9)
    a_new, i_new = np.nonzero((sol.buy_q > 0) & taxable[:, None])  # each buy opens a lot
    a_pos, i_pos = np.nonzero((sol.q_after > 1e-9) & ~taxable[:, None])  # one row per position
    taken = set(zip(data.lot_account.tolist(), data.lot_ids, strict=True))
    new_ids = []
    for a, i in zip(a_new.tolist(), i_new.tolist(), strict=True):  # named so no lot id clashes
        lot_id, n = f"buy-{as_of}-{data.security_ids[i]}", 1
        while (a, lot_id) in taken:
            n += 1
            lot_id = f"buy-{as_of}-{data.security_ids[i]}-{n}"
        new_ids.append(lot_id)
    account = np.r_[data.lot_account[kept], a_new, a_pos]
    security = np.r_[data.lot_security[kept], i_new, i_pos]
    order = np.lexsort((np.r_[np.zeros(kept.size), np.ones(a_new.size), np.zeros(a_pos.size)], security, account))
    columns = {
        "account_id": np.asarray(data.account_ids, object)[account],
        "security_id": np.asarray(data.security_ids, object)[security],
        "quantity": np.r_[left[kept], sol.buy_q[a_new, i_new], sol.q_after[a_pos, i_pos]],
        "lot_id": np.asarray([*np.asarray(data.lot_ids, object)[kept], *new_ids, *[""] * a_pos.size], object),
        "cost_basis": np.r_[data.lot_basis[kept], data.price[i_new], np.full(a_pos.size, np.nan)],
        "acquired": np.asarray([*data.lot_acquired[kept].astype(str), *[as_of] * a_new.size, *[""] * a_pos.size],
                               object),
    }
    out = {c: v[order] for c, v in columns.items()}
    out["quantity"] = _whole(out["quantity"].astype(float))
    return out


def _whole(values: np.ndarray) -> np.ndarray:
    """Whole numbers of shares or contracts as integers (fractional holdings stay floats)."""
    values = np.asarray(values, float)
    return values.astype(np.int64) if len(values) and (values == np.round(values)).all() else values


def _overlay_summary(data: Prepared, sol: Solution, futures: Columns) -> dict:
    """Contracts, rolls, limits and which of them bind (why the overlay is not larger)."""
    from cvxrebalance.constraints.overlay import margin_required

    ov, p = data.overlay, data.policy.overlay
    notional = sol.contracts_q * ov.notional / sol.value_after
    binding = []
    room = sol.cash_after - data.min_cash * data.V - margin_required(sol)
    for a in sorted(set(ov.account.tolist())):
        carried = np.flatnonzero(ov.account == a)
        cheapest = carried[np.argmin((ov.margin_rate * ov.notional)[carried])]
        one_more = ov.margin_rate[cheapest] * ov.notional[cheapest]
        if room[a] < one_more:
            binding.append(f"margin: account {data.account_ids[a]} has {room[a]:,.2f} of cash beyond "
                           f"its minimum and margin, less than one more {ov.ids[cheapest]} needs ({one_more:,.2f})")
    step = (ov.notional / sol.value_after).min()
    if np.abs(notional).sum() + step > p.gross_limit + 1e-12:
        binding.append(f"gross_limit {p.gross_limit:g}: gross overlay {np.abs(notional).sum():.4f}")
    if abs(notional.sum()) + step > p.net_limit + 1e-12:
        binding.append(f"net_limit {p.net_limit:g}: net overlay {notional.sum():.4f}")
    for c, cap in ov.counterparty_caps(data.policy).items():
        facing = ov.counterparty_matrix([c])[0]
        gross = float(facing @ np.abs(notional))
        if gross + (ov.notional / sol.value_after)[facing > 0].min() > cap + 1e-12:
            binding.append(f"counterparty_limit {cap:g}: {c} gross {gross:.4f}")
    for j in range(ov.J):
        if ov.lo[j] < ov.hi[j] and (notional[j] >= ov.hi[j] - 1e-9 or notional[j] <= ov.lo[j] + 1e-9):
            binding.append(f"max_contracts: {ov.ids[j]} at its limit")
    # What happened to each expiring contract: closed, and rolled only if its successor now holds
    # contracts (the terminal report reads these, so the two never disagree).
    after = dict(zip(ov.ids, sol.contracts_q.tolist(), strict=True))
    rolls = [{"from": a, "to": b, "contracts": float(ov.q0[ov.ids.index(a)]),
              "to_contracts_after": float(after[b]) if b else 0.0, "rolled": bool(b and after[b] != 0)}
             for a, b in ov.rolls]
    return {"instruments": p.instruments, "contracts": _records(futures),
            "gross": float(np.abs(notional).sum()), "net": float(notional.sum()),
            "costs": round(float(sol.futures_costs.sum()), 2), "rolls": rolls, "binding": binding}


def _trades(data: Prepared, sol: Solution) -> tuple[Columns, np.ndarray]:
    """One row per account, security and side: sells first, each side in account then security
    order; and each trade's reason in plain words (for the proposal page, not trades.csv)."""
    accounts = np.asarray(data.account_ids, object)
    securities = np.asarray(data.security_ids, object)
    parts = []
    for side, q in (("sell", sol.sell_q), ("buy", sol.buy_q)):
        a, i = np.nonzero(q > 0)
        value = q[a, i] * data.price[i]
        cost = value * data.linear_cost[i] + data.column("impact")[i] * value**2 / data.V + data.ticket[i]
        parts.append((a, i, np.full(len(a), side, object), q[a, i], data.price[i], np.round(value, 2),
                      np.round(cost, 2)))
    a, i, side, *columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    columns[0] = _whole(columns[0])
    reason, detail, words = trade_reasons(data, sol, a, i, np.where(side == "buy", 1.0, -1.0))  # swaps pair up
    return dict(zip(TRADE_COLUMNS, [accounts[a], securities[i], side, *columns, reason, detail], strict=True)), words


def _restriction_rows(data: Prepared) -> list[dict]:
    """The household's restrictions.csv rows: the number the client knows each by, in plain words,
    and the technical text (rule, what it covers, file line)."""
    if not len(data.household.restrictions):
        return []
    res = restrictions.of(data)
    return [{"number": r + 1, "words": res.words[r], "rule": res.rule[r], "detail": res.text(r)}
            for r in range(len(res.rule))]


def _location(data: Prepared, sol: Solution) -> dict[str, dict[str, dict[str, float]]]:
    """Value per account type and asset class (cash last; a substitute counts as the class it
    stands in for), before trading (holdings and cash after the flows, as the drift table's
    ``before``) and after: ``{account_type: {class: {"before", "after"}}}``, pairs that are empty
    both times left out."""
    classes = [*data.classes, "cash"]
    before = np.column_stack([(data.q0 * data.price) @ data.X, data.cash0 * data.V])  # (A, K + 1)
    after = np.column_stack([(sol.q_after * data.price) @ data.X, sol.cash_after])
    types = np.asarray(data.account_types, object)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in [t for t in restrictions.ACCOUNT_TYPES if t in set(types)]:
        b, a = before[types == kind].sum(0), after[types == kind].sum(0)
        out[kind] = {classes[k]: {"before": round(float(b[k]), 2) + 0.0, "after": round(float(a[k]), 2) + 0.0}
                     for k in range(len(classes)) if abs(b[k]) >= 0.005 or abs(a[k]) >= 0.005}
    return out


def _lots(data: Prepared, sol: Solution) -> Columns:
    sold = np.flatnonzero(sol.lot_sell_q > 0)
    q = sol.lot_sell_q[sold]
    price = data.price[data.lot_security[sold]]
    basis = data.lot_basis[sold]
    return {
        "account_id": np.asarray(data.account_ids, object)[data.lot_account[sold]],
        "security_id": np.asarray(data.security_ids, object)[data.lot_security[sold]],
        "lot_id": np.asarray(data.lot_ids, object)[sold],
        "acquired": data.lot_acquired[sold].astype("datetime64[D]").astype(str).astype(object),  # versus purchase
        "quantity": _whole(q), "cost_basis_per_share": basis,
        "cost_basis_total": np.round(q * basis, 2), "proceeds_per_share": price,
        "proceeds_total": np.round(q * price, 2), "gain": np.round(q * (price - basis), 2),
        "term": np.where(data.lot_short[sold], "short", "long").astype(object)}


def _asset_classes(data: Prepared, sol: Solution) -> Columns:
    """Per class: targets, bands, and weights before/after. ``before``/``after`` are what the
    bands apply to (physical + overlay unless ``[bands] on = "physical"``); the physical and
    overlay parts are listed too. "Before" is where the rebalance starts: holdings and cash after
    the cash flows, over V."""
    ov = data.overlay
    physical_before = np.append(data.X.T @ data.h0.sum(0), data.cash0.sum())
    physical_after = np.append(sol.class_after, sol.cash_weight_after)
    overlay_before = np.append(ov.G.T @ ov.f0, 0.0)
    overlay_after = np.append(sol.class_overlay_after, 0.0)
    on_exposure = data.policy.bands.on == "exposure"
    return {
        "asset_class": np.array([*data.classes, "cash"], object),
        # Tilts sum to zero with cash's, so cash's tilt is minus the classes' (its target includes it).
        "strategic": np.append(data.strategic, data.cash_target + data.tilt.sum()),
        "tilt": np.append(data.tilt, -data.tilt.sum() + 0.0),  # + 0.0: never a negative zero
        "target": np.append(data.target, data.cash_target),
        "lower": np.append(data.lower, data.cash_lower),
        "upper": np.append(data.upper, data.cash_upper),
        "before": physical_before + overlay_before * on_exposure,
        "after": physical_after + overlay_after * on_exposure,
        "physical_before": physical_before, "overlay_before": overlay_before,
        "effective_before": physical_before + overlay_before,
        "physical_after": physical_after, "overlay_after": overlay_after,
        "effective_after": physical_after + overlay_after,
    }


def _factor_drift(data: Prepared, sol: Solution) -> Columns:
    """Per factor of factor_targets.csv: target, band edges (NaN: none), and the exposure before
    (holdings and cash after flows, over V) and after trading (over the value after), each with
    the overlay's part (``FACTOR_COLUMNS``)."""
    ft = factor_targets(data)
    after, overlay_after = exposure_after(sol) if ft.T else (np.zeros(0), np.zeros(0))
    open_edge = lambda x: np.where(np.isfinite(x), x, np.nan)  # noqa: E731
    columns = [np.asarray(ft.names, object), ft.target, open_edge(ft.lower), open_edge(ft.upper), ft.before, after,
               overlay_before(data) if ft.T else np.zeros(0), overlay_after]
    return dict(zip(FACTOR_COLUMNS, [c if c.dtype == object else c + 0.0 for c in columns], strict=True))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def verify_files(out_dir: str | Path) -> bool:
    """Whether a written result is whole: summary.json reads and every file it lists has the
    checksum it recorded (a truncated, edited or foreign file does not)."""
    out = Path(out_dir)
    try:
        listed = json.loads((out / "summary.json").read_text())["files"]
        return all(_sha256((out / name).read_text()) == digest for name, digest in listed.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _records(columns: Columns) -> list[dict]:
    """Rows of a table as plain Python dicts (for JSON)."""
    names = list(columns)
    return [dict(zip(names, row, strict=True))
            for row in zip(*(columns[n].tolist() for n in names), strict=True)]
