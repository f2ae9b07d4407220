"""Batch rebalancing: thousands of households from one input directory, resumable.

IN_DIR holds the shared tables (``securities``, ``targets``, the risk model, the optional
``factor_targets``, ``policy.toml``)
and the per-household tables keyed by ``household_id`` (``accounts``, ``holdings`` and the
optional ``transactions``, ``futures`` and ``swaps``), each as ``.csv`` or ``.parquet``. With
model portfolios (``optimizer.domain.models``), ``models`` replaces ``targets`` and
``households`` assigns each household its model, its policy file in ``policies/`` and its
overrides. The
risk tables' rows of the contracts (loadings, specific variances) are shared too: each
household reads those of its own contracts (``RISK_ROWS``).

OUT_DIR gets, per household, ``households/<id>/`` (trades.csv, lots.csv, summary.json and
futures.csv) or ``errors/<id>.json``, each written atomically, so a household that has either is
finished: rerunning the same command after a crash or a kill skips it. At the end the combined
tables are rebuilt from those files: ``trades.csv``, ``lots.csv``, ``futures.csv`` (with
``household_id``; the full header even without rows), ``errors.csv``, the desk's ``orders.csv``,
``order_lots.csv``, ``block_trades.csv`` (per security and side, never netted across clients) and
``allocations.csv`` (``optimizer.apps.orders``), and ``manifest.json`` (input checksums,
versions, counts, timings).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.apps.orders import blocks, order_lots, orders
from cvxrebalance.optimizer.domain.case_io import read_csv
from cvxrebalance.optimizer.domain.errors import CvxRebalanceError, Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.models import (
    HOUSEHOLDS,
    assignment,
    household_policy,
    in_transition,
    model_problems,
    read_policies,
    split_models,
    transition,
    transition_policy,
)
from cvxrebalance.optimizer.domain.output import file_mode, frame_csv, from_spreadsheet_safe
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.tables import file_lines, is_blank, text_cell
from cvxrebalance.optimizer.pipeline.rebalance import rebalance
from cvxrebalance.optimizer.pipeline.result import (
    FUTURES_COLUMNS,
    LOT_COLUMNS,
    TEXT_COLUMNS,
    TRADE_COLUMNS,
    verify_files,
)

SHARED = ("securities", "targets", "covariance", "factor_loadings", "factor_covariance",
          "specific_variance", "factor_targets", "models")
PER_HOUSEHOLD = ("accounts", "holdings", "transactions", "futures", "swaps", "households", "restrictions")
MODELS = "_models"  # in the shared tables: models.csv split by model_id (read_batch)
POLICIES = "_policies"  # in the shared tables: policies/*.toml by name, or the error reading one
COMBINED = ("trades", "lots", "futures")  # the per-household tables the batch also combines
RESULT_COLUMNS = {"trades": TRADE_COLUMNS, "lots": LOT_COLUMNS, "futures": FUTURES_COLUMNS}
KEY = "household_id"
HOUSEHOLD_COLUMNS = list(HOUSEHOLDS)
# Shared tables with a row (and for a covariance over securities, a column) per security or
# contract: each household reads the rows of its own contracts only.
RISK_ROWS = ("covariance", "factor_loadings", "specific_variance")
CONTRACTS = "_contracts"  # in the shared tables: every household's contract ids (read_batch)
FROM_DATABASE = "_database"  # in the shared tables: True when read from a database (``for_source``)


@dataclass
class BatchInput:
    """The shared tables and each household's tables, read once."""

    shared: dict[str, pd.DataFrame | None]
    policy: Policy
    households: dict[str, dict[str, pd.DataFrame | None]]
    files: list[Path] = field(default_factory=list)
    account_numbers: pd.DataFrame | None = None  # ``account_numbers``: the custodian's, for orders


