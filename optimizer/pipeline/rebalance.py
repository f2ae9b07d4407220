"""The solve pipeline: prepare -> trigger -> solve -> tickets -> whole shares -> check -> result."""

from __future__ import annotations

import re
import time

import numpy as np

from cvxrebalance.constraints import restrictions, wash_sales
from cvxrebalance.constraints.bands import RULE as BANDS
from cvxrebalance.constraints.bands import triggered
from cvxrebalance.constraints.factor_bands import RULE as FACTOR_BANDS
from cvxrebalance.optimizer.domain import factor_targets as factors
from cvxrebalance.optimizer.domain.errors import InfeasibilityError, SolverError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.prepare import Prepared, prepare
from cvxrebalance.optimizer.domain.solution import Solution
from cvxrebalance.optimizer.pipeline import checker, contracts, lot_choice, tickets, whole_shares
from cvxrebalance.optimizer.pipeline.problem import Solver
from cvxrebalance.optimizer.pipeline.repair import repair
from cvxrebalance.optimizer.pipeline.result import RebalanceResult
from cvxrebalance.optimizer.pipeline.rounding import to_shares

MAX_SOLVES = 16
RULE_BANDS = BANDS.name
DRIFT_BANDS = (BANDS.name, FACTOR_BANDS.name)  # what a trigger that says no leaves as it is
# Margins by which rounding repairs move limits inward (fractions of household value; ESG in score
# points x weight), and their cap.
REPAIR_MARGINS = {"bands", "factor_bands", "turnover", "esg", "cash", "gain_budget"}
MARGIN_CAP = 0.02
CONFLICT_TOL = 1e-5  # elastic slack below this (weight) is solver noise, not a conflict
# The impact estimate improves accuracy, not correctness: rounding charges impact exactly and the
# checker verifies the cash, so after this many solves the pipeline moves on.
MAX_IMPACT_SOLVES = 6
# Cash-balance error the impact estimate may leave, per account, as a fraction of household value
# ($1 per $1M); whatever is left is charged exactly by the rounding step's cash repair.
IMPACT_TOL = 1e-6
# What not trading would break, in plain words for the client's proposal (by checker family).
BROKEN_WORDS = {
    "restrictions": "the client's restrictions require selling some holdings",
    "esg": "the portfolio's ESG screen requires changes",
    "cash": "an account needs cash for a withdrawal or its minimum balance",
    "location": "some holdings sit in accounts that may not hold them",
    "illiquid": "an illiquid holding breaks its limits",
    "overlay": "the derivatives overlay is outside its limits",
    "turnover": "the trades are outside the turnover limit",
    "tactical": "a tactical tilt is outside its limits",
}


def decide_trigger(data: Prepared, t0: float) -> tuple[list[str], list[str], RebalanceResult | None]:
    """Whether the household trades: the reasons it does, the same in plain words for the
    client's proposal, and (third) the checked no-trade result when the trigger says no and not
    trading breaks no rule.

    Not trading may still break a rule (an ESG minimum, a forced sale, a withdrawal to fund):
    then the household trades after all. Bands (of classes and of factors) are not such a rule:
    they bound the weights a rebalance trades to, and a calendar or buy-and-hold trigger that says
    no leaves the drift as it is (the checks say so in ``not_applied``).
    """
    go, reasons, words = triggered(data)
    if go:
        return reasons, words, None
    sol = Solution.no_trade(data)
    found = checker.check(sol)
    broken = [v for v in found if v.constraint not in DRIFT_BANDS]
    if broken:
        words = [BROKEN_WORDS.get(v.constraint, f"not trading would break the {v.constraint} rules") for v in broken]
        return [f"not trading would break {v.constraint}: {v.where}" for v in broken], list(dict.fromkeys(words)), None
    checks = checker.verify(sol, broken)
    if len(found) > len(broken):
        checks["not_applied"] = {name: "no rebalance was triggered: the drift is left as it is"
                                 for name in DRIFT_BANDS if any(v.constraint == name for v in found)}
    return reasons, words, RebalanceResult.build(data, sol, None, checks, reasons, False, time.perf_counter() - t0,
                                                 words)


