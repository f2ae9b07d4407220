"""Why each trade is in the list: a reason derived from the solution, never from text.

Every trade gets one ``reason`` (a fixed vocabulary, ``REASONS``; ``REASON_WORDS`` says what
each means), a ``reason_detail`` for machines and the advisor that names the class, band,
account, amount or file line behind it, and the same in plain words for the client's proposal
(``words``: no codes, file names or lines; a client restriction is named by its number among the
household's own rows). The first test that applies wins:

1. ``esg_sell_down``: a sale the ESG screen forces (``[esg] excluded = "sell"``); ``restriction``:
   a sale a no_hold row of restrictions.csv forces (the detail names the household, the rule,
   what it covers and its line).
   ``substitute``: a trade of a security whose class stands in for another under a client's
   substitute row, in that row's accounts ("MUB stands in for bonds in taxable accounts"); a rule
   of 2-4 that also applies is added to its detail.
2. ``cash_raise``: a sale in an account whose cash after its flows is below what it must keep
   (minimum cash, plus margin), when most of the account's selling is net selling.
3. ``contribution``: a buy in an account that received a contribution, when most of the
   account's buying is net buying.
4. ``band_breach``: the trade's class was outside its band before trading and the trade moves it
   toward the band; or cash was, the trade moves cash toward its band, and most of the
   household's trading on that side is net.
5. The objective term the trade lowers most. A term's change is attributed to the trades by its
   gradient at the midpoint m of before and after: for a quadratic or linear term f,
   f(after) - f(before) = grad f(m) . (after - before), so trade t's share of the tax and
   location terms is grad f(m) . delta_t (delta_t: its security's weight up or down by value / V),
   and of the views' term alpha_weight (alpha_i - alpha_cash) delta_t (the cash that pays for a
   buy, or that a sale raises, gives up or gains cash's alpha).

   Tracking error's factor part is attributed by what trades together. Securities with the same
   factor loadings (the members of a class under a class covariance) move it only through their
   net trade: a sale of one and a buy of another cancel. A group's net trade is paid for by the
   groups traded the other way and by cash, so its share is -net_g (g_g - g_funding), g the
   factor gradient and g_funding its average over what funds the net (or what a net sale funds):
   a sale of an overweight class that pays for an underweight one is credited on both sides.
   The share goes to the trades on the net's side, pro rata; the other side (a swap leg) gets
   none of it. Specific risk is attributed per trade. A trade on the net's side whose group
   nets under ``NET_SHARE`` of that side (mostly a swap: BND sold whole at a loss into AGG, the
   class trimmed by a tenth of it) takes another term it lowers first (the tax term: a harvest).

   - ``tax_loss_harvest``: the tax term (a sale that realizes a loss);
   - ``asset_location``: the location term (a move to an account type with less tax drag);
   - ``tactical_view``: the views' term (targets.csv ``alpha`` with ``alpha_weight``);
   - ``tactical_tilt`` or ``drift``: the tracking term (a tilt when the class was at or past its
     strategic weight and only the tilt asks for the trade).

   A trade that lowers no term by that count, and is no swap leg, is read at the margin: the
   gradient at the result, where at an optimum each trade's marginal benefit pays its cost.
6. A swap leg without a reason of its own takes its counterpart's (the largest trade of the same
   loadings on the other side, in the same account if there is one): ``tax_loss_harvest`` (the
   substitute bought), ``asset_location``, or ``substitution`` (naming what it replaces and why).
7. ``funding`` (a sale that pays for the account's buys) or ``rebalance`` (a buy nothing singles
   out).

Overlay contracts get ``expiry``, ``roll``, ``currency_hedge``, ``band_breach``, ``tactical_view``
(the trade lowers the views' term and leaves its class past its target in the trade's direction,
where only a view asks for it) or ``drift``; a contract with no class exposure that loads on a
factor of factor_targets.csv (a swap or Treasury future on the rates factor) gets ``band_breach``
when that factor was outside its band, else ``factor_drift``, the detail naming the factor; one
that moves every targeted factor against the way it went is there for the tracking term: ``drift``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cvxrebalance.constraints.bands import banded_before
from cvxrebalance.constraints.esg import RULE as ESG
from cvxrebalance.constraints.restrictions import sell_down
from cvxrebalance.cost_models.location import drag
from cvxrebalance.cost_models.tax import coefficients, loss_value, ytd_net
from cvxrebalance.optimizer.domain import restrictions
from cvxrebalance.optimizer.domain.factor_targets import exposure_after, factor_targets
from cvxrebalance.optimizer.domain.prepare import Prepared
from cvxrebalance.optimizer.domain.solution import Solution

REASONS = ("esg_sell_down", "restriction", "substitute", "cash_raise", "contribution", "band_breach",
           "tax_loss_harvest", "asset_location", "tactical_view", "tactical_tilt", "drift", "substitution",
           "funding", "rebalance")
# What each reason means, in plain words (the proposal's legend and the README's list).
REASON_WORDS = {
    "esg_sell_down": "a sale the portfolio's ESG screen requires",
    "restriction": "a sale one of the client's restrictions requires",
    "substitute": "a security that stands in for an asset class under a client's rule (munis for bonds)",
    "cash_raise": "raises cash for a withdrawal or for the account's minimum cash",
    "contribution": "invests money contributed to the account",
    "band_breach": "brings an asset class back inside its allowed range",
    "tax_loss_harvest": "realizes a loss that lowers taxes, or keeps the market exposure of such a sale",
    "asset_location": "moves a holding to the account type where it is taxed less",
    "tactical_view": "follows a current market view",
    "tactical_tilt": "applies a temporary tilt of the target mix",
    "drift": "brings an asset class back toward its target",
    "substitution": "one side of a swap: replaces, or is replaced by, a similar holding",
    "funding": "pays for the account's purchases",
    "rebalance": "part of the overall rebalance toward the target mix",
}
FUTURES_REASONS = ("expiry", "roll", "currency_hedge", "band_breach", "tactical_view", "drift", "factor_drift")
NET_SHARE = 0.5  # a flow (or cash's band) explains trades when net trading is this share of them
TOL = 1e-9
CENT = 0.005


def _pct(x: float) -> str:
    return f"{100 * x + 0.0:.2f}%"


def _money(x: float) -> str:
    return f"{x + 0.0:,.2f}"


class Why(NamedTuple):
    """One trade's reason code, its technical detail and the same in plain words."""

    reason: str
    detail: str
    words: str


