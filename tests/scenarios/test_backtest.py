"""The backtest engine (scenarios.backtests): hand-computed toys, an independent numpy
re-implementation of the calendar and threshold rules on the bundled monthly history, the rule
against the optimizer, and taxes carried through time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from builders import household, policy

from cvxrebalance import load_case
from cvxrebalance.optimizer.domain.errors import ValidationError
from cvxrebalance.scenarios import case_path
from cvxrebalance.scenarios.backtests import backtest
from cvxrebalance.scenarios.market import Market, load_market

NO_HOLDINGS = pd.DataFrame(columns=["account_id", "security_id", "quantity"])


def two_assets(cost=0.01, kind="tax_deferred", lots=None):
    sec = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0, "half_spread": cost},
           {"security_id": "BD", "asset_class": "fi", "price": 100.0, "half_spread": cost}]
    holdings = lots or [{"account_id": "a", "security_id": "EQ", "quantity": 600.0},
                        {"account_id": "a", "security_id": "BD", "quantity": 400.0}]
    return household(sec, [{"account_id": "a", "type": kind, "cash": 0.0}], holdings,
                     [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}])


def monthly(rows: dict[str, tuple[float, float]]) -> Market:
    frame = pd.DataFrame(rows, index=["EQ", "BD"]).T
    frame.index = pd.to_datetime(frame.index)
    return Market.from_returns(frame)


def test_a_60_40_with_a_5pct_band_and_a_1pct_cost_by_hand():
    """$60,000 / $40,000. January: stocks +20% -> 64.29%, inside 55-65%: no trade. February:
    stocks +10% -> $79,200 / $40,000 = 66.44%: back to 60/40 with 1% costs, V' from
    V' + 0.01 (79,200 - 0.6 V' + 0.4 V' - 40,000) = 119,200, i.e. V' = 118,808 / 0.998.
    March: stocks -10%, bonds +5%: the value is (0.6 x 0.9 + 0.4 x 1.05) V' = 0.96 V'."""
    market = monthly({"2020-01-31": (0.20, 0.0), "2020-02-29": (0.10, 0.0), "2020-03-31": (-0.10, 0.05)})
    p = policy(bands={"rule": "absolute", "absolute": 0.05}, trigger={"mode": "threshold"},
               backtest={"rebalancer": "rule", "fractional": True})
    r = backtest(two_assets(), p, market)
    v = 118_808 / 0.998
    run = r.runs["policy"]
    assert run.values["value"].tolist() == pytest.approx([100_000, 112_000, v, 0.96 * v], rel=1e-12)
    assert run.events["date"].tolist() == [pd.Timestamp("2020-02-29")]
    assert run.events["cost"].iloc[0] == pytest.approx(0.01 * (39_200 - 0.2 * v), rel=1e-12)
    assert run.values.loc["2020-02-29", "before_eq"] == pytest.approx(79_200 / 119_200)
    assert run.values.loc["2020-02-29", "after_eq"] == pytest.approx(0.6)
    stats = r.stats.loc["policy"]
    assert stats["final_value"] == pytest.approx(0.96 * v)
    assert stats["ann_return"] == pytest.approx((0.96 * v / 100_000) ** 4 - 1)
    returns = np.array([0.12, v / 112_000 - 1, -0.04])
    assert stats["ann_vol"] == pytest.approx(returns.std(ddof=1) * math.sqrt(12))
    assert stats["max_drawdown"] == pytest.approx(-0.04)
    assert stats["turnover"] == pytest.approx((79_200 - 0.6 * v + 0.4 * v - 40_000) / (2 * 119_200) / 0.25)


def _numpy_rule(R: np.ndarray, rc: np.ndarray, w: np.ndarray, c: np.ndarray, h0: np.ndarray, cash0: float,
                decide) -> tuple[list[int], float]:
    """The mechanical rule in plain numpy: holdings drift with returns; on a decision the
    post-cost value solves V' + sum c |w V' - h| = V by bisection (independent of the engine's
    piecewise-linear solve), and holdings become w V', cash (1 - sum w) V'."""
    h, cash, events = h0.astype(float), float(cash0), []
    for t in range(len(R)):
        h = h * (1 + R[t])
        cash = cash * (1 + rc[t])
        total = h.sum() + cash
        if t < len(R) - 1 and decide(t, h / total, cash / total):
            lo, hi = 0.0, total
            for _ in range(200):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if mid + (c * np.abs(w * mid - h)).sum() < total else (lo, mid)
            v = (lo + hi) / 2
            if np.abs(w * v - h).sum() > 1e-9 * total:
                events.append(t)
            h, cash = w * v, (1 - w.sum()) * v
    return events, h.sum() + cash


@pytest.mark.parametrize("mode", ["calendar", "threshold"])
def test_calendar_and_threshold_rules_match_an_independent_numpy_version(mode):
    case = case_path("us_stocks_bonds_monthly")
    _, p = load_case(case)
    market = load_market(case).window(end="1956-06-30")
    securities = [{"security_id": "US_STOCKS", "asset_class": "us_equity", "price": 100.0, "half_spread": 0.0005},
                  {"security_id": "US_BONDS", "asset_class": "bonds", "price": 100.0, "half_spread": 0.0005}]
    h = household(securities, [{"account_id": "ira", "type": "tax_deferred", "cash": 25_000.0}],
                  [{"account_id": "ira", "security_id": "US_STOCKS", "quantity": 4000.0},
                   {"account_id": "ira", "security_id": "US_BONDS", "quantity": 3000.0}],
                  [{"asset_class": "us_equity", "weight": 0.60}, {"asset_class": "bonds", "weight": 0.38},
                   {"asset_class": "cash", "weight": 0.02}])
    p = p.replace(trigger={"mode": mode, "frequency": "quarterly"}, bands={"rule": "5/25"},
                  backtest={"rebalancer": "rule", "fractional": True})
    r = backtest(h, p, market)
    R = market.returns[["US_STOCKS", "US_BONDS"]].to_numpy()
    rc = market.returns["cash"].to_numpy()
    w = np.array([0.60, 0.38])
    c = np.array([0.0005, 0.0005])
    lo, hi = np.array([0.55, 0.33, 0.015]), np.array([0.65, 0.43, 0.025])
    quarter_ends = set(np.flatnonzero(market.dates.month.isin([3, 6, 9, 12])))
    if mode == "calendar":
        def decide(t, x, cash):
            return t in quarter_ends
    else:
        def decide(t, x, cash):
            y = np.r_[x, cash]
            return bool(((y < lo - 1e-12) | (y > hi + 1e-12)).any())
    events, final = _numpy_rule(R, rc, w, c, np.array([4000.0, 3000.0]) * 100, 25_000.0, decide)
    run = r.runs["policy"]
    assert [market.dates.get_loc(d) for d in run.events["date"]] == events
    assert run.stats["final_value"] == pytest.approx(final, rel=1e-9)


def test_the_optimizer_trades_as_the_rule_without_costs_taxes_or_bands():
    """Both go to 60/40 at every month end; they differ only in how they round to whole shares
    (the rule rounds down buys and up sales; the optimizer rounds to the nearest share and
    repairs cash), so the events and sides agree and the values to a few dollars."""
    market = monthly({"2020-01-31": (0.20, 0.0), "2020-02-29": (0.10, -0.02), "2020-03-31": (-0.10, 0.05),
                      "2020-04-30": (0.03, 0.01)})
    h = two_assets(cost=0.0)
    r = backtest(h, {"rule": policy(bands={"rule": "none"}, backtest={"rebalancer": "rule"}),
                     "optimizer": policy(bands={"rule": "none"})}, market)
    a, b = r.runs["rule"], r.runs["optimizer"]
    assert a.events["date"].tolist() == b.events["date"].tolist()
    assert a.trades[["date", "security_id", "side"]].values.tolist() == \
        b.trades[["date", "security_id", "side"]].values.tolist()
    assert np.abs(a.trades["quantity"].to_numpy(float) - b.trades["quantity"].to_numpy(float)).max() <= 2
    assert a.stats["final_value"] == pytest.approx(b.stats["final_value"], rel=1e-3)
    # The optimizer's after-trade weights are 60/40 to a share, like the rule's.
    assert b.values["after_eq"].iloc[1:-1].to_numpy() == pytest.approx(0.6, abs=2e-3)


def test_the_cli_writes_the_comparison_and_one_directory_per_policy(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    (tmp_path / "q.toml").write_text('[trigger]\nmode = "calendar"\nfrequency = "annual"\n'
                                     '[tax]\nas_of = 1926-06-30\n')
    (tmp_path / "r.toml").write_text('[trigger]\nmode = "calendar"\nfrequency = "annual"\n'
                                     '[backtest]\nrebalancer = "rule"\n[tax]\nas_of = 1926-06-30\n')
    out = tmp_path / "out"
    code = main(["backtest", "us_stocks_bonds_monthly", "--out", str(out), "--end", "1931-06-30",
                 "--policy", f"annual={tmp_path / 'q.toml'}", "--policy", f"rule annual={tmp_path / 'r.toml'}"])
    assert code == 0
    comparison = pd.read_csv(out / "comparison.csv")
    assert comparison["policy"].tolist() == ["annual", "rule annual"]
    assert comparison["events"].tolist() == [5, 5]  # 1926 to 1930 year ends; none on the last date
    for d in ("annual", "rule_annual"):
        values = pd.read_csv(out / d / "values.csv")
        assert len(values) == 61 and values["date"].iloc[0] == "1926-06-30"
        assert {"before_us_equity", "after_bonds"} <= set(values.columns)
        events = pd.read_csv(out / d / "events.csv")
        assert events["reason"].str.startswith("annual check date (calendar)").all()
        assert set(pd.read_json(out / d / "summary.json", typ="series").index) >= {"final_value", "after_tax_value"}
    for png in ("values.png", "drift.png", "costs_taxes.png"):
        assert (out / png).stat().st_size > 10_000
    assert "rule annual" in capsys.readouterr().out
    assert main(["backtest", "example", "--out", str(out)]) == 2  # no market data


def _taxable_two_assets():
    lots = [{"account_id": "a", "security_id": "EQ", "quantity": 600.0, "lot_id": "eq", "cost_basis": 100.0,
             "acquired": "2015-01-02"},
            {"account_id": "a", "security_id": "BD", "quantity": 400.0, "lot_id": "bd", "cost_basis": 100.0,
             "acquired": "2015-01-02"}]
    return two_assets(cost=0.0, kind="taxable", lots=lots)


@pytest.mark.parametrize("payment, paid_on", [("annual", "2021-01-31"), ("at_sale", "2020-01-31")])
def test_a_year_s_tax_is_paid_the_next_january_or_at_the_sale(payment, paid_on):
    """January 2020: stocks +50% -> $90,000 / $40,000; back to 60/40 sells 80 shares at $150 of a
    2015 lot (basis $100): a long-term gain of $4,000, taxed at 20% = $800. Annual: paid from the
    taxable account on the first date of 2021; at_sale: at once."""
    dates = pd.date_range("2020-01-31", periods=15, freq="ME")
    market = monthly({str(d.date()): ((0.5 if i == 0 else 0.0), 0.0) for i, d in enumerate(dates)})
    p = policy(bands={"rule": "none"}, trigger={"mode": "calendar", "frequency": "monthly"},
               backtest={"rebalancer": "rule", "fractional": True, "tax_payment": payment})
    run = backtest(_taxable_two_assets(), p, market).runs["policy"]
    first = run.trades[run.trades["date"] == pd.Timestamp("2020-01-31")]
    assert first[["security_id", "side", "quantity"]].values.tolist() == [["EQ", "sell", 80.0], ["BD", "buy", 120.0]]
    paid = run.values["tax_paid"]
    assert paid[paid_on] == pytest.approx(800.0)
    assert run.stats["long_term_gains"] >= 4_000.0
    if payment == "annual":  # once: funding it in 2021 realizes 2021 gains, due after the data ends
        assert paid[paid != 0].index.tolist() == [pd.Timestamp(paid_on)]
    else:  # the $800 came from cash; February sells 60% of it as stock ($480 at $150, a third
        # of it gain): 0.2 x 160 = $32 of tax on the tax, and so on
        assert paid["2020-02-29"] == pytest.approx(0.2 * 0.6 * 800 / 150 * 50)


def test_costs_go_into_a_buy_s_basis_and_out_of_a_sale_s_gain():
    """January: stocks +50%, $130,000 back to 60/40 with 1% costs: V' = 129,500 / 0.998. EQ sells
    90,000 - 0.6 V' at $150 (basis $100): a long-term gain of a third of that, less its 1% cost;
    BD buys 0.4 V' - 40,000 at $100, a new lot of basis $101 a share."""
    market = monthly({"2020-01-31": (0.5, 0.0), "2020-02-29": (0.0, 0.0), "2020-03-31": (0.0, 0.0)})
    lots = [{**lot, "quantity": q} for lot, q in zip(_taxable_two_assets().holdings.to_dict("records"), (600.0, 400.0),
                                                      strict=True)]
    h = two_assets(cost=0.01, kind="taxable", lots=lots)
    p = policy(bands={"rule": "absolute", "absolute": 0.05}, trigger={"mode": "threshold"},
               backtest={"rebalancer": "rule", "fractional": True})
    run = backtest(h, p, market).runs["policy"]
    v = 129_500 / 0.998
    sold = 90_000 - 0.6 * v
    assert run.stats["long_term_gains"] == pytest.approx(sold / 3 - 0.01 * sold, rel=1e-9)
    new = run.holdings[run.holdings["acquired"] == pd.Timestamp("2020-01-31").date()]
    assert new[["security_id", "quantity", "cost_basis"]].values.tolist() == [
        ["BD", pytest.approx((0.4 * v - 40_000) / 100), pytest.approx(101.0)]]


