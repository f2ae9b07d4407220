"""Custodian upload files from orders.csv by a trade_file.toml template: the two bundled examples
line by line, a hostile cell kept spreadsheet-safe, and bad templates named by key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from cvxrebalance import ValidationError
from cvxrebalance.optimizer.apps.trade_file import trade_file
from cvxrebalance.optimizer.apps.trade_template import read_template

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
    # Each of these wrote a wrong upload: one code for both sides, a blank code, a side left to
    # the default beside the custodian's other code, a date that does not read back.
    ('[sides]\nbuy = "X"\nsell = "X"\n[[columns]]\nname = "a"\nfield = "side"\n', "sides"),
    ('[sides]\nbuy = ""\nsell = "S"\n[[columns]]\nname = "a"\nfield = "side"\n', "sides.buy"),
    ('[sides]\nbuy = "  "\nsell = "S"\n[[columns]]\nname = "a"\nfield = "side"\n', "sides.buy"),
    ('[sides]\nbuy = "B"\n[[columns]]\nname = "a"\nfield = "side"\n', "sides.sell"),
    ('[venues]\nstreet = "S"\ninternal = "S"\n[[columns]]\nname = "a"\nfield = "venue"\n', "venues"),
    ('[venues]\nstreet = "S"\n[[columns]]\nname = "a"\nfield = "venue"\n', "venues.internal"),
    ('[file]\ndate_format = "%Q"\n[[columns]]\nname = "a"\nfield = "trade_date"\n', "file.date_format"),
    ('[file]\ndate_format = ""\n[[columns]]\nname = "a"\nfield = "trade_date"\n', "file.date_format"),
    ('[file]\ndate_format = "%m/%d"\n[[columns]]\nname = "a"\nfield = "trade_date"\n', "file.date_format"),
    ('[file]\ndate_format = "%Y-%d-%d"\n[[columns]]\nname = "a"\nfield = "trade_date"\n', "file.date_format"),
    # lines is "orders" or "lots", and a lot's field needs lines = "lots"
    ('[file]\nlines = "lot"\n[[columns]]\nname = "a"\nfield = "side"\n', "file.lines"),
    ('[[columns]]\nname = "a"\nfield = "lot_id"\n', "columns[1].field"),
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


def crossed_batch(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A crossed batch's desk files in ``tmp_path``, as ``batch.combine`` writes them: h2 sells
    the 30 BND h1 buys (wholly crossed), and 5 of h1's 12 VTI cross against h3's 5."""
    from cvxrebalance.optimizer.apps.orders import blocks
    from cvxrebalance.optimizer.domain.output import frame_csv

    orders = pd.concat([ORDERS, pd.DataFrame({
        "order_id": ["h2-0001", "h3-0001"], "household_id": ["h2", "h3"], "account_id": ["t", "t"],
        "account_number": ["00500", "00600"], "security_id": ["BND", "VTI"], "side": ["sell", "buy"],
        "quantity": [40.0, 5.0], "price": [74.125, 300.0], "value": [2965.0, 1500.0], "cost": [0.3, 0.15],
        "reason": ["drift", "drift"], "reason_detail": ["", ""]})], ignore_index=True)
    block, alloc = blocks(orders, cross=True)
    for name, table in (("orders", orders), ("block_trades", block), ("allocations", alloc)):
        (tmp_path / f"{name}.csv").write_text(frame_csv(table))
    return orders, alloc


def test_after_a_cross_the_upload_carries_only_the_street_part(tmp_path):
    """trade-file wrote every order in full as MKT after `batch --cross`: the crossed shares were
    bought at market and settled internally too."""
    from cvxrebalance.optimizer.apps.trade_file import read_allocations, read_orders

    crossed_batch(tmp_path)
    alloc = read_allocations(tmp_path)
    text = trade_file(read_orders(tmp_path / "orders.csv"), read_template(EXAMPLES / "example_a.toml"), DAY,
                      allocations=alloc)
    assert text.splitlines() == [
        "Account Number,Action,Symbol,Quantity,Order Type,Trade Date,Client Reference",
        "00417,S,VTI,7,MKT,11/23/2026,h1-0001",  # 5 of 12 crossed with h3
        # h1-0002 (30 BND bought) and h3-0001 (5 VTI) wholly crossed: not in the file
        "00500,S,BND,10,MKT,11/23/2026,h2-0001"]  # 30 of 40 crossed with h1


