"""`cvxrebalance report OUT_DIR`: a result directory's report.html (the same page as
``to_html()``), and a batch's per-household reports and dashboard, rendered in a headless browser."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from headless import Elements, dump_dom, needs_browser, painted, png_is_a_page, screenshot

from cvxrebalance.optimizer.apps.bench import write_batch_input
from cvxrebalance.optimizer.apps.cli import _case_dir, main
from cvxrebalance.optimizer.apps.executors import run_batch
from cvxrebalance.optimizer.apps.report_html import dashboard_html, report
from cvxrebalance.optimizer.pipeline.reasons import REASON_WORDS
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
from cvxrebalance.scenarios import book_path
from cvxrebalance.scenarios.synthetic import synthetic_universe
from cvxrebalance.scenarios.tactical import load_tactical_case

HOSTILE = '<script>alert("x")</script>'


def test_report_of_a_result_directory_is_the_result_s_own_page(tmp_path, capsys):
    result = rebalance(*load_tactical_case(_case_dir("overlay")))
    result.write(tmp_path / "out")
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "report.html" in capsys.readouterr().out
    assert (tmp_path / "out" / "report.html").read_text() == result.to_html()


def test_report_of_something_else_is_a_named_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a result directory" in capsys.readouterr().err


def _batch(tmp_path):
    in_dir = tmp_path / "in"
    write_batch_input(in_dir, synthetic_universe(20, 0, seed=3), 5, 2, 30)
    hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
    hol.loc[hol["household_id"] == "h00001", "security_id"] = "NOPE"  # fails: unknown security
    hol.to_csv(in_dir / "holdings.csv", index=False)
    out = tmp_path / "out"
    run_batch(in_dir, out, workers=1, progress=False)
    assert main(["report", str(out)]) == 0
    return out


@needs_browser
def test_batch_dashboard_and_household_reports_render(tmp_path):
    out = _batch(tmp_path)
    reports = sorted(out.glob("households/*/report.html"))
    assert len(reports) == 4
    dom = Elements(dump_dom(out / "dashboard.html"))
    assert dom.tags.get("svg", 0) == 2 and {"scatter-chart", "drift-bars"} <= dom.ids
    assert sorted(r[0] for r in dom.rows["households-table"]) == ["h00000", "h00002", "h00003", "h00004"]
    assert [r[0] for r in dom.rows["errors-table"]] == ["h00001"]
    links = [v for k, v in dom.attrs if k == "href"]
    assert sorted(links) == sorted(f"households/{p.parent.name}/report.html" for p in reports)
    assert all((out / link).is_file() for link in links)
    png_is_a_page(screenshot(out / "dashboard.html", tmp_path / "dashboard.png", "1200,1800"))
    page = Elements(dump_dom(reports[0]))
    assert page.tags.get("svg", 0) >= 1 and "trades-table" in page.ids


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The advisor's book batch (the households that need a rebalance) with its reports."""
    out = tmp_path_factory.mktemp("book")
    run_batch(book_path("advisor"), out, workers=1, progress=False, only_needed=True)
    report(out)
    return out