@pytest.mark.parametrize("ytd, tax, carry", [
    ((5_000.0, 1_000.0), 0.37 * 5_000 + 0.2 * 1_000, (0.0, 0.0)),
    ((-5_000.0, 2_000.0), 0.0, (-3_000.0, 0.0)),  # a net short-term loss stays short term
    ((3_000.0, -8_000.0), 0.0, (0.0, -5_000.0)),
    ((-1_000.0, -2_000.0), 0.0, (-1_000.0, -2_000.0)),
    ((-1_000.0, 4_000.0), 0.2 * 3_000, (0.0, 0.0)),
])
def test_a_year_closes_with_its_exact_tax_and_carries_a_net_loss_forward(ytd, tax, carry):
    from cvxrebalance.scenarios.backtests import _close_year

    due, forward = _close_year(np.array(ytd), policy())
    assert due == pytest.approx(tax)
    assert forward.tolist() == list(carry)


@pytest.mark.parametrize("jump, term", [("2020-12-31", "short"), ("2021-02-28", "long")])
def test_a_lot_the_backtest_buys_turns_long_term_after_a_year(jump, term):
    """$100,000 of cash is invested on 2020-01-31 (600 EQ, 400 BD at $100: new lots of that
    date). Stocks +50% on the jump date; back to 60/40 sells 80 EQ at $150, a $4,000 gain: short
    term eleven months after the purchase, long term thirteen months after."""
    sec = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0},
           {"security_id": "BD", "asset_class": "fi", "price": 100.0}]
    h = household(sec, [{"account_id": "a", "type": "taxable", "cash": 100_000.0}], NO_HOLDINGS,
                  [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}])
    dates = pd.date_range("2020-01-31", periods=15, freq="ME")
    market = monthly({str(d.date()): (0.5 if str(d.date()) == jump else 0.0, 0.0) for d in dates})
    p = policy(bands={"rule": "none"}, trigger={"mode": "calendar", "frequency": "monthly"},
               backtest={"rebalancer": "rule", "fractional": True},
               tax={"short_term_rate": 0.0, "long_term_rate": 0.0})  # no tax payment to fund in 2021
    run = backtest(h, p, market).runs["policy"]
    assert run.trades[run.trades["date"] == pd.Timestamp("2020-01-31")]["quantity"].tolist() == [600.0, 400.0]
    sale = run.trades[run.trades["side"] == "sell"]
    assert sale[["date", "security_id", "quantity"]].values.tolist() == [[pd.Timestamp(jump), "EQ", 80.0]]
    gains = {"short": run.stats["short_term_gains"], "long": run.stats["long_term_gains"]}
    assert gains[term] == pytest.approx(4_000.0) and gains[{"short": "long", "long": "short"}[term]] == 0.0


