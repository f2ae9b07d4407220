"""A batch's tables in a database, and its results written back to one (issue 13).

``cvxrebalance batch DB_URL OUT_DIR`` reads the same tables as a batch IN_DIR
(``batch.SHARED`` and ``batch.PER_HOUSEHOLD``) as SQL tables of that name, through SQLAlchemy
Core (``select(table)``, never SQL built from strings): ``sqlite:///book.db``,
``postgresql+psycopg://user@host/db`` (``postgresql://`` is read as psycopg 3),
``duckdb:///book.duckdb`` (the ``duckdb`` extra: duckdb-engine, DuckDB 1.2 or later). Tables
are read without reflection (``_frame``), which DuckDB's dialect does not support under
SQLAlchemy 2.1. The policy is the ``toml`` text column
of the one row of a ``policy`` table (no table: the default policy); per-household policies
(``households.policy``) are the ``name`` and ``toml`` columns of a ``policies`` table.

A problem in a table names the table and the row's number, ``table holdings, row 7 [quantity]``
(``table_problems``): each table is read ordered by all its columns, so the numbers do not depend
on how the database stores the rows.

``--results-to DB_URL`` (``ResultsDB``) writes each finished household's rows to the tables
``result_trades``, ``result_lots``, ``result_futures`` and ``result_summary`` (created when
missing) in one transaction that first deletes the household's earlier rows, so a rerun, also
after a kill, leaves exactly one set of rows per household. After the combine step it writes the
desk's tables of OUT_DIR (``orders``, ``order_lots``, ``block_trades``, ``allocations``) to
``result_orders``, ``result_order_lots``, ``result_block_trades`` and ``result_allocations``,
each row under the batch's ``batch_id`` (``batch_id``: OUT_DIR is the batch), in one
transaction that first deletes that batch's earlier rows.

Needs the optional extra ``pip install 'cvxrebalance[db]'`` (``[duckdb]`` for DuckDB); SQLAlchemy
is imported only here, and only when a database is used.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.apps.orders import DESK_COLUMNS
from cvxrebalance.optimizer.domain.errors import CvxRebalanceError, OutputError, Problem, ValidationError
from cvxrebalance.optimizer.domain.policy import Policy

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
POLICY = "policy"  # table with one row and a ``toml`` text column
POLICIES = "policies"  # table with ``name`` and ``toml`` text columns
RESULT_TABLES = {"trades": "result_trades", "lots": "result_lots", "futures": "result_futures"}
SUMMARY = "result_summary"
DESK_TABLES = {name: f"result_{name}" for name in DESK_COLUMNS}
BATCH_ID = "batch_id"  # the desk tables' key: which batch (OUT_DIR) a row belongs to
MATRICES = ("covariance", "factor_covariance")  # square tables: a row and a column per id, in the same order
SUMMARY_COLUMNS = {  # column -> how it is read from summary.json (None: set by the writer)
    "household_id": None, "input_digest": None, "status": None, "reason": None,
    "household_value": ("household_value",), "rebalanced": ("rebalanced",),
    "tracking_error_before": ("tracking_error", "before"), "tracking_error_after": ("tracking_error", "after"),
    "costs": ("costs",), "short_term_gain": ("taxes", "short_term_gain"),
    "long_term_gain": ("taxes", "long_term_gain"), "tax": ("taxes", "tax"), "tax_exact": ("taxes", "tax_exact"),
    "trade_count": ("trade_count",),
}


class DatabaseError(CvxRebalanceError, ValueError):
    """A database URL that cannot be used (bad URL, no driver, cannot connect): bad input."""


def is_url(source: Any) -> bool:
    """Whether a batch source is a database URL (``scheme://...``) rather than a directory.

    Examples
    --------
    >>> is_url("sqlite:///book.db"), is_url("postgresql://u@h/db"), is_url("in_dir")
    (True, True, False)
    """
    return isinstance(source, str) and bool(_URL.match(source))


def _sqlalchemy():
    try:
        import sqlalchemy
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise DatabaseError("a database URL needs the optional extra: pip install 'cvxrebalance[db]'") from exc
    return sqlalchemy


def shown(url: str) -> str:
    """The URL as it may be printed: without its password."""
    sa = _sqlalchemy()
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by its scheme only
        return url.split("://", 1)[0] + "://..."


def engine(url: str, must_exist: bool = False):
    """A SQLAlchemy engine for ``url`` (``postgresql://`` on psycopg 3), connection checked;
    ``must_exist``: a SQLite or DuckDB file that does not exist is an error (not created empty).

    Raises
    ------
    DatabaseError
        The URL cannot be parsed, its driver is not installed, or the database cannot be reached.
    """
    sa = _sqlalchemy()
    try:
        parsed = sa.engine.make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        local = parsed.drivername.startswith(("sqlite", "duckdb")) and parsed.database not in (None, "", ":memory:")
        if local and not Path(parsed.database).parent.is_dir():
            raise DatabaseError(f"{shown(url)}: the folder of the database file does not exist")
        if local and must_exist and not Path(parsed.database).is_file():
            raise DatabaseError(f"{shown(url)}: no such database file")
        eng = sa.create_engine(parsed)
        with eng.connect():
            pass
        return eng
    except DatabaseError:
        raise
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"{shown(url)}: not a usable database URL ({exc})") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"{shown(url)}: cannot connect: {exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0]}") from exc


def table_of(conn, name: str):
    """Table ``name`` of the database ``conn`` is connected to, with its columns, for SQLAlchemy
    Core statements (``select``, ``order_by``).

    The columns are those of an empty ``SELECT *``, not reflected: DuckDB's dialect cannot
    reflect a table's columns or key under SQLAlchemy 2.1, and the cells need no declared type.
    """
    sa = _sqlalchemy()
    columns = conn.execute(sa.select(sa.literal_column("*")).select_from(sa.table(name)).limit(0)).keys()
    return sa.table(name, *(sa.column(c) for c in columns))


def _frame(conn, name: str, problems: list[Problem]) -> pd.DataFrame:
    """All rows of table ``name`` in the order problems number them (``table_problems``: by all
    its columns, left to right), indexed by "line" = row + 1 as a file's rows are.

    Cells keep their values: an integer column with NULLs stays integers (pandas would make it
    floats: account number 48000000 would read "48000000.0"), and a binary cell (SQLite stores
    whatever a program gives it) is its UTF-8 text; one that is not text is added to ``problems``.
    """
    sa = _sqlalchemy()
    table = table_of(conn, name)
    result = conn.execute(sa.select(table).order_by(*table.columns))
    records = [tuple(r) for r in result]
    columns = list(result.keys())
    df = pd.DataFrame.from_records(records, columns=columns)
    for j, column in enumerate(columns):
        cells = [r[j] for r in records]
        if any(isinstance(v, bytes | bytearray | memoryview) for v in cells):
            cells = [_text_of_bytes(v, name, k, column, problems) for k, v in enumerate(cells, 1)]
        elif not (df.iloc[:, j].dtype.kind == "f" and any(_is_int(v) for v in cells)
                  and all(v is None or _is_int(v) for v in cells)):
            continue
        df.isetitem(j, pd.Series(cells, index=df.index, dtype=object))
    df = df.astype({c: object for c in df.columns if df[c].dtype == object})
    df.index = pd.RangeIndex(len(df)) + 2  # as a Parquet row: its row number + 1 (header = line 1)
    df.attrs["file_lines"] = True
    df.attrs["table"] = name  # texts that cite a row say "table NAME, row N" (restrictions.cite)
    return df


def _unordered(conn, name: str) -> str:
    """The columns of table ``name`` the database cannot order by (PostgreSQL's json, say), as a
    sentence to add to a message ("" when each orders alone): its rows are numbered in the
    order of all its columns (``_frame``)."""
    sa = _sqlalchemy()
    table = table_of(conn, name)
    bad = []
    for column in table.columns:
        try:
            conn.execute(sa.select(column).order_by(column).limit(0))
        except sa.exc.SQLAlchemyError:
            conn.rollback()
            bad.append(str(column.name))
    return (f"; rows are numbered in the order of all the table's columns, and these cannot be ordered: "
            f"{', '.join(bad)} (drop them or store them as text)") if bad else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_of_bytes(value: Any, table: str, row: int, column: str, problems: list[Problem]) -> Any:
    """A binary cell as its UTF-8 text (other cells as they are); None, and a problem naming the
    table, row and column, when it is not UTF-8 text."""
    if not isinstance(value, bytes | bytearray | memoryview):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem(table, row, column, f"binary data that is not UTF-8 text ({bytes(value)[:16]!r})",
                                table=True))
        return None


def _header_order(df: pd.DataFrame) -> pd.DataFrame:
    """A square table (``MATRICES``) with its rows in its header's order, each keeping its row
    number: in a file the rows follow the header, in a database rows have no order but the one
    they are numbered in. Rows that are not the header's ids, each once, stay as they are (the
    reader names the problem)."""
    if df.shape[1] < 2:
        return df
    ids = df.iloc[:, 0].astype(str).str.strip()
    header = [str(c).strip() for c in df.columns[1:]]
    if not ids.is_unique or sorted(ids) != sorted(header):
        return df
    out = df.iloc[pd.Index(ids).get_indexer(header)]
    out.attrs["file_lines"] = True
    return out


def read_db_tables(url: str, names: Iterable[str] | None = None) -> dict[str, pd.DataFrame | None]:
    """The batch tables of the database at ``url``: ``{name: DataFrame or None}`` for each of
    ``names`` (default: every batch table, ``policy`` and ``policies``), None where the
    database has no such table; each frame indexed by line (row + 1) with ``attrs["file_lines"]``.

    Raises
    ------
    DatabaseError
        The database cannot be used (``engine``).
    ValidationError
        A binary cell that is not UTF-8 text (named by table, row and column).
    """
    from cvxrebalance.optimizer.apps.batch import PER_HOUSEHOLD, SHARED

    sa = _sqlalchemy()
    names = list(names) if names is not None else [*SHARED, *PER_HOUSEHOLD, POLICY, POLICIES]
    eng = engine(url, must_exist=True)
    out: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    try:
        with eng.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for name in names:
                try:
                    out[name] = _frame(conn, name, problems) if name in present else None
                except sa.exc.SQLAlchemyError as exc:  # the table, and a column it cannot order by
                    conn.rollback()
                    raise DatabaseError(f"{shown(url)}: cannot read table {name}: {str(exc).splitlines()[0]}"
                                        f"{_unordered(conn, name)}") from exc
                if name in MATRICES and out[name] is not None:
                    out[name] = _header_order(out[name])
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"{shown(url)}: cannot read the tables: {str(exc).splitlines()[0]}") from exc
    finally:
        eng.dispose()
    if problems:
        raise ValidationError(problems)
    return out


def _toml_policy(text: Any, table: str, line: int, prefix: str = "") -> Policy:
    """The policy in a ``toml`` cell; its problems name the table and row (the key a problem is
    about as the field, as a policy file's do), each message after ``prefix``."""
    try:
        data = tomllib.loads("" if text is None else str(text))
        return Policy.from_dict(data, file=table)
    except tomllib.TOMLDecodeError as exc:
        problems = [Problem(table, line, "toml", f"not valid TOML: {exc}")]
    except ValidationError as exc:
        problems = exc.problems
    raise ValidationError([Problem(table, line - 1, p.field, prefix + p.message, table=True) for p in problems])


def policy_from_table(df: pd.DataFrame | None) -> Policy:
    """The policy in the ``toml`` column of the one row of the ``policy`` table (None: defaults).

    Raises
    ------
    ValidationError
        No ``toml`` column, not exactly one row, or a bad policy (named ``table policy, row 1``).
    """
    if df is None:
        return Policy()
    if "toml" not in df.columns:
        raise ValidationError([Problem(POLICY, None, "toml", "the policy table needs a toml column", table=True)])
    if len(df) != 1:
        raise ValidationError([Problem(POLICY, None, "toml",
                                       f"the policy table must have exactly one row, not {len(df)}", table=True)])
    return _toml_policy(df["toml"].iloc[0], POLICY, int(df.index[0]))


def policies_from_table(df: pd.DataFrame | None, problems: list[Problem]) -> dict[str, Policy | list[Problem]]:
    """The ``policies`` table as ``models.read_policies`` gives a ``policies/`` folder: name ->
    policy, or the problems reading it found (named by the table's row, prefixed with the
    policy's name). A table without ``name``/``toml`` columns, or a name twice, is a problem
    added to ``problems``."""
    out: dict[str, Policy | list[Problem]] = {}
    if df is None:
        return out
    missing = [c for c in ("name", "toml") if c not in df.columns]
    if missing:
        problems += [Problem(POLICIES, None, c, "the policies table needs name and toml columns", table=True)
                     for c in missing]
        return out
    for line, name, text in zip(df.index, df["name"], df["toml"], strict=True):
        key = str(name).strip()
        if key in out:
            problems.append(Problem(POLICIES, int(line) - 1, "name", f"policy {key!r} is given twice", table=True))
            continue
        try:
            out[key] = _toml_policy(text, POLICIES, int(line), f"policy {key!r}: ")
        except ValidationError as exc:
            out[key] = exc.problems
    return out


# How a problem in a database table names its place. The domain's readers name files and lines
# ("holdings.csv line 8", the header being line 1), and their messages refer to other rows the
# same way ("duplicate ... (first on line 4)", "(lines 5, 9)", "(targets.csv line 3)"). For a
# table read from a database, this is translated where the source is known (the batch, the
# scan), never inside the readers: the place becomes "table holdings, row 7" and every "line N"
# in the message "row N - 1". Rows are named by their NUMBER in the order of all the table's
# columns, left to right (``_frame``), so ``SELECT * FROM holdings ORDER BY 1, 2, ..., n LIMIT 1
# OFFSET 6`` finds row 7 -- rather than by their key values: most batch tables have no key
# (restrictions, transactions, targets, the risk tables), a key given twice is itself a problem
# to name, and a number translates every reference, in the message too, one to one. All the
# columns, not a primary key, so one rule holds on every database without reflecting its keys
# (DuckDB's dialect cannot); where the key's columns come first the order is the key's. The order
# is the database's own (collation, NULLs first or last), the same on every read, which the
# storage order is not (PostgreSQL moves an updated row to the end).
_FILE_LINE = re.compile(r"\b([a-z_]+)\.csv line (\d+)")
_FILE = re.compile(r"\b([a-z_]+)\.csv\b")
_LINES = re.compile(r"\b(lines?) (\d+(?:, \d+)*)")
_WORDING = (  # a message's words about files that mean something else for a database
    (re.compile(r"\bIN_DIR\b"), "the database"),
    (re.compile(r"policy file policies/(\S+?)\.toml\b"), r"policy '\1' in table policies"),
    (re.compile(r"\bpolicies/ has\b"), "it has"),
)


def table_names() -> frozenset[str]:
    """Every table a batch reads from a database."""
    from cvxrebalance.optimizer.apps.batch import PER_HOUSEHOLD, SHARED

    return frozenset((*SHARED, *PER_HOUSEHOLD, POLICY, POLICIES))


def table_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems found in tables read from a database, named by table and row (see above):
    ``holdings.csv line 8 [quantity]`` becomes ``table holdings, row 7 [quantity]``, the header
    (line 1) the table itself; references to rows and tables in the message likewise. Problems
    of other sources, and ones already named so, are kept as they are.

    Examples
    --------
    >>> [str(p) for p in table_problems([Problem("accounts.csv", 6, "account_id",
    ...                                          "duplicate account_id=a (first on line 4)")])]
    ['table accounts, row 5 [account_id]: duplicate account_id=a (first on row 3)']
    """
    names = table_names()

    def table(match: re.Match) -> str:
        return f"table {match.group(1)}" if match.group(1) in names else match.group(0)

    def table_row(match: re.Match) -> str:
        name, line = match.groups()
        return f"table {name}, row {int(line) - 1}" if name in names else match.group(0)

    def rows(match: re.Match) -> str:
        word = "rows" if match.group(1) == "lines" else "row"
        return f"{word} " + ", ".join(str(int(n) - 1) for n in match.group(2).split(", "))

    out = []
    for p in problems:
        name = p.file.removesuffix(".csv")
        if p.table or not p.file.endswith(".csv") or name not in names:
            out.append(p)
            continue
        message = _LINES.sub(rows, _FILE_LINE.sub(table_row, p.message))
        message = _FILE.sub(table, message)
        for pattern, words in _WORDING:
            message = pattern.sub(words, message)
        row = p.row - 1 if p.row is not None and p.row > 1 else None  # line 1: the header, the table
        out.append(replace(p, file=name, row=row, message=message, table=True))
    return out


def table_error(exc: ValidationError) -> ValidationError:
    """``exc`` with its problems named by table and row (``table_problems``)."""
    return ValidationError(table_problems(exc.problems))


def digest(tables: dict[str, pd.DataFrame | None]) -> str:
    """A checksum of tables' names, columns and cells (the database's counterpart of the input
    files' checksums)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        df = tables[name]
        if df is None:
            continue
        h.update(json.dumps([name, [str(c) for c in df.columns]]).encode())
        h.update(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _value(v: Any) -> Any:
    """A cell as a database parameter: numpy scalars as Python ones, NaN as NULL."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def batch_id(out_dir: Path) -> str:
    """The key of a batch's desk rows in the results database: a digest of OUT_DIR's absolute
    path (16 hex digits).

    A batch is its OUT_DIR: rerunning the same command resumes it and rebuilds its combined
    tables whole, so its desk rows are replaced; another OUT_DIR (another day's run, another
    book) is another batch whose rows stay. The household tables are keyed by household
    instead (each household's latest result, whichever batch wrote it). The id is the
    manifest's ``batch_id``; a moved OUT_DIR is a new batch.
    """
    return hashlib.sha256(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]


class ResultsDB:
    """The results database of ``--results-to``: one transaction per household.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL; the result tables are created when missing.
    """

    def __init__(self, url: str):
        from cvxrebalance.optimizer.apps.batch import KEY, RESULT_COLUMNS, is_text

        sa = _sqlalchemy()
        self.url = url
        self.engine = engine(url)
        self.meta = sa.MetaData()

        def table(name: str, key: str, columns: list[str]):  # the key first, then the file's columns
            return sa.Table(name, self.meta, sa.Column(key, sa.String, nullable=False, index=True), *[
                sa.Column(c, sa.String if is_text(c) else sa.Integer if c == "allocations" else sa.Float)
                for c in columns if c != key])

        self.tables = {name: table(t, KEY, RESULT_COLUMNS[name]) for name, t in RESULT_TABLES.items()}
        self.desk = {name: table(t, BATCH_ID, DESK_COLUMNS[name]) for name, t in DESK_TABLES.items()}
        text = ("household_id", "input_digest", "status", "reason")
        self.summary = sa.Table(SUMMARY, self.meta, *[
            sa.Column(c, sa.String if c in text else sa.Boolean if c == "rebalanced" else sa.Float,
                      primary_key=c == KEY) for c in SUMMARY_COLUMNS])
        try:
            self.meta.create_all(self.engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"cannot create the result tables in {shown(url)}: {exc}") from exc

    def written(self) -> dict[str, str | None]:
        """Household -> the input digest of the rows the database holds for it."""
        sa = _sqlalchemy()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.summary.c.household_id, self.summary.c.input_digest))
            return {hid: dig for hid, dig in rows}

    def write_household(self, out_dir: Path, hid: str) -> bool:
        """Write household ``hid``'s finished result (or its error) from OUT_DIR, replacing its
        earlier rows, in one transaction. Returns False when it has neither (not finished).

        Raises
        ------
        OutputError
            The database refused the write (the household's earlier rows are then unchanged).
        """
        from cvxrebalance.optimizer.apps.batch import (
            COMBINED,
            KEY,
            error_file,
            household_dir,
            read_result_csv,
        )

        sa = _sqlalchemy()
        hdir = household_dir(out_dir, hid)
        rows: dict[str, list[dict]] = {name: [] for name in COMBINED}
        if (hdir / "summary.json").exists():
            summary = json.loads((hdir / "summary.json").read_text())
            head = {KEY: hid, "input_digest": summary.get("input_digest"), "status": "ok", "reason": None}
            for name in COMBINED:
                f = hdir / f"{name}.csv"
                if f.exists() and f.stat().st_size > 0:
                    df = read_result_csv(f)
                    rows[name] = [{KEY: hid, **{c: _value(v) for c, v in r.items()}}
                                  for r in df.to_dict("records")]
        elif error_file(out_dir, hid).exists():
            summary = json.loads(error_file(out_dir, hid).read_text())
            head = {KEY: hid, "input_digest": summary.get("input_digest"), "status": "error",
                    "reason": summary.get("reason")}
        else:
            return False
        row = dict(head)
        for col, path in SUMMARY_COLUMNS.items():
            if path is None:
                continue
            v: Any = summary if head["status"] == "ok" else None
            for key in path:
                v = v.get(key) if isinstance(v, dict) else None
            row[col] = _value(v)
        try:
            with self.engine.begin() as conn:  # one transaction: all of the household's rows or none
                for table in (*self.tables.values(), self.summary):
                    conn.execute(sa.delete(table).where(table.c[KEY] == hid))
                for name, table in self.tables.items():
                    if rows[name]:
                        conn.execute(sa.insert(table), rows[name])
                conn.execute(sa.insert(self.summary), [row])
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"cannot write household {hid!r} to {shown(self.url)}: "
                              f"{str(exc).splitlines()[0]}") from exc
        return True

    def write_desk(self, out_dir: Path, batch: str) -> int:
        """Write OUT_DIR's combined desk tables (``DESK_TABLES``, as the combine step wrote them)
        under ``batch`` (``batch_id``), replacing that batch's earlier rows, in one transaction.
        Returns the number of rows written.

        Raises
        ------
        OutputError
            The database refused the write (the batch's earlier rows are then unchanged).
        """
        from cvxrebalance.optimizer.apps.batch import read_result_csv

        sa = _sqlalchemy()
        rows = {name: [{BATCH_ID: batch, **{c: _value(v) for c, v in r.items()}}
                       for r in read_result_csv(out_dir / f"{name}.csv").to_dict("records")]
                for name in self.desk}
        try:
            with self.engine.begin() as conn:  # one transaction: the batch's new rows, or its old ones
                for table in self.desk.values():
                    conn.execute(sa.delete(table).where(table.c[BATCH_ID] == batch))
                for name, table in self.desk.items():
                    if rows[name]:
                        conn.execute(sa.insert(table), rows[name])
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"cannot write the desk tables to {shown(self.url)}: "
                              f"{str(exc).splitlines()[0]}") from exc
        return sum(map(len, rows.values()))

    def sync(self, out_dir: Path, digests: dict[str, str | None]) -> int:
        """Write every household of ``digests`` finished in OUT_DIR whose rows the database lacks
        or holds from another input (a run killed between its files and its database write).
        Returns how many were written."""
        from cvxrebalance.optimizer.apps.batch import finished

        have = self.written()
        done, failed = finished(out_dir, digests)
        ended = done | failed
        todo = [hid for hid in digests if hid in ended and have.get(hid, "\0") != digests[hid]]
        return sum(self.write_household(out_dir, hid) for hid in todo)

    def close(self) -> None:
        self.engine.dispose()