def visible(page: str) -> str:
    """The text a client sees without opening anything: collapsed <details>, charts and styles
    left out, tags stripped."""
    for pattern in (r"<details.*?</details>", r"<svg.*?</svg>", r"<style>.*?</style>", r"<title>.*?</title>"):
        page = re.sub(pattern, " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_client_page_is_in_plain_words_and_keeps_the_technical_detail(book):
    jones = (book / "households" / "jones" / "report.html").read_text()
    smith = (book / "households" / "smith" / "report.html").read_text()
    for page in (jones, smith):
        seen = visible(page)
        for internal in ("restrictions.csv", "no_hold", "asset_class '", "reason_detail", "factor_bands",
                         "wash_sales", "part of the optimal trade list", "not trading would break"):
            assert internal not in seen, internal
        assert "All 15 independent checks of the proposal passed." in seen
        # ... and the advisor still has it, collapsed
        assert "<summary>Technical detail</summary>" in page and "factor_bands" in page
        assert "not trading would break restrictions" in page
    seen = visible(jones)
    assert "Restriction 1: no holdings tagged defense in any account" in seen
    assert "Why now: the client's restrictions require selling some holdings." in seen
    rows = {r[1]: r for r in Elements(jones).rows["trades-table"]}
    assert rows["NOC"][2] == "Sell" and rows["NOC"][-1] == (
        "Required by client restriction 1: no holdings tagged defense in any account")
    assert "restrictions.csv line 2" in jones  # the technical detail: jones's row of the book's file
    # Smith: the munis say why, the code and its meaning are in the detail and the legend.
    smith_dom = Elements(smith)
    rows = {(r[0], r[1]): r for r in smith_dom.rows["trades-table"]}
    assert rows[("brokerage (Taxable)", "MUB")][-1] == "Stands in for bonds in taxable accounts (client restriction 1)"
    detail = {(r[0], r[1]): r for r in smith_dom.rows["trades-detail-table"]}
    assert detail[("brokerage", "MUB")][3:] == [
        "substitute", "MUB stands in for bonds in taxable accounts (client rule: restrictions.csv line 3)"]
    legend = dict(smith_dom.rows["reason-legend"])
    assert legend["substitute"] == REASON_WORDS["substitute"] and "restriction" in legend
    # Her tracking error rises (munis are not in the model): the page says why.
    assert "It rises because the client's restrictions" in visible(smith)


def test_location_shows_each_asset_class_per_account_type(book):
    smith = Elements((book / "households" / "smith" / "report.html").read_text())
    rows = {(r[0], r[1]): r[2:] for r in smith.rows["location-table"]}
    # Her taxable bonds (BND) are sold and munis bought in their place; the IRA takes the rest.
    assert rows[("Taxable", "bonds")] == ["208,707.00", "98,440.00", "-110,267.00"]
    assert rows[("Tax-deferred", "bonds")] == ["112,365.00", "230,175.00", "117,810.00"]
    assert ("Tax-deferred", "us_equity") in rows and "muni_bonds" not in {k[1] for k in rows}
    assert "location-security-table" in smith.ids  # the securities stay, as detail
    summary = json.loads((book / "households" / "smith" / "summary.json").read_text())
    for kind, classes in summary["location"].items():
        value = sum(c["after"] for c in classes.values())
        assert value == pytest.approx(sum(a["value_after"] for a in summary["accounts"].values() if a["type"] == kind))


def test_a_household_without_trades_reads_so():
    """h022 has losses to harvest, which its threshold trigger does not act on (the scan leaves it
    out of --only-needed): rebalanced all the same, the header says why, in words, and names no
    value 'after the proposed trades'."""
    from cvxrebalance.optimizer.apps.batch import household_and_policy, read_batch
    from cvxrebalance.optimizer.pipeline.rebalance import rebalance

    batch = read_batch(book_path("advisor"))
    household, policy, _ = household_and_policy("h022", batch.households["h022"], batch.shared, batch.policy, {})
    page = visible(rebalance(household, policy).to_html())
    assert "No trades proposed: every asset class is inside its allowed range." in page
    assert "after the proposed trades" not in page and "trigger 'threshold'" not in page


def test_a_class_the_household_neither_targets_nor_holds_is_not_shown(book):
    jones = (book / "households" / "jones" / "report.html").read_text()
    summary = json.loads((book / "households" / "jones" / "summary.json").read_text())
    assert summary["asset_classes"]["muni_bonds"]["target"] == 0  # the book's shared targets list it at 0
    assert [r[0] for r in Elements(jones).rows["drift-table"]] == ["bonds", "intl_equity", "us_equity", "cash"]
    assert "muni_bonds" in jones and "muni_bonds" not in visible(jones)  # named in the detail


def test_the_dashboard_folds_long_errors_and_escapes_them():
    long = "ValidationError: " + "holdings.csv line 7 [security_id]: unknown security 'NOPE'; " * 20
    errors = pd.DataFrame({"household_id": [HOSTILE, "h2"], "error": ["ValidationError", "InfeasibilityError"],
                           "reason": [long + "\n" + HOSTILE, "short"]}).astype(object)
    page = dashboard_html(Path("out"), pd.DataFrame(columns=["household", "link", "te_before", "te_after", "trades",
                                                            "costs", "tax", "rebalanced", "checks"]), errors)
    assert "<script" not in page.lower()
    dom = Elements(page)
    cells = dom.rows["errors-table"]
    assert cells[0][0] == HOSTILE  # as text
    first, full = page.split('<td class="t fold">')[1].split("</td>")[0].split("<details>")
    assert len(html.unescape(re.sub(r"<[^>]+>", "", first)).strip()) <= 122  # first line, cut, and an ellipsis
    assert html.escape(long.rstrip(), quote=True) in full and "&lt;script&gt;" in full
    assert "short" in cells[1] and page.count("<details>") == 1


def test_large_share_counts_read_as_numbers():
    from cvxrebalance.optimizer.pipeline.html_report import render_html

    r = rebalance(*load_tactical_case(_case_dir("tax_aware")))
    trades = r.trades.copy()
    trades.loc[0, "quantity"] = 123456
    rows = Elements(render_html(r.summary, trades, r.lots)).rows["trades-table"]
    assert rows[0][3] == "123,456"  # not 1.235e+05


@needs_browser
def test_the_book_s_pages_render_in_the_browser(book, tmp_path):
    page = book / "households" / "smith" / "report.html"
    dom = Elements(dump_dom(page))
    assert len(dom.rows["trades-table"]) == len(dom.rows["trades-detail-table"]) == 8
    assert len(dom.rows["location-table"]) == 8  # 4 classes with cash x 2 account types
    assert dom.tags.get("details", 0) >= 5 and {"restrictions-list", "location-chart", "checks"} <= dom.ids
    png = screenshot(page, tmp_path / "smith.png", "1200,3200")
    png_is_a_page(png)
    # The charts as the browser painted them, not just their SVG in the DOM: the drift chart's
    # grey "before" and blue "after" bars and red targets, then (below it) the location chart's
    # orange tax-deferred bars.
    before, after, target, deferred = (painted(png, c) for c in ("#9e9e9e", "#1f77b4", "#d62728", "#ff7f0e"))
    assert before[0] > 5_000 and after[0] > 5_000 and target[0] > 100 and deferred[0] > 2_000
    assert after[1] < deferred[1]
    rows = Elements(dump_dom(book / "dashboard.html")).rows["households-table"]
    assert {"jones", "smith"} <= {r[0] for r in rows} and {r[1] for r in rows} <= {"yes", "no"}