def _read(root: Path, name: str) -> tuple[pd.DataFrame | None, Path | None]:
    if (root / f"{name}.csv").exists() and (root / f"{name}.parquet").exists():
        # Either could be the stale copy; reading one silently would drop the other's rows.
        raise ValidationError([Problem(f"{name}.parquet", None, None,
                                       f"both {name}.csv and {name}.parquet are in IN_DIR: keep one")])
    for ext in (".csv", ".parquet"):
        path = root / f"{name}{ext}"
        if path.exists():
            if ext == ".csv":
                return read_csv(path), path
            df = pd.read_parquet(path)
            if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
                df = df.reset_index()  # an index saved with the file is a column of it
            df = _exact_integers(df, path)
            df.index = pd.RangeIndex(len(df)) + 2  # "line" of a Parquet row: its row number + 1, as in CSV
            df.attrs["file_lines"] = True
            return df, path
    return None, None


def _exact_integers(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``df`` (read from the Parquet file ``path``) with each integer column that has nulls as
    its exact integers and None: pandas reads such a column as floats, so an account number
    48000030 would become the text "48000030.0" (and one above 2**53 another number)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f.name for f in pq.read_schema(path) if pa.types.is_integer(f.type) and f.name in df.columns
             and df[f.name].dtype.kind == "f"]
    if not names:
        return df
    exact = pq.read_table(path, columns=names)
    return df.assign(**{n: pd.Series(exact.column(n).to_pylist(), index=df.index, dtype=object) for n in names})


def _read_tables(root: Path, names, problems: list[Problem]) -> tuple[dict, list[Path], set[str]]:
    """The tables ``names`` (None where absent), the files read, and the names given both as
    .csv and .parquet (their problem added to ``problems``, the table left out)."""
    tables: dict[str, pd.DataFrame | None] = {}
    files: list[Path] = []
    twice: set[str] = set()
    for name in names:
        try:
            tables[name], path = _read(root, name)
        except ValidationError as exc:
            problems += exc.problems
            tables[name], path = None, None
            twice.add(name)
        files += [path] if path else []
    return tables, files, twice


def read_batch(in_dir: str | Path) -> BatchInput:
    """Read IN_DIR: shared tables, the policy, and the per-household tables split by
    ``household_id``. Problems with the shared tables stop the batch (no household can run);
    problems with one household's rows are that household's error.

    Raises
    ------
    ValidationError
        Missing or unreadable shared tables, or per-household tables without ``household_id``.
    """
    root = in_dir if _is_url(in_dir) else Path(in_dir)
    shared, tables, policy, files, shared_digest = read_tables(root)
    try:
        return _split(shared, tables, policy, files, shared_digest)
    except ValidationError as exc:
        raise for_source(exc, shared.get(FROM_DATABASE, False)) from exc


def _is_url(source) -> bool:
    from cvxrebalance.optimizer.apps.database import is_url

    return is_url(source)


def for_source(exc: Exception, from_database: bool) -> Exception:
    """``exc`` as its source names it: a ValidationError about tables read from a database with
    its problems named by table and row (``database.table_problems``), anything else as it is."""
    if from_database and isinstance(exc, ValidationError):
        from cvxrebalance.optimizer.apps.database import table_error

        return table_error(exc)
    return exc


def read_tables(root: Path | str) -> tuple[dict, dict, Policy, list[Path], str]:
    """IN_DIR's tables whole (shared, per-household not yet split), the shared policy, the files
    read and the shared tables' digest; the shared tables (and every model) validated. ``root``
    may be a database URL (``optimizer.apps.database``): the same tables as SQL tables.

    Raises
    ------
    ValidationError
        As ``read_batch``.
    """
    if _is_url(root):
        return _read_db(str(root))
    if not Path(root).is_dir():
        raise ValidationError([Problem(str(root), None, None, _not_a_directory(str(root)))])
    return _validate(*_read_files(Path(root)))


def _not_a_directory(root: str) -> str:
    """Why IN_DIR ``root`` cannot be read: a URL missing its ``//`` (``sqlite:/book.db``), with
    the form meant, or no such directory.

    Examples
    --------
    >>> _not_a_directory("sqlite:/book.db")
    "is neither a directory nor a database URL: a URL has '://' after its scheme: sqlite:///book.db for a database file"
    """
    scheme, colon, rest = root.partition(":")
    if colon and len(scheme) > 1 and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        if scheme.split("+")[0].lower() in ("sqlite", "duckdb"):  # a file: three slashes, then its path
            meant = f"{scheme}:///{rest.lstrip('/')} for a database file"
        else:
            meant = f"{scheme}://user@host/database"
        return f"is neither a directory nor a database URL: a URL has '://' after its scheme: {meant}"
    return "no such directory"


