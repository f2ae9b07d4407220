"""An independent re-verification of a rebalance: plain pandas arithmetic on the household's own
tables and the result's trade and lot tables, sharing no code with the optimizer or its checker
(no Prepared arrays, no Solution, no constraint module). It returns the rules a result breaks.

Rules re-derived here (docs/case_format.md and the policy defaults): whole shares, no shorts,
lots add up to taxable sales and never exceed the lot, cash after trades, costs (contracts' included) and flows at
or above the minimum plus the contracts' margin (initial margin per contract plus ``margin_buffer`` of
|notional|), class weights within their bands (an illiquid security's stale valuation rolled forward
by its proxy; absolute and 5/25 rules from the targets; with ``on = "exposure"`` the contracts' notional times their class exposure counts, a Treasury future's
exposure re-derived from its CTD basis-point value, a swap's from its cash flows), a swap's collateral
reserve instead of margin, whole contracts, their gross, net and per-counterparty limits (of the
household value at the decision, after flows),
``max_contracts`` and no contract held past the horizon, turnover, buys only where the account type is allowed, no buys of ESG-excluded or illiquid
securities, one security per class per account (``[trades] spread``), the ESG minimum score and ``excluded = "sell"``, the household's and each account's
gain budget, no round trips, a wash group never both bought and sold at a loss nor traded against
the recent transactions, the summary's cost total equal to the trades' costs, and the client's
restrictions.csv: no buys of a restricted security, tag or class in the row's accounts, nothing
left of a ``no_hold`` there, and a substitute class bought only in the accounts it stands in for
(where it counts toward the class it replaces in the bands).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOL = 0.015  # currency (the tables round to cents)
WEIGHT_TOL = 1e-7


def independent_violations(household, policy, result) -> list[str]:
    sec = household.securities.set_index("security_id")
    acc = household.accounts.set_index("account_id")
    hol = household.holdings
    tr, lots, s = result.trades, result.lots, result.summary
    out: list[str] = []

    def signed(side: str) -> pd.Series:
        part = tr[tr["side"] == side]
        return part.groupby(["account_id", "security_id"])["quantity"].sum()

    buys, sells = signed("buy"), signed("sell")
    held = hol.groupby(["account_id", "security_id"])["quantity"].sum()
    keys = held.index.union(buys.index).union(sells.index)
    q0, b, q_s = (x.reindex(keys, fill_value=0.0) for x in (held, buys, sells))
    after = q0 + b - q_s
    if (after < -1e-9).any():
        out.append(f"short positions: {list(after[after < -1e-9].index)}")
    if ((b > 0) & (q_s > 0)).any():
        out.append(f"round trips: {list(b[(b > 0) & (q_s > 0)].index)}")
    if (np.abs(tr["quantity"] - np.round(tr["quantity"])) > 1e-9).any():
        out.append("fractional shares traded")

    # Lots: a taxable sale is the sum of its lots' sales, never more than a lot holds.
    taxable = set(acc.index[acc["type"] == "taxable"])
    lot_sold = lots.groupby(["account_id", "security_id"])["quantity"].sum()
    for (a, i), q in q_s.items():
        if a in taxable and abs(lot_sold.get((a, i), 0.0) - q) > 1e-9:
            out.append(f"lots of {a}/{i} sell {lot_sold.get((a, i), 0.0)}, the trade sells {q}")
    lot_q = hol.set_index(["account_id", "lot_id"])["quantity"] if "lot_id" in hol else pd.Series(dtype=float)
    for _, row in lots.iterrows():
        if row["quantity"] > lot_q.get((row["account_id"], row["lot_id"]), 0.0) + 1e-9:
            out.append(f"lot {row['lot_id']} oversold")

    # Cash: what each account holds after its trades, their costs and its flow.
    value = tr["quantity"] * tr["price"]
    flow = (value.where(tr["side"] == "sell", -value) - tr["cost"]).groupby(tr["account_id"]).sum()
    fut = result.futures
    if len(fut):  # contracts' trading costs come out of the carrying account's cash
        flow = flow.add(-fut.groupby("account_id")["cost"].sum(), fill_value=0.0)
    contracts = _contracts(household, policy, fut) if len(fut) else pd.DataFrame(
        columns=["account_id", "asset_class", "q", "notional", "margin", "exposure"])
    margin = contracts.groupby("account_id")["margin"].sum()
    for a, row in acc.iterrows():
        cash_after = row["cash"] + row["cash_flow"] + flow.get(a, 0.0)
        floor = row["min_cash"] + margin.get(a, 0.0)
        if cash_after < floor - TOL * (1 + len(tr)):
            out.append(f"cash of {a} after trades {cash_after:.2f} below its minimum {row['min_cash']:.2f} "
                       f"plus margin {margin.get(a, 0.0):.2f}")
    all_costs = tr["cost"].sum() + (fut["cost"].sum() if len(fut) else 0.0)
    if abs(s["costs"] - all_costs) > 0.006 * (len(tr) + len(fut) + 1):
        out.append(f"summary costs {s['costs']} != trades' and contracts' costs {all_costs:.2f}")

    # Where buys may go.
    for _, t in tr[tr["side"] == "buy"].iterrows():
        row = sec.loc[t["security_id"]]
        kind = acc.loc[t["account_id"], "type"]
        if kind not in row["allowed_account_types"]:
            out.append(f"{t['security_id']} bought in a {kind} account")
        if not row["liquid"]:
            out.append(f"illiquid {t['security_id']} bought")
        if row["esg_excluded"]:
            out.append(f"ESG-excluded {t['security_id']} bought")
    for _, t in tr[tr["side"] == "sell"].iterrows():
        if not sec.loc[t["security_id"], "liquid"]:
            out.append(f"illiquid {t['security_id']} sold")
    # One security per class per account ([trades] spread = "one_per_class"): of securities a
    # class covariance cannot tell apart (the same loadings, no specific variance), in a class
    # without priorities, an account buys at most one.
    risk = household.risk
    if policy.trades.spread == "one_per_class" and household.target_by == "asset_class" and risk.kind == "class":
        ranked = set(sec.loc[sec["priority"].notna(), "asset_class"])
        for a, bought in tr[tr["side"] == "buy"].groupby("account_id")["security_id"]:
            alike: dict[tuple, list[str]] = {}
            for i in bought:
                if risk.specific.get(i, 0.0) == 0 and sec.loc[i, "asset_class"] not in ranked:
                    alike.setdefault(tuple(risk.loadings.loc[i]), []).append(i)
            for same in alike.values():
                if len(same) > 1:
                    out.append(f"{a} buys {sorted(same)}, substitutes of one class")

    # Class weights after trading, against bands from the targets and the policy's rule; an
    # illiquid security's stale valuation counts rolled forward by its proxy.
    price = _valued_prices(sec)
    pos_value = after * price.reindex(after.index.get_level_values(1)).to_numpy()
    cash_total = sum(acc.loc[a, "cash"] + acc.loc[a, "cash_flow"] + flow.get(a, 0.0) for a in acc.index)
    total = pos_value.sum() + cash_total
    stand_in = _stand_ins(household.restrictions)
    cls = sec["asset_class"].map(lambda c: stand_in.get(c, c))
    by_class = pos_value.groupby(cls.reindex(after.index.get_level_values(1)).to_numpy()).sum()
    bands = policy.bands
    if bands.on == "exposure" and len(contracts):
        overlay = (contracts["notional"] * contracts["exposure"]).groupby(contracts["asset_class"]).sum()
        by_class = by_class.add(overlay.drop("", errors="ignore"), fill_value=0.0)
    weights = (by_class / total).to_dict() | {"cash": cash_total / total}
    if len(contracts):
        # The overlay's limits are fractions of the value at the decision, after the flows.
        value_at_decision = s["household_value_after_flows"]
        gross = contracts["notional"].abs().sum() / value_at_decision
        net = contracts["notional"].sum() / value_at_decision
        if gross > policy.overlay.gross_limit + WEIGHT_TOL:
            out.append(f"overlay gross {gross:.6f} above {policy.overlay.gross_limit}")
        if abs(net) > policy.overlay.net_limit + WEIGHT_TOL:
            out.append(f"overlay net {net:.6f} beyond {policy.overlay.net_limit}")
        for cp, facing in contracts[contracts["counterparty"] != ""].groupby("counterparty"):
            cap = policy.overlay.counterparty_limits.get(cp, policy.overlay.counterparty_limit or np.inf)
            if facing["notional"].abs().sum() > cap * value_at_decision * (1 + WEIGHT_TOL):
                out.append(f"counterparty {cp}: gross {facing['notional'].abs().sum():.2f} above {cap} of value")
        for cid, c in contracts.iterrows():
            if abs(c["q"] - round(c["q"])) > 1e-9:
                out.append(f"fractional contracts of {cid}")
            if c["q"] and not np.isnan(c["max_contracts"]) and abs(c["q"]) > c["max_contracts"]:
                out.append(f"{cid}: {c['q']:g} contracts beyond max_contracts {c['max_contracts']:g}")
            if c["q"] and c["expires_early"]:
                out.append(f"{cid} held past the horizon (expires {c['expiry']})")
    if household.target_by == "asset_class" and bands.rule in ("absolute", "5/25") and s["rebalanced"]:
        for _, t in household.targets.iterrows():
            target = t["weight"] + t["tilt"]
            half = bands.absolute if bands.rule == "absolute" else min(bands.absolute, bands.relative * target)
            lo = max(target - half, 0.0) if np.isnan(t["lower"]) else t["lower"]
            hi = min(target + half, 1.0) if np.isnan(t["upper"]) else t["upper"]
            w = weights.get(t["id"], 0.0)
            if w < lo - 1e-6 or w > hi + 1e-6:
                out.append(f"class {t['id']} at {w:.6f} outside [{lo:.6f}, {hi:.6f}]")

    # Turnover: half the value traded, over the household's value after flows.
    v_after_flows = (q0 * price.reindex(q0.index.get_level_values(1)).to_numpy()).sum() + \
        (acc["cash"] + acc["cash_flow"]).sum()
    turnover = value.sum() / 2 / v_after_flows
    if turnover > policy.limits.turnover + WEIGHT_TOL + 1e-4:
        out.append(f"turnover {turnover:.6f} above {policy.limits.turnover}")

    # Wash sales inside this rebalance: a group bought is never also sold at a loss; and none
    # against the recent transactions in the window before the as-of date.
    group = sec["wash_group"].where(sec["wash_group"] != "", sec.index.to_series())
    bought = {group[i] for i in tr.loc[tr["side"] == "buy", "security_id"]}
    loss_sold = {group[i] for i in lots.loc[lots["gain"] < 0, "security_id"]}
    if bought & loss_sold:
        out.append(f"wash groups bought and sold at a loss: {sorted(bought & loss_sold)}")
    tx = household.transactions
    if len(tx) and policy.tax.wash_window_days > 0:
        start = pd.Timestamp(policy.tax.as_of) - pd.Timedelta(days=policy.tax.wash_window_days)
        recent = tx[(pd.to_datetime(tx["date"]) >= start) & (pd.to_datetime(tx["date"]) <= pd.Timestamp(policy.tax.as_of))]
        recent_buys = {group[i] for i in recent.loc[recent["side"] == "buy", "security_id"]}
        sold_at_loss = recent[(recent["side"] == "sell") & ~(recent["realized_gain"] >= 0)
                              & recent["account_id"].isin(taxable)]
        recent_losses = {group[i] for i in sold_at_loss["security_id"]}
        if loss_sold & recent_buys:
            out.append(f"loss sales in groups bought within the window: {sorted(loss_sold & recent_buys)}")
        if bought & recent_losses:
            out.append(f"purchases in groups sold at a loss within the window: {sorted(bought & recent_losses)}")

    # Gain budgets: the household's (policy) and each taxable account's (accounts.csv), net of losses.
    realized = lots.groupby("account_id")["gain"].sum() if len(lots) else pd.Series(dtype=float)
    if policy.tax.gain_budget >= 0 and realized.sum() > policy.tax.gain_budget + TOL * (1 + len(lots)):
        out.append(f"net gain {realized.sum():.2f} above the household budget {policy.tax.gain_budget}")
    for a, row in acc.iterrows():
        if not np.isnan(row["gain_budget"]) and realized.get(a, 0.0) > row["gain_budget"] + TOL * (1 + len(lots)):
            out.append(f"net gain of {a} {realized.get(a, 0.0):.2f} above its budget {row['gain_budget']}")

    # ESG: the value-weighted score of scored holdings after trading, and "sell" clears exclusions.
    score = sec["esg_score"].reindex(after.index.get_level_values(1)).to_numpy()
    scored = ~np.isnan(score)
    if policy.esg.min_score > 0 and s["rebalanced"] and pos_value[scored].sum() > 0:
        avg = float((pos_value[scored] * score[scored]).sum() / pos_value[scored].sum())
        if avg < policy.esg.min_score - 1e-6:
            out.append(f"ESG score {avg:.4f} below the minimum {policy.esg.min_score}")
    out += _restriction_violations(household, b, after)
    if policy.esg.excluded == "sell" and s["rebalanced"]:
        excluded = sec["esg_excluded"] & sec["liquid"]
        left = after[[excluded.get(i, False) for i in after.index.get_level_values(1)]]
        if (left > 1e-9).any():
            out.append(f"ESG-excluded holdings left with excluded = 'sell': {list(left[left > 1e-9].index)}")
    return out


def _stand_ins(res: pd.DataFrame) -> dict[str, str]:
    """restrictions.csv's substitute classes -> the class each stands in for."""
    return {sub: cls for sub, cls in zip(res["substitute"], res["asset_class"], strict=True) if isinstance(sub, str)}


