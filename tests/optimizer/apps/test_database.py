"""A batch read from a database and written back to one (issue 13): SQLite always, PostgreSQL on
a real server started from the system packages (initdb + pg_ctl), skipped only where none is
installed."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

sa = pytest.importorskip("sqlalchemy", reason="the db extra (SQLAlchemy) is not installed")

from cvxrebalance import ValidationError  # noqa: E402
from cvxrebalance.optimizer.apps.bench import write_batch_input  # noqa: E402
from cvxrebalance.optimizer.apps.cli import main  # noqa: E402
from cvxrebalance.optimizer.apps.database import (  # noqa: E402
    DatabaseError,
    ResultsDB,
    read_db_tables,
    table_of,
)
from cvxrebalance.optimizer.apps.executors import run_batch  # noqa: E402
from cvxrebalance.scenarios.synthetic import synthetic_universe  # noqa: E402

N = 8


def make_input(tmp: Path, n: int = N) -> Path:
    in_dir = tmp / "in"
    write_batch_input(in_dir, synthetic_universe(20, 0, seed=3), n, 2, 30)
    return in_dir


def engine_of(url: str):
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def load(in_dir: Path, url: str, typed: bool = False) -> None:
    """IN_DIR's tables as SQL tables (pandas ``to_sql`` through SQLAlchemy), the policy as a
    one-row ``policy`` table; ``typed``: numbers as numeric columns, else every cell as text."""
    eng = engine_of(url)
    try:
        with eng.begin() as conn:
            for f in sorted(in_dir.glob("*.csv")):
                df = pd.read_csv(f) if typed else pd.read_csv(f, dtype=str, keep_default_na=False)
                df.to_sql(f.stem, conn, index=False)
            pd.DataFrame({"toml": [(in_dir / "policy.toml").read_text()]}).to_sql("policy", conn, index=False)
    finally:
        eng.dispose()


def counts(url: str) -> dict[str, int]:
    eng = engine_of(url)
    try:
        with eng.connect() as conn:
            out = {name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
                   for name in ("result_trades", "result_lots", "result_summary")}
            s = sa.table("result_summary", sa.column("household_id"))
            out["summary_households"] = conn.execute(
                sa.select(sa.func.count(sa.distinct(s.c.household_id)))).scalar_one()
            return out
    finally:
        eng.dispose()


def delete_rows(url: str, hids: list[str]) -> None:
    """What a kill between a household's files and its database write leaves: no rows."""
    eng = engine_of(url)
    try:
        with eng.begin() as conn:
            for name in ("result_trades", "result_lots", "result_futures", "result_summary"):
                t = sa.table(name, sa.column("household_id"))
                conn.execute(sa.delete(t).where(t.c.household_id.in_(hids)))
    finally:
        eng.dispose()


def trades(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "trades.csv", dtype=str, keep_default_na=False)


def round_trip_and_exactly_once(tmp_path: Path, in_url: str, results_url: str, typed: bool) -> None:
    in_dir = make_input(tmp_path)
    load(in_dir, in_url, typed)
    run_batch(in_dir, tmp_path / "files", workers=1, progress=False)
    man = run_batch(in_url, tmp_path / "db", workers=2, progress=False, results_to=results_url)
    assert man["counts"]["succeeded"] == N
    pd.testing.assert_frame_equal(trades(tmp_path / "files"), trades(tmp_path / "db"))
    n_trades = len(trades(tmp_path / "db"))
    n_lots = len(pd.read_csv(tmp_path / "db" / "lots.csv"))
    expect = {"result_trades": n_trades, "result_lots": n_lots, "result_summary": N, "summary_households": N}
    assert counts(results_url) == expect

    # A rerun: nothing runs, nothing is written twice.
    man = run_batch(in_url, tmp_path / "db", workers=1, progress=False, results_to=results_url)
    assert man["counts"]["run"] == 0 and counts(results_url) == expect

    # A household written again (a retried or changed one) replaces its rows in one transaction:
    # its summary row's key deleted and inserted again (DuckDB before 1.2 refused that).
    db = ResultsDB(results_url)
    try:
        assert db.write_household(tmp_path / "db", "h00003")
    finally:
        db.close()
    assert counts(results_url) == expect

    # A run killed midway: some households finished in OUT_DIR but never reached the database,
    # others not finished at all (their files gone). The rerun writes each exactly once.
    delete_rows(results_url, ["h00001", "h00002"])
    for hid in ("h00005", "h00006"):
        shutil.rmtree(tmp_path / "db" / "households" / hid)
        delete_rows(results_url, [hid])
    man = run_batch(in_url, tmp_path / "db", workers=1, progress=False, results_to=results_url)
    assert man["counts"]["run"] == 2 and man["counts"]["database_caught_up"] == 2
    assert counts(results_url) == expect