def _read_files(root: Path) -> tuple:
    """IN_DIR's files: the tables, the policies, the problems reading them, the files read and the
    shared files' digest."""
    problems: list[Problem] = []
    shared, files, twice = _read_tables(root, SHARED, problems)
    shared_files = list(files) + ([root / "policy.toml"] if (root / "policy.toml").exists() else [])
    policies = read_policies(root / "policies")
    shared_files += sorted((root / "policies").glob("*.toml")) if (root / "policies").is_dir() else []
    tables, more, twice_too = _read_tables(root, PER_HOUSEHOLD, problems)
    files += more
    policy = Policy()
    try:
        policy = Policy.from_toml(root / "policy.toml")
        files += [root / "policy.toml"] if (root / "policy.toml").exists() else []
    except ValidationError as exc:
        problems += exc.problems
    shared_digest = hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).digest()
                                            for p in shared_files)).hexdigest()
    return shared, tables, policy, policies, twice | twice_too, problems, files, shared_digest


def _read_db(url: str) -> tuple[dict, dict, Policy, list[Path], str]:
    """``read_tables`` of a database (``optimizer.apps.database``): no files, a digest of the
    shared tables' cells."""
    from cvxrebalance.optimizer.apps import database

    found = database.read_db_tables(url)
    problems: list[Problem] = []
    policy = Policy()
    try:
        policy = database.policy_from_table(found[database.POLICY])
    except ValidationError as exc:
        problems += exc.problems
    policies = database.policies_from_table(found[database.POLICIES], problems)
    shared = {name: found[name] for name in SHARED}
    tables = {name: found[name] for name in PER_HOUSEHOLD}
    shared_digest = database.digest({**shared, database.POLICY: found[database.POLICY],
                                     database.POLICIES: found[database.POLICIES]})
    try:
        out = _validate(shared, tables, policy, policies, set(), problems, [], shared_digest)
    except ValidationError as exc:
        raise for_source(exc, True) from exc
    out[0][FROM_DATABASE] = True
    return out


def _validate(shared: dict, tables: dict, policy: Policy, policies: dict, twice: set[str],
              problems: list[Problem], files: list[Path], shared_digest: str) -> tuple:
    """The tables read (``_read_files`` or ``_read_db``) checked: ``read_tables``."""
    for name in ("securities", "targets"):
        if shared[name] is None and name not in twice and not (name == "targets" and shared["models"] is not None):
            problems.append(Problem(f"{name}.csv", None, None, "shared table is missing from IN_DIR (or, "
                                    "for targets, models.csv with households.csv)" if name == "targets" else
                                    "shared table is missing from IN_DIR"))
    if shared["models"] is not None and shared["targets"] is not None:
        problems.append(Problem("models.csv", None, None, "give targets.csv or models.csv, not both"))
    models = split_models(shared["models"], problems) if shared["models"] is not None else {}
    for name, df in tables.items():
        if df is not None and KEY not in df.columns:
            problems.append(Problem(f"{name}.csv", 1, KEY, "per-household table needs a household_id column"))
    for name in ("accounts", "holdings"):
        if tables[name] is None and name not in twice:
            problems.append(Problem(f"{name}.csv", None, None, "per-household table is missing from IN_DIR"))
    if models and tables["households"] is None and "households" not in twice:
        problems.append(Problem("households.csv", None, None, "models.csv needs households.csv: each "
                                "household's model_id"))
    if tables["households"] is not None:
        for col in tables["households"].columns:
            if col not in HOUSEHOLD_COLUMNS:
                problems.append(Problem("households.csv", 1, str(col), "unknown column; known: "
                                        + ", ".join(HOUSEHOLD_COLUMNS)))
    if tables["accounts"] is not None and {KEY, "account_number"} <= set(tables["accounts"].columns):
        problems += shared_account_numbers(tables["accounts"])
    if problems:
        raise ValidationError(problems)
    shared[CONTRACTS] = _contract_ids(tables)
    shared[MODELS], shared[POLICIES] = models, policies
    for model_id in models:  # each model is a targets table: a bad one stops the batch, naming models.csv
        try:
            shared_household(shared, model_id)
        except ValidationError as exc:  # a shared table's problem once, not once per model
            problems += [p for p in model_problems(exc.problems, model_id) if p not in problems]
    if problems:
        raise ValidationError(problems)
    if not models:
        shared_household(shared)  # bad shared tables stop the batch here, naming file, line, field
    return shared, tables, policy, files, shared_digest