def test_the_backtest_s_own_purchase_blocks_a_loss_sale_for_thirty_days():
    """Day 1 (2020-01-02) the optimizer invests $100,000: EQ is the class's first rank. EQ and
    its substitute EQ2 fall 20% on 2020-01-09, so the new EQ lot stands at a loss that harvest
    mode wants to bank by swapping into EQ2; the purchase of 2020-01-02 makes a loss sale a wash
    sale until 30 days have passed, so the first sale of EQ comes after 2020-02-01."""
    sec = [{"security_id": "EQ", "asset_class": "eq", "price": 100.0, "half_spread": 0.0001},
           {"security_id": "EQ2", "asset_class": "eq", "price": 100.0, "half_spread": 0.0001},
           {"security_id": "BD", "asset_class": "fi", "price": 100.0, "half_spread": 0.0001}]
    h = household(sec, [{"account_id": "a", "type": "taxable", "cash": 100_000.0}], NO_HOLDINGS,
                  [{"asset_class": "eq", "weight": 0.6}, {"asset_class": "fi", "weight": 0.4}])
    days = pd.bdate_range("2020-01-02", periods=60)
    frame = pd.DataFrame({"EQ": 0.0, "EQ2": 0.0, "BD": 0.0}, index=days)
    frame.loc["2020-01-09", ["EQ", "EQ2"]] = -0.2
    market = Market.from_returns(frame)
    p = policy(bands={"rule": "none"}, tax={"harvest": True, "as_of": "2020-01-02"})
    run = backtest(h, p, market).runs["policy"]
    bought = run.trades[(run.trades["side"] == "buy") & (run.trades["security_id"] == "EQ")]
    assert bought["date"].min() == days[0]
    sold = run.trades[(run.trades["side"] == "sell") & (run.trades["security_id"] == "EQ")]
    assert len(sold) and sold["date"].min() > pd.Timestamp("2020-02-01")
    assert run.stats["short_term_gains"] < 0  # the loss was banked once the window passed


