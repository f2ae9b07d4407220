"""A batch's tables in a database, and its results written back to one (issue 13).

``cvxrebalance batch DB_URL OUT_DIR`` reads the same tables as a batch IN_DIR
(``batch.SHARED`` and ``batch.PER_HOUSEHOLD``) as SQL tables of that name, through SQLAlchemy
Core (``select(table)``, never SQL built from strings): ``sqlite:///book.db``,
``postgresql+psycopg://user@host/db`` (``postgresql://`` is read as psycopg 3),
``duckdb:///book.duckdb`` when duckdb-engine is installed. The policy is the ``toml`` text column
of the one row of a ``policy`` table (no table: the default policy); per-household policies
(``households.policy``) are the ``name`` and ``toml`` columns of a ``policies`` table.

Each table's rows keep the order the database returns them in (by primary key when the table
has one: give it one for a stable order); a problem names row N as "line N + 1", as for a
Parquet file (the header is line 1), with the table as ``<table>.csv``.

``--results-to DB_URL`` (``ResultsDB``) writes each finished household's rows to the tables
``result_trades``, ``result_lots``, ``result_futures`` and ``result_summary`` (created when
missing) in one transaction that first deletes the household's earlier rows, so a rerun, also
after a kill, leaves exactly one set of rows per household.

Needs the optional extra ``pip install 'cvxrebalance[db]'``; SQLAlchemy is imported only here,
and only when a database is used.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import CvxRebalanceError, OutputError, Problem, ValidationError
from cvxrebalance.optimizer.domain.policy import Policy

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
POLICY = "policy"  # table with one row and a ``toml`` text column
POLICIES = "policies"  # table with ``name`` and ``toml`` text columns
RESULT_TABLES = {"trades": "result_trades", "lots": "result_lots", "futures": "result_futures"}
SUMMARY = "result_summary"
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


def _frame(conn, table) -> pd.DataFrame:
    """All rows of ``table`` (by primary key when it has one), indexed by "line" = row + 1."""
    sa = _sqlalchemy()
    query = sa.select(table)
    if len(table.primary_key.columns):
        query = query.order_by(*table.primary_key.columns)
    result = conn.execute(query)
    df = pd.DataFrame.from_records(list(result), columns=list(result.keys()))
    df = df.astype({c: object for c in df.columns if df[c].dtype == object})
    df.index = pd.RangeIndex(len(df)) + 2  # as a Parquet row: its row number + 1 (header = line 1)
    df.attrs["file_lines"] = True
    return df


def read_db_tables(url: str, names: Iterable[str] | None = None) -> dict[str, pd.DataFrame | None]:
    """The batch tables of the database at ``url``: ``{name: DataFrame or None}`` for each of
    ``names`` (default: every batch table, ``policy`` and ``policies``), None where the
    database has no such table; each frame indexed by line (row + 1) with ``attrs["file_lines"]``.

    Raises
    ------
    DatabaseError
        The database cannot be used (``engine``).
    """
    from cvxrebalance.optimizer.apps.batch import PER_HOUSEHOLD, SHARED

    sa = _sqlalchemy()
    names = list(names) if names is not None else [*SHARED, *PER_HOUSEHOLD, POLICY, POLICIES]
    eng = engine(url, must_exist=True)
    out: dict[str, pd.DataFrame | None] = {}
    try:
        with eng.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for name in names:
                out[name] = (_frame(conn, sa.Table(name, sa.MetaData(), autoload_with=conn))
                             if name in present else None)
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"{shown(url)}: cannot read the tables: {str(exc).splitlines()[0]}") from exc
    finally:
        eng.dispose()
    return out


def _toml_policy(text: Any, file: str, line: int | None) -> Policy:
    try:
        data = tomllib.loads("" if text is None else str(text))
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError([Problem(file, line, "toml", f"not valid TOML: {exc}")]) from exc
    return Policy.from_dict(data, file=file)


def policy_from_table(df: pd.DataFrame | None) -> Policy:
    """The policy in the ``toml`` column of the one row of the ``policy`` table (None: defaults).

    Raises
    ------
    ValidationError
        No ``toml`` column, not exactly one row, or a bad policy (named ``policy.csv``).
    """
    if df is None:
        return Policy()
    if "toml" not in df.columns:
        raise ValidationError([Problem("policy.csv", 1, "toml", "the policy table needs a toml column")])
    if len(df) != 1:
        raise ValidationError([Problem("policy.csv", None, "toml",
                                       f"the policy table must have exactly one row, not {len(df)}")])
    return _toml_policy(df["toml"].iloc[0], "policy.csv", int(df.index[0]))


def policies_from_table(df: pd.DataFrame | None, problems: list[Problem]) -> dict[str, Policy | list[Problem]]:
    """The ``policies`` table as ``models.read_policies`` gives a ``policies/`` folder: name ->
    policy, or the problems reading it found. A table without ``name``/``toml`` columns, or a
    name twice, is a problem added to ``problems``."""
    out: dict[str, Policy | list[Problem]] = {}
    if df is None:
        return out
    missing = [c for c in ("name", "toml") if c not in df.columns]
    if missing:
        problems += [Problem("policies.csv", 1, c, "the policies table needs name and toml columns")
                     for c in missing]
        return out
    for line, name, text in zip(df.index, df["name"], df["toml"], strict=True):
        key = str(name).strip()
        if key in out:
            problems.append(Problem("policies.csv", int(line), "name", f"policy {key!r} is given twice"))
            continue
        try:
            out[key] = _toml_policy(text, f"policies/{key}.toml", None)
        except ValidationError as exc:
            out[key] = exc.problems
    return out


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


class ResultsDB:
    """The results database of ``--results-to``: one transaction per household.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL; the result tables are created when missing.
    """

    def __init__(self, url: str):
        from cvxrebalance.optimizer.apps.batch import KEY, RESULT_COLUMNS, TEXT_COLUMNS

        sa = _sqlalchemy()
        self.url = url
        self.engine = engine(url)
        self.meta = sa.MetaData()
        self.tables = {}
        for name, table in RESULT_TABLES.items():
            cols = [sa.Column(KEY, sa.String, nullable=False, index=True)]
            cols += [sa.Column(c, sa.String if c in TEXT_COLUMNS else sa.Float) for c in RESULT_COLUMNS[name]]
            self.tables[name] = sa.Table(table, self.meta, *cols)
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