def household_ids(df: pd.DataFrame, name: str) -> tuple[pd.Series, list[Problem]]:
    """A per-household table's ``household_id`` cells as trimmed text, and a problem per row
    without one (an empty cell, or a null in Parquet: an error, never a row dropped by groupby)."""
    keys = text_cells(df[KEY])
    blank = (keys == "").to_numpy()
    lines = file_lines(df)
    return keys, [Problem(f"{name}.csv", lines[j], KEY, "missing household_id: the row belongs to no household")
                  for j in np.flatnonzero(blank)]


def text_cells(values: pd.Series) -> pd.Series:
    """Cells as trimmed text, blank ("") for a missing one (None, NaN, a SQL NULL)."""
    return values.astype(object).where(values.notna(), "").map(str).str.strip()


def _number_cells(values: pd.Series) -> pd.Series:
    """Custodian account numbers as the household reads them (``tables.text_cell``: the digits of
    an integer), blank ("") for a missing one or one the household refuses (a float: it names it)."""
    def text(v) -> str:
        try:
            return "" if is_blank(v) else text_cell(v)
        except ValueError:
            return ""

    return values.astype(object).map(text)


def shared_account_numbers(accounts: pd.DataFrame) -> list[Problem]:
    """A problem per accounts.csv row whose custodian ``account_number`` another household's
    account already has, ignoring case (as a household's own accounts, ``household._unique_numbers``):
    one number is one custodian account, of one household, and an order sent to it would go to
    the wrong client (it stops the batch: both households are in doubt)."""
    rows = pd.DataFrame({"number": _number_cells(accounts["account_number"]).to_numpy(),
                         "owner": text_cells(accounts[KEY]).to_numpy(), "line": file_lines(accounts)})
    rows = rows[(rows["number"] != "") & (rows["owner"] != "")]  # a row of no household is named as such
    rows["key"] = rows["number"].str.casefold()
    first = rows.drop_duplicates("key").set_index("key")  # each number's first row
    out = []
    for number, owner, line, key in rows.itertuples(index=False):
        if owner != first.at[key, "owner"]:
            spelled = "" if first.at[key, "number"] == number else f" as {first.at[key, 'number']}"
            out.append(Problem("accounts.csv", int(line), "account_number",
                               f"account number {number} is also household {first.at[key, 'owner']}'s{spelled} "
                               f"(line {first.at[key, 'line']}): a custodian account belongs to one household"))
    return out


def account_numbers(accounts: pd.DataFrame | None) -> pd.DataFrame:
    """``household_id, account_id, account_number`` of every account of the whole accounts table
    that has a custodian number (for the desk's orders: ``optimizer.apps.orders``)."""
    columns = [KEY, "account_id", "account_number"]
    if accounts is None or not set(columns) <= set(accounts.columns):
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame({KEY: text_cells(accounts[KEY]).to_numpy(),
                        "account_id": text_cells(accounts["account_id"]).to_numpy(),
                        "account_number": _number_cells(accounts["account_number"]).to_numpy()})
    return out[out["account_number"] != ""].drop_duplicates([KEY, "account_id"]).reset_index(drop=True)


