"""Custodian upload files from orders.csv by a trade_file.toml template: the two bundled examples
line by line, a hostile cell kept spreadsheet-safe, and bad templates named by key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from cvxrebalance import ValidationError
from cvxrebalance.optimizer.apps.trade_file import read_template, trade_file

EXAMPLES = Path(__file__).resolve().parents[3] / "scenarios" / "trade_files"
ORDERS = pd.DataFrame({
    "order_id": ["h1-0001", "h1-0002"], "household_id": ["h1", "h1"], "account_id": ["ira", "taxable"],
    "account_number": ["00417", "=cmd"],
    "security_id": ["VTI", "BND"], "side": ["sell", "buy"], "quantity": [12.0, 30.0], "price": [300.0, 74.125],
    "value": [3600.0, 2260.8125], "cost": [0.36, 0.23], "reason": ["drift", "drift"], "reason_detail": ["", ""]})
DAY = dt.date(2026, 11, 23)


def test_example_a_header_us_dates_letter_sides_whole_shares():
    text = trade_file(ORDERS, read_template(EXAMPLES / "example_a.toml"), DAY)
    assert text.splitlines() == [
        "Account Number,Action,Symbol,Quantity,Order Type,Trade Date,Client Reference",
        "00417,S,VTI,12,MKT,11/23/2026,h1-0001",  # the custodian's number, leading zeros kept
        "'=cmd,B,BND,30,MKT,11/23/2026,h1-0002"]


def test_example_b_no_header_pipes_compact_dates_crlf():
    text = trade_file(ORDERS.assign(quantity=[12.0, 30.5]), read_template(EXAMPLES / "example_b.toml"), DAY)
    assert text == ("20261123|h1-0001|00417|SELL|VTI|12.000|300.0000|DAY\r\n"
                    "20261123|h1-0002|'=cmd|BUY|BND|30.500|74.1250|DAY\r\n")


@pytest.mark.parametrize(("body", "key"), [
    ('[file]\nheader = "yes"\n[[columns]]\nname = "a"\nfield = "side"\n', "file.header"),
    ('[file]\ndelimiter = ";;"\n[[columns]]\nname = "a"\nfield = "side"\n', "file.delimiter"),
    ('[[columns]]\nname = "a"\nfield = "ticker"\n', "columns[1].field"),
    ('[[columns]]\nname = "a"\nfield = "side"\nvalue = "x"\n', "columns[1]"),
    ('[sides]\nhold = "H"\n[[columns]]\nname = "a"\nfield = "side"\n', "sides.hold"),
    ('[file]\nheader = true\n', "columns"),
    ('[layout]\n[[columns]]\nname = "a"\nvalue = "x"\n', "layout"),
    # A delimiter csv quotes with, or a line break: the file could not be read back.
    ('[file]\ndelimiter = "\\""\n[[columns]]\nname = "a"\nfield = "side"\n', "file.delimiter"),
    ('[file]\ndelimiter = "\\n"\n[[columns]]\nname = "a"\nfield = "side"\n', "file.delimiter"),
    ('[file]\ndelimiter = "\\r"\n[[columns]]\nname = "a"\nfield = "side"\n', "file.delimiter"),
])
def test_a_bad_template_is_named_by_its_key(tmp_path, body, key):
    path = tmp_path / "t.toml"
    path.write_text(body)
    with pytest.raises(ValidationError) as err:
        read_template(path)
    assert key in [p.field for p in err.value.problems]


def test_the_cli_writes_from_a_batch_out_dir(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    assert main(["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-11-23"]) == 0
    assert (tmp_path / "example_a.csv").read_text().splitlines()[1] == "00417,S,VTI,12,MKT,11/23/2026,h1-0001"
    assert main(["trade-file", str(tmp_path / "none"), "--template", "example_a"]) == 2
    assert main(["trade-file", str(tmp_path), "--template", str(tmp_path / "missing.toml")]) == 2


def test_an_orders_table_without_a_field_the_template_uses_is_named_not_a_traceback(tmp_path):
    template = read_template(EXAMPLES / "example_a.toml")
    with pytest.raises(ValidationError) as err:
        trade_file(ORDERS.drop(columns=["account_number", "side"]), template, DAY)
    assert {(p.file, p.field) for p in err.value.problems} == {("orders.csv", "account_number"),
                                                               ("orders.csv", "side")}
    with pytest.raises(ValidationError):
        trade_file(ORDERS.assign(side=["sell", "hold"]), template, DAY)  # no side code for "hold"


def test_the_cli_names_an_empty_orders_file_and_a_bad_date(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    (tmp_path / "orders.csv").write_text("")
    assert main(["trade-file", str(tmp_path), "--template", "example_a"]) == 2
    assert "orders.csv" in capsys.readouterr().err
    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    assert main(["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-13-01"]) == 2
    assert "--date" in capsys.readouterr().err


def test_an_order_without_a_custodian_account_number_is_named_not_a_blank_cell():
    template = read_template(EXAMPLES / "example_a.toml")
    with pytest.raises(ValidationError) as err:
        trade_file(ORDERS.assign(account_number=["00417", ""]), template, DAY)
    [problem] = err.value.problems
    assert (problem.file, problem.row, problem.field) == ("orders.csv", 3, "account_number")
    assert "taxable" in problem.message and "accounts.csv" in problem.message


def test_a_fractional_share_in_a_whole_share_layout_is_refused_not_rounded():
    """example_a writes whole shares: 30.5 used to become 30 silently, another trade than the order."""
    with pytest.raises(ValidationError) as err:
        trade_file(ORDERS.assign(quantity=[12.0, 30.5]), read_template(EXAMPLES / "example_a.toml"), DAY)
    [problem] = err.value.problems
    assert (problem.row, problem.field) == (3, "quantity") and "quantity_decimals = 0" in problem.message


@pytest.mark.parametrize(("today", "expected"), [
    (dt.date(2026, 11, 20), dt.date(2026, 11, 20)),  # a Friday: itself
    (dt.date(2026, 11, 21), dt.date(2026, 11, 23)),  # Saturday: the Monday after
    (dt.date(2026, 11, 22), dt.date(2026, 11, 23)),  # Sunday
    (dt.date(2026, 11, 23), dt.date(2026, 11, 23)),  # Monday
])
def test_the_default_trade_date_is_never_a_weekend(today, expected):
    from cvxrebalance.optimizer.apps.trade_file import next_trading_day

    assert next_trading_day(today) == expected


def test_the_cli_warns_of_a_weekend_trade_date_given(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    assert main(["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-11-21"]) == 0
    assert "warning: the trade date 2026-11-21 is a Saturday" in capsys.readouterr().err


def test_a_hand_edited_orders_file_is_named_by_line_and_field(tmp_path, capsys):
    """orders.csv edited by hand before the upload: a quantity that is not a number stopped the
    command with pandas' "Unable to parse string 'ten' at position 1" (no file, line or field),
    and a blank line shifted every line number after it."""
    from cvxrebalance.optimizer.apps.cli import main

    lines = ORDERS.assign(quantity=["12", "ten"]).to_csv(index=False).splitlines()
    (tmp_path / "orders.csv").write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")
    assert main(["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-11-23"]) == 2
    assert "orders.csv line 4 [quantity]: not a number: 'ten'" in capsys.readouterr().err
    assert not (tmp_path / "example_a.csv").exists()


@pytest.mark.parametrize(("column", "values"), [("quantity", [0.0, -30.0]), ("price", [300.0, -74.125]),
                                                ("value", [3600.0, -1.0])])
def test_an_order_with_no_or_a_negative_amount_is_named_not_written(column, values):
    """A zero or negative quantity (or price, or value) edited into orders.csv was written as it
    was: an order for nothing, or "'-30" in the custodian's quantity column."""
    template = {**read_template(EXAMPLES / "example_b.toml")}
    template["columns"] = [*template["columns"], {"name": "value", "field": "value"}]
    with pytest.raises(ValidationError) as err:
        trade_file(ORDERS.assign(**{column: values}), template, DAY)
    rows = [p.row for p in err.value.problems if p.field == column]
    assert rows == ([2, 3] if column == "quantity" else [3])
    assert all("must be" in p.message for p in err.value.problems)


