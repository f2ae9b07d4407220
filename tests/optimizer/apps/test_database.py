"""A batch read from a database and written back to one (issue 13): SQLite always, PostgreSQL on
a real server started from the system packages (initdb + pg_ctl), skipped only where none is
installed."""

from __future__ import annotations

import glob
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
from cvxrebalance.optimizer.apps.database import DatabaseError, read_db_tables  # noqa: E402
from cvxrebalance.optimizer.apps.executors import run_batch  # noqa: E402
from cvxrebalance.scenarios.synthetic import synthetic_universe  # noqa: E402

N = 8


def make_input(tmp: Path, n: int = N) -> Path:
    in_dir = tmp / "in"
    write_batch_input(in_dir, synthetic_universe(20, 0, seed=3), n, 2, 30)
    return in_dir


def load(in_dir: Path, url: str, typed: bool = False) -> None:
    """IN_DIR's tables as SQL tables (pandas ``to_sql`` through SQLAlchemy), the policy as a
    one-row ``policy`` table; ``typed``: numbers as numeric columns, else every cell as text."""
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        for f in sorted(in_dir.glob("*.csv")):
            df = pd.read_csv(f) if typed else pd.read_csv(f, dtype=str, keep_default_na=False)
            df.to_sql(f.stem, eng, index=False)
        pd.DataFrame({"toml": [(in_dir / "policy.toml").read_text()]}).to_sql("policy", eng, index=False)
    finally:
        eng.dispose()


def counts(url: str) -> dict[str, int]:
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn, only=["result_trades", "result_lots", "result_summary"])
            out = {name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                   for name, t in meta.tables.items()}
            s = meta.tables["result_summary"]
            out["summary_households"] = conn.execute(
                sa.select(sa.func.count(sa.distinct(s.c.household_id)))).scalar_one()
            return out
    finally:
        eng.dispose()


def delete_rows(url: str, hids: list[str]) -> None:
    """What a kill between a household's files and its database write leaves: no rows."""
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.begin() as conn:
            meta = sa.MetaData()
            meta.reflect(conn, only=["result_trades", "result_lots", "result_futures", "result_summary"])
            for t in meta.tables.values():
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
    assert "securities.csv: shared table is missing" in text
    assert "accounts.csv line 1 [household_id]" in text


def test_bad_policy_row_is_named(tmp_path):
    in_dir = make_input(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    load(in_dir, url)
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        pd.DataFrame({"toml": ["[tax]\nbogus = 1\n"]}).to_sql("policy", conn, index=False, if_exists="replace")
    eng.dispose()
    with pytest.raises(ValidationError, match="policy.csv.*bogus"):
        run_batch(url, tmp_path / "out", workers=1, progress=False)


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