def rebalance(household: Household, policy: Policy | None = None) -> RebalanceResult:
    """Rebalance a household under a policy: one convex program, rounded, checked.

    Parameters
    ----------
    household : Household
        From :func:`optimizer.load_case` or :meth:`Household.from_frames`.
    policy : Policy, optional
        Defaults to ``Policy()``.

    Returns
    -------
    RebalanceResult
        Trades, lots and a summary, already verified by the independent checker.

    Raises
    ------
    ValidationError
        Input problems that need both household and policy to see.
    InfeasibilityError
        The policy's constraints conflict; names the constraints that must give.
    SolverError
        Every solver in the fallback chain failed.
    CheckError
        The result broke a rule beyond tolerance (it is never returned).

    Examples
    --------
    >>> from cvxrebalance import load_case, rebalance
    >>> from cvxrebalance.scenarios import case_path
    >>> household, policy = load_case(case_path("seed_portfolio"))
    >>> result = rebalance(household, policy)
    >>> result.summary["checks"]["passed"]
    True
    """
    t0 = time.perf_counter()
    policy = policy or Policy()
    data = prepare(household, policy)
    reasons, words, idle = decide_trigger(data, t0)
    if idle is not None:
        return idle

    solver = Solver(data)
    margins: dict[str, np.ndarray] = {}
    sol, violations = None, []
    solved = None  # the last continuous solution that was rounded
    tickets_done = False
    impact_solves = 0
    decided: tuple[set[int], set[int]] | None = None  # groups the last wash decision blocked
    flipped: list[str] = []  # groups whose wash-sale decision failed both ways
    for _ in range(MAX_SOLVES):
        cont = solver.solve(margins)
        if cont is None and decided is not None:
            # The side the wash-sale decision kept made the program infeasible (a gain budget
            # that needed the blocked loss, say); the rule allows either side: try the other.
            wash_sales.reverse(data, *decided)
            flipped = [data.wash.names[g] for g in sorted(decided[0] | decided[1])]
            decided = None
            continue
        decided = None
        if cont is None:
            if "impact_trade" in margins:
                # Impact priced into the cash balance made it infeasible: drop the estimate (the
                # rounding step's cash repair charges impact exactly) and stop refining it.
                del margins["impact_trade"]
                impact_solves = MAX_IMPACT_SOLVES
                continue
            if flipped:  # both sides of the last wash-sale decision are infeasible
                # Other combinations of sides may not be: the exhaustive search decides every
                # group exactly (in whole shares).
                found = whole_shares.search(data, margins, None, first_stage=False)
                if found.solution is not None and not checker.check(found.solution):
                    sol, violations, solved = found.solution, [], None
                    break
                raise _infeasible(data, solver, margins, wash_both_ways=flipped,
                                  proven=found.status == "infeasible")
            if sol is not None and REPAIR_MARGINS & set(margins):
                # Only the limits moved inward for rounding made it infeasible: the policy itself
                # was feasible. Repair the last whole-share list instead (never a false verdict).
                break
            raise _infeasible(data, solver, margins)
        flipped = []
        impact_solves += 1
        if impact_solves < MAX_IMPACT_SOLVES and _impact_moved(data, margins, cont):
            continue
        # A wash group is bought or loss-sold, never both: decide from this solve and re-solve.
        # Blocks only grow, so this ends; it runs after every solve because a later re-solve
        # (tightened bands, fixed contracts) can pair a purchase and a loss sale anew.
        decided = wash_sales.decide(data, cont.buy, cont.lot_sell)
        if decided is not None:
            continue
        if data.overlay.J and "contracts" not in margins:
            fractional = cont.f
            cont = contracts.choose(solver, data, margins, cont)
            if cont is None:
                raise _infeasible(data, solver, margins, capped=contracts.ruled_out(data, fractional))
            # The contract-fixed re-solve can pair a purchase and a loss sale anew.
            decided = wash_sales.decide(data, cont.buy, cont.lot_sell)
            if decided is not None:
                continue
        if not tickets_done:  # once: later re-solves keep its closures and floors
            cont, tickets_done = tickets.apply(solver, data, margins, cont), True
        sol, solved = to_shares(data, cont, margins.get("contracts")), cont
        violations = checker.check(sol)
        if not violations or not _tighten(data, margins, violations):
            break
    if sol is None:  # pragma: no cover - every path above ends in a solution or an error
        raise SolverError([("pipeline", f"no solution after {MAX_SOLVES} solves")])
    if violations:
        sol = repair(sol)  # margins could not fix it: one-share moves
        violations = checker.check(sol)
    if violations and _policy_limits_only(violations):
        # An exact search: the nearest whole-share list, or a proof that none exists.
        found = whole_shares.search(data, margins, solved)
        if found.solution is not None and not checker.check(found.solution):
            sol, violations = found.solution, []
        else:
            raise _whole_share_infeasible(violations, found)
    if not violations:
        sol = lot_choice.choose(sol)  # the same quantities; the lots by exact tax, then carry-forward
    checks = checker.verify(sol, violations)
    result = RebalanceResult.build(data, sol, cont, checks, reasons, True, time.perf_counter() - t0, words)
    result.summary["solver"]["solves"] = solver.solves
    if data.overlay.J and policy.overlay.instruments == "both" and policy.overlay.compare_cash_only:
        result.summary["cash_only_comparison"] = _compare_cash_only(household, policy, result)
    return result


