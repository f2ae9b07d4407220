"""Each signal kind checked in closed form on short hand-made series, and the no-look-ahead
property: a signal computed on the data truncated at a date equals the one computed on the full
history at that date."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cvxrebalance import Policy
from cvxrebalance.optimizer.domain.signal_spec import KINDS
from cvxrebalance.scenarios.signals import MODULES, Inputs, history
from cvxrebalance.scenarios.signals.valuation import zscore

DATES = pd.date_range("2020-01-31", periods=6, freq="ME")
STRATEGIC = pd.Series({"A": 0.5, "B": 0.3, "C": 0.1, "cash": 0.1})


def inputs(returns: dict, series=None) -> Inputs:
    frame = pd.DataFrame(returns, index=DATES[: len(next(iter(returns.values())))])
    for c in STRATEGIC.index:
        if c not in frame:
            frame[c] = 0.0
    return Inputs(frame[list(STRATEGIC.index)], 12, STRATEGIC, series or {})


def spec(kind, **params):
    return Policy.from_dict({"signals": {"s": {"kind": kind, **params}}}).signals[0]


def test_every_kind_of_the_policy_has_a_module():
    assert set(KINDS) == set(MODULES)


def test_momentum_sign_is_the_excess_return_over_cash_and_funders_pay_pro_rata():
    """A: +10%, +10%, -5% against cash 1% a month: m = 1.1 x 1.1 x 0.95 - 1.01^3 > 0, so A
    gets +2%, paid by B and C in proportion 0.3 : 0.1."""
    x = inputs({"A": [0.10, 0.10, -0.05], "cash": [0.01] * 3})
    h = history(spec("momentum", classes=["A"], lookback=3, funded_by=["B", "C"]), x)
    assert h.raw["A"].iloc[-1] == pytest.approx(1.1 * 1.1 * 0.95 - 1.01**3)
    assert h.raw["A"].iloc[:2].isna().all()  # the window is not full yet: no tilt
    assert h.values.iloc[-1].to_dict() == pytest.approx({"A": 0.02, "B": -0.015, "C": -0.005, "cash": 0.0})
    assert (h.values.iloc[:2] == 0).all().all()


def test_momentum_linear_clips_scale_times_momentum_and_skip_moves_the_window():
    x = inputs({"A": [0.02, 0.01, -0.30, 0.05]})
    h = history(spec("momentum", classes=["A"], lookback=2, mode="linear", scale=0.5, size=0.05), x)
    assert h.values["A"].iloc[1] == pytest.approx(0.5 * (1.02 * 1.01 - 1))
    assert h.values["A"].iloc[2] == pytest.approx(-0.05)  # 0.5 x (1.01 x 0.7 - 1) = -0.146: clipped
    assert h.values["cash"].iloc[1] == pytest.approx(-h.values["A"].iloc[1])  # funded by cash by default
    skipped = history(spec("momentum", classes=["A"], lookback=2, skip=1, mode="linear", scale=0.5, size=0.05), x)
    assert skipped.raw["A"].iloc[2] == pytest.approx(h.raw["A"].iloc[1])


def test_relative_strength_ranks_the_classes_from_minus_size_to_plus_size():
    x = inputs({"A": [0.05, 0.05], "B": [-0.02, 0.0], "C": [0.01, 0.01]})
    h = history(spec("momentum", classes=["A", "B", "C"], lookback=2, mode="relative", size=0.03), x)
    assert h.values.iloc[-1].to_dict() == pytest.approx({"A": 0.03, "B": -0.03, "C": 0.0, "cash": 0.0})
    assert (h.values.iloc[0] == 0).all()


def test_trend_is_the_level_against_its_moving_average():
    """Levels 1.1, 1.1 x 0.9 = 0.99, 0.99 x 1.05 = 1.0395: MA(3) = 1.043; 1.0395 < MA: -size."""
    x = inputs({"A": [0.10, -0.10, 0.05]})
    h = history(spec("trend", classes=["A"], window=3, funded_by=["B"]), x)
    levels = np.array([1.1, 0.99, 1.0395])
    assert h.raw["A"].iloc[-1] == pytest.approx(levels[-1] / levels.mean() - 1)
    assert h.values.iloc[-1][["A", "B"]].tolist() == pytest.approx([-0.02, 0.02])
    lin = history(spec("trend", classes=["A"], window=3, mode="linear", scale=2.0, size=0.5), x)
    assert lin.values["A"].iloc[-1] == pytest.approx(2.0 * (levels[-1] / levels.mean() - 1))


def test_volatility_target_weight_is_min_of_cap_and_target_over_realized():
    """A and B at strategic 0.5 and 0.3: the composite is (5 r_A + 3 r_B) / 8; its sample
    volatility (ddof = 1) over 4 months, times sqrt(12), sets the group's weight."""
    ra, rb = [0.04, -0.03, 0.05, -0.06], [0.01, 0.0, -0.01, 0.02]
    x = inputs({"A": ra, "B": rb})
    h = history(spec("volatility_target", classes=["A", "B"], window=4, target_vol=0.10, cap=0.9), x)
    composite = (5 * np.array(ra) + 3 * np.array(rb)) / 8
    sigma = composite.std(ddof=1) * math.sqrt(12)
    weight = min(0.9, 0.10 / sigma)
    assert h.raw["volatility"].iloc[-1] == pytest.approx(sigma)
    got = h.values.iloc[-1]
    assert got["A"] == pytest.approx((weight - 0.8) * 5 / 8)
    assert got["B"] == pytest.approx((weight - 0.8) * 3 / 8)
    assert got["cash"] == pytest.approx(0.8 - weight)
    capped = history(spec("volatility_target", classes=["A", "B"], window=4, target_vol=5.0, cap=0.9, safe="C"), x)
    assert capped.values.iloc[-1][["A", "B", "C"]].sum() == pytest.approx(0.0)
    assert capped.values.iloc[-1]["C"] == pytest.approx(0.8 - 0.9)