def test_a_case_s_flows_csv_is_read_and_its_bad_cells_named(tmp_path):
    import shutil

    from cvxrebalance.optimizer.apps.cli import main

    case = tmp_path / "case"
    shutil.copytree(case_path("us_stocks_bonds_monthly"), case)
    (case / "flows.csv").write_text("date,account_id,amount\n1926-09-30,taxable,50000\n")
    assert main(["backtest", str(case), "--out", str(tmp_path / "o"), "--end", "1926-12-31", "--no-progress"]) == 0
    values = pd.read_csv(tmp_path / "o" / "policy" / "values.csv", index_col="date")
    assert values.loc["1926-09-30", "flow"] == 50_000.0
    (case / "flows.csv").write_text("date,account_id,amount\n1926-09-30,taxable,lots\n1926-10-31,nobody,1\n")
    with pytest.raises(ValidationError) as err:
        h, p = load_case(case)
        backtest(h, p, load_market(case).window(end="1926-12-31"),
                 flows=pd.read_csv(case / "flows.csv", dtype=str))
    assert {(q.file, q.row, q.field) for q in err.value.problems} == {("flows.csv", 2, "amount"),
                                                                      ("flows.csv", 3, "account_id")}


def test_a_flow_on_the_last_date_is_refused():
    market = monthly({"2020-01-31": (0.0, 0.0), "2020-02-29": (0.0, 0.0)})
    flows = pd.DataFrame({"date": ["2020-02-29"], "account_id": ["a"], "amount": [-1e9]})
    with pytest.raises(ValidationError, match="last date"):
        backtest(two_assets(), policy(), market, flows=flows)