def _compare_cash_only(household: Household, policy: Policy, result: RebalanceResult) -> dict:
    """The same case solved without touching the overlay, side by side: what the overlay saved."""
    def facts(r: RebalanceResult) -> dict:
        s = r.summary
        return {"costs": s["costs"], "tax": s["taxes"]["tax"],
                "tracking_error": s["tracking_error"]["after"], "trade_count": s["trade_count"],
                "objective": s["objective"]["value"]}

    cash_only = policy.replace(overlay={"instruments": "cash_only", "compare_cash_only": False})
    try:
        other = facts(rebalance(household, cash_only))
    except (InfeasibilityError, SolverError) as exc:
        other = {"error": f"{type(exc).__name__}: {exc}"}
    return {"with_overlay": facts(result), "cash_only": other}


POLICY_LIMITS = {"bands", "factor_bands", "turnover", "cash", "esg", "tax_rules"}


def _policy_limits_only(violations) -> bool:
    """Whether every violation is a policy limit a whole-share list may be unable to meet (any
    other violation is a CheckError: the pipeline broke a rule it should not have)."""
    return all(v.constraint in POLICY_LIMITS or _margin(v) for v in violations)


def _margin(v) -> bool:
    """An overlay margin shortfall: the carrying account's cash floor, a limit like minimum cash."""
    return v.constraint == "overlay" and v.where.startswith("margin[")


def _whole_share_infeasible(violations, found: whole_shares.Found) -> InfeasibilityError:
    """The verdict when no whole-share list was found, worded as what was shown: proven by the
    exhaustive search, or, when the search stopped early or its answer failed the checker,
    feasible in fractional shares with no whole-share list found (which proves nothing)."""
    conflicts = [(f"{v.constraint}.{v.where}", float(v.amount)) for v in violations]
    if found.status == "infeasible" and found.stage == 2:
        return InfeasibilityError(
            conflicts,
            "the policy can be met with fractional shares but not with whole shares: an exact search "
            "(a MILP over every position, contract and wash-sale choice, HiGHS) proved that no "
            "whole-share trade list meets it (a band narrower than one share of its securities is "
            "the usual cause); the amounts are those of the nearest rounded list",
        )
    why = ("its answer failed the checker" if found.status == "found"
           else f"it stopped without an answer ({found.status})")
    return InfeasibilityError(
        conflicts,
        "the policy can be met with fractional shares, but rounding, re-solving with these limits "
        f"moved inward (by at most {MARGIN_CAP:.0%} of household value) and one-share repairs left "
        f"them broken, and the exact whole-share search could not settle it: {why}; a whole-share "
        "list may exist",
    )


def _impact_moved(data: Prepared, margins: dict[str, np.ndarray], cont) -> bool:
    """Refresh the trade sizes the cash balance prices impact at; True if they moved enough to
    matter (cvxrebalance.constraints.cash: the fixed point makes the impact in the cash balance exact)."""
    impact = data.column("impact").astype(float)
    if not impact.any():
        return False
    traded = cont.buy + cont.sell
    if "impact_trade" not in margins:
        margins["impact_trade"] = traded
        return True
    before = margins["impact_trade"]
    error = np.abs(impact * (traded - before) * traded).sum(axis=1).max()
    last = margins.get("impact_error", np.array([np.inf]))
    # A full step settles in one or two solves; if the error grew, impact is large enough to make
    # it oscillate (costly -> trade less -> cheap -> trade more), so take half a step.
    margins["impact_trade"] = traded if error < last[0] else (before + traded) / 2
    margins["impact_error"] = np.array([error])
    return bool(error > IMPACT_TOL)