class _Trades:
    """The trades in arrays: account, security, sign (+1 buy, -1 sale), signed weight."""

    def __init__(self, data: Prepared, sol: Solution, account: np.ndarray, security: np.ndarray,
                 sign: np.ndarray) -> None:
        self.data, self.sol = data, sol
        self.account, self.security, self.sign = account, security, sign
        value = np.where(sign > 0, sol.buy_value[account, security], sol.sell_value[account, security])
        self.delta = sign * value / data.V
        self.group = _loading_groups(data)[security]
        # Each group's net trade, and whether a trade is on the net's side (else: a swap leg).
        self.net_group = np.zeros(self.group.max() + 1)
        np.add.at(self.net_group, self.group, self.delta)
        self.with_net = np.sign(self.delta) == np.sign(self.net_group[self.group])
        self.same_side = np.zeros_like(self.net_group)
        np.add.at(self.same_side, self.group, np.abs(self.delta) * self.with_net)
        # Mostly a swap: on the net's side, but the net is under NET_SHARE of that side's trading
        # (a whole position sold at a loss into the class's ranked fund, a small net trim).
        self.mostly_swap = self.with_net & (np.abs(self.net_group[self.group])
                                            < NET_SHARE * self.same_side[self.group])
        # What the rules read, once: class weights under the bands, cash needs, forced sales.
        self.before = banded_before(data)
        self.need = _cash_needed(data, sol)
        self.forced = ESG.sell_mask(data) > 0
        self.sell_down = sell_down(data)  # (A, N) the no_hold row that forces a sale (-1: none)
        self.restricted = restrictions.of(data) if len(data.household.restrictions) else None
        self.buys, self.sells = sol.buy_value.sum(1), sol.sell_value.sum(1)