def _restriction_violations(household, bought: pd.Series, after: pd.Series) -> list[str]:
    """restrictions.csv re-read: each row's accounts (``account_id``, ``account_type`` or all)
    and securities (``security_id``, ``tag`` among the ``;``-separated tags, or the class as
    securities.csv gives it); no buys there, and with ``no_hold`` no shares left; a substitute
    class's securities bought only in the accounts of its rows."""
    res, sec, acc = household.restrictions, household.securities, household.accounts
    out: list[str] = []
    if not len(res):
        return out
    where_sub: dict[str, set[str]] = {}
    for line, cells in res.iterrows():
        row = {k: v if isinstance(v, str) else None for k, v in cells.items()}  # blank cells: None
        if row["account_id"] is not None:
            accounts = {row["account_id"]}
        elif row["account_type"] is not None:
            accounts = set(acc.loc[acc["type"] == row["account_type"], "account_id"])
        else:
            accounts = set(acc["account_id"])
        if row["security_id"] is not None:
            members = {row["security_id"]}
        elif row["tag"] is not None:
            members = {i for i, tags in zip(sec["security_id"], sec["tag"], strict=True) if row["tag"] in tags}
        else:
            members = set(sec.loc[sec["asset_class"] == row["asset_class"], "security_id"])
        for (a, i), q in bought.items():
            if q > 0 and a in accounts and i in members:
                out.append(f"{a} bought {q:g} {i} against restrictions.csv line {line} ({row['rule']})")
        if row["rule"] == "no_hold":
            for (a, i), q in after.items():
                if q > 1e-9 and a in accounts and i in members:
                    out.append(f"{a} still holds {q:g} {i} against restrictions.csv line {line} (no_hold)")
        if row["substitute"] is not None:
            where_sub.setdefault(row["substitute"], set()).update(accounts)
    for sub, accounts in where_sub.items():
        members = set(sec.loc[sec["asset_class"] == sub, "security_id"])
        for (a, i), q in bought.items():
            if q > 0 and i in members and a not in accounts:
                out.append(f"{a} bought {q:g} {i}, a substitute ({sub}) outside the accounts it stands in for")
    return out


