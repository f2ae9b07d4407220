"""Which households need a rebalance today: a scan of a batch IN_DIR without solving.

Per household, from its own tables and its model's targets and policy bands (``read_tables``;
the per-household tables are read whole and grouped with pandas, never split household by
household, so ten thousand households take seconds):

- ``restricted``: the value held that a client's ``no_hold`` rule (restrictions.csv) says must
  be sold, currency;
- ``breach``: the largest distance of a class's (or cash's) weight outside its band, with its
  class (``breach_class``); weights are holdings at their (valuation-adjusted) prices over the
  household's value after its cash flows, with the overlay's exposure when ``[bands] on =
  "exposure"``; band edges as the rebalance computes them (``targets.class_edges``);
- ``transition``: for a household moving to another model (households.csv
  ``previous_model_id``), the same distance to the new model's bands: the rebalance then trades
  with its bands off, toward the new model, until every class is inside them (its own reason,
  not a band breach);
- ``cash_short``: the cash an account lacks to reach its ``min_cash`` after its flow, summed;
- ``withdrawal`` / ``contribution``: the pending ``cash_flow`` of accounts.csv, out and in;
- ``expiring``: contracts held that expire before the horizon (``[overlay] horizon``, else the
  scan's ``horizon``);
- ``harvestable``: unrealized losses of taxable lots (cost basis above price), currency;
- ``idle_cash``: cash above its target, a fraction of value.

A household needs a rebalance when any of these passes its threshold. Urgency orders them:
a restricted holding, cash short, then a withdrawal, a model transition, a band breach, an expiring
contract, a contribution, losses to harvest, idle cash (the first reason that applies), and within a reason the larger amount as a
fraction of value first. The scan does not check each row the way a rebalance does: a cell it
cannot read as a number makes the household ``needs_rebalance`` with reason ``input`` (the
batch then names the problem); its ``model_id`` is shown as its households.csv row gives it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.apps.batch import (
    KEY,
    MODELS,
    POLICIES,
    for_source,
    household_ids,
    read_tables,
    shared_household,
    text_cells,
)
from cvxrebalance.optimizer.apps.database import is_url
from cvxrebalance.optimizer.domain.calendar import is_check_date
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.futures import parse_futures
from cvxrebalance.optimizer.domain.household import ACCOUNT_TYPES
from cvxrebalance.optimizer.domain.models import OVERRIDES, household_policy
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.tables import CASH, file_lines
from cvxrebalance.optimizer.domain.targets import class_edges, effective_targets

REASONS = ("input", "restriction", "cash_short", "withdrawal", "transition", "band_breach", "expiring_contract",
           "contribution", "harvest", "idle_cash")
COLUMNS = ["rank", KEY, "needs_rebalance", "reason", "reasons", "value", "restricted", "breach", "breach_class",
           "transition", "cash_short", "withdrawal", "contribution", "expiring", "harvestable", "idle_cash", "model_id"]


def scan(in_dir: str | Path, *, idle_cash: float = 0.05, harvest: float = 10_000.0,
         min_breach: float = 0.0, horizon: dt.date | None = None) -> pd.DataFrame:
    """Rank the households of a batch IN_DIR by how urgently they need a rebalance.

    Parameters
    ----------
    in_dir : path
        A ``cvxrebalance batch`` IN_DIR.
    idle_cash : float
        Cash above its target, a fraction of household value, that calls for investing it.
    harvest : float
        Unrealized losses in taxable lots, currency, worth a rebalance to harvest.
    min_breach : float
        A band breach smaller than this (a fraction of value) does not count.
    horizon : date, optional
        Contracts expiring before it need rolling (default: each policy's ``[overlay] horizon``,
        else 30 days after its as-of date).

    Returns
    -------
    DataFrame
        One row per household (``COLUMNS``), most urgent first; ``rank`` counts from 1 over the
        households that need a rebalance (0 for the others).

    Raises
    ------
    ValidationError
        Bad shared input, as for ``batch``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cvxrebalance.optimizer.apps.bench import write_batch_input
    >>> from cvxrebalance.scenarios.synthetic import synthetic_universe
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "in"
    >>> write_batch_input(d, synthetic_universe(10, 0, seed=1), 3, 2, 5)
    >>> list(scan(d)[["household_id", "needs_rebalance"]].itertuples(index=False, name=None))[0][1] in (True, False)
    True
    """
    shared, tables, policy, _, _ = read_tables(in_dir if is_url(in_dir) else Path(in_dir))
    problems: list[Problem] = []
    acc = _with_ids(tables["accounts"], "accounts", problems)
    hol = _with_ids(tables["holdings"], "holdings", problems)
    listed = _with_ids(tables["households"], "households", problems) if tables.get("households") is not None \
        else pd.DataFrame({KEY: []})
    if problems:
        raise for_source(ValidationError(problems), is_url(in_dir))
    # A household listed in households.csv without accounts is one the batch fails: worth nothing here.
    ids = sorted(set(acc[KEY]) | set(hol[KEY]) | set(listed[KEY]))
    assign = _assignments(tables.get("households"), ids, shared, policy)
    first = next(iter(shared.get(MODELS) or {}), None)
    base = shared_household(shared, first)
    homes = {first or "": base}  # each model's shared household, validated once
    sec = base.securities
    price = pd.Series(base.valuations.price, index=sec["security_id"])
    cls = pd.Series(sec["asset_class"].to_numpy(), index=sec["security_id"])

    bad = set()
    qty = _number(hol, "quantity", bad)
    cash = _number(acc, "cash", bad)
    flow = _number(acc, "cash_flow", bad, default=0.0)
    min_cash = _number(acc, "min_cash", bad, default=0.0)
    sids = hol["security_id"].astype(str).str.strip()
    bad |= set(hol.loc[~sids.isin(price.index).to_numpy(), KEY])
    value = qty * sids.map(price).to_numpy()
    by_class = pd.DataFrame({KEY: hol[KEY].to_numpy(), "c": sids.map(cls).to_numpy(), "v": value.to_numpy()}) \
        .groupby([KEY, "c"])["v"].sum().unstack(fill_value=0.0).reindex(ids, fill_value=0.0)
    cash_h = (cash + flow).groupby(acc[KEY]).sum().reindex(ids, fill_value=0.0)
    V = by_class.sum(axis=1) + cash_h
    # Worth nothing after its flows, or negative cash: the rebalance refuses it (and names why).
    bad |= set(V.index[~(V > 0).to_numpy()]) | set(acc.loc[(cash < 0).to_numpy(), KEY])
    kinds = text_cells(acc["type"]) if "type" in acc.columns else pd.Series("", index=acc.index)
    bad |= set(acc.loc[~kinds.isin(ACCOUNT_TYPES).to_numpy(), KEY])  # "taxible": the batch refuses it
    overlay = _overlay_exposure(tables, sec, tables["accounts"], ids, bad)

    out = pd.DataFrame(index=pd.Index(ids, name=KEY))
    out["value"] = V
    out["model_id"] = assign["model_id"]
    out["breach"], out["breach_class"], out["idle_cash"] = 0.0, "", 0.0
    bad |= set(assign.index[~assign["known"]])  # no (single) row, an unknown model or policy, a bad
    # override: the batch names it
    for (model_id, pname), members in assign[assign["known"]].groupby(["model_id", "policy"]).groups.items():
        p = shared[POLICIES][pname] if pname else policy
        if isinstance(p, list):  # an unreadable policy file: the batch names it
            bad |= set(members)
            continue
        if model_id not in homes:
            homes[model_id] = shared_household(shared, model_id)
        _breaches(out, members, homes[model_id], p, by_class, cash_h, V, overlay, min_breach)
    out["idle_cash"] = out["idle_cash"].where(out["idle_cash"] > idle_cash, 0.0)
    # A move between models trades with its bands off until it is inside them: not a breach.
    out["transition"] = out["breach"].where(assign["moving"], 0.0)
    out["breach"] = out["breach"].where(~assign["moving"], 0.0)

    short = (min_cash - cash - flow).clip(lower=0.0)
    out["cash_short"] = short.groupby(acc[KEY]).sum().reindex(ids, fill_value=0.0)
    out["withdrawal"] = (0.0 - flow.clip(upper=0.0)).groupby(acc[KEY]).sum().reindex(ids, fill_value=0.0)
    out["contribution"] = flow.clip(lower=0.0).groupby(acc[KEY]).sum().reindex(ids, fill_value=0.0)
    out["harvestable"] = _losses(hol, acc, qty, sids, price).reindex(ids, fill_value=0.0)
    out["harvestable"] = out["harvestable"].where(out["harvestable"] >= harvest, 0.0)
    out["restricted"] = _restricted(tables.get("restrictions"), hol, acc, sec, value).reindex(ids, fill_value=0.0)
    out["expiring"] = _expiring(tables.get("futures"), assign, shared, policy, horizon).reindex(ids, fill_value=0)
    return _rank(out, bad, _acting(assign, shared, policy))


def _with_ids(df: pd.DataFrame, name: str, problems: list[Problem]) -> pd.DataFrame:
    keys, blank = household_ids(df, name)
    problems += blank
    return df.assign(**{KEY: keys.to_numpy()})


def _number(df: pd.DataFrame, column: str, bad: set, default: float | None = None) -> pd.Series:
    """A numeric column; a cell that is not a number marks its household ``bad`` (blank cells
    take ``default``, or are bad without one)."""
    if column not in df.columns:
        return pd.Series(default if default is not None else np.nan, index=df.index, dtype=float)
    raw = df[column]
    x = pd.to_numeric(raw, errors="coerce")
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    wrong = (x.isna() & ~blank) | (blank & (default is None)) | ~np.isfinite(x.fillna(0.0))
    bad |= set(df.loc[wrong.to_numpy(), KEY])
    return x.fillna(default if default is not None else 0.0).where(~wrong, 0.0).astype(float)


def _assignments(frame: pd.DataFrame | None, ids: list[str], shared: dict, policy: Policy) -> pd.DataFrame:
    """Each household's model and policy file name ("" for none), from households.csv, whether
    its row is ``known`` (one row, a known model and policy, good overrides) and whether it is
    ``moving`` to another model (``previous_model_id``)."""
    out = pd.DataFrame({"model_id": "", "policy": "", "known": True, "moving": False}, index=pd.Index(ids, name=KEY))
    if frame is None:
        return out
    keys = household_ids(frame, "households")[0]
    given = frame.assign(**{KEY: keys.to_numpy()}).drop_duplicates(KEY).set_index(KEY).reindex(ids)
    rows = frame.assign(**{KEY: keys.to_numpy()}).drop_duplicates(KEY, keep=False)
    rows = rows.set_index(KEY).reindex(ids)
    models = shared.get(MODELS) or {}
    out["model_id"] = text_cells(rows["model_id"])
    if "previous_model_id" in rows.columns:
        previous = text_cells(rows["previous_model_id"])
        out["moving"] = (previous != "") & (previous != out["model_id"])
    out["policy"] = text_cells(rows.get("policy", pd.Series("", index=ids))) \
        .str.removesuffix(".toml")
    # A household without a (single) row, or with an unknown model or policy: the batch names it.
    # Without models.csv the batch refuses any households.csv row (no model to name): a household
    # is known only without one, and then runs on the shared targets and policy.
    known = out["model_id"].isin(list(models)) if models else pd.Series(~pd.Index(ids).isin(keys), index=ids)
    if models and "previous_model_id" in rows.columns:  # a move from an unknown model
        known &= previous.isin(["", *models])
    known &= out["policy"].isin(["", *shared.get(POLICIES, {})])
    # An override the household's policy refuses (not a number, out of its key's range).
    set_ = [c for c in OVERRIDES if c in rows.columns]
    cells = rows[set_].astype(object).where(rows[set_].notna(), "").astype(str).apply(lambda c: c.str.strip())
    for hid in cells.index[(cells != "").any(axis=1).to_numpy()]:
        if not known.at[hid]:
            continue
        try:
            x = pd.to_numeric(cells.loc[hid], errors="raise").astype(float).where(cells.loc[hid] != "", np.nan)
            row = pd.Series({**dict.fromkeys(OVERRIDES, np.nan), **x.to_dict(), "policy": out.at[hid, "policy"]})
            if not np.isfinite(x.dropna()).all():
                raise ValueError
            household_policy(row, 0, policy, shared.get(POLICIES, {}))
        except (ValueError, TypeError, ValidationError):
            known.at[hid] = False
    out["known"] = known
    # A bad row's model as the row gives it (the first of two rows), for the reader to find it.
    out.loc[~known, "model_id"] = text_cells(given["model_id"])[~known]
    return out


def _breaches(out, members, household, policy, by_class, cash_h, V, overlay, min_breach) -> None:
    """The largest band breach and the idle cash of ``members``, who share a model and policy."""
    sec = household.securities
    classes = sorted(set(sec["asset_class"]) | ({c for c in household.targets["id"] if c != CASH}
                                                 if household.target_by == "asset_class" else set()))
    targets = effective_targets(household, policy, classes, list(sec["security_id"]))
    lower, upper, cash_lo, cash_hi = class_edges(targets, policy.bands, classes)
    members = list(members)
    w = by_class.reindex(index=members, columns=classes, fill_value=0.0)
    if policy.bands.on == "exposure":
        w = w + overlay.reindex(index=members, columns=classes, fill_value=0.0)
    value = V.reindex(members).replace(0.0, np.nan)
    w = w.div(value, axis=0).assign(**{CASH: cash_h.reindex(members) / value})
    lo = pd.Series([*lower, cash_lo], index=[*classes, CASH])
    hi = pd.Series([*upper, cash_hi], index=[*classes, CASH])
    gap = np.maximum((lo - w).clip(lower=0.0), (w - hi).clip(lower=0.0)).fillna(0.0)  # NaN: no value
    worst = gap.max(axis=1).fillna(0.0)
    out.loc[members, "breach"] = worst.where(worst > min_breach, 0.0).to_numpy()
    out.loc[members, "breach_class"] = gap.idxmax(axis=1).where(worst > min_breach, "").fillna("").to_numpy()
    out.loc[members, "idle_cash"] = (w[CASH] - targets.cash_target).clip(lower=0.0).fillna(0.0).to_numpy()


def _overlay_exposure(tables: dict, sec: pd.DataFrame, accounts: pd.DataFrame, ids: list[str],
                      bad: set) -> pd.DataFrame:
    """(household x class) exposure of the contracts held, currency: notional x exposure per unit
    (a Treasury future's or swap's duration ratio, ``parse_futures``); the households of rows
    ``parse_futures`` finds a problem in are added to ``bad`` (the batch names the problem)."""
    fut, swaps = tables.get("futures"), tables.get("swaps")
    if fut is None and swaps is None:
        return pd.DataFrame(index=ids)
    parts = []
    for frame in (fut, swaps):
        if frame is not None:
            parts.append(frame.assign(**{KEY: household_ids(frame, "x")[0].to_numpy()}))
    keys = pd.concat([p[KEY] for p in parts], ignore_index=True).to_numpy()
    problems: list[Problem] = []
    drop = lambda f: None if f is None else f.drop(columns=KEY)  # noqa: E731
    parsed = parse_futures(drop(fut), sec, accounts, problems, drop(swaps))
    owner = {(f"{name}.csv", line): hid for name, part in (("futures", fut), ("swaps", swaps)) if part is not None
             for line, hid in zip(file_lines(part), household_ids(part, name)[0], strict=True)}
    bad |= {owner[(p.file, p.row)] for p in problems if (p.file, p.row) in owner}
    notional = parsed["position"].to_numpy(float) * parsed["price"].to_numpy(float) * parsed["multiplier"].to_numpy(float)
    frame = pd.DataFrame({KEY: keys[: len(parsed)], "c": parsed["asset_class"].to_numpy(),
                          "x": notional * parsed["exposure"].to_numpy(float)})
    frame = frame[frame["c"] != ""]
    return frame.groupby([KEY, "c"])["x"].sum().unstack(fill_value=0.0)


def _restricted(rules: pd.DataFrame | None, hol: pd.DataFrame, acc: pd.DataFrame, sec: pd.DataFrame,
                value: pd.Series) -> pd.Series:
    """Value held, per household, that a ``no_hold`` row covers (its security, tag or class, in
    its account, account type or every account)."""
    if rules is None or "rule" not in rules.columns:
        return pd.Series(dtype=float)
    text = lambda df, c: text_cells(df[c]) if c in df.columns else pd.Series("", index=df.index)  # noqa: E731
    rules = rules.assign(**{KEY: household_ids(rules, "restrictions")[0].to_numpy()})
    tags = dict(zip(sec["security_id"], sec["tag"] if "tag" in sec.columns else [""] * len(sec), strict=True))
    cls = dict(zip(sec["security_id"], sec["asset_class"], strict=True))
    kind = dict(zip(zip(acc[KEY], text(acc, "account_id"), strict=True), text(acc, "type"), strict=True))
    h_sid, h_acc = text(hol, "security_id"), text(hol, "account_id")
    covered = np.zeros(len(hol), bool)
    for r in rules[text(rules, "rule") == "no_hold"].to_dict("records"):
        cell = {c: _cell(r.get(c)) for c in ("account_id", "account_type", "security_id", "tag", "asset_class")}
        mine = (hol[KEY] == r[KEY]).to_numpy().copy()
        if cell["account_id"]:
            mine &= (h_acc == cell["account_id"]).to_numpy()
        if cell["account_type"]:
            mine &= np.array([kind.get((h, a)) == cell["account_type"] for h, a in zip(hol[KEY], h_acc, strict=True)])
        if cell["security_id"]:
            mine &= (h_sid == cell["security_id"]).to_numpy()
        elif cell["tag"]:
            mine &= np.array([cell["tag"] in (tags.get(s) or ()) for s in h_sid])  # parsed tags: a tuple
        elif cell["asset_class"]:
            mine &= (h_sid.map(cls) == cell["asset_class"]).to_numpy()
        covered |= mine
    return pd.Series(np.where(covered, value.to_numpy(), 0.0)).groupby(hol[KEY].to_numpy()).sum()


def _cell(value) -> str:
    """A text cell as read from a file or a database: blank for None and NaN (a SQL NULL)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def _losses(hol, acc, qty, sids, price) -> pd.Series:
    """Unrealized losses of the lots in taxable accounts, per household, currency."""
    if "cost_basis" not in hol.columns:
        return pd.Series(dtype=float)
    taxable = acc.loc[acc["type"].astype(str).str.strip() == "taxable", [KEY, "account_id"]].astype(str)
    keys = set(zip(taxable[KEY], taxable["account_id"].str.strip(), strict=True))
    in_taxable = [(h, a) in keys for h, a in zip(hol[KEY], hol["account_id"].astype(str).str.strip(), strict=True)]
    basis = pd.to_numeric(hol["cost_basis"], errors="coerce").to_numpy()
    loss = np.clip((basis - sids.map(price).to_numpy()) * qty.to_numpy(), 0.0, None)
    loss = np.where(np.asarray(in_taxable) & np.isfinite(loss), loss, 0.0)
    return pd.Series(loss).groupby(hol[KEY].to_numpy()).sum()