def test_volatility_bands_widen_by_the_ratio_of_short_to_long_volatility_within_limits():
    r = [0.08, -0.08, 0.01, -0.01, 0.08, -0.08]
    x = inputs({"A": r})
    h = history(spec("volatility_bands", classes=["A"], window=2, long_window=0, max_multiplier=3.0), x)
    s = pd.Series(r)
    ratio = s.rolling(2).std().iloc[-1] / s.std()
    assert h.raw["A"].iloc[-1] == pytest.approx(ratio)
    assert h.values["A"].iloc[-1] == pytest.approx(min(max(ratio, 1.0), 3.0))
    assert h.raw["A"].iloc[3] < 1 and h.values["A"].iloc[3] == 1.0  # calm: bands never narrow
    assert h.upper["A"].equals(h.values["A"])


def test_momentum_bands_widen_the_side_the_class_moves_toward():
    x = inputs({"A": [0.05, 0.05, -0.10, -0.10]})
    h = history(spec("momentum_bands", classes=["A"], lookback=2, widen=1.5), x)
    assert h.upper["A"].tolist() == [1.0, 1.5, 1.0, 1.0]
    assert h.values["A"].tolist() == [1.0, 1.0, 1.5, 1.5]


def test_valuation_z_score_counts_from_its_date_and_maps_to_a_clipped_tilt():
    obs = pd.Series([10.0, 12.0, 14.0, 20.0], index=pd.to_datetime(["2019-12-15", "2020-01-15", "2020-02-15",
                                                                     "2020-04-10"]))
    x = inputs({"A": [0.0] * 5}, {"cape": obs})
    h = history(spec("valuation", classes=["A"], series="cape", min_observations=3, scale=0.01, size=0.02,
                     funded_by=["B"]), x)
    z3 = (14 - 12) / np.std([10, 12, 14], ddof=1)
    z4 = (20 - 14) / np.std([10, 12, 14, 20], ddof=1)
    assert zscore(obs, 0, 3).tolist()[2:] == pytest.approx([z3, z4])
    assert np.isnan(h.raw["z"].iloc[0])  # Jan 31: two observations so far
    assert h.values["A"].iloc[1:].tolist() == pytest.approx([-0.01 * z3, -0.01 * z3, -0.01 * z4, -0.01 * z4])
    assert h.values["B"].iloc[3] == pytest.approx(0.01 * z4)
    assert h.raw["value"].iloc[2] == 14.0  # Mar 31 reads the Feb 15 value: Apr 10 is not known yet


