"""Stale illiquid valuations rolled forward by a proxy (optimizer/domain/valuation.py): the
adjusted price, its defaults, and every input problem named by file, line and field.

The household is ``builders.lagged_fund_household``: EQ (securities.csv line 2, 108 now), BD (3),
the illiquid fund PE (4; 1,000 shares reported at 1,000) and PE2 (5, illiquid, not held).
"""

from __future__ import annotations

import shutil

import pytest
from builders import LAGGED, lagged_fund_household, policy

from cvxrebalance import Problem, ValidationError, load_case
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.scenarios import case_path


def test_hand_checked_roll_forward():
    # Reported 1,000,000 on 2026-09-30; EQ went 100 -> 108 (+8%); beta 1.2:
    # 1,000,000 x (1 + 1.2 x 0.08) = 1,096,000, and the household 9,000,000 + 1,096,000.
    h = lagged_fund_household(**LAGGED)
    v = h.valuations
    assert v.reported[2] == 1000.0
    assert v.proxy_return[2] == pytest.approx(0.08, abs=1e-15)
    assert v.price[2] == pytest.approx(1096.0, abs=1e-9)
    assert h.value == pytest.approx(10_096_000.0, abs=1e-6)
    # Only the fund moves: EQ, BD and PE2 keep their prices.
    assert v.price[[0, 1, 3]].tolist() == [108.0, 100.0, 500.0]
    data = prepare(h, policy())
    assert data.price[2] == pytest.approx(1096.0, abs=1e-9)
    assert abs(data.V0 - 10_096_000.0) < 1e-6
    # Class weights over the adjusted value: private equity 1,096,000 / 10,096,000.
    assert (data.X.T @ data.h0.sum(0))[data.classes.index("private_equity")] == pytest.approx(1_096_000 / 10_096_000)


def test_beta_defaults_to_one():
    h = lagged_fund_household(**{**LAGGED, "proxy_beta": None})
    assert h.valuations.beta[2] == 1.0
    assert h.value == pytest.approx(10_080_000.0, abs=1e-6)  # 1,000,000 x 1.08


def test_an_asset_class_proxy_takes_its_return_as_given():
    # The equity class's return since the valuation date is given (a class has no price): the
    # same 8% and beta 1.2 give the same 1,096,000.
    h = lagged_fund_household(valuation_date="2026-09-30", proxy="equity", proxy_return=0.08, proxy_beta=1.2)
    assert h.valuations.price[2] == pytest.approx(1096.0, abs=1e-9)


def test_a_valuation_date_without_a_proxy_is_reported_not_adjusted():
    h = lagged_fund_household(valuation_date="2026-09-30")
    assert h.valuations.dated.tolist() == [False, False, True, False]
    assert h.valuations.price.tolist() == h.valuations.reported.tolist()
    assert h.value == 10_000_000.0


def test_without_valuation_columns_prices_are_as_reported():
    h = lagged_fund_household()
    assert not h.valuations.dated.any()
    assert h.valuations.price.tolist() == [108.0, 100.0, 1000.0, 500.0]
    assert h.value == 10_000_000.0