def _split(shared: dict, tables: dict, policy: Policy, files: list[Path], shared_digest: str) -> BatchInput:
    """The per-household tables split by ``household_id``, each household with its digest."""
    households: dict[str, dict[str, pd.DataFrame | None]] = {}
    digests: dict[str, list[str]] = {}
    blank_ids: list[Problem] = []
    for name, df in tables.items():
        if df is None:
            continue
        # Ids are text, trimmed like every other text cell ("h1 " is h1).
        keys, blank = household_ids(df, name)
        blank_ids += blank
        df = df.assign(**{KEY: keys})
        # A fingerprint of each household's rows (order-free sum of row hashes, and the count),
        # so a rerun notices a household whose input changed.
        row_hash = pd.Series(pd.util.hash_pandas_object(df.drop(columns=[KEY]), index=False).to_numpy(),
                             index=df.index)
        sums = row_hash.groupby(keys).sum()
        sizes = keys.value_counts()
        rest = df.drop(columns=[KEY])  # once, not per household (0.7 ms each)
        for hid, part in rest.groupby(keys.to_numpy(), sort=False):
            part.attrs["file_lines"] = df.attrs.get("file_lines", False)
            part.attrs["table"] = df.attrs.get("table")  # a database's table (restrictions.cite)
            households.setdefault(str(hid), {n: None for n in PER_HOUSEHOLD})[name] = part
            digests.setdefault(str(hid), []).append(f"{name}:{int(sums[hid]) & (2**64 - 1)}:{sizes[hid]}")
    if blank_ids:
        raise ValidationError(blank_ids)
    for hid, parts in digests.items():
        text = shared_digest + "|" + "|".join(sorted(parts))
        households[hid]["_digest"] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return BatchInput(shared, policy, dict(sorted(households.items())), files,
                      account_numbers(tables.get("accounts")))


# A household id used as it is for its directory and error file (with a hash suffix when it has
# capitals); any other id (path separators, "." or "..", spaces, a leading dash, very long) is named
# by a hash instead, which no plain id can equal (they never start with "~"), so every household
# gets its own place inside OUT_DIR, also on a case-insensitive file system.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{k}" for k in range(10)), *(f"LPT{k}" for k in range(10))}


def dir_name(hid: str) -> str:
    """The household's file-system name under OUT_DIR (see ``_PLAIN_ID``).

    Examples
    --------
    >>> dir_name("h00017"), dir_name("../../x")[:1], dir_name("H1").lower() != dir_name("h1").lower()
    ('h00017', '~', True)
    """
    digest = hashlib.sha256(hid.encode()).hexdigest()
    if _PLAIN_ID.fullmatch(hid) and hid.split(".")[0].upper() not in _RESERVED:
        # On a case-insensitive file system (macOS, Windows) "H1" and "h1" would share a folder:
        # an id with capitals carries a hash of its exact spelling.
        return hid if hid == hid.lower() else f"{hid}~{digest[:8]}"
    return "~" + digest[:32]


def household_dir(out_dir: Path, hid: str) -> Path:
    return out_dir / "households" / dir_name(hid)


def error_file(out_dir: Path, hid: str) -> Path:
    return out_dir / "errors" / f"{dir_name(hid)}.json"


def shared_household(shared: dict, model_id: str | None = None) -> Household:
    """The shared tables validated once, as a household without accounts of its own (nor
    contracts: the risk tables' rows of every household's contracts are left out), with the
    targets of ``model_id`` (models.csv) or the shared targets.csv."""
    placeholder = pd.DataFrame([{"account_id": "_shared", "type": "tax_exempt", "cash": "0"}])
    holdings = pd.DataFrame(columns=["account_id", "security_id", "quantity"])
    risk = _risk_tables(shared, frozenset())
    return Household.from_frames(
        shared["securities"], placeholder, holdings, targets_of(shared, model_id),
        covariance=risk["covariance"], factor_loadings=risk["factor_loadings"],
        factor_covariance=shared["factor_covariance"], specific_variance=risk["specific_variance"],
        factor_targets=shared.get("factor_targets"))


def _contract_ids(tables: dict) -> frozenset[str]:
    """The contract ids of futures and swaps tables (a batch's whole tables, or one household's
    frames), trimmed as every text cell is."""
    ids = (str(v).strip() for name, column in (("futures", "contract_id"), ("swaps", "swap_id"))
           if tables.get(name) is not None and column in tables[name].columns
           for v in tables[name][column].dropna().tolist())
    return frozenset(ids) - {""}