def _valued_prices(sec: pd.DataFrame) -> pd.Series:
    """Each security's price (``sec`` indexed by security_id), a stale valuation rolled forward
    (docs/case_format.md): price x (1 + proxy_beta x r) with r = price[proxy] / proxy_price - 1
    for a security proxy and r = proxy_return for an asset-class proxy; a blank proxy_beta is 1."""
    price = sec["price"].astype(float)
    out = price.copy()
    for sid, row in sec[sec["proxy"].fillna("") != ""].iterrows():
        proxy = row["proxy"]
        r = price[proxy] / row["proxy_price"] - 1 if proxy in price.index else row["proxy_return"]
        beta = 1.0 if pd.isna(row["proxy_beta"]) else row["proxy_beta"]
        out[sid] = row["price"] * (1 + beta * r)
    return out


def _swap_duration(row) -> float:
    """A par swap's duration from its cash flows: the fixed leg's Macaulay duration (cash-flow
    times weighted by discounted cash flows at its own rate) over 1 + c/m, less the floating
    leg's (one period to its reset); or its dv01 per unit notional. NaN for a future."""
    if row["source"] != "swaps.csv":
        return np.nan
    if not pd.isna(row["dv01"]):
        return row["dv01"] / (row["multiplier"] * 1e-4)
    c, m, mf = row["fixed_rate"], row["fixed_frequency"], row["float_frequency"]
    t = np.arange(1, int(round(m * row["tenor"])) + 1) / m
    flows = np.full(t.size, c / m)
    flows[-1] += 1.0
    pv = flows / (1 + c / m) ** (m * t)
    return float((t * pv).sum() / pv.sum() / (1 + c / m) - (1 / mf) / (1 + c / mf))