def _expiring(fut: pd.DataFrame | None, assign: pd.DataFrame, shared: dict, policy: Policy,
              horizon: dt.date | None) -> pd.Series:
    """Contracts held that expire before the horizon, per household."""
    if fut is None or "expiry" not in fut.columns:
        return pd.Series(dtype=int)
    keys = household_ids(fut, "futures")[0]
    held = pd.to_numeric(fut.get("position", 0), errors="coerce").fillna(0.0) != 0
    expiry = pd.to_datetime(fut["expiry"], errors="coerce", format="ISO8601")  # as the reader

    def limit(hid: str) -> pd.Timestamp:
        if horizon is not None:
            return pd.Timestamp(horizon)
        name = assign.at[hid, "policy"] if hid in assign.index else ""
        p = shared.get(POLICIES, {}).get(name, policy) if name else policy
        p = policy if isinstance(p, list) else p
        return pd.Timestamp(p.overlay.horizon or p.tax.as_of + dt.timedelta(days=30))

    due = np.array([bool(h) and pd.notna(e) and e < limit(k) for k, h, e in zip(keys, held, expiry, strict=True)])
    return pd.Series(due.astype(int)).groupby(keys.to_numpy()).sum()


FIGURES = ["value", "restricted", "breach", "transition", "cash_short", "withdrawal", "contribution", "expiring",
           "harvestable", "idle_cash"]