def test_macro_maps_the_latest_regime_label_to_its_tilt():
    labels = pd.Series(["expansion", "recession"], index=pd.to_datetime(["2020-02-01", "2020-04-30"]), dtype=object)
    x = inputs({"A": [0.0] * 5}, {"cycle": labels})
    h = history(spec("macro", classes=["A", "B"], series="cycle", regimes={"expansion": 0.02, "recession": -0.04}),
                x)
    assert h.values["A"].tolist() == pytest.approx([0.0, 0.02 * 5 / 8, 0.02 * 5 / 8, -0.04 * 5 / 8, -0.04 * 5 / 8])
    assert h.values.sum(axis=1).abs().max() < 1e-15


def test_views_tilt_with_conviction_or_become_expected_returns():
    x = inputs({"A": [0.0] * 3})
    tilt = history(spec("views", views={"A": 0.04, "B": -0.01}, conviction=0.5, funded_by=["C"]), x)
    assert tilt.use == "tilt"
    assert tilt.values.iloc[0].to_dict() == pytest.approx({"A": 0.02, "B": -0.005, "C": -0.015, "cash": 0.0})
    alpha = history(spec("views", views={"A": 0.04}, conviction=0.5, use="alpha"), x)
    assert alpha.use == "alpha" and alpha.values["A"].tolist() == [0.02] * 3


SPECS = [
    spec("momentum", classes=["A"], lookback=3, funded_by=["B"]),
    spec("momentum", classes=["A", "B", "C"], lookback=2, mode="relative"),
    spec("trend", classes=["A"], window=4, mode="linear"),
    spec("volatility_target", classes=["A", "B"], window=5),
    spec("volatility_bands", classes=["A", "B"], window=3),
    spec("volatility_bands", classes=["A"], window=3, long_window=6),
    spec("momentum_bands", classes=["A"], lookback=3),
    spec("valuation", classes=["A"], series="pe", min_observations=3, window=5),
    spec("macro", classes=["A"], series="regime", regimes={"up": 0.01, "down": -0.01}),
    spec("views", views={"A": 0.01}),
]


@pytest.mark.parametrize("s", SPECS, ids=[f"{s.kind}-{i}" for i, s in enumerate(SPECS)])
def test_no_look_ahead(s):
    """The signal on data truncated at each date equals the full-history signal at that date."""
    rng = np.random.default_rng(7)
    dates = pd.date_range("2000-01-31", periods=30, freq="ME")
    returns = pd.DataFrame(rng.normal(0.005, 0.04, (30, 4)), index=dates, columns=STRATEGIC.index)
    obs_dates = dates - pd.Timedelta(days=10)
    series = {"pe": pd.Series(rng.normal(15, 3, 30), index=obs_dates),
              "regime": pd.Series(rng.choice(["up", "down"], 30), index=obs_dates, dtype=object)}
    full = history(s, Inputs(returns, 12, STRATEGIC, series))
    for t in range(len(dates)):
        cut = dates[t]
        part = history(s, Inputs(returns.loc[:cut], 12, STRATEGIC,
                                 {k: v[v.index <= cut] for k, v in series.items()}))
        pd.testing.assert_series_equal(part.values.iloc[-1], full.values.loc[cut])
        if s.kind.endswith("bands"):
            pd.testing.assert_series_equal(part.upper.iloc[-1], full.upper.loc[cut])