# Each bad input: the fund's (line 4) or EQ's (line 2) valuation columns, and the one problem
# it gives (file, line, field, a fragment of the message).
BAD = [
    pytest.param("EQ", {"valuation_date": "2026-09-30"}, 2, "valuation_date", "only an illiquid security",
                 id="valuation-on-a-liquid-security"),
    pytest.param("PE", {**LAGGED, "valuation_date": None}, 4, "valuation_date", "needs the date of the reported price",
                 id="proxy-without-date"),
    pytest.param("PE", {**LAGGED, "proxy": "SPX"}, 4, "proxy", "unknown proxy 'SPX'", id="unknown-proxy"),
    pytest.param("PE", {**LAGGED, "proxy": "PE2"}, 4, "proxy", "proxy 'PE2' is illiquid", id="illiquid-proxy"),
    pytest.param("PE", {**LAGGED, "proxy": "PE"}, 4, "proxy", "proxy 'PE' is illiquid", id="itself-as-proxy"),
    pytest.param("PE", {**LAGGED, "proxy_price": None}, 4, "proxy_price", "needs its price on valuation_date",
                 id="security-proxy-without-price"),
    pytest.param("PE", {**LAGGED, "proxy_return": 0.08}, 4, "proxy_return", "is a security",
                 id="security-proxy-with-return"),
    pytest.param("PE", {**LAGGED, "proxy": "equity", "proxy_price": None}, 4, "proxy_return",
                 "needs proxy_return", id="class-proxy-without-return"),
    pytest.param("PE", {**LAGGED, "proxy": "equity", "proxy_return": 0.08}, 4, "proxy_price",
                 "is an asset class, which has no price", id="class-proxy-with-price"),
    pytest.param("PE", {**LAGGED, "proxy": "private_equity", "proxy_price": None, "proxy_return": 0.08}, 4, "proxy",
                 "holds no liquid security", id="illiquid-class-proxy"),
    pytest.param("PE", {"valuation_date": "2026-09-30", "proxy_beta": 1.2}, 4, "proxy_beta", "needs a proxy",
                 id="beta-without-proxy"),
    pytest.param("PE", {**LAGGED, "proxy_price": -100.0}, 4, "proxy_price", "must be > 0", id="negative-proxy-price"),
    pytest.param("PE", {**LAGGED, "proxy": "equity", "proxy_price": None, "proxy_return": -1.0}, 4, "proxy_return",
                 "must be > -1", id="return-of-minus-100pct"),
    pytest.param("PE", {**LAGGED, "proxy_beta": "high"}, 4, "proxy_beta", "not a number", id="beta-not-a-number"),
    pytest.param("PE", {**LAGGED, "valuation_date": "30/09/2026"}, 4, "valuation_date", "not a date",
                 id="date-not-iso"),
    # EQ 200 -> 108 is -46%; beta 3 takes the fund below zero: 1,000 x (1 + 3 x -0.46) = -380.
    pytest.param("PE", {**LAGGED, "proxy_price": 200.0, "proxy_beta": 3.0}, 4, "proxy_beta",
                 "adjusted price is not positive", id="adjusted-price-not-positive"),
]


@pytest.mark.parametrize(("security", "columns", "line", "field", "message"), BAD)
def test_each_bad_valuation_is_one_problem_naming_file_line_and_field(security, columns, line, field, message):
    with pytest.raises(ValidationError) as info:
        lagged_fund_household(cells={security: columns})
    [problem] = info.value.problems
    assert (problem.file, problem.row, problem.field) == ("securities.csv", line, field)
    assert message in problem.message


def test_a_valuation_after_the_as_of_date_is_an_error():
    h = lagged_fund_household(**{**LAGGED, "valuation_date": "2026-11-21"})  # as_of is 2026-11-20
    with pytest.raises(ValidationError) as info:
        prepare(h, policy())
    assert info.value.problems == [Problem("securities.csv", 4, "valuation_date",
                                           "valued 2026-11-21, after the as-of date 2026-11-20")]
    prepare(h, policy(tax={"as_of": "2026-11-21"}))  # the same day is fine


def test_the_bundled_endowment_file_names_its_line(tmp_path):
    # Through the CSV reader: VENTURE_FUND_IV is line 10 of the endowment's securities.csv.
    case = tmp_path / "endowment"
    shutil.copytree(case_path("endowment"), case)
    path = case / "securities.csv"
    text = path.read_text().splitlines()
    assert text[9].startswith("VENTURE_FUND_IV,")
    text[9] = text[9].replace("US_EQUITY_INDEX", "US_EQUITY_INDX")
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(ValidationError) as info:
        load_case(case)
    assert [(p.file, p.row, p.field) for p in info.value.problems] == [("securities.csv", 10, "proxy")]