# What a rebalance does whatever its trigger says: a client's rule, cash it must keep or pay
# out, a contract that expires (not trading would break a rule: optimizer.pipeline.rebalance);
# and a move between models, which always trades (models.transition_policy).
MANDATORY = ("input", "restriction", "cash_short", "withdrawal", "transition", "expiring_contract")


def _acting(assign: pd.DataFrame, shared: dict, policy: Policy) -> pd.DataFrame:
    """(household x reason) whether the household's trigger acts on the reason today: mandatory
    reasons always; a band breach under ``always`` and ``threshold``, and ``calendar`` and
    ``hybrid`` on their check dates; contributions, losses to harvest and idle cash only under
    ``always`` and on a ``calendar`` check date (a threshold trigger leaves them be)."""
    out = pd.DataFrame(False, index=assign.index, columns=list(REASONS))
    out[list(MANDATORY)] = True
    for pname, members in assign.groupby("policy").groups.items():
        p = shared.get(POLICIES, {}).get(pname, policy) if pname else policy
        if isinstance(p, list):  # an unreadable policy file: flagged input already
            continue
        mode = p.trigger.mode
        due = mode in ("always", "threshold") or (mode in ("calendar", "hybrid")
                                                   and is_check_date(p.tax.as_of, p.trigger.frequency))
        out.loc[members, "band_breach"] = due
        out.loc[members, ["contribution", "harvest", "idle_cash"]] = mode in ("always", "calendar") and due
    out.loc[assign["moving"].to_numpy()] = True  # a move trades under "always"
    return out


