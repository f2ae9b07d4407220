"""Signals applied (scenarios.tactical): one rule in a single rebalance and in a backtest, the
governance limits on every decision date, and bad signal input named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import Policy, load_case, rebalance
from cvxrebalance.optimizer.domain.errors import ValidationError
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.backtests import backtest
from cvxrebalance.scenarios.market import load_market
from cvxrebalance.scenarios.tactical import Tactical, signals, tactical_rebalance

US = case_path("us_stocks_bonds_monthly")
MOMENTUM = {"kind": "momentum", "classes": ["us_equity"], "funded_by": ["bonds"], "size": 0.04}


@pytest.fixture(scope="module")
def us():
    household, policy = load_case(US)
    return household, policy, load_market(US)


def with_signals(policy: Policy, signals: dict, **sections) -> Policy:
    data = policy.to_dict()
    for name, changes in sections.items():
        data[name] = {**data[name], **changes}
    return Policy.from_dict({**data, "signals": signals})


def test_a_single_rebalance_reads_the_signal_on_its_as_of_date_and_trades_to_the_tilted_target(us):
    household, policy, market = us
    p = with_signals(policy, {"mom": MOMENTUM}, tax={"as_of": "1950-01-31"})
    decision = signals(household, p, market)
    m = (1 + market.returns.loc["1949-02-28":"1950-01-31"]).prod()
    assert decision.date == pd.Timestamp("1950-01-31")
    assert decision.readings["mom"]["us_equity"] == pytest.approx(m["US_STOCKS"] - m["cash"])
    assert decision.tilt["us_equity"] == 0.04 * np.sign(m["US_STOCKS"] - m["cash"])
    result = tactical_rebalance(household, p, market)
    data = result.solution.data
    k = data.classes.index("us_equity")
    assert data.target[k] == pytest.approx(0.60 + decision.tilt["us_equity"])
    assert data.target[data.classes.index("bonds")] == pytest.approx(0.38 - decision.tilt["us_equity"])
    classes = result.asset_classes
    assert classes.loc["us_equity", "tilt"] == pytest.approx(decision.tilt["us_equity"])
    assert classes.loc["bonds", "tilt"] == pytest.approx(-decision.tilt["us_equity"])
    assert classes.loc["cash", ["strategic", "tilt"]].tolist() == pytest.approx([0.02, 0.0])
    # Data after the as-of date is never read: the same rebalance on the history cut there.
    cut = market.window(end="1950-01-31")
    assert signals(household, p, cut).tilt.equals(decision.tilt)


def test_rebalance_without_market_data_refuses_a_policy_with_signals(us):
    household, policy, _ = us
    with pytest.raises(ValidationError, match=r"signals\.mom.*needs market data"):
        rebalance(household, with_signals(policy, {"mom": MOMENTUM}))


def test_a_class_the_household_lacks_is_named(us):
    household, policy, market = us
    bad = {**MOMENTUM, "classes": ["equities"], "funded_by": ["cash", "gold"]}
    with pytest.raises(ValidationError) as err:
        Tactical(household, with_signals(policy, {"mom": bad}), market)
    text = str(err.value)
    assert "signals.mom.classes" in text and "'equities'" in text and "'gold'" in text


def test_band_signals_widen_the_policy_band_around_the_tilted_target(us):
    household, policy, market = us
    p = with_signals(policy, {"vb": {"kind": "volatility_bands", "classes": ["us_equity"], "window": 6,
                                     "max_multiplier": 2.0}}, tax={"as_of": "1932-06-30"})
    tactical = Tactical(household, p, market)
    decision = tactical.at("1932-06-30")
    x = decision.lower["us_equity"]
    assert 1.0 < x <= 2.0 and decision.upper["us_equity"] == x
    widened = tactical.household(household, decision).targets.set_index("id")
    assert widened.loc["us_equity", "lower"] == pytest.approx(0.60 - x * 0.05)
    assert widened.loc["us_equity", "upper"] == pytest.approx(0.60 + x * 0.05)
    assert np.isnan(widened.loc["bonds", "lower"])  # not a class of the signal


def test_band_multipliers_multiply_and_max_band_multiplier_holds_their_product(us):
    household, policy, market = us
    signals = {"vb": {"kind": "volatility_bands", "classes": ["us_equity"], "window": 6, "max_multiplier": 2.0},
               "mb": {"kind": "momentum_bands", "classes": ["us_equity"], "lookback": 6, "widen": 2.0}}
    free = Tactical(household, with_signals(policy, signals, tax={"as_of": "1932-06-30"}), market).at("1932-06-30")
    vb = Tactical(household, with_signals(policy, {"vb": signals["vb"]}, tax={"as_of": "1932-06-30"}),
                  market).at("1932-06-30")
    widened = max(free.lower["us_equity"], free.upper["us_equity"])
    assert widened == pytest.approx(vb.lower["us_equity"] * 2.0)  # the trending side: the product
    assert widened > 2.0  # more than either signal's own maximum
    capped = Tactical(household, with_signals(policy, signals, tax={"as_of": "1932-06-30"},
                                              tactical={"max_band_multiplier": 2.0}), market).at("1932-06-30")
    assert max(capped.lower["us_equity"], capped.upper["us_equity"]) == 2.0
    [clip] = capped.clips.itertuples()
    assert (clip.signal, clip.asset_class, clip.after) == ("bands", "us_equity", 2.0)
    assert clip.before == pytest.approx(widened) and clip.limit.startswith("max_band_multiplier")


def test_a_model_portfolio_spreads_a_class_tilt_over_its_securities():
    household, policy = load_case(case_path("sp500_daily"))
    market = load_market(case_path("sp500_daily"))
    p = with_signals(policy, {"rel": {"kind": "momentum", "mode": "relative", "lookback": 60, "size": 0.02,
                                      "classes": ["technology", "energy", "financials"]}})
    tactical = Tactical(household, p, market)
    decision = tactical.at("1991-06-28")
    tilted = tactical.household(household, decision).targets
    sec = household.securities.set_index("security_id")["asset_class"]
    by_class = tilted.assign(cls=tilted["id"].map(sec)).groupby("cls")["tilt"].sum()
    for c in ("technology", "energy", "financials"):
        assert by_class[c] == pytest.approx(decision.tilt[c])
    assert sorted(decision.tilt[["technology", "energy", "financials"]].round(12)) == [-0.02, 0.0, 0.02]
    assert tilted["tilt"].sum() == pytest.approx(0.0, abs=1e-12)


def test_signals_csv_problems_are_named_by_line_and_field(us):
    household, policy, market = us
    p = with_signals(policy, {"cape": {"kind": "valuation", "classes": ["us_equity"], "series": "cape"},
                              "cycle": {"kind": "macro", "classes": ["us_equity"], "series": "cycle",
                                        "regimes": {"expansion": 0.01}}})
    with pytest.raises(ValidationError, match="signals.csv.*missing"):
        Tactical(household, p, market)
    frame = pd.DataFrame({"date": ["1930-01-31", "1930-02-28", "1930-02-28", "1930-03-31", "1930-04-30",
                                   "1930-01-31"],
                          "name": ["cape", "cape", "cape", "cycle", "cycle", "cycle"],
                          "value": ["20", "x", "21", "expansion", "boom", "expansion"]})
    with pytest.raises(ValidationError) as err:
        Tactical(household, p, market, frame)
    text = str(err.value)
    assert "signals.csv line 3 [value]: 'x' is not a finite number" in text
    assert "signals.csv line 6 [value]: regime 'boom' has no tilt" in text
    assert "signals.csv line 7 [date]: 1930-01-31 does not come after 1930-03-31" in text


def test_one_series_read_as_numbers_and_labels_and_a_class_without_returns_are_named(us):
    household, policy, market = us
    p = with_signals(policy, {"cape": {"kind": "valuation", "classes": ["us_equity"], "series": "s"},
                              "cycle": {"kind": "macro", "classes": ["us_equity"], "series": "s",
                                        "regimes": {"up": 0.01}}})
    frame = pd.DataFrame({"date": ["1930-01-31"], "name": ["s"], "value": ["1"]})
    with pytest.raises(ValidationError, match=r"signals\.cape\.series.*as numbers here and as labels by signals\.cycle"):
        Tactical(household, p, market, frame)
    no_bonds = dataclasses.replace(market, returns=market.returns.drop(columns="US_BONDS"))
    with pytest.raises(ValidationError, match=r"returns.csv \[bonds\]: no return series.*signals\.mom reads"):
        Tactical(household, with_signals(policy, {"mom": MOMENTUM}), no_bonds)


def test_policy_tables_of_signals_are_checked_key_by_key():
    with pytest.raises(ValidationError) as err:
        Policy.from_dict({"signals": {
            "a": {"kind": "momentum", "classes": ["x"], "lookbak": 3},
            "b": {"kind": "trend", "classes": ["x"], "window": 1.5, "mode": "up"},
            "c": {"kind": "views", "views": {"x": 2.0}, "use": "both"},
            "d": {"kind": "volatility_target", "classes": ["x"], "safe": "x"},
            "e": {"kind": "oracle"},
            "f": {"kind": "momentum", "classes": ["x"], "funded_by": []},
            "g": {"kind": "momentum", "classes": ["x", "x"], "lookback": 1e300},
            "h": {"kind": "views", "views": {"cash": 0.05}},
            "i": {"kind": "valuation", "classes": ["x"], "series": "pe", "window": 1}}, "tactical": {"risk_budget": -0.1}})
    text = str(err.value)
    for where in ("signals.a.lookbak", "signals.b.window", "signals.b.mode", "signals.c.use", "signals.c.views.x",
                  "signals.d.safe", "signals.e.kind", "tactical.risk_budget", "signals.f.funded_by",
                  "signals.g.classes", "signals.g.lookback", "signals.h.funded_by", "signals.i.window"):
        assert f"[{where}]" in text, where


def test_the_governance_limits_hold_on_every_backtest_date(us):
    """Three signals that together want far more than allowed: on every date the tilt in force is
    within max_tilt per class, sums to zero and its tracking error is within the budget."""
    household, policy, market = us
    p = with_signals(policy, {
        "mom": {**MOMENTUM, "size": 0.08},
        "trend": {"kind": "trend", "classes": ["us_equity"], "window": 10, "size": 0.06, "max_days": 120,
                  "reversion": "linear", "reversion_periods": 3},
        "vt": {"kind": "volatility_target", "classes": ["us_equity"], "target_vol": 0.12, "cap": 0.75}},
        trigger={"mode": "calendar", "frequency": "monthly"}, tactical={"max_tilt": 0.06, "risk_budget": 0.01})
    result = backtest(household, {"tactical": p}, market, start="1928-12-31", end="1936-12-31")
    run = result.runs["tactical"]
    tilt = sum(run.periods.tilts.values())
    tactical = Tactical(household, p, market)
    assert np.abs(tilt).max() <= 0.06 + 1e-12
    assert np.abs(tilt.sum(1)).max() < 1e-12
    te = np.sqrt(np.einsum("tk,kl,tl->t", tilt, tactical.cov, tilt))
    assert te.max() <= 0.01 + 1e-9 and te.max() > 0.009  # the budget binds
    assert set(run.clips["limit"]) >= {"max_tilt", "risk_budget", "max_days"}
    # The decisions traded toward the tilted targets: after each monthly decision (but those a
    # wash-sale block made infeasible, recorded as events) the equity weight is within 5 points
    # (5/25) of its tilted target. Row t of the tilts holds over the period after date t-1.
    after = run.values["after_us_equity"].iloc[1:-1]
    target = pd.Series(0.60 + tilt[1:, tactical.classes.index("us_equity")], index=after.index)
    failed = run.events.loc[run.events["reason"].str.startswith("infeasible"), "date"]
    assert len(failed) < 10
    assert (after - target).drop(failed).abs().max() < 0.05 + 1e-6


def test_initial_target_starts_with_the_signals_of_the_start_date(us):
    household, policy, market = us
    p = with_signals(policy, {"mom": MOMENTUM}, backtest={"initial": "target"},
                     trigger={"mode": "never"})
    result = backtest(household, p, market, start="1950-01-31", end="1950-03-31")
    tilt = signals(household, p, market, date="1950-01-31").tilt["us_equity"]
    assert tilt != 0
    first = result.runs["policy"].values.iloc[0]
    assert first["after_us_equity"] == pytest.approx(0.60 + tilt)


def test_a_backtest_never_reads_data_after_its_end(us):
    household, policy, market = us
    p = with_signals(policy, {"mom": MOMENTUM, "vb": {"kind": "volatility_bands", "classes": ["us_equity"]}},
                     trigger={"mode": "threshold"})
    full = backtest(household, p, market, start="1940-12-31", end="1943-12-31")
    cut = dataclasses.replace(market, returns=market.returns.loc[:"1943-12-31"])
    short = backtest(household, p, cut, start="1940-12-31")
    pd.testing.assert_frame_equal(full.runs["policy"].values, short.runs["policy"].values)


def test_the_command_line_prints_the_signals_and_rebalances_to_them(capsys, tmp_path):
    from cvxrebalance.optimizer.apps.cli import main

    assert main(["signals", "tactical_monthly", "--date", "2008-12-31"]) == 0
    text = capsys.readouterr().out
    assert "Signals read on 2008-12-31" in text and "credit: value" in text and "Ex-ante tracking error" in text
    assert main(["run", "tactical_monthly", "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert main(["signals", "us_stocks_bonds_monthly"]) == 2
    assert "has no [signals.NAME] table" in capsys.readouterr().err
    no_market = tmp_path / "case"
    no_market.mkdir()
    for f in case_path("tactical_monthly").iterdir():
        if f.name != "returns.csv":
            (no_market / f.name).write_bytes(f.read_bytes())
    assert main(["run", str(no_market), "--quiet"]) == 2
    assert "the policy's signals read market data" in capsys.readouterr().err


def test_a_backtest_writes_the_attribution_and_the_clips(tmp_path):
    from cvxrebalance.optimizer.apps.cli import main

    out = tmp_path / "bt"
    assert main(["backtest", "tactical_monthly", "--out", str(out), "--start", "2007-12-31", "--end", "2009-12-31",
                 "--no-progress"]) == 0
    table = pd.read_csv(out / "policy" / "attribution.csv").set_index("piece")
    assert list(table.index) == ["policy", "momentum", "volatility", "credit", "drift", "selection", "overlay",
                                 "costs", "taxes", "total"]
    assert table.loc["total", "sum"] == pytest.approx(table.drop(index="total")["sum"].sum(), abs=1e-12)
    clips = pd.read_csv(out / "policy" / "clips.csv")
    assert {"date", "signal", "asset_class", "limit", "before", "after"} == set(clips.columns)


def test_view_alphas_add_to_the_expected_returns_of_targets_csv(us):
    household, policy, market = us
    tgt = household.targets.copy()
    tgt["alpha"] = [0.0, 0.01, 0.0]  # us_equity, bonds, cash
    own = dataclasses.replace(household, targets=tgt)
    p = with_signals(policy, {"v": {"kind": "views", "views": {"us_equity": 0.04}, "conviction": 0.5, "use": "alpha"}})
    tactical = Tactical(own, p, market)
    tilted = tactical.household(own, tactical.at("1950-01-31")).targets.set_index("id")
    assert tilted["alpha"].to_dict() == pytest.approx({"us_equity": 0.02, "bonds": 0.01, "cash": 0.0})
    assert (tilted["tilt"] == 0).all()


@pytest.mark.parametrize("value", [0.5, 101.0, -1.0])
def test_a_band_multiplier_cap_below_one_is_named(value):
    with pytest.raises(ValidationError, match=r"tactical\.max_band_multiplier"):
        Policy.from_dict({"tactical": {"max_band_multiplier": value}})
