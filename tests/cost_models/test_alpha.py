"""Tactical views as an expected active return in the objective (cost_models/alpha.py):
-alpha_weight x (alpha' net trade + alpha_cash x cash change + alpha_f' notional traded)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders import household, policy, two_account_household

from cvxrebalance import Problem, ValidationError, load_case, rebalance
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.pipeline.problem import Solver, declare, objective_scale
from cvxrebalance.scenarios import case_path

V = 10_000_000  # shares at 1.0 (x price): a whole share is 1e-7 of the household


def two_classes(alpha: float = 0.0, vols=(0.15, 0.05), price: float = 1.0, cash: float = 0.0,
                half_spread: float = 0.0, alpha_cash: float | None = None) -> object:
    """One tax-exempt account at its targets: SA (class a) and SB (class b), uncorrelated class
    covariance diag(vols^2), ``cash`` (a fraction of V, with a cash target row when nonzero)
    and ``alpha`` on class a."""
    held = (1 - cash) / 2
    targets = [{"asset_class": "a", "weight": held, "alpha": alpha}, {"asset_class": "b", "weight": held}]
    if cash:
        targets.append({"asset_class": "cash", "weight": cash, "alpha": alpha_cash or 0.0})
    return household(
        securities=[{"security_id": s, "asset_class": c, "price": price, "half_spread": half_spread}
                    for s, c in (("SA", "a"), ("SB", "b"))],
        accounts=[{"account_id": "roth", "type": "tax_exempt", "cash": cash * V * price}],
        holdings=[{"account_id": "roth", "security_id": s, "quantity": held * V} for s in ("SA", "SB")],
        targets=targets, vols={"a": vols[0], "b": vols[1]}, corr=0.0)


def weights(result) -> dict[str, float]:
    """Class and cash weights after trading, fractions of the household."""
    return {k: v["after"] for k, v in result.summary["asset_classes"].items()}


def test_closed_form_active_weight_of_a_view():
    # No cash (and none wanted: it would have to come from selling b too), so x_a + x_b = 0:
    # x_a = x, x_b = -x. Objective rw (sa^2 + sb^2) x^2 - aw alpha x, stationary at
    # 2 rw (sa^2 + sb^2) x = aw alpha: x = 10 * 0.02 / (2 * 100 * 0.025) = 0.04.
    # The tie-breaks (TIE_QUAD, TIE_BREAK) move x by about 1e-4 of itself: 4e-6 here.
    rw, aw, sa, sb, alpha = 100.0, 10.0, 0.15, 0.05, 0.02
    r = rebalance(two_classes(alpha, (sa, sb)),
                  policy(bands={"rule": "none"}, objective={"risk_weight": rw, "alpha_weight": aw}))
    x = aw * alpha / (2 * rw * (sa**2 + sb**2))
    w = weights(r)
    assert (w["a"] - 0.5, w["b"] - 0.5, w["cash"]) == pytest.approx((x, -x, 0.0), abs=1e-4)
    # The reported (unweighted) term is minus the expected return the trades add.
    assert r.summary["objective"]["alpha"] == pytest.approx(-alpha * x, rel=1e-3)
    t = r.trades.set_index("security_id")
    assert (t.loc["SA", "side"], t.loc["SA", "reason"]) == ("buy", "tactical_view")


def test_closed_form_of_a_negative_view_sells_into_cash():
    # Selling a may raise cash (zero variance, no view), so x_a + x_b + x_cash = 0 with x_b = 0
    # optimal: 2 rw sa^2 x_a = aw alpha, x_a = 10 * -0.01 / (2 * 100 * 0.0225) = -1/45.
    rw, aw, sa, alpha = 100.0, 10.0, 0.15, -0.01
    r = rebalance(two_classes(alpha, (sa, 0.05)),
                  policy(bands={"rule": "none"}, objective={"risk_weight": rw, "alpha_weight": aw}))
    x = aw * alpha / (2 * rw * sa**2)
    w = weights(r)
    assert (w["a"] - 0.5, w["b"] - 0.5, w["cash"]) == pytest.approx((x, 0.0, -x), abs=1e-4)
    t = r.trades.set_index("security_id")
    assert list(t.index) == ["SA"] and (t.loc["SA", "side"], t.loc["SA", "reason"]) == ("sell", "tactical_view")


def with_views(**views):
    """The two-account household with ``alpha`` on its target rows (by class; absent: no column)."""
    targets = [{"asset_class": "us_equity", "weight": 0.55}, {"asset_class": "bonds", "weight": 0.35},
               {"asset_class": "private_equity", "weight": 0.07}, {"asset_class": "cash", "weight": 0.03}]
    if views:
        targets = [{**t, "alpha": views.get(t["asset_class"], 0.0)} for t in targets]
    return two_account_household(targets=targets)


@pytest.mark.parametrize(("views", "alpha_weight"), [({"bonds": 0.03, "cash": -0.01}, 0.0),
                                                     ({"bonds": 0.0}, 5.0)],
                         ids=["alpha_weight_0", "alpha_all_zero"])
def test_no_weight_or_no_view_is_todays_result(views, alpha_weight):
    p = policy(bands={"rule": "none"})
    base = rebalance(with_views(), p)
    p_views = policy(bands={"rule": "none"}, objective={"alpha_weight": alpha_weight})
    h = with_views(**views)
    assert "alpha" not in [name for name, _ in declare(prepare(h, p_views)).program.linear]
    r = rebalance(h, p_views)
    assert r.trades.equals(base.trades) and r.lots.equals(base.lots)
    assert r.summary["objective"]["value"] == base.summary["objective"]["value"]


def test_a_view_is_traded_against_costs():
    # At target, with 2% cash (zero risk, no view): buying SA from cash costs c = 0.001 per unit
    # and earns aw * alpha. Below c nothing trades; above, SA is bought from cash until
    # 2 rw sa^2 x = aw alpha - c (x = 0.001 / 4.5 at aw alpha = 0.002), and SB is left alone.
    c, alpha = 0.001, 0.02

    def run(aw: float):
        return rebalance(two_classes(alpha, cash=0.02, half_spread=c),
                         policy(bands={"rule": "none"}, objective={"alpha_weight": aw}))

    assert run(0.04).trades.empty  # 0.0008 < 0.001
    r = run(0.1)  # 0.002 > 0.001
    t = r.trades.set_index("security_id")
    assert list(t.index) == ["SA"] and t.loc["SA", "side"] == "buy"
    assert t.loc["SA", "value"] / V == pytest.approx((0.1 * alpha - c) / (2 * 100 * 0.15**2), rel=1e-2)


def test_fast_path_and_reference_agree_with_views():
    """PIQP on the assembled QP and Clarabel on the cvxpy reference solve one declaration: the
    views change both optima alike."""
    h = with_views(bonds=0.03, us_equity=-0.01, cash=0.005)
    for p in (policy(bands={"rule": "none"}, objective={"alpha_weight": 2.0}),
              policy(objective={"alpha_weight": 2.0})):  # 5/25 bands
        values = {}
        for name in ("PIQP", "CLARABEL"):
            data = prepare(h, p.replace(solver={"name": name}))
            cont = Solver(data).solve()
            assert cont.solver == name
            values[name] = cont.objective
        assert values["PIQP"] == pytest.approx(values["CLARABEL"], rel=1e-6, abs=1e-12)
        no_view = Solver(prepare(h, p.replace(objective={"alpha_weight": 0.0}))).solve().objective
        assert values["PIQP"] < no_view - 1e-6  # the view pays for itself


def test_a_view_on_a_class_moves_the_overlay_by_its_exposure(tmp_path):
    # A +3% bond view: TYH7's alpha is its bond exposure (duration ratio) x 3%, and the long
    # bond future carries the view (no tax, a small spread) where selling taxable VTI would not.
    case = tmp_path / "overlay"
    shutil.copytree(case_path("overlay"), case)
    lines = (case / "targets.csv").read_text().splitlines()
    rows = [lines[0] + ",alpha"] + [row + (",0.03" if row.startswith("bonds") else ",") for row in lines[1:]]
    (case / "targets.csv").write_text("\n".join(rows) + "\n")
    h, p = load_case(case)
    data = prepare(h, p)
    tyh7 = data.overlay.ids.index("TYH7")
    assert data.alpha_f[tyh7] == pytest.approx(data.overlay.G[tyh7].max() * 0.03)
    found = {}
    for aw in (0.0, 1.0):
        for name in ("PIQP", "CLARABEL"):
            cont = Solver(prepare(h, p.replace(objective={"alpha_weight": aw}, solver={"name": name}))).solve()
            found[aw, name] = cont
        assert found[aw, "PIQP"].objective == pytest.approx(found[aw, "CLARABEL"].objective, rel=1e-6)
        assert np.abs(found[aw, "PIQP"].f - found[aw, "CLARABEL"].f).max() < 1e-6
    assert found[1.0, "PIQP"].f[tyh7] > found[0.0, "PIQP"].f[tyh7] + 0.01
    r = rebalance(h, p.replace(objective={"alpha_weight": 1.0}))
    fut = r.futures.set_index("contract_id")
    assert fut.loc["TYH7", "trade"] > 0 and fut.loc["TYH7", "reason"] == "tactical_view"


def test_money_in_cents_gives_the_same_weights():
    p = policy(bands={"rule": "none"}, objective={"alpha_weight": 0.5})
    kw = {"alpha": 0.03, "cash": 0.02, "half_spread": 0.0005, "alpha_cash": -0.01}
    dollars, cents = rebalance(two_classes(**kw), p), rebalance(two_classes(price=100.0, **kw), p)
    assert not dollars.trades.empty
    assert dollars.trades[["security_id", "side", "quantity"]].equals(cents.trades[["security_id", "side", "quantity"]])
    assert weights(cents) == pytest.approx(weights(dollars), abs=1e-12)
    assert cents.summary["objective"]["value"] == pytest.approx(dollars.summary["objective"]["value"], rel=1e-7)


def test_the_objective_scale_counts_the_views():
    """Tie-breaks are relative to the objective's scale; a view's rate is part of it (here the
    only part: no risk weight, no costs, no lots)."""
    p = policy(objective={"risk_weight": 0.0, "alpha_weight": 1.0})
    one = objective_scale(prepare(two_classes(0.02), p))
    assert one == pytest.approx(1e-4 * 0.02)
    assert objective_scale(prepare(two_classes(0.02), p.replace(objective={"alpha_weight": 1e4}))) == pytest.approx(1e4 * one)


@pytest.mark.parametrize("k", [1e-4, 1e4])
def test_every_weight_scaled_trades_the_same_with_views(k):
    h = with_views(bonds=0.03, us_equity=-0.01, cash=0.005)
    p = policy(objective={"alpha_weight": 2.0})
    o = p.objective
    base = rebalance(h, p)
    scaled = rebalance(h, p.replace(objective={"risk_weight": o.risk_weight * k, "cost_weight": o.cost_weight * k,
                                               "tax_weight": o.tax_weight * k, "alpha_weight": o.alpha_weight * k}))
    assert scaled.trades[["account_id", "security_id", "side", "quantity", "reason"]].equals(
        base.trades[["account_id", "security_id", "side", "quantity", "reason"]])
    assert scaled.summary["objective"]["value"] == pytest.approx(k * base.summary["objective"]["value"], rel=1e-6)


@pytest.mark.parametrize(("cell", "message"), [("x", "not a number: 'x'"), (5, "must be in [-1, 1], got 5"),
                                               ("inf", "not a finite number")])
def test_a_bad_alpha_names_targets_csv_its_row_and_the_column(cell, message):
    targets = [{"asset_class": "a", "weight": 0.5, "alpha": 0.01}, {"asset_class": "b", "weight": 0.5, "alpha": cell}]
    with pytest.raises(ValidationError) as info:
        household(securities=[{"security_id": "SA", "asset_class": "a", "price": 1.0},
                              {"security_id": "SB", "asset_class": "b", "price": 1.0}],
                  accounts=[{"account_id": "roth", "type": "tax_exempt", "cash": 100.0}],
                  holdings=[{"account_id": "roth", "security_id": "SA", "quantity": 1.0}], targets=targets)
    [problem] = info.value.problems
    assert (problem.file, problem.row, problem.field) == ("targets.csv", 3, "alpha")
    assert message in problem.message


def test_alpha_weight_is_a_weight():
    with pytest.raises(ValidationError) as info:
        policy(objective={"alpha_weight": -1.0})
    assert info.value.problems == [Problem("policy.toml", None, "objective.alpha_weight", "must be in [0, 1e+09]")]