def _tighten(data: Prepared, margins: dict[str, np.ndarray], violations) -> bool:
    """Move the constraints rounding crossed inward, by at least one share of the priciest
    security involved (less can leave the rounded result unchanged), doubling on each repeat;
    False if no violation is of a kind a margin can fix."""
    repeat = margins.setdefault("repairs", np.zeros(1))
    grow = 2.0 ** repeat[0]
    repeat[0] += 1
    before = {k: v.copy() for k, v in margins.items() if k in REPAIR_MARGINS}
    share = np.where(data.liquid, data.price, 0.0) / data.V  # one share, in weight
    moved = False
    for v in violations:
        step = (2 * v.amount + share.max()) * grow
        if v.constraint == "bands":
            k = v.index
            if k < data.C:
                step = (2 * v.amount + (share * data.X[:, k]).max()) * grow
            margins.setdefault("bands", np.zeros(data.C + 1))[k] += step
        elif v.constraint == "factor_bands":  # in weight: the factor's units over its largest loading
            t, ft = v.index, factors.factor_targets(data)
            step = (2 * v.amount / ft.scale[t] + factors.one_share(data, t)) * grow
            margins.setdefault("factor_bands", np.zeros(ft.T))[t] += step
        elif v.constraint == "turnover":
            margins.setdefault("turnover", np.zeros(1))[0] += step
        elif v.constraint == "esg" and v.where.startswith("score"):
            margins.setdefault("esg", np.zeros(1))[0] += step * 10
        elif v.constraint == "cash":
            margins.setdefault("cash", np.zeros(data.A))[v.index] += 2 * v.amount / data.V
        elif _margin(v):
            # Rounding spent the margin account's reserve: its cash floor (the same margin the
            # cash rows use) moves up by twice the shortfall.
            a = data.account_ids.index(v.where[len("margin["):-1])
            margins.setdefault("cash", np.zeros(data.A))[a] += 2 * v.amount / data.V
        elif v.constraint == "tax_rules" and v.where.startswith("gain_budget"):
            # Past the budget by part of a share's gain: move it in by that, plus one share of
            # the largest gain per share, doubling on each repeat.
            one_share = float(np.clip(data.lot_gain, 0.0, None).max(initial=0.0))
            margins.setdefault("gain_budget", np.zeros(1 + len(data.taxable)))[v.index] += (
                (2 * v.amount + one_share) / data.V * grow)
        else:
            continue
        moved = True
    # Margins are capped: a limit moved further in than MARGIN_CAP of household value is no
    # longer the same policy (doubling once reached 0.4 and made feasible policies infeasible).
    for key in REPAIR_MARGINS & set(margins):
        if (margins[key] > MARGIN_CAP).any():
            margins[key] = np.minimum(margins[key], MARGIN_CAP)
            if key in before and np.array_equal(margins[key], before[key]):
                moved = False  # capped and unchanged: re-solving cannot help
    return moved