# --- SQLite (always) ---------------------------------------------------------------------------


def test_sqlite_batch_matches_files_and_results_are_written_exactly_once(tmp_path):
    round_trip_and_exactly_once(tmp_path, f"sqlite:///{tmp_path / 'book.db'}",
                                f"sqlite:///{tmp_path / 'results.db'}", typed=False)


def test_typed_sqlite_columns_give_the_same_trades(tmp_path):
    in_dir = make_input(tmp_path, 3)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url, typed=True)
    run_batch(in_dir, tmp_path / "files", workers=1, progress=False)
    run_batch(url, tmp_path / "db", workers=1, progress=False)
    pd.testing.assert_frame_equal(trades(tmp_path / "files"), trades(tmp_path / "db"))


def test_a_matrix_s_rows_may_be_stored_in_any_order(tmp_path):
    """A covariance table's rows follow its header in a file; a database keeps no row order (the
    rows are numbered in sorted order), so they are put in the header's order."""
    in_dir = make_input(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    cov = pd.read_csv(in_dir / "covariance.csv", dtype=str, keep_default_na=False)
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        cov.iloc[::-1].to_sql("covariance", conn, index=False, if_exists="replace")
    eng.dispose()
    run_batch(in_dir, tmp_path / "files", workers=1, progress=False)
    run_batch(url, tmp_path / "db", workers=1, progress=False)
    pd.testing.assert_frame_equal(trades(tmp_path / "files"), trades(tmp_path / "db"))


def test_rows_are_numbered_as_lines(tmp_path):
    in_dir = make_input(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    tables = read_db_tables(url)
    assert tables["holdings"].index[0] == 2 and tables["holdings"].attrs["file_lines"]
    assert tables["transactions"] is None and tables["policy"]["toml"].iloc[0].startswith("[tax]")


def test_missing_table_and_column_are_named(tmp_path):
    in_dir = make_input(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    (in_dir / "securities.csv").unlink()
    load(in_dir, url)
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        pd.read_csv(in_dir / "accounts.csv").drop(columns=["household_id"]).to_sql(
            "accounts", conn, index=False, if_exists="replace")
    eng.dispose()
    with pytest.raises(ValidationError) as exc:
        run_batch(url, tmp_path / "out", workers=1, progress=False)
    text = str(exc.value)
    assert "table securities: shared table is missing from the database" in text
    assert "table accounts [household_id]" in text and ".csv" not in text


def test_bad_policy_row_is_named(tmp_path):
    in_dir = make_input(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        pd.DataFrame({"toml": ["[tax]\nbogus = 1\n"]}).to_sql("policy", conn, index=False, if_exists="replace")
    eng.dispose()
    with pytest.raises(ValidationError, match=r"table policy, row 1 \[tax.bogus\]: unknown key"):
        run_batch(url, tmp_path / "out", workers=1, progress=False)


# --- The desk's tables (orders, order_lots, block_trades, allocations) --------------------------

DESK = ("orders", "order_lots", "block_trades", "allocations")


def desk_rows(url: str) -> dict[str, pd.DataFrame]:
    eng = engine_of(url)
    try:
        with eng.connect() as conn:
            return {name: pd.read_sql(sa.select(table_of(conn, f"result_{name}")), conn) for name in DESK}
    finally:
        eng.dispose()


def assert_desk_mirrors(url: str, out: Path, batch_id: str) -> None:
    """The database holds exactly OUT_DIR's desk tables under ``batch_id``."""
    from cvxrebalance.optimizer.apps.batch import read_result_csv

    for name, rows in desk_rows(url).items():
        mine = rows[rows["batch_id"] == batch_id].drop(columns="batch_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, read_result_csv(out / f"{name}.csv"), check_dtype=False)


def desk_exactly_once(tmp_path: Path, in_url: str, results_url: str) -> None:
    """Desk tables after the combine, replaced (never duplicated) by a rerun of the same OUT_DIR,
    kept apart from another OUT_DIR's, and all-or-nothing."""
    from cvxrebalance.optimizer.domain.errors import OutputError

    in_dir = make_input(tmp_path, 4)
    load(in_dir, in_url)
    out, other = tmp_path / "out", tmp_path / "other"
    man = run_batch(in_url, out, workers=1, progress=False, results_to=results_url)
    batch_id = man["batch_id"]
    assert len(desk_rows(results_url)["orders"]) == man["counts"]["orders"] > 0
    assert_desk_mirrors(results_url, out, batch_id)
    run_batch(in_url, out, workers=1, progress=False, results_to=results_url, cross=True)  # a rerun
    assert_desk_mirrors(results_url, out, batch_id)
    assert len(desk_rows(results_url)["orders"]) == man["counts"]["orders"]
    man2 = run_batch(in_url, other, workers=1, progress=False, results_to=results_url)  # another batch
    assert man2["batch_id"] != batch_id
    assert_desk_mirrors(results_url, out, batch_id)
    assert_desk_mirrors(results_url, other, man2["batch_id"])

    # One transaction: a write that fails part way (allocations refused) leaves the earlier rows.
    before = desk_rows(results_url)
    eng = engine_of(results_url)
    with eng.begin() as conn:
        refused = sa.Table("result_allocations", sa.MetaData(), sa.Column("batch_id", sa.String))
        refused.drop(conn)
        refused.create(conn)
    eng.dispose()
    with pytest.raises(OutputError, match="result_allocations"):
        run_batch(in_url, out, workers=1, progress=False, results_to=results_url)
    after = desk_rows(results_url)
    for name in ("orders", "order_lots", "block_trades"):
        pd.testing.assert_frame_equal(before[name], after[name])


def test_sqlite_desk_tables_are_written_once_per_batch(tmp_path):
    desk_exactly_once(tmp_path, f"sqlite:///{tmp_path / 'book.db'}", f"sqlite:///{tmp_path / 'results.db'}")


def test_desk_tables_have_every_column_without_rows(tmp_path):
    from cvxrebalance.optimizer.apps.orders import (
        ALLOCATION_COLUMNS,
        BLOCK_COLUMNS,
        ORDER_COLUMNS,
        ORDER_LOT_COLUMNS,
    )

    in_dir = make_input(tmp_path, 1)
    hol = pd.read_csv(in_dir / "holdings.csv", dtype=str, keep_default_na=False)
    hol.loc[0, "quantity"] = "lots"  # the only household fails: no orders at all
    hol.to_csv(in_dir / "holdings.csv", index=False)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    man = run_batch(in_dir, tmp_path / "out", workers=1, progress=False, results_to=url)
    assert man["counts"]["orders"] == 0
    columns = {name: list(rows.columns) for name, rows in desk_rows(url).items()}
    assert columns == {name: ["batch_id", *cols] for name, cols in
                       zip(DESK, (ORDER_COLUMNS, ORDER_LOT_COLUMNS, BLOCK_COLUMNS, ALLOCATION_COLUMNS), strict=True)}


# --- Problems name the table and the row -------------------------------------------------------


def nth_row(url: str, table: str, n: int) -> dict:
    """Row ``n`` (from 1) of ``table`` as the README tells a user to find it: ordered by every
    column, left to right."""
    eng = engine_of(url)
    try:
        with eng.connect() as conn:
            t = table_of(conn, table)
            return dict(conn.execute(sa.select(t).order_by(*t.columns).offset(n - 1).limit(1)).mappings().one())
    finally:
        eng.dispose()


def set_cell(url: str, table: str, column: str, value, where: dict, first_only: bool = True) -> None:
    """Set a cell of the rows matching ``where`` (only the first in storage order by default)."""
    eng = engine_of(url)
    try:
        with eng.begin() as conn:
            t = table_of(conn, table)
            cond = sa.and_(sa.true(), *(t.c[k] == v for k, v in where.items()))
            if first_only:  # SQLite: its rowid; PostgreSQL: its ctid (the row's place in storage)
                rid = sa.cast(sa.literal_column("ctid" if conn.dialect.name == "postgresql" else "rowid"), sa.String)
                first = conn.execute(sa.select(rid).select_from(t).where(cond).limit(1)).scalar_one()
                cond = rid == first
            conn.execute(sa.update(t).where(cond).values({column: value}))
    finally:
        eng.dispose()


def named_row(text: str, table: str, field: str) -> int:
    import re

    found = re.search(rf"table {table}, row (\d+) \[{field}\]", text)
    assert found, text
    return int(found.group(1))


def test_a_bad_cell_names_its_table_and_row_in_the_error_file_errors_csv_and_the_cli(tmp_path, capsys):
    in_dir = make_input(tmp_path, 3)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    set_cell(url, "holdings", "quantity", "lots", {"household_id": "h00001"})
    out = tmp_path / "out"
    assert main(["batch", url, str(out), "--workers", "1", "--no-progress"]) == 1
    reason = json.loads((out / "errors" / "h00001.json").read_text())["reason"]
    row = named_row(reason, "holdings", "quantity")
    assert nth_row(url, "holdings", row)["quantity"] == "lots"  # the row the user finds is the bad one
    assert ".csv" not in reason and " line " not in reason
    assert pd.read_csv(out / "errors.csv").set_index("household_id").loc["h00001", "reason"] == reason

    # A bad shared cell stops the batch: the CLI's message names the table and row too.
    set_cell(url, "securities", "price", "n/a", {})
    assert main(["batch", url, str(tmp_path / "out2"), "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert nth_row(url, "securities", named_row(err, "securities", "price"))["price"] == "n/a"
    assert ".csv" not in err


def integer_account_numbers_with_a_null(tmp_path: Path, url: str) -> None:
    """An INTEGER account_number column with a NULL (an account without a number): pandas read
    it as floats, so 48000000 reached orders.csv (and the custodian's file) as 48000000.0. A REAL
    column is refused, naming the row: a float's digits are not an account number's text."""
    in_dir = make_input(tmp_path, 3)
    acc = pd.read_csv(in_dir / "accounts.csv", dtype=str, keep_default_na=False)
    acc["account_number"] = [str(48000000 + i) if i != 1 else "" for i in range(len(acc))]
    acc.to_csv(in_dir / "accounts.csv", index=False)
    load(in_dir, url, typed=True)
    eng = engine_of(url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("DROP TABLE accounts"))  # not to_sql's "replace": DuckDB cannot reflect
            pd.read_csv(in_dir / "accounts.csv").astype({"account_number": "Int64"}).to_sql("accounts", conn,
                                                                                            index=False)
    finally:
        eng.dispose()
    run_batch(in_dir, tmp_path / "files", workers=1, progress=False)
    run_batch(url, tmp_path / "db", workers=1, progress=False)
    for name in ("orders.csv", "allocations.csv"):
        assert (tmp_path / "files" / name).read_text() == (tmp_path / "db" / name).read_text()
    assert "48000000" in (tmp_path / "db" / "orders.csv").read_text()

    eng = engine_of(url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("DROP TABLE accounts"))
            pd.read_csv(in_dir / "accounts.csv").to_sql("accounts", conn, index=False)  # a REAL column
    finally:
        eng.dispose()
    run_batch(url, tmp_path / "real", workers=1, progress=False)
    errors = pd.read_csv(tmp_path / "real" / "errors.csv")
    assert len(errors) == 3 and errors["reason"].str.contains(r"table accounts, row \d+ \[account_number\]: not "
                                                              "text: 48000000.0").any()


def test_sqlite_integer_account_numbers_with_a_null_keep_their_digits(tmp_path):
    integer_account_numbers_with_a_null(tmp_path, f"sqlite:///{tmp_path / 'book.db'}")


def test_a_binary_cell_is_read_as_its_text_or_named_by_table_and_row(tmp_path, capsys):
    """A BLOB cell (SQLite keeps whatever type a program stored) became the id "b'lot-1'", and one
    that is not UTF-8 stopped the batch with a traceback."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(make_input(tmp_path, 2), url)
    set_cell(url, "holdings", "lot_id", b"lot-1", {"household_id": "h00001"})
    assert "lot-1" in read_db_tables(url, ["holdings"])["holdings"]["lot_id"].tolist()
    set_cell(url, "holdings", "lot_id", b"\xff\xfe", {"household_id": "h00001"})
    with pytest.raises(ValidationError) as err:
        read_db_tables(url, ["holdings"])
    [problem] = err.value.problems
    assert (problem.file, problem.field, problem.table) == ("holdings", "lot_id", True)
    assert nth_row(url, "holdings", problem.row)["lot_id"] == b"\xff\xfe"
    assert main(["batch", url, str(tmp_path / "out"), "--workers", "1", "--no-progress"]) == 2
    assert "table holdings, row" in capsys.readouterr().err


def test_a_problem_that_refers_to_another_row_names_it_by_row_too(tmp_path):
    in_dir = make_input(tmp_path, 2)
    acc = pd.read_csv(in_dir / "accounts.csv", dtype=str, keep_default_na=False)
    twice = acc[acc["household_id"] == "h00001"].iloc[[0]]
    pd.concat([acc, twice]).to_csv(in_dir / "accounts.csv", index=False)  # an account given twice
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    run_batch(url, tmp_path / "out", workers=1, progress=False)
    reason = json.loads((tmp_path / "out" / "errors" / "h00001.json").read_text())["reason"]
    import re

    found = re.search(r"table accounts, row (\d+) \[account_id\]: duplicate account_id=\S+ \(first on row (\d+)\)",
                      reason)
    assert found, reason
    assert nth_row(url, "accounts", int(found.group(1))) == nth_row(url, "accounts", int(found.group(2)))
    # From the files, the same problem says what it always said.
    run_batch(in_dir, tmp_path / "files", workers=1, progress=False)
    from_files = json.loads((tmp_path / "files" / "errors" / "h00001.json").read_text())["reason"]
    assert re.search(r"accounts.csv line \d+ \[account_id\]: duplicate account_id=\S+ \(first on line \d+\)",
                     from_files), from_files


MODEL_BOOK = {
    "securities": "security_id,asset_class,price\nEQ,equity,100\nBD,bonds,100\n",
    "covariance": "asset_class,equity,bonds\nequity,0.0256,0\nbonds,0,0.0025\n",
    "models": "model_id,asset_class,weight\nm,equity,0.6\nm,bonds,0.38\nm,cash,0.02\n",
    "households": "household_id,model_id,policy\nh1,m,\nh2,m,broken\nh3,m,\nh3,m,\nh4,m,missing\n",
    "accounts": "household_id,account_id,type,cash\n" + "".join(f"h{k},ira,tax_deferred,1000\n" for k in range(1, 5)),
    "holdings": "household_id,account_id,security_id,quantity\n" + "".join(f"h{k},ira,EQ,500\n" for k in range(1, 5)),
}


def test_model_book_problems_name_the_households_and_policies_tables(tmp_path):
    """A household naming a bad policy row, one listed twice, one naming no policy row: each
    error names the database's tables and rows, none a file."""
    import io

    url = f"sqlite:///{tmp_path / 'book.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        for name, text in MODEL_BOOK.items():
            pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).to_sql(name, conn, index=False)
        pd.DataFrame({"toml": ["[tax]\nas_of = 2026-11-20\n"]}).to_sql("policy", conn, index=False)
        pd.DataFrame({"name": ["fine", "broken"], "toml": ["", '[bands]\nrule = 5\n']}).to_sql(
            "policies", conn, index=False)
    eng.dispose()
    out = tmp_path / "out"
    run_batch(url, out, workers=1, progress=False)
    reasons = pd.read_csv(out / "errors.csv").set_index("household_id")["reason"]
    assert set(reasons.index) == {"h2", "h3", "h4"}
    assert nth_row(url, "policies", named_row(reasons["h2"], "policies", "bands.rule"))["name"] == "broken"
    assert "policy 'broken'" in reasons["h2"]
    import re

    found = re.search(r"table households, row \d+ \[household_id\]: the household has 2 rows; give it one "
                      r"\(rows (\d+), (\d+)\)", reasons["h3"])
    assert found, reasons["h3"]
    assert {nth_row(url, "households", int(found.group(k)))["household_id"] for k in (1, 2)} == {"h3"}
    assert nth_row(url, "households", named_row(reasons["h4"], "households", "policy"))["household_id"] == "h4"
    assert "no policy 'missing' in table policies" in reasons["h4"]
    assert not any(w in " ".join(reasons) for w in (".csv", ".toml", " line", "IN_DIR"))


def test_scan_of_a_database_names_the_row_without_a_household(tmp_path, capsys):
    from cvxrebalance.optimizer.apps.scan import scan

    in_dir = make_input(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    set_cell(url, "accounts", "household_id", "", {"household_id": "h00001"})
    with pytest.raises(ValidationError) as exc:
        scan(url)
    assert nth_row(url, "accounts", named_row(str(exc.value), "accounts", "household_id"))["household_id"] == ""
    assert main(["scan", url]) == 2
    assert "table accounts, row" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing.db", "sqlite:///{tmp}/no/dir/x.db",
                                 "nosuchdialect://x", "postgresql://u@127.0.0.1:1/db"])
def test_a_bad_url_is_a_clear_error_with_exit_code_2(tmp_path, capsys, url):
    url = url.format(tmp=tmp_path)
    with pytest.raises(DatabaseError):
        read_db_tables(url)
    assert main(["batch", url, str(tmp_path / "out"), "--no-progress"]) == 2
    assert "DatabaseError" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()  # reading never creates an empty database


def test_cli_results_to(tmp_path, capsys):
    in_dir = make_input(tmp_path, 3)
    results = f"sqlite:///{tmp_path / 'results.db'}"
    assert main(["batch", str(in_dir), str(tmp_path / "out"), "--workers", "1", "--no-progress",
                 "--results-to", results]) == 0
    assert counts(results)["result_summary"] == 3
    batch_id = json.loads((tmp_path / "out" / "manifest.json").read_text())["batch_id"]
    assert f"result_orders, result_order_lots, result_block_trades, result_allocations (batch_id {batch_id})" \
        in capsys.readouterr().out


# --- PostgreSQL (a real server from the system packages) -----------------------------------------


def _initdb() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else shutil.which("initdb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server of its own on a free port, in a temporary directory; its URL."""
    pytest.importorskip("psycopg", reason="the db extra (psycopg) is not installed")
    initdb = _initdb()
    if initdb is None:
        pytest.skip("PostgreSQL's initdb is not installed (apt-get install postgresql); the "
                    "PostgreSQL tests need a real server")
    bindir = Path(initdb).parent
    run_as: list[str] = []
    root = tempfile.mkdtemp(prefix="cvxrebalance-pg-")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no postgres user to run the server as")
        if shutil.which("runuser") is None:
            shutil.rmtree(root)
            pytest.skip("running as root without runuser to start the server as postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), _free_port()
    subprocess.run([*run_as, str(initdb), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    start = subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", data, "-l", os.path.join(root, "log"), "-w",
                            "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                           capture_output=True, text=True)
    if start.returncode != 0:
        log = Path(root, "log").read_text() if Path(root, "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {start.stderr}\n{log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _database(server: str, name: str) -> str:
    """A new, empty database on the server; its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server}/{name}"


def test_postgres_batch_matches_files_and_results_are_written_exactly_once(tmp_path, postgres_server):
    t = int(time.time() * 1000)
    round_trip_and_exactly_once(tmp_path, _database(postgres_server, f"book_{t}"),
                                _database(postgres_server, f"results_{t}"), typed=True)


def test_postgres_results_beside_the_input_tables(tmp_path, postgres_server):
    """--results-to the input database itself: the result tables never clash with the inputs."""
    url = _database(postgres_server, f"both_{int(time.time() * 1000)}")
    in_dir = make_input(tmp_path, 3)
    load(in_dir, url)
    assert main(["batch", url, str(tmp_path / "out"), "--workers", "1", "--no-progress",
                 "--results-to", url]) == 0
    assert counts(url)["result_summary"] == 3
    assert len(read_db_tables(url)["accounts"]) == len(pd.read_csv(in_dir / "accounts.csv"))


def test_postgres_names_the_row_the_documented_order_finds_after_an_update(tmp_path, postgres_server):
    """PostgreSQL returns rows in storage order, which an UPDATE changes (the new version of the
    row goes to the end): a problem's row number follows the table's order, not storage."""
    url = _database(postgres_server, f"rows_{int(time.time() * 1000)}")
    load(make_input(tmp_path, 2), url)
    set_cell(url, "holdings", "quantity", "lots", {"household_id": "h00000"})
    run_batch(url, tmp_path / "out", workers=1, progress=False)
    reason = json.loads((tmp_path / "out" / "errors" / "h00000.json").read_text())["reason"]
    assert nth_row(url, "holdings", named_row(reason, "holdings", "quantity"))["quantity"] == "lots"


def test_postgres_desk_tables_are_written_once_per_batch(tmp_path, postgres_server):
    t = int(time.time() * 1000)
    desk_exactly_once(tmp_path, _database(postgres_server, f"deskin_{t}"),
                      _database(postgres_server, f"desk_{t}"))


def test_postgres_integer_account_numbers_with_a_null_keep_their_digits(tmp_path, postgres_server):
    integer_account_numbers_with_a_null(tmp_path, _database(postgres_server, f"ints_{int(time.time() * 1000)}"))


def test_postgres_a_column_that_cannot_be_ordered_names_its_table(tmp_path, postgres_server, capsys):
    """Rows are numbered in the order of all their columns; PostgreSQL cannot order a json
    column (an extra one, say), and the message named neither the table nor the column."""
    url = _database(postgres_server, f"json_{int(time.time() * 1000)}")
    load(make_input(tmp_path, 2), url)
    eng = engine_of(url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("ALTER TABLE holdings ADD COLUMN meta json"))
    finally:
        eng.dispose()
    with pytest.raises(DatabaseError, match="table holdings") as err:
        read_db_tables(url)
    assert "json" in str(err.value) and "meta" in str(err.value)
    assert main(["batch", url, str(tmp_path / "out"), "--no-progress"]) == 2


# --- DuckDB (duckdb-engine, in the test extra) ------------------------------------------------------


@pytest.fixture
def duckdb_url(tmp_path):
    """A DuckDB file URL maker (the file is created by the first write)."""
    pytest.importorskip("duckdb_engine", reason="the duckdb extra (duckdb-engine) is not installed")
    return lambda name: f"duckdb:///{tmp_path / name}.duckdb"


def test_duckdb_batch_matches_files_and_results_are_written_exactly_once(tmp_path, duckdb_url):
    round_trip_and_exactly_once(tmp_path, duckdb_url("book"), duckdb_url("results"), typed=True)


def test_duckdb_desk_tables_are_written_once_per_batch(tmp_path, duckdb_url):
    desk_exactly_once(tmp_path, duckdb_url("book"), duckdb_url("results"))


def test_duckdb_results_into_the_input_file_and_problems_by_row(tmp_path, duckdb_url, capsys):
    """One DuckDB file for the book and the results (read, then written, by one process); a bad
    cell named by table and row as on the other databases."""
    url = duckdb_url("both")
    load(make_input(tmp_path, 3), url)
    set_cell(url, "holdings", "quantity", "lots", {"household_id": "h00002"})
    assert main(["batch", url, str(tmp_path / "out"), "--workers", "1", "--no-progress", "--results-to", url]) == 1
    reason = json.loads((tmp_path / "out" / "errors" / "h00002.json").read_text())["reason"]
    assert nth_row(url, "holdings", named_row(reason, "holdings", "quantity"))["quantity"] == "lots"
    assert counts(url)["result_summary"] == 3


def test_duckdb_integer_account_numbers_with_a_null_keep_their_digits(tmp_path, duckdb_url):
    integer_account_numbers_with_a_null(tmp_path, duckdb_url("book"))


def test_a_duckdb_file_another_process_holds_is_a_clear_error(tmp_path, duckdb_url, capsys):
    """DuckDB lets one process at a time open a file (it locks it): the batch stops with exit
    code 2 and DuckDB's reason instead of waiting or failing later."""
    import sys

    url = duckdb_url("held")
    load(make_input(tmp_path, 1), url)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"c = duckdb.connect({str(tmp_path / 'held.duckdb')!r}); print('held', flush=True)\n"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["batch", url, str(tmp_path / "out"), "--no-progress"]) == 2
        assert "lock" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_a_trade_s_reason_cites_the_restriction_by_table_and_row(tmp_path):
    """The advisor book from SQLite: Jones's NOC sale cited "restrictions.csv line 6", a row the
    database does not have under that name; it cites the table and the row its problems would."""
    import re

    from cvxrebalance.scenarios import book_path

    root = book_path("advisor")
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(root, url)
    eng = engine_of(url)
    with eng.begin() as conn:
        pd.DataFrame({"name": [p.stem for p in (root / "policies").glob("*.toml")],
                      "toml": [p.read_text() for p in (root / "policies").glob("*.toml")]}).to_sql(
            "policies", conn, index=False)
    eng.dispose()
    out = tmp_path / "out"
    run_batch(url, out, workers=1, progress=False, only_needed=True)
    orders = pd.read_csv(out / "orders.csv").set_index("order_id")
    detail = orders.loc["jones-0001", "reason_detail"]
    found = re.search(r"\(table restrictions, row (\d+)\)", detail)
    assert found and "restrictions.csv" not in detail, detail
    row = nth_row(url, "restrictions", int(found.group(1)))
    assert (row["household_id"], row["tag"], row["rule"]) == ("jones", "defense", "no_hold")
    muni = orders.loc[(orders["household_id"] == "smith") & (orders["security_id"] == "MUB"), "reason_detail"].iloc[0]
    assert "(client rule: table restrictions, row" in muni