def _rank(out: pd.DataFrame, bad: set, acting: pd.DataFrame) -> pd.DataFrame:
    """Reasons, urgency order and rank (``REASONS`` order; larger amounts first within one);
    ``acting``: the reasons each household's trigger acts on (``_acting``): only those make it
    ``needs_rebalance``, the others stay in ``reasons``."""
    V = out["value"].where(out["value"] > 0, np.nan)
    amount = {"input": pd.Series(1.0, index=out.index).where(out.index.isin(list(bad)), 0.0),
              "restriction": out["restricted"] / V,
              "cash_short": out["cash_short"] / V, "withdrawal": out["withdrawal"] / V,
              "transition": out["transition"], "band_breach": out["breach"],
              "expiring_contract": out["expiring"].astype(float), "contribution": out["contribution"] / V,
              "harvest": out["harvestable"] / V, "idle_cash": out["idle_cash"]}
    amounts = pd.DataFrame(amount).fillna(0.0)
    # A household the batch refuses has no figures worth showing (a quantity of "12x" read as 0
    # made a 3% breach look like 15%): its reason is input alone, its figures blank.
    flagged = out.index.isin(list(bad))
    amounts.loc[flagged, [r for r in REASONS if r != "input"]] = 0.0
    out.loc[flagged, FIGURES] = np.nan
    out.loc[flagged, "breach_class"] = ""
    found = amounts > 1e-12
    out["reasons"] = ["; ".join(r for r, flag in zip(REASONS, row, strict=True) if flag) for row in found.to_numpy()]
    on = found & acting.reindex(index=out.index, columns=list(REASONS), fill_value=True).to_numpy()
    first = on.to_numpy().argmax(axis=1)
    out["needs_rebalance"] = on.any(axis=1)
    out["reason"] = np.where(out["needs_rebalance"], np.array(REASONS, object)[first], "")
    out["_tier"] = np.where(out["needs_rebalance"], first, len(REASONS))
    out["_size"] = amounts.to_numpy()[np.arange(len(out)), first]
    out = out.sort_values(["_tier", "_size"], ascending=[True, False], kind="stable")
    out["rank"] = np.where(out["needs_rebalance"], np.cumsum(out["needs_rebalance"].to_numpy()), 0)
    money = ["value", "restricted", "cash_short", "withdrawal", "contribution", "harvestable"]
    out[money] = out[money].round(2)  # cents, not 69.77000000000001
    return out.reset_index()[COLUMNS]