def _risk_tables(shared: dict, own: frozenset[str]) -> dict[str, pd.DataFrame | None]:
    """The shared risk tables (``RISK_ROWS``) without the rows (and a security covariance's
    columns) of the contracts of other households than the one whose contract ids are ``own``;
    each row keeps its file line."""
    drop = shared.get(CONTRACTS, frozenset()) - own
    out: dict[str, pd.DataFrame | None] = {}
    for name in RISK_ROWS:
        df = shared.get(name)
        if df is None or not drop:
            out[name] = df
            continue
        ids = df.iloc[:, 0].astype(str).str.strip()
        keep = ~ids.isin(drop).to_numpy()
        part = df.set_axis(file_lines(df))[keep]
        if name == "covariance":
            part = part[[c for c in part.columns if str(c).strip() not in drop]]
        part.attrs["file_lines"] = True
        out[name] = part
    return out


def targets_of(shared: dict, model_id: str | None) -> pd.DataFrame:
    """The targets table of a model (models.csv), or the shared targets.csv (``None``)."""
    return shared["targets"] if model_id is None else shared[MODELS][model_id]


def assigned(frames: dict, shared: dict, policy: Policy) -> tuple[str | None, Policy, pd.Series | None]:
    """The household's model (``None`` without models.csv), its policy (its households.csv row's
    policy file and overrides, ``optimizer.domain.models``, else the shared ``policy``) and that
    row (``None`` without households.csv).

    Raises
    ------
    ValidationError
        Its households.csv row is missing, repeated or bad (naming households.csv's line and field).
    """
    models = shared.get(MODELS) or {}
    row = frames.get("households")
    if row is None:
        if models:
            raise ValidationError([Problem("households.csv", None, KEY, "the household has no row: give its model_id")])
        return None, policy, None
    line, values = assignment(row, models)
    return ((values["model_id"] or None) if models else None,
            household_policy(values, line, policy, shared.get(POLICIES) or {}), values)


def household_and_policy(hid: str, frames: dict, shared: dict, policy: Policy,
                         bases: dict) -> tuple[Household, Policy, pd.Series | None]:
    """The household on its model's targets, its policy and its households.csv row
    (``assigned``). ``bases``: the
    shared tables validated once per model (``shared_or_none``), filled as models are met.

    Raises
    ------
    ValidationError
        The household's own rows are bad (naming file, line and field).
    """
    model_id, policy, row = assigned(frames, shared, policy)
    if model_id not in bases:
        bases[model_id] = shared_or_none(shared, model_id)
    return build_household(hid, frames, shared, bases[model_id], model_id), policy, row


def run_household(hid: str, frames: dict, shared: dict, policy: Policy, out_dir: Path, bases: dict) -> dict:
    """Rebalance one household and write its result or its error; never raises for the
    household's own problems. ``bases``: see ``household_and_policy``. Returns a status row."""
    t0 = time.perf_counter()
    digest = frames.get("_digest")
    try:
        household, policy, row = household_and_policy(hid, frames, shared, policy, bases)
        moving = in_transition(row)  # to another model: phased by the gain budget
        result = rebalance(household, transition_policy(policy) if moving else policy)
        result.summary["input_digest"] = digest
        if moving:
            result.summary["transition"] = transition(row, policy, result.summary, policy.bands, result.lots)
        error_file(out_dir, hid).unlink(missing_ok=True)
        result.write(household_dir(out_dir, hid))
        tables = {name: result.tables[name] for name in COMBINED}
        return {KEY: hid, "status": "ok", "seconds": time.perf_counter() - t0,
                "trades": len(tables["trades"]["side"]), "tracking_error": result.summary["tracking_error"]["after"],
                "tables": tables}
    except Exception as exc:  # noqa: BLE001 - one household's failure, whatever it is, is its own
        return record_error(out_dir, hid, for_source(exc, shared.get(FROM_DATABASE, False)), digest, t0)