def trade_reasons(data: Prepared, sol: Solution, account: np.ndarray, security: np.ndarray,
                  sign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reason, its detail and its plain words for each trade (see the module docstring).

    Parameters
    ----------
    data, sol
        The household and its finished trade list.
    account, security : ndarray of int
        The trades' account and security indices.
    sign : ndarray
        +1 for a buy, -1 for a sale.

    Returns
    -------
    reason, detail, words : ndarray of str (object)
    """
    n = len(account)
    why = np.full((3, n), "", object)
    if not n:
        return why[0], why[1], why[2]
    tr = _Trades(data, sol, account, security, sign)
    lowering = _lowering(tr, 0.5)
    margin = _lowering(tr, 1.0)
    for t in range(n):
        own = _forced_reason(tr, t)
        if own is None:
            own = _rule_reason(tr, t)
            own = _substitute_reason(tr, t, own) or own or _term_reason(tr, t, lowering)
        if own is None and tr.with_net[t]:
            own = _term_reason(tr, t, margin)
        if own is not None:
            why[:, t] = own
    for t in np.flatnonzero(why[0] == ""):  # swap legs take their counterpart's reason
        why[:, t] = _counterpart_reason(tr, t, why) or _fallback(tr, t)
    return why[0], why[1], why[2]


def _forced_reason(tr: _Trades, t: int) -> Why | None:
    """A sale the ESG screen or a client's no_hold row forces."""
    d = tr.data
    a, i = int(tr.account[t]), int(tr.security[t])
    if tr.sign[t] < 0 and tr.forced[a, i]:
        return Why("esg_sell_down", f"{d.security_ids[i]} is excluded by the ESG screen",
                   "Excluded by the portfolio's ESG screen")
    if tr.sign[t] < 0 and tr.sell_down[a, i] >= 0:
        r = int(tr.sell_down[a, i])
        return Why("restriction", f"{d.household.name}'s {tr.restricted.text(r)}",
                   f"Required by {tr.restricted.number(r)}")
    return None


def _rule_reason(tr: _Trades, t: int) -> Why | None:
    """A flow or a band the trade serves (rules 2-4 of the module docstring)."""
    d = tr.data
    a, i, s = int(tr.account[t]), int(tr.security[t]), tr.sign[t]
    k = int(d.class_of[i])
    acc = d.account_ids[a]
    buys, sells, before = tr.buys, tr.sells, tr.before
    cash = float(d.cash0.sum())
    need = tr.need[a]
    if s < 0 and need > CENT and sells[a] - buys[a] >= NET_SHARE * sells[a]:
        if d.flow_cur[a] < 0:
            money = _money(-d.flow_cur[a])
            return Why("cash_raise", f"funds the withdrawal of {money} from {acc}",
                       f"Raises cash for the withdrawal of {money} from {acc}")
        return Why("cash_raise", f"raises {acc}'s cash by {_money(need)} to what it must keep",
                   f"Raises {acc}'s cash by {_money(need)} to the minimum it must keep")
    if s > 0 and d.flow_cur[a] > 0 and buys[a] - sells[a] >= NET_SHARE * buys[a]:
        money = _money(d.flow_cur[a])
        return Why("contribution", f"invests the {money} contributed to {acc}",
                   f"Invests the {money} contributed to {acc}")
    if s > 0 and before[k] < d.lower[k] - TOL or s < 0 and before[k] > d.upper[k] + TOL:
        return _breach(d.classes[k], before[k], d.lower[k], d.upper[k])
    side_total, other_total = (buys.sum(), sells.sum()) if s > 0 else (sells.sum(), buys.sum())
    if ((s > 0 and cash > d.cash_upper + TOL or s < 0 and cash < d.cash_lower - TOL)
            and side_total - other_total >= NET_SHARE * side_total):
        return _breach("cash", cash, d.cash_lower, d.cash_upper)
    return None


def _substitute_reason(tr: _Trades, t: int, rule: Why | None) -> Why | None:
    """A trade of a security standing in for another class under a client's substitute row, in
    that row's accounts; ``rule`` (a flow or band it also serves) is added to what it says."""
    res = tr.restricted
    a, i = int(tr.account[t]), int(tr.security[t])
    if res is None or res.stand_in_row[a, i] < 0:
        return None
    d = tr.data
    r = int(res.stand_in_row[a, i])
    sid, k = d.security_ids[i], int(d.class_of[i])
    detail = (f"{sid} stands in for {d.classes[k]} {res.where[r]} "
              f"(client rule: {res.cite(r)})")
    words = f"Stands in for {d.classes[k]} {res.where[r]} (client restriction {r + 1})"
    if rule is not None:
        detail, words = f"{detail}; {rule.detail}", f"{words}; {_clause(rule.words)}"
    return Why("substitute", detail, words)


def _term_reason(tr: _Trades, t: int, lowering: dict[str, np.ndarray]) -> Why | None:
    term = max(lowering, key=lambda name: lowering[name][t])
    if term == "risk" and tr.mostly_swap[t]:
        # Most of the trade is a swap, which moves no factor exposure: its other terms explain
        # it before the small net part's tracking credit (all of which it carries).
        others = {name: v for name, v in lowering.items() if name != "risk" and v[t] > 0}
        term = max(others, key=lambda name: others[name][t]) if others else term
    if lowering[term][t] <= 0:
        return None
    d, sol = tr.data, tr.sol
    a, i, s = int(tr.account[t]), int(tr.security[t]), tr.sign[t]
    k = int(d.class_of[i])
    if term == "tax":
        loss = _money(-_position_gain(tr, a, i))
        subs = _names(d, np.flatnonzero(_substitutes(tr, t)))
        return Why("tax_loss_harvest", f"realizes a loss of {loss}; substitute bought: {subs or 'none'}",
                   f"Realizes a loss of {loss} that lowers taxes"
                   + (f"; {subs} bought in its place keeps the market exposure" if subs else ""))
    if term == "location":
        return _location_reason(d, sol, k)
    before = tr.before[k]
    after = sol.class_after[k] + (sol.class_overlay_after[k] if d.policy.bands.on == "exposure" else 0.0)
    move = f"{_pct(before)} -> {_pct(after)} (target {_pct(d.target[k])})"
    move_words = f"from {_pct(before)} to {_pct(after)} (target {_pct(d.target[k])})"
    if term == "alpha":
        who = d.classes[k] if d.household.target_by == "asset_class" else d.security_ids[i]
        cash = f", cash {100 * d.alpha_cash:+.2f}%" if d.alpha_cash else ""
        view = f"{who} {100 * d.alpha[i]:+.2f}%{cash} a year expected active return"
        return Why("tactical_view", f"view: {view}; {d.classes[k]} {move}",
                   f"Follows the current market view ({view}): moves {d.classes[k]} {move_words}")
    tilt, name = d.tilt[k], d.classes[k]
    if tilt != 0 and np.sign(tilt) == s and s * (before - d.strategic[k]) >= -TOL:
        return Why("tactical_tilt", (f"{name} tilt {100 * tilt:+.2f}%: target {_pct(d.target[k])} "
                                     f"(strategic {_pct(d.strategic[k])}), {_pct(before)} before"),
                   (f"Applies the temporary tilt of {name} ({100 * tilt:+.2f}%): target {_pct(d.target[k])} "
                    f"instead of {_pct(d.strategic[k])}; it was at {_pct(before)}"))
    return Why("drift", f"{name} {move}", f"Brings {name} back toward its target: {move_words}")


def _counterpart_reason(tr: _Trades, t: int, why: np.ndarray) -> Why | None:
    """A swap leg's reason: its largest counterpart's (same loadings, other side, same account
    first), with what it replaces or what replaces it."""
    d = tr.data
    reason, detail, words = why
    other = np.flatnonzero((tr.group == tr.group[t]) & (tr.sign != tr.sign[t]) & (reason != ""))
    if not other.size:
        return None
    here = other[tr.account[other] == tr.account[t]]
    pool = here if here.size else other
    c = int(pool[np.argmax(np.abs(tr.delta[pool]))])
    sid, acc = d.security_ids[tr.security[c]], d.account_ids[tr.account[c]]
    them = f"{sid} {'sold' if tr.sign[c] < 0 else 'bought'} in {acc}"
    if reason[c] == "tax_loss_harvest" and tr.sign[t] > 0:
        return Why("tax_loss_harvest", f"substitute for {them} ({detail[c].split(';')[0]})",
                   f"Bought in place of the {sid} sold at a loss in {acc}, to keep the market exposure")
    if reason[c] == "asset_location":
        return Why("asset_location", f"the other side of {them}: {detail[c]}",
                   f"The other side of the {them} \u2014 {_clause(words[c])}")
    verb = "replaces" if tr.sign[t] > 0 else "is replaced by"
    lead = f"Bought in place of the {them}" if tr.sign[t] > 0 else f"Replaced by the {them}"
    return Why("substitution", f"{verb} {them} ({reason[c]}: {detail[c]})", f"{lead} \u2014 {_clause(words[c])}")


def _fallback(tr: _Trades, t: int) -> Why:
    d = tr.data
    a = int(tr.account[t])
    if tr.sign[t] < 0:
        bought = _names(d, np.flatnonzero(tr.sol.buy_q[a] > 0))
        if not bought:
            return Why("funding", "raises cash", "Raises cash")
        acc = d.account_ids[a]
        return Why("funding", f"pays for {acc}'s buys ({bought})", f"Pays for the purchases in {acc} ({bought})")
    return Why("rebalance", "part of the optimal trade list; no single rule or term explains it",
               "Part of the overall rebalance toward the target mix")


def _clause(words: str) -> str:
    """Plain words inside a sentence: every ``words`` starts with a capitalized verb of this
    module's own (never an id), so lowering its first letter is safe."""
    return words[:1].lower() + words[1:]


def _breach(name: str, before: float, lo: float, hi: float) -> Why:
    side = "above" if before > hi else "below"
    return Why("band_breach", f"{name} {_pct(before)} {side} its band {_pct(lo)} to {_pct(hi)}",
               f"Brings {name} back inside its allowed range of {_pct(lo)} to {_pct(hi)} (it was at {_pct(before)})")


def _cash_needed(data: Prepared, sol: Solution) -> np.ndarray:
    """(A,) currency each account lacks after its flows, before trading: its minimum cash plus
    the margin of the contracts it holds after trading, less its cash."""
    from cvxrebalance.constraints.overlay import margin_required

    floor = data.min_cash * data.V + (margin_required(sol) if data.overlay.J else 0.0)
    return np.maximum(floor - data.cash0 * data.V, 0.0)


def _loading_groups(data: Prepared) -> np.ndarray:
    """(N,) a group number per security; securities with the same factor loadings share one."""
    if "reason_groups" not in data.memo:
        B = np.round(data.risk.B.toarray(), 12)
        data.memo["reason_groups"] = np.unique(B, axis=0, return_inverse=True)[1].ravel() if data.N else np.zeros(0, int)
    return data.memo["reason_groups"]


def _lowering(tr: _Trades, at: float) -> dict[str, np.ndarray]:
    """How much each trade lowers each weighted objective term (objective units; negative: it
    raises it), by the gradient at ``at`` of the way from before (0) to after (1) trading: 0.5
    is the module docstring's attribution, 1 the marginal view at the result."""
    d, sol, delta = tr.data, tr.sol, tr.delta
    o = d.policy.objective
    rf = d.risk
    # Tracking term a'Sa, a = weights - benchmark, in factor form (cost_models.tracking_error):
    # gradient 2 (B F e + d^2 a) for securities and 2 b_cash' F e for cash, e the factor exposure.
    w = (1 - at) * d.h0.sum(0) + at * sol.weights_after() - d.bench
    c = (1 - at) * float(d.cash0.sum()) + at * sol.cash_weight_after - d.cash_ref
    f = (1 - at) * d.overlay.f0 + at * sol.overlay_after()
    e = rf.B.T @ w + rf.b_cash * c + rf.b_f.T @ f + rf.shift
    Fe = rf.L @ (rf.L.T @ e)
    specific = -o.risk_weight * delta * 2 * (rf.d**2 * w)[tr.security]
    # The factor part moves with each group's net trade only (a swap inside a group cancels), and
    # a group's net is paid for by the groups traded the other way and by cash: its share is
    # net_g (g_g - g_funding), g the factor gradient, g_funding the average over what funds it.
    g = 2 * (rf.B @ Fe)
    g_group = np.zeros_like(tr.net_group)
    g_group[tr.group] = g[tr.security]
    cash_change = -tr.net_group.sum()
    g_cash = 2 * float(rf.b_cash @ Fe)
    funding = {}
    for side in (1.0, -1.0):  # what pays for buys (side 1) and what sales pay for (side -1)
        other = np.sign(tr.net_group) == -side
        weight = np.append(np.abs(tr.net_group[other]), max(-side * cash_change, 0.0))
        values = np.append(g_group[other], g_cash)
        funding[side] = float(weight @ values / weight.sum()) if weight.sum() > 0 else g_cash
    fund = np.where(tr.net_group > 0, funding[1.0], funding[-1.0])
    total = -o.risk_weight * tr.net_group * (g_group - fund)
    # credited to the trades on the net's side, pro rata; a swap leg gets none of it
    share = np.divide(np.abs(delta), tr.same_side[tr.group], out=np.zeros_like(delta),
                      where=tr.same_side[tr.group] > 0)
    risk = specific + np.where(tr.with_net, total[tr.group] * share, 0.0)
    location = -o.location_weight * drag(d)[tr.account, tr.security] * delta
    # Views: -alpha_weight (alpha' net + alpha_cash * cash change), cash moving against each trade.
    alpha = o.alpha_weight * (d.alpha[tr.security] - d.alpha_cash) * delta
    tax = np.zeros(len(delta))
    if d.L:
        # The rate-weighted gain realized from the position's lots; a net loss for the year is
        # worth loss_value (c) per unit, as in the model's max(c * net, net) (cost_models.tax).
        per_lot = coefficients(d) * tr.sol.lot_sell_q * d.price[d.lot_security] / d.V
        scale = 1.0 if ytd_net(d) + per_lot.sum() > 0 else loss_value(d.policy)
        position = np.zeros((d.A, d.N))
        np.add.at(position, (d.lot_account, d.lot_security), per_lot)
        tax = -o.tax_weight * scale * position[tr.account, tr.security] * (delta < 0)
    return {"tax": tax, "location": location, "risk": risk, "alpha": alpha}


def _position_gain(tr: _Trades, a: int, i: int) -> float:
    d = tr.data
    mine = (d.lot_account == a) & (d.lot_security == i)
    return float((tr.sol.lot_sell_q * d.lot_gain)[mine].sum())


def _substitutes(tr: _Trades, t: int) -> np.ndarray:
    """(N,) securities of the sale's loadings bought in its account (else anywhere)."""
    same = tr.group[t] == _loading_groups(tr.data)
    here = same & (tr.sol.buy_q[tr.account[t]] > 0)
    return here if here.any() else same & (tr.sol.buy_q.sum(0) > 0)


def _location_reason(data: Prepared, sol: Solution, k: int) -> Why:
    """The class's move between account types and the tax drag the household's moves of it save."""
    moved = (sol.buy_value - sol.sell_value) * (data.class_of == k)  # (A, N) signed value of the class
    saved = _money(-float((drag(data) * moved).sum()))
    into = sorted({data.account_types[b] for b in range(data.A) if moved[b].sum() > CENT})
    out = sorted({data.account_types[b] for b in range(data.A) if moved[b].sum() < -CENT})

    def where(words: dict[str, str], tail: str) -> str:
        named = lambda types: " and ".join(words.get(x, x) for x in types)  # noqa: E731
        return (f" from {named(out)}" if out else "") + (f" to {named(into)}" if into else "") + (tail if out or into else "")

    name = data.classes[k]
    return Why("asset_location", f"{name}{where({}, '')}; the moves save {saved} a year of tax drag",
               f"Moves {name}{where(restrictions.ACCOUNT_TYPE_WORDS, ' accounts')}, where it is taxed less "
               f"(saves about {saved} a year in tax)")


def _names(data: Prepared, idx: np.ndarray) -> str:
    return ", ".join(data.security_ids[j] for j in idx)


def futures_reasons(data: Prepared, sol: Solution,
                    exposure: dict[str, dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The reason and its detail for each contract (empty for a contract not traded);
    ``exposure`` is ``exposures.currency_exposures`` of the result."""
    ov = data.overlay
    reason = np.full(ov.J, "", object)
    detail = np.full(ov.J, "", object)
    expiring = dict(ov.rolls)
    rolled_from = {b: a for a, b in ov.rolls if b}
    before = banded_before(data)
    currency = data.household.futures["currency"].tolist() if ov.J else []
    ft = factor_targets(data)
    factor_after = exposure_after(sol)[0] if ft.T else np.zeros(0)
    for j in np.flatnonzero(sol.contracts_traded != 0):
        loads = data.risk.b_f[j, ft.column] if ft.T else np.zeros(0)
        cid = ov.ids[j]
        if cid in expiring:
            nxt = expiring[cid]
            rolled = nxt is not None and sol.contracts_q[ov.ids.index(nxt)] != 0
            reason[j] = "expiry"
            detail[j] = (f"expires before the horizon {data.policy.overlay.horizon}; "
                         + (f"rolled into {nxt}" if rolled else "closed"))
        elif cid in rolled_from and ov.q0[ov.ids.index(rolled_from[cid])] != 0:
            reason[j], detail[j] = "roll", f"takes over from {rolled_from[cid]}, which expires before the horizon"
        elif not ov.G[j].any() and currency[j]:
            reason[j], detail[j] = "currency_hedge", _currency_detail(exposure, currency[j])
        elif not ov.G[j].any() and loads.any():  # a contract seen only through a targeted factor
            # The targeted factor the trade moves the way the factor went; none: it is there for
            # the tracking term (the benchmark's other exposures), a drift of its own.
            moved = np.sign(loads * sol.contracts_traded[j]) * np.sign(factor_after - ft.before)
            t = int(np.argmax(np.abs(loads) * (moved > 0)))
            x0, lo, hi = ft.before[t], ft.lower[t], ft.upper[t]
            band = f", band {lo:.2f} to {hi:.2f}".replace("-inf", "none").replace("inf", "none")
            move = f"{ft.names[t]} {x0:.2f} -> {factor_after[t]:.2f} (target {ft.target[t]:.2f}{band})"
            if moved[t] <= 0:
                reason[j], detail[j] = "drift", f"tracking error against the benchmark; moves against {move}"
            else:
                reason[j] = "band_breach" if x0 < lo - TOL or x0 > hi + TOL else "factor_drift"
                detail[j] = move
        else:
            k = int(np.argmax(np.abs(ov.G[j])))
            after = sol.class_after[k] + sol.class_overlay_after[k]
            moved = np.sign(ov.G[j, k] * sol.contracts_traded[j])  # the class's way, +1 up
            if before[k] < data.lower[k] - TOL or before[k] > data.upper[k] + TOL:
                reason[j], detail[j], _ = _breach(data.classes[k], before[k], data.lower[k], data.upper[k])
            elif (data.policy.objective.alpha_weight > 0 and data.alpha_f[j] * sol.contracts_traded[j] > 0
                  and moved * (after - data.target[k]) > TOL):
                reason[j] = "tactical_view"
                detail[j] = (f"view: {100 * data.alpha_f[j]:+.2f}% a year expected active return per unit "
                             f"notional; {data.classes[k]} exposure {_pct(before[k])} -> {_pct(after)} "
                             f"(target {_pct(data.target[k])})")
            else:
                reason[j] = "drift"
                detail[j] = (f"{data.classes[k]} exposure {_pct(before[k])} -> {_pct(after)} "
                             f"(target {_pct(data.target[k])})")
    return reason, detail


def _currency_detail(exposure: dict[str, dict[str, float]], currency: str) -> str:
    x = exposure.get(currency)
    if x is None:
        return f"hedges {currency}"
    return (f"{currency} exposure {_pct(x['before'])} -> {_pct(x['after'])} "
            f"(hedge ratio {x['hedge_ratio']:g}: target {_pct(x['target'])})")