@pytest.mark.parametrize("names, message", [({}, "no policy"), ({"..": None}, "not a directory name"),
                                            ({"a/b": None, "a_b": None}, "same directory")])
def test_policy_names_must_be_directories_of_their_own(names, message):
    market = monthly({"2020-01-31": (0.0, 0.0), "2020-02-29": (0.0, 0.0)})
    with pytest.raises(ValidationError, match=message):
        backtest(two_assets(), {n: policy() for n in names}, market)


@pytest.mark.parametrize("start", ["", "NaT", "1950-01-31T00:00+05:00", "1950-01-31T12:00"])
def test_a_window_edge_that_is_not_a_date_is_named(start):
    with pytest.raises(ValueError, match="start"):
        load_market(case_path("us_stocks_bonds_monthly")).window(start=start)


def test_the_cli_refuses_a_missing_policy_file_and_a_name_given_twice(tmp_path):
    from cvxrebalance.optimizer.apps.cli import main

    out = str(tmp_path / "o")
    assert main(["backtest", "us_stocks_bonds_monthly", "--out", out, "--policy", "x=/no/such.toml"]) == 2
    (tmp_path / "p.toml").write_text("")
    p = str(tmp_path / "p.toml")
    assert main(["backtest", "us_stocks_bonds_monthly", "--out", out, "--policy", f"x={p}", "--policy", f"x={p}"]) == 2