def record_error(out_dir: Path, hid: str, exc: Exception, digest: str | None, t0: float) -> dict:
    """A household's failure as its error file (written atomically; its summary.json, if an
    earlier run left one, removed so it is not taken as finished) and its status row."""
    reason = str(exc) if isinstance(exc, CvxRebalanceError) else f"{type(exc).__name__}: {exc}"
    (household_dir(out_dir, hid) / "summary.json").unlink(missing_ok=True)
    _write_atomic(error_file(out_dir, hid),
                  json.dumps({KEY: hid, "error": type(exc).__name__, "reason": reason,
                              "input_digest": digest}, indent=2))
    return {KEY: hid, "status": "error", "seconds": time.perf_counter() - t0, "reason": reason}


def build_household(hid: str, frames: dict, shared: dict, base: Household | None = None,
                    model_id: str | None = None) -> Household:
    """One household from the shared tables and its own (``read_batch``'s frames), on its
    model's targets (``model_id``; None: targets.csv); ``base``: the shared tables already
    validated with those targets (``shared_household``), reused when it can be.

    Raises
    ------
    ValidationError
        The household's own rows are bad (naming file, line and field).
    """
    frames = {**frames,
              "accounts": _or_empty(frames.get("accounts"), ["account_id", "type", "cash"]),
              "holdings": _or_empty(frames.get("holdings"), ["account_id", "security_id", "quantity"])}
    if base is not None and frames.get("futures") is None and frames.get("swaps") is None:
        return base.with_accounts(frames["accounts"], frames["holdings"], frames.get("transactions"), name=hid,
                                  restrictions=frames.get("restrictions"))
    risk = _risk_tables(shared, _contract_ids(frames))
    return Household.from_frames(
        shared["securities"], frames["accounts"], frames["holdings"], targets_of(shared, model_id),
        covariance=risk["covariance"], factor_loadings=risk["factor_loadings"],
        factor_covariance=shared["factor_covariance"], specific_variance=risk["specific_variance"],
        futures=frames.get("futures"), transactions=frames.get("transactions"), name=hid, swaps=frames.get("swaps"),
        factor_targets=shared.get("factor_targets"), restrictions=frames.get("restrictions"))