def _infeasible(data: Prepared, solver: Solver, margins, wash_both_ways: list[str] | None = None,
                proven: bool = False, capped: list[tuple[str, float]] = ()) -> InfeasibilityError | SolverError:
    """Elastic re-solve: relax every policy constraint with a penalized slack and name those
    that had to give (an L1 penalty makes the set small). It uses the same margins (rounding
    repairs, impact estimate) as the solve that failed. When the elastic program itself finds no
    optimum, nothing was proven: a SolverError, never an infeasibility without conflicts.
    ``proven``: the exhaustive whole-share search found no list under any wash-sale sides.
    ``capped``: the counterparty caps that ruled out roundings of the contracts, with how far
    those roundings passed them (``contracts.ruled_out``), when no whole-contract list was
    feasible."""
    found = solver.conflicts(margins)
    if not found:
        _, out = solver.elastic(margins)
        return SolverError([("elastic program", out.status),
                            ("verdict", "the solvers could not establish whether the policy is feasible")])
    added = _overlay_limits(data, solver, margins, found) + [c for c in capped if c[0] not in dict(found)]
    found += added
    names = {"bands": [*data.classes, "cash"], "cash": data.account_ids, "overlay": data.account_ids,
             "tax_rules": data.account_ids}

    def label(raw: str) -> str:
        m = re.match(r"(\w+)\.(\w+)\[(\d+)\]", raw)
        if not m:
            return raw
        family, kind, k = m.group(1), m.group(2), int(m.group(3))
        return f"{family}.{kind}[{names.get(family, [])[k] if family in names else k}]"

    # Slacks at solver-noise level are not conflicts; keep at least the largest one.
    conflicts = [(label(n), a) for n, a in found if a > CONFLICT_TOL] or [(label(n), a) for n, a in found[:1]]
    explanation = _explain(data, conflicts)
    if capped:
        explanation = ("With fractional contracts the policy holds, with whole ones no candidate did: rounding up "
                       f"passes {', '.join(name for name, _ in capped)} (by the amount shown: one unit is more than "
                       "the room under the cap) and rounding down breaks the other constraints listed.\n" + explanation)
    elif added:
        explanation = (f"{', '.join(label(name) for name, _ in added)}: how far it would have to give instead "
                       "for the constraints above it to hold.\n" + explanation)
    if wash_both_ways:
        tried = ("not buying it and not selling it at a loss are each infeasible" if len(wash_both_ways) == 1
                 else "the sides first chosen, and all of them reversed, are each infeasible")
        tried += ("; an exact search over every choice of sides (a MILP, HiGHS) found no whole-share "
                  "trade list that meets the policy" if proven else
                  "; the exact search over every choice of sides could not settle it, so a trade list "
                  "with other sides may exist")
        explanation = (f"The wash-sale rule was decided both ways for {', '.join(wash_both_ways)}: {tried} "
                       "(the conflicts listed are those of the second way).\n" + explanation)
    return InfeasibilityError(conflicts, explanation)


def _overlay_limits(data: Prepared, solver: Solver, margins, found: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The overlay limits (counterparty caps, gross and net limits, margin cash) behind conflicts
    the elastic program put elsewhere. Its L1 penalty relaxes whichever side is cheaper in its own
    units (a band's slack is a weight, a cap's a notional that moves the band by its exposure per
    unit, below 1 for a swap hedging a longer-duration class), so a band only a capped overlay
    could meet was named alone. Holding what it named, the overlay limits that must give instead
    are the rest of the conflict, with how far they would have to."""
    if not data.overlay.J or any(name.startswith("overlay.") for name, _ in found):
        return []
    held = solver.conflicts(margins, hard=frozenset(name for name, _ in found))
    return [(name, amount) for name, amount in held if name.startswith("overlay.")]


def _explain(data: Prepared, conflicts: list[tuple[str, float]]) -> str:
    """Context a user needs to act on the conflicts: illiquid weight in a conflicting class, and
    the trade bounds (wash-sale blocks, restrictions) that keep a class from its band."""
    lines = []
    illiquid = data.X.T @ (data.h0.sum(0) * ~data.liquid)
    w = data.wash
    for name, _ in conflicts:
        m = re.match(r"bands\.(lower|upper)\[(.*)\]", name)
        if m and m.group(2) in data.classes:
            k = data.classes.index(m.group(2))
            if illiquid[k] > 0:
                lines.append(f"{m.group(2)} holds {illiquid[k]:.2%} of household value in illiquid "
                             f"securities that are never traded (band {data.lower[k]:.2%} to "
                             f"{data.upper[k]:.2%})")
            # The wash-sale rule's blocks are trade bounds, not rows the elastic program can relax:
            # name the ones that stop this class moving toward its band.
            groups = sorted({int(g) for g in w.group[data.class_of == k]})
            if m.group(1) == "lower":
                why = {**{g: "its purchase is blocked by the wash-sale rule inside this rebalance"
                          for g in w.block_buy}, **w.recent_loss}
                verb = "buys"
            else:
                why = {**{g: "its loss sales are blocked by the wash-sale rule inside this rebalance"
                          for g in w.block_loss}, **w.recent_buy}
                verb = "loss sales"
            for g in (g for g in groups if g in why):
                lines.append(f"{m.group(2)}: {verb} of {w.names[g]} are blocked by the wash-sale rule ({why[g]})")
            # Restrictions' forbidden buys are trade bounds too.
            lines += restrictions.explain(data, m.group(1), k)
        if name.startswith("restrictions.no_hold["):
            lines += restrictions.explain_sell_down(data, name)
    unit = "Amounts are fractions of household value"
    if any(name.startswith("esg.min_score") for name, _ in conflicts):
        unit += " (esg.min_score: score points x weight)"
    lines.append(unit + ".")
    return "\n".join(lines)