def test_include_internal_writes_a_line_per_order_and_venue(tmp_path):
    from cvxrebalance.optimizer.apps.trade_file import read_allocations, read_orders

    crossed_batch(tmp_path)
    template = read_template(EXAMPLES / "example_b.toml")
    template["columns"] = [*template["columns"][1:6], {"name": "venue", "field": "venue"},
                           {"name": "value", "field": "value"}]
    text = trade_file(read_orders(tmp_path / "orders.csv"), template, DAY, allocations=read_allocations(tmp_path),
                      include_internal=True)
    assert text.splitlines() == [
        "h1-0001|00417|SELL|VTI|7.000|street|2100.00",
        "h1-0001|00417|SELL|VTI|5.000|internal|1500.00",
        "h1-0002|'=cmd|BUY|BND|30.000|internal|2260.81",  # its value in orders.csv
        "h2-0001|00500|SELL|BND|10.000|street|741.25",
        "h2-0001|00500|SELL|BND|30.000|internal|2223.75",
        "h3-0001|00600|BUY|VTI|5.000|internal|1500.00"]


def test_without_a_cross_the_upload_is_unchanged(tmp_path):
    from cvxrebalance.optimizer.apps.orders import blocks
    from cvxrebalance.optimizer.apps.trade_file import read_allocations, read_orders
    from cvxrebalance.optimizer.domain.output import frame_csv

    block, alloc = blocks(ORDERS)
    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    (tmp_path / "block_trades.csv").write_text(frame_csv(block))
    (tmp_path / "allocations.csv").write_text(frame_csv(alloc))
    assert read_allocations(tmp_path) is None
    assert read_allocations(tmp_path / "elsewhere") is None
    template = read_template(EXAMPLES / "example_a.toml")
    orders = read_orders(tmp_path / "orders.csv")
    for internal in (False, True):
        assert (trade_file(orders, template, DAY, allocations=None, include_internal=internal)
                == trade_file(ORDERS, template, DAY))


def test_a_cross_that_no_longer_matches_the_orders_is_named(tmp_path):
    """orders.csv edited after a crossed batch: an order cut below its crossed shares, or one
    deleted whose cross is still in allocations.csv, would settle shares no order trades."""
    from cvxrebalance.optimizer.apps.trade_file import read_allocations, read_orders

    crossed_batch(tmp_path)
    orders = read_orders(tmp_path / "orders.csv")
    orders.loc[orders["order_id"] == "h2-0001", "quantity"] = "20"
    orders = orders[orders["order_id"] != "h3-0001"]
    with pytest.raises(ValidationError) as err:
        trade_file(orders, read_template(EXAMPLES / "example_a.toml"), DAY, allocations=read_allocations(tmp_path))
    found = {(p.file, p.row, p.field) for p in err.value.problems}
    assert ("orders.csv", 4, "quantity") in found
    assert any(f == "allocations.csv" and field == "order_id" for f, _, field in found)