def _or_empty(df: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """A household with no rows in a table (an all-cash client has no holdings)."""
    return pd.DataFrame(columns=columns) if df is None else df


def run_chunk(chunk: list[tuple[str, dict]], shared: dict, policy: Policy, out_dir: str,
              parent: int | None = None) -> list[dict]:
    """Rebalance a chunk of households in this worker (the unit of work of every executor).

    ``parent``: the driver's process id; a local worker whose driver was killed stops instead
    of writing on as an orphan.
    """
    bases: dict = {}  # the shared tables validated once per model met in this chunk
    rows = []
    for hid, frames in chunk:
        stop_if_orphaned(parent)
        rows.append(run_household(hid, frames, shared, policy, Path(out_dir), bases))
    return rows


def shared_or_none(shared: dict, model_id: str | None = None) -> Household | None:
    """The shared tables validated once per chunk (and model), or None when they are bad (each
    household then reports their problems itself)."""
    try:
        return shared_household(shared, model_id)
    except ValidationError:
        return None


def stop_if_orphaned(parent: int | None) -> None:
    """A local worker whose driver (process ``parent``) was killed stops instead of writing on."""
    if parent is not None and os.getppid() != parent:
        os._exit(3)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; a result file follows the umask
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def finished(out_dir: Path, digests: dict[str, str | None]) -> tuple[set[str], set[str]]:
    """Households already done (a summary.json, written last) and already failed (an error file)
    from the same input (``digests``: household -> fingerprint; a changed household runs again)."""
    def same(path: Path, hid: str) -> bool:
        try:
            return json.loads(path.read_text()).get("input_digest") == digests.get(hid)
        except (OSError, ValueError):
            return False

    done = {hid for hid in digests if same(household_dir(out_dir, hid) / "summary.json", hid)
            and verify_files(household_dir(out_dir, hid))}  # a damaged household runs again
    failed = {hid for hid in digests if same(error_file(out_dir, hid), hid)}
    return done, failed


def combine(out_dir: Path, ids: list[str], fresh: dict[str, dict] | None = None, cross: bool = False,
            numbers: pd.DataFrame | None = None) -> dict[str, int]:
    """Rebuild the combined tables and the block trades; returns row counts.

    ``fresh``: household -> its tables (column arrays) from this run, taken as they are; the
    households finished by an earlier run are read back from their files, so a resumed run has
    every household once. ``numbers``: the custodian account numbers (``account_numbers``),
    carried to the orders.
    """
    fresh = fresh or {}
    # The manifest is written last: until then an earlier run's must not vouch for these tables.
    (out_dir / "manifest.json").unlink(missing_ok=True)
    parts: dict[str, list[dict]] = {name: [] for name in COMBINED}
    errors = []
    for hid in ids:
        hdir = household_dir(out_dir, hid)
        if hid in fresh:
            for name in COMBINED:
                columns = fresh[hid][name]
                n = len(next(iter(columns.values())))
                if n:
                    parts[name].append({KEY: np.full(n, hid, dtype=object), **columns})
        elif (hdir / "summary.json").exists():
            for name in COMBINED:
                f = hdir / f"{name}.csv"
                if f.exists() and f.stat().st_size > 0:
                    df = read_result_csv(f)
                    if len(df):
                        parts[name].append({KEY: np.full(len(df), hid, dtype=object),
                                            **{c: df[c].to_numpy() for c in df.columns}})
        elif error_file(out_dir, hid).exists():
            errors.append(json.loads(error_file(out_dir, hid).read_text()))
    counts = {}
    frames = {}
    for name, chunks in parts.items():
        if chunks:
            frames[name] = pd.DataFrame({c: np.concatenate([p[c] for p in chunks]) for c in chunks[0]})
        else:  # no rows: the full header all the same (a file's columns never depend on its rows)
            frames[name] = pd.DataFrame(columns=[KEY, *RESULT_COLUMNS[name]])
        _write_atomic(out_dir / f"{name}.csv", frame_csv(frames[name]))
        counts[name] = len(frames[name])
    err = pd.DataFrame(errors, columns=[KEY, "error", "reason"])
    _write_atomic(out_dir / "errors.csv", frame_csv(err))
    counts["errors"] = len(err)
    order_table = orders(frames["trades"], numbers)
    block, alloc = blocks(order_table, cross)
    desk = {"orders": order_table, "order_lots": order_lots(order_table, frames["lots"]),
            "block_trades": block, "allocations": alloc}
    for name, table in desk.items():  # the files of orders.DESK_COLUMNS
        _write_atomic(out_dir / f"{name}.csv", frame_csv(table))
        counts[name] = len(table)
    return counts


def is_text(column: str) -> bool:
    """Whether a column of the result and desk tables holds text (ids, sides, reasons, dates)
    rather than numbers."""
    return column in TEXT_COLUMNS or column in (KEY, "order_id", "block_id", "account_number", "venue")


def read_result_csv(path: Path) -> pd.DataFrame:
    """A per-household result file as it was written: ids as text, exactly (no "NA" -> blank,
    no "0012" -> 12.0; the spreadsheet quote removed), numbers as numbers."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in df.columns:
        if is_text(c):
            df[c] = df[c].map(from_spreadsheet_safe).astype(object)
        else:
            df[c] = pd.to_numeric(df[c].replace("", None))
    return df


def manifest(batch: BatchInput, counts: dict, timings: dict, executor: str, workers: int) -> dict:
    """Inputs' checksums, versions, counts and timings of a run."""
    from importlib.metadata import version

    import cvxpy
    import numpy

    __version__ = version("cvxrebalance")

    versions = {"cvxrebalance": __version__, "python": platform.python_version(), "cvxpy": cvxpy.__version__,
                "numpy": numpy.__version__, "pandas": pd.__version__}
    for mod in ("piqp", "clarabel", "osqp"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            versions[mod] = None
    checksums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in batch.files}
    return {"inputs": checksums, "versions": versions, "counts": counts, "timings": timings,
            "executor": executor, "workers": workers}