def test_the_cli_counts_orders_not_lines(tmp_path, capsys):
    """A cell with a line break (quoted, as CSV does) is one order, not two."""
    from cvxrebalance.optimizer.apps.cli import main

    ORDERS.assign(reason=["drift\nsecond line", "drift"]).to_csv(tmp_path / "orders.csv", index=False)
    (tmp_path / "t.toml").write_text('[[columns]]\nname = "Reason"\nfield = "reason"\n')
    assert main(["trade-file", str(tmp_path), "--template", str(tmp_path / "t.toml"), "--date", "2026-11-23"]) == 0
    assert "(2 orders)" in capsys.readouterr().out


def test_an_upload_file_never_replaces_a_file_of_the_batch(tmp_path, capsys):
    """A template named orders.toml wrote its upload file over the batch's orders.csv (the default
    name is the template's); --out could name any of the batch's tables."""
    from cvxrebalance.optimizer.apps.cli import main

    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    before = (tmp_path / "orders.csv").read_text()
    (tmp_path / "orders.toml").write_text((EXAMPLES / "example_a.toml").read_text())
    args = ["trade-file", str(tmp_path), "--date", "2026-11-23", "--template"]
    assert main([*args, str(tmp_path / "orders.toml")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main([*args, "example_a", "--out", str(tmp_path / "allocations.csv")]) == 2
    assert (tmp_path / "orders.csv").read_text() == before and not (tmp_path / "allocations.csv").exists()
    assert main([*args, str(tmp_path / "orders.toml"), "--out", str(tmp_path / "upload.csv")]) == 0