def test_a_path_in_the_way_fails_before_anything_is_replaced(tmp_path):
    """A plain file where a policy's directory goes: the write fails first, and the earlier
    comparison.csv is untouched (it is written last)."""
    market = monthly({"2020-01-31": (0.1, 0.0), "2020-02-29": (0.0, 0.0)})
    r = backtest(two_assets(), {"a": policy(), "b": policy()}, market)
    out = tmp_path / "o"
    out.mkdir()
    (out / "comparison.csv").write_text("earlier\n")
    (out / "b").write_text("in the way")
    with pytest.raises(OSError):
        r.write(out)
    assert (out / "comparison.csv").read_text() == "earlier\n"
    assert not (out / "a" / "values.csv").exists()
    assert not list(out.rglob(".*.tmp"))


def test_the_readme_s_policies_are_files_of_the_case(tmp_path, monkeypatch, capsys):
    """`--policy quarterly=quarterly.toml` as the README writes it, from any directory: a relative
    file not found there is the case's (us_stocks_bonds_monthly ships both)."""
    from cvxrebalance.optimizer.apps.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["backtest", "us_stocks_bonds_monthly", "--out", "bt", "--end", "1928-06-30", "--no-progress",
                 "--policy", "quarterly=quarterly.toml", "--policy", "threshold=threshold.toml"])
    assert code == 0
    comparison = pd.read_csv(tmp_path / "bt" / "comparison.csv").set_index("policy")
    assert comparison.loc["quarterly", "events"] == 7  # 1926-09 to 1928-03; none on the last date
    assert main(["backtest", "us_stocks_bonds_monthly", "--out", "bt", "--policy", "x=nope.toml"]) == 2
    assert "here or in" in capsys.readouterr().err


def test_the_rule_rebalancer_refuses_a_household_with_restrictions_before_it_starts():
    """The textbook rule trades every account to target: it cannot honor a client's no_buy or
    no_hold. It used to run and break the rule (or end in a check error mid-history)."""
    base = two_assets()
    rules = pd.DataFrame({"security_id": ["BD"], "rule": ["no_buy"]})
    restricted = base.with_accounts(base.accounts, base.holdings, restrictions=rules)
    market = monthly({"2020-01-31": (0.20, 0.0), "2020-02-29": (0.10, 0.0)})
    rule = policy(trigger={"mode": "threshold"}, backtest={"rebalancer": "rule", "fractional": True})
    with pytest.raises(ValidationError) as err:
        backtest(restricted, {"optimizer": policy(), "mechanical": rule}, market)
    [problem] = err.value.problems
    assert problem.field == "mechanical" and "restrictions" in problem.message
    backtest(restricted, policy(trigger={"mode": "threshold"}), market)  # the optimizer honors them
