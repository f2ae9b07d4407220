"""The HTML proposal (RebalanceResult.to_html): sections, escaping, no network, and the page as a
real headless browser renders it."""

from __future__ import annotations

import pytest
from headless import Elements, dump_dom, needs_browser, png_is_a_page, screenshot

from cvxrebalance.optimizer.apps.cli import _case_dir
from cvxrebalance.optimizer.pipeline.html_report import render_html
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
from cvxrebalance.scenarios.tactical import load_tactical_case

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def results():
    return {case: rebalance(*load_tactical_case(_case_dir(case))) for case in ("overlay", "tax_aware")}


def test_every_section_is_there(results):
    page = results["overlay"].to_html()
    for ident in ("header", "drift-chart", "drift-table", "trades-table", "tax-table", "location-chart",
                  "location-table", "overlay-table", "cash-only-table", "checks"):
        assert f'id="{ident}"' in page, ident
    assert page.count("<svg") == 2  # drift and location (no lot sold: no tax chart)
    taxed = results["tax_aware"].to_html()
    assert 'id="lots-table"' in taxed and 'id="tax-chart"' in taxed and 'id="overlay-table"' not in taxed
    assert "As of 20" in taxed


def test_hostile_ids_are_escaped_and_nothing_is_fetched(results):
    r = results["tax_aware"]
    trades, lots = r.trades.copy(), r.lots.copy()
    trades.loc[0, "security_id"] = HOSTILE
    trades.loc[0, "reason_detail"] = '"><img src=x onerror=alert(1)>'
    lots.loc[0, "lot_id"] = HOSTILE
    words = [{**w, "words": HOSTILE} for w in r.summary["trade_words"]]
    summary = {**r.summary, "household": HOSTILE, "notes": [HOSTILE], "trade_words": words,
               "trigger": {**r.summary["trigger"], "words": [HOSTILE], "reasons": [HOSTILE]},
               "restrictions": [{"number": 1, "words": HOSTILE, "rule": "no_hold", "detail": HOSTILE}],
               "location": {"taxable": {HOSTILE: {"before": 1.0, "after": 2.0}}}}
    page = render_html(summary, trades, lots)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    # title, header and its detail, restriction and its detail, trades, lot, location, note
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 10
    # no network: no script, stylesheet or image is loaded from anywhere, and the CSP forbids it
    dom = Elements(page)
    assert not {"script", "img", "link", "iframe", "object", "embed"} & set(dom.tags)
    assert not [a for a in dom.attrs if a[0] in ("src", "href") or a[0].startswith("on")]
    assert "default-src 'none'" in page and "url(http" not in page and "@import" not in page


def test_the_charts_are_real_svg_plots(results):
    page = results["overlay"].to_html()
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count("<path") > 10  # bars, ticks, band and target marks
    assert "bonds" in svg and "us_equity" in svg  # the classes label the axis, as text


@needs_browser
def test_the_browser_renders_charts_and_tables(results, tmp_path):
    for case, r in results.items():
        page = tmp_path / f"{case}.html"
        page.write_text(r.to_html())
        dom = Elements(dump_dom(page))
        assert dom.tags.get("svg", 0) >= 2, case
        assert {"drift-chart", "trades-table", "location-table", "checks"} <= dom.ids
        assert len(dom.rows["trades-table"]) == len(r.trades)
        assert [row[0] for row in dom.rows["drift-table"]] == list(r.asset_classes.index)
        assert len(dom.rows.get("lots-table", [])) == len(r.lots)
        if case == "overlay":
            assert len(dom.rows["overlay-table"]) == len(r.futures)
            assert [row[0] for row in dom.rows["cash-only-table"]] == ["with_overlay", "cash_only"]
        png_is_a_page(screenshot(page, tmp_path / f"{case}.png"))