def _contracts(household, policy, fut: pd.DataFrame) -> pd.DataFrame:
    """Per contract after trading, from futures.csv's own columns and the result's counts: the
    count, notional, margin held (initial per contract plus the buffer on |notional|) and class
    exposure per unit notional (a Treasury future's: duration ctd_bpv / conversion_factor /
    (notional x 1e-4) over the class duration)."""
    raw = household.futures.set_index("contract_id")
    got = fut.set_index("contract_id")
    out = pd.DataFrame(index=raw.index)
    out["account_id"] = raw["account_id"]
    out["asset_class"] = raw["asset_class"].fillna("")
    out["q"] = got["contracts_after"].reindex(raw.index).fillna(raw["position"]).astype(float)
    per_contract = raw["price"] * raw["multiplier"]
    out["notional"] = out["q"] * per_contract
    swap = (raw["source"] == "swaps.csv").to_numpy()
    futures_margin = out["q"].abs() * raw["margin"].fillna(0.0) + policy.overlay.margin_buffer * out["notional"].abs()
    d_swap = pd.Series([_swap_duration(r) for _, r in raw.iterrows()], index=raw.index)
    reserve = raw["collateral"].where(raw["collateral"].notna(), d_swap * policy.overlay.collateral_move)
    out["margin"] = np.where(swap, reserve * out["notional"].abs(), futures_margin)
    treasury = raw["ctd_bpv"].notna() & raw["conversion_factor"].notna() & raw["duration"].notna()
    duration = np.where(swap, d_swap, raw["ctd_bpv"] / raw["conversion_factor"] / (per_contract * 1e-4))
    given = raw["exposure"].where(raw["exposure"].notna(), 1.0)
    from_duration = (treasury | swap) & raw["duration"].notna() & raw["exposure"].isna()
    out["exposure"] = np.where(from_duration, duration / raw["duration"], given)
    out["counterparty"] = raw["counterparty"].fillna("")
    out["max_contracts"] = raw["max_contracts"].astype(float)
    horizon = policy.overlay.horizon
    out["expiry"] = raw["expiry"]
    out["expires_early"] = [horizon is not None and e is not None and str(e) < str(horizon) for e in raw["expiry"]]
    return out
