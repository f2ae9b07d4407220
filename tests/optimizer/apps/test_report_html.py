"""`cvxrebalance report OUT_DIR`: a result directory's report.html (the same page as
``to_html()``), and a batch's per-household reports and dashboard, rendered in a headless browser."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
from headless import Elements, dump_dom, needs_browser, png_is_a_page, screenshot

from cvxrebalance.optimizer.apps.bench import write_batch_input
from cvxrebalance.optimizer.apps.cli import _case_dir, main
from cvxrebalance.optimizer.apps.executors import run_batch
from cvxrebalance.optimizer.apps.report_html import dashboard_html
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
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