def test_the_cli_says_what_was_crossed_and_where(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    crossed_batch(tmp_path)
    args = ["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-11-23"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "crossed internally by the batch: 4 orders (35 shares bought, 35 sold), 2 of them wholly" in out
    assert "allocations.csv" in out and "venue internal" in out and "not in this file" in out
    assert len((tmp_path / "example_a.csv").read_text().splitlines()) == 3
    with_venue = (EXAMPLES / "example_a.toml").read_text() + '\n[[columns]]\nname = "Venue"\nfield = "venue"\n'
    (tmp_path / "venue.toml").write_text(with_venue)
    args[args.index("example_a")] = str(tmp_path / "venue.toml")
    assert main([*args, "--include-internal", "--out", str(tmp_path / "all.csv")]) == 0
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 7
    assert "written as lines of venue internal" in capsys.readouterr().out


def test_a_fractional_street_part_keeps_the_orders_digits():
    """10.3 shares sold, 10 crossed: the street part is 0.3, and an order not crossed keeps every
    digit it has."""
    from cvxrebalance.optimizer.apps.orders import blocks

    orders = ORDERS.assign(quantity=[10.3, 0.1234567891234], side=["sell", "buy"], security_id=["VTI", "BND"])
    orders = pd.concat([orders, orders.iloc[:1].assign(order_id="h2-0001", household_id="h2", side="buy",
                                                       quantity=10.0)], ignore_index=True)
    alloc = blocks(orders, cross=True)[1]
    internal = alloc[alloc["block_id"].str.startswith("cross-")]
    from cvxrebalance.optimizer.apps.trade_file import upload_lines

    template = {**read_template(EXAMPLES / "example_b.toml")}
    template["file"] = {**template["file"], "quantity_decimals": 10}
    assert upload_lines(orders, template, internal)["quantity"].tolist() == [0.3, 0.1234567891234]


def test_every_orders_column_is_a_field():
    """reason_detail was refused though the README says any field of orders.csv is one."""
    from cvxrebalance.optimizer.apps.orders import ORDER_COLUMNS
    from cvxrebalance.optimizer.apps.trade_template import FIELDS

    assert set(ORDER_COLUMNS) | {"trade_date", "venue"} <= set(FIELDS)
    template = {**read_template(EXAMPLES / "example_a.toml"), "columns": [{"name": "why", "field": "reason_detail"}]}
    assert trade_file(ORDERS.assign(reason_detail=["a", "=b"]), template, DAY).splitlines() == ["why", "a", "'=b"]


@pytest.mark.parametrize("fmt", ["%m/%d/%Y", "%Y%m%d", "%d.%m.%y", "%Y-%m-%d", "%b %d, %Y"])
def test_a_date_format_that_reads_back_is_accepted(tmp_path, fmt):
    path = tmp_path / "t.toml"
    path.write_text(f'[file]\ndate_format = "{fmt}"\n[[columns]]\nname = "a"\nfield = "trade_date"\n')
    assert read_template(path)["file"]["date_format"] == fmt


def test_the_missing_account_number_message_names_the_accounts_row_not_the_column():
    """accounts.csv may have the column, with this account's cell blank: "give accounts.csv an
    account_number column" sent the user looking for a column that is there."""
    template = read_template(EXAMPLES / "example_a.toml")
    with pytest.raises(ValidationError) as err:
        trade_file(ORDERS.assign(account_number=["00417", ""]), template, DAY)
    [problem] = err.value.problems
    assert "accounts.csv row has no account_number" in problem.message and "column" not in problem.message


def test_an_unknown_template_name_lists_the_bundled_examples(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    assert main(["trade-file", str(tmp_path), "--template", "example_c"]) == 2
    err = capsys.readouterr().err
    assert "example_c" in err and "example_a, example_b" in err and "TOML" not in err


def test_the_cli_warns_that_failed_households_are_missing_from_the_file(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.cli import main

    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    ids = [f"h{k:02d}" for k in range(7)]
    pd.DataFrame({"household_id": ids, "error": "ValidationError", "reason": "bad"}).to_csv(
        tmp_path / "errors.csv", index=False)
    assert main(["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-11-23"]) == 0
    err = capsys.readouterr().err
    assert "warning: 7 households failed in the batch (errors.csv: h00, h01, h02, h03, h04, ...)" in err
    assert "their orders are not in this file" in err
    pd.DataFrame(columns=["household_id", "error", "reason"]).to_csv(tmp_path / "errors.csv", index=False)
    assert main(["trade-file", str(tmp_path), "--template", "example_a", "--date", "2026-11-23"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_every_template_key_and_field_is_documented():
    """The keys were only in the module docstring; docs/case_format.md documents each one."""
    from cvxrebalance.optimizer.apps import trade_template as tf

    text = (Path(__file__).resolve().parents[3] / "docs" / "case_format.md").read_text()
    section = text.split("## trade_file.toml", 1)[1].split("\n## ", 1)[0]
    for table, keys in (("file", tf.FILE_KEYS), ("sides", tf.SIDE_KEYS), ("venues", tf.VENUE_KEYS)):
        for key in keys:
            assert f"`[{table}] {key}" in section or f"`{key}`" in section, (table, key)
    for key in ("name", "field", "value"):
        assert f"`[[columns]] {key}`" in section
    assert all(f"`{field}`" in section for field in tf.FIELDS)


LOTS = pd.DataFrame({  # order_lots.csv of ORDERS' sell (h1-0001, 12 VTI): two lots relieved
    "order_id": ["h1-0001", "h1-0001"], "household_id": ["h1", "h1"], "account_id": ["ira", "ira"],
    "account_number": ["00417", "00417"], "security_id": ["VTI", "VTI"], "lot_id": ["L7", "=L2"],
    "acquired": ["2019-03-04", "2025-08-01"], "quantity": [9.0, 3.0], "cost_basis_per_share": [180.5, 290.0],
    "term": ["long", "short"]})


def test_lines_lots_writes_a_sell_as_one_line_per_lot_relieved():
    """Custodians relieve lots first in, first out unless told which: order_lots.csv had the
    specific lots but an upload file could not carry them."""
    from cvxrebalance.scenarios import trade_file_template

    text = trade_file(ORDERS, read_template(trade_file_template("example_lots")), DAY, order_lots=LOTS)
    assert text.splitlines() == [
        "Account,Side,Symbol,Quantity,Order Type,Lot ID,Acquired,Unit Cost,Term,Trade Date,Reference",
        "00417,S,VTI,9,MKT,L7,03/04/2019,180.50,long,11/23/2026,h1-0001",
        "00417,S,VTI,3,MKT,'=L2,08/01/2025,290.00,short,11/23/2026,h1-0001",
        "'=cmd,B,BND,30,MKT,,,,,11/23/2026,h1-0002"]  # a buy: one line, no lot
    # A column the layout does not write may be blank (edited by hand): it is not split by lot.
    template = read_template(trade_file_template("example_lots"))
    assert trade_file(ORDERS.assign(cost=["", ""]), template, DAY, order_lots=LOTS) == text


def test_a_sell_without_lots_is_one_line_and_lots_must_add_up_to_the_order():
    from cvxrebalance.scenarios import trade_file_template

    template = read_template(trade_file_template("example_lots"))
    assert trade_file(ORDERS, template, DAY, order_lots=LOTS.iloc[:0]).splitlines()[1] == (
        "00417,S,VTI,12,MKT,,,,,11/23/2026,h1-0001")  # an IRA's sell: no lots to name
    with pytest.raises(ValidationError) as err:
        trade_file(ORDERS, template, DAY, order_lots=LOTS.assign(quantity=[9.0, 2.0]))
    assert [(p.file, p.row, p.field) for p in err.value.problems] == [("orders.csv", 2, "quantity")]
    assert "11" in err.value.problems[0].message
    with pytest.raises(ValidationError) as err:  # a lot of a buy, and a fractional lot in whole shares
        trade_file(ORDERS, template, DAY, order_lots=pd.concat([
            LOTS.assign(quantity=[8.5, 3.5]), LOTS.iloc[:1].assign(order_id="h1-0002", quantity=30.0)]))
    found = {(p.file, p.row, p.field) for p in err.value.problems}
    assert {("order_lots.csv", 2, "quantity"), ("order_lots.csv", 3, "quantity"),
            ("order_lots.csv", 4, "order_id")} <= found
    with pytest.raises(ValidationError, match="order_lots.csv"):
        trade_file(ORDERS, template, DAY)  # lines = "lots" without the lots


def test_a_crossed_sell_splits_its_lots_street_part_first(tmp_path):
    """h1 sells 12 VTI (lots L7: 9, =L2: 3), 5 crossed with h3: the street part relieves the
    first lots, 7 of L7, the crossed part the rest, 2 of L7 and 3 of =L2."""
    from cvxrebalance.optimizer.apps.trade_file import read_allocations, read_orders
    from cvxrebalance.scenarios import trade_file_template

    crossed_batch(tmp_path)
    template = read_template(trade_file_template("example_lots"))
    template["columns"] = [{"name": "o", "field": "order_id"}, {"name": "v", "field": "venue"},
                           {"name": "q", "field": "quantity"}, {"name": "l", "field": "lot_id"}]
    orders = read_orders(tmp_path / "orders.csv")
    text = trade_file(orders, template, DAY, allocations=read_allocations(tmp_path), include_internal=True,
                      order_lots=LOTS)
    assert text.splitlines()[1:4] == ["h1-0001,street,7,L7", "h1-0001,internal,2,L7", "h1-0001,internal,3,'=L2"]
    street = trade_file(orders, template, DAY, allocations=read_allocations(tmp_path), order_lots=LOTS)
    assert street.splitlines()[1] == "h1-0001,street,7,L7"


def test_the_cli_reads_order_lots_for_a_lots_template(tmp_path):
    from cvxrebalance.optimizer.apps.cli import main
    from cvxrebalance.optimizer.domain.output import frame_csv

    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    args = ["trade-file", str(tmp_path), "--template", "example_lots", "--date", "2026-11-23"]
    assert main(args) == 2  # no order_lots.csv
    (tmp_path / "order_lots.csv").write_text(frame_csv(LOTS))
    assert main(args) == 0
    assert len((tmp_path / "example_lots.csv").read_text().splitlines()) == 4


def test_internal_lines_need_a_venue_column(tmp_path):
    """--include-internal with a layout without a venue field wrote the crossed part as a second
    market order the custodian could not tell apart."""
    from cvxrebalance.optimizer.apps.trade_file import read_allocations, read_orders

    crossed_batch(tmp_path)
    with pytest.raises(ValidationError, match="venue"):
        trade_file(read_orders(tmp_path / "orders.csv"), read_template(EXAMPLES / "example_a.toml"), DAY,
                   allocations=read_allocations(tmp_path), include_internal=True)
