"""Policy sweeps: every household of a batch input backtested under every policy, resumable.

IN_DIR is a batch input directory (``batch.read_batch``: the shared tables, ``policy.toml`` and
the per-household tables keyed by ``household_id``) plus the market data (``prices.csv`` or
``returns.csv``, ``scenarios.market.load_market``) and an optional ``flows.csv`` (``date,
household_id, account_id, amount``: each household's contributions and withdrawals; rows dated
outside the window are left out, a row inside it must fall on a date of the market data).

Each household is backtested once under all the policies (``scenarios.backtests.backtest``),
over the same market window. The unit of work is a chunk of households on the batch executors
(``executors.execute``: local processes or Dask). OUT_DIR gets, per household and written as one
unit, ``households/<id>/comparison.csv`` (the backtest statistics, one row per policy) and, last,
``summary.json`` with the ``input_digest`` (the household's rows, the shared tables, the market
data and window, the flows and every policy) and the checksum of comparison.csv; or
``errors/<id>.json``. A household with either from the same inputs is finished: a rerun after a
crash or a kill skips it, and a changed policy, window or input runs it again. Then the combined
tables: ``comparison.csv`` (``household_id, policy`` and every statistic), ``policies.csv``
(per policy, the median, mean, 10th and 90th percentile across households of each statistic of
``SUMMARY_STATS``), ``errors.csv`` and, last, ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.apps.batch import (
    KEY,
    MODELS,
    BatchInput,
    _read,
    _write_atomic,
    error_file,
    household_and_policy,
    household_dir,
    manifest,
    read_batch,
    record_error,
    shared_household,
    stop_if_orphaned,
)
from cvxrebalance.optimizer.apps.executors import execute, pending
from cvxrebalance.optimizer.domain.errors import OutputError, Problem, ValidationError
from cvxrebalance.optimizer.domain.output import frame_csv, from_spreadsheet_safe, write_files
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.tables import file_lines
from cvxrebalance.scenarios.backtests import FLOWS, STATS, backtest, parse_flows
from cvxrebalance.scenarios.market import Market, load_market

# The statistics summarized across households in policies.csv, and how.
SUMMARY_STATS = ["final_value", "ann_return", "ann_vol", "max_drawdown", "turnover", "costs", "taxes_paid",
                 "after_tax_value", "events"]
AGGREGATES = ("median", "mean", "p10", "p90")
COMPARISON_COLUMNS = [KEY, "policy", *STATS]
CHUNK = 10  # households per task at most: a backtest is hundreds of decisions, not one
DIGEST_VERSION = "sweep-1"  # part of every input digest: a new layout of the outputs reruns


@dataclass
class SweepInput:
    """What a sweep reads once: the batch input, the market window, the policies and, per
    household, its flows and input digest (in ``batch.households[id]["flows"]`` and
    ``["_sweep_digest"]``)."""

    batch: BatchInput
    market: Market
    policies: dict[str, Policy]
    policy_files: dict[str, Path | None] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # market data and flows, for the manifest


def read_sweep(in_dir: str | Path, policies: dict[str, Policy | str | Path] | None = None, *,
               start=None, end=None) -> SweepInput:
    """Read IN_DIR for a sweep: the batch tables, the market data in its window, the flows
    split by household, and the policies (default: IN_DIR/policy.toml, named ``"policy"``).

    Parameters
    ----------
    policies : dict of name -> Policy or path of a policy file, optional
    start, end : date-like, optional
        The window of the market data (``Market.window``); default: all of it.

    Raises
    ------
    ValidationError
        Every problem found at once, each naming file, line and field: the batch's shared
        tables, the market data (missing, or bad cells), a policy file (missing or bad), a
        window with no period, flows rows without a known household.
    """
    root = Path(in_dir)
    problems: list[Problem] = []
    batch = market = None
    try:
        batch = read_batch(root)
    except ValidationError as exc:
        problems += exc.problems
    try:
        market = load_market(root)
        if market is None:
            problems.append(Problem("returns.csv", None, None, "IN_DIR has neither prices.csv nor returns.csv: "
                                    "a sweep needs market data to backtest over"))
        elif start is not None or end is not None:
            market = _window(market, start, end, problems)
    except ValidationError as exc:
        problems += exc.problems
    if batch is not None and market is not None:
        problems += _unpriced(batch, market)
    chosen, policy_files = _policies(policies, batch, problems)
    flows, flows_path = _flows_by_household(root, batch, problems)
    if problems:
        raise ValidationError(problems)
    files = [root / market.source] + ([flows_path] if flows_path else [])
    # What the backtests see of the market (its window's returns, start and frequency), so data
    # beyond the window may change without rerunning anything.
    seen = pd.util.hash_pandas_object(market.returns).to_numpy().tobytes()
    common = "|".join([DIGEST_VERSION, hashlib.sha256(seen).hexdigest(), str(market.start.date()),
                       market.frequency, policies_digest(chosen)])
    for hid, frames in batch.households.items():
        part = flows.get(hid)
        frames["flows"] = part
        text = "|".join([common, str(frames.get("_digest")), _rows_digest(part)])
        frames["_sweep_digest"] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return SweepInput(batch, market, chosen, policy_files, files)


def _rows_digest(part: pd.DataFrame | None) -> str:
    """A fingerprint of a household's flows rows, free of their order and lines (as the batch's
    of its other tables), so editing another household's flows reruns only that one."""
    if part is None:
        return "-"
    rows = np.sort(pd.util.hash_pandas_object(part, index=False).to_numpy())
    return hashlib.sha256(rows.tobytes()).hexdigest()


def _unpriced(batch: BatchInput, market: Market) -> list[Problem]:
    """A liquid security of securities.csv without a series in the market data (every household
    would fail on it, so it stops the sweep instead)."""
    models = batch.shared.get(MODELS) or {}
    sec = shared_household(batch.shared, next(iter(models), None)).securities  # validated by read_batch
    return [Problem(market.source, 1, sid, "no return series for this liquid security of securities.csv")
            for sid, liquid in zip(sec["security_id"], sec["liquid"], strict=True)
            if liquid and sid not in market.returns.columns]


def _window(market: Market, start, end, problems: list[Problem]) -> Market | None:
    try:
        return market.window(None if start is None else pd.Timestamp(start),
                             None if end is None else pd.Timestamp(end))
    except ValueError as exc:  # an unreadable date, or a window with no period
        problems.append(Problem(market.source, None, "date", f"window {start or 'start'} to {end or 'end'}: {exc}"))
        return None


def _policies(policies: dict | None, batch: BatchInput | None,
              problems: list[Problem]) -> tuple[dict[str, Policy], dict[str, Path | None]]:
    """Policies by name (a path is read as a policy file, which must exist), and their files."""
    if policies is None:
        return {"policy": batch.policy if batch is not None else Policy()}, {"policy": None}
    if not policies:
        problems.append(Problem("policy", None, None, "no policies to sweep"))
    chosen: dict[str, Policy] = {}
    files: dict[str, Path | None] = {}
    for name, spec in policies.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem("policy", None, str(name), "a policy needs a non-empty name"))
            continue
        if isinstance(spec, Policy):
            chosen[name], files[name] = spec, None
            continue
        path = Path(spec)
        if not path.is_file():
            problems.append(Problem(path.name, None, None, f"policy {name!r}: no such policy file {str(path)!r}"))
            continue
        try:
            chosen[name], files[name] = Policy.from_toml(path), path
        except ValidationError as exc:
            problems += exc.problems
    return chosen, files


def policies_digest(policies: dict[str, Policy]) -> str:
    """A fingerprint of the policies, their names and order (every key of every section)."""
    text = json.dumps([[name, p.to_dict()] for name, p in policies.items()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flows_by_household(root: Path, batch: BatchInput | None,
                        problems: list[Problem]) -> tuple[dict[str, pd.DataFrame], Path | None]:
    """flows.csv (or .parquet) split by ``household_id``, each part keeping its file lines; a
    row without a household id or for a household with no accounts is a problem."""
    try:
        df, path = _read(root, "flows")
    except ValidationError as exc:
        problems += exc.problems
        return {}, None
    if df is None:
        return {}, None
    header = [*problems_of_header(df)]
    if header:
        problems += header
        return {}, path
    raw = df[KEY].astype(object)
    keys = raw.where(raw.notna(), "").map(str).str.strip()
    lines = file_lines(df)
    known = set(batch.households) if batch is not None else None
    for j, hid in enumerate(keys):
        if not hid:
            problems.append(Problem("flows.csv", lines[j], KEY, "missing household_id: the flow belongs to no "
                                    "household"))
        elif known is not None and hid not in known:
            problems.append(Problem("flows.csv", lines[j], KEY, f"unknown household {hid!r}: it has no rows in "
                                    "accounts or holdings"))
    rest = df.drop(columns=[KEY])
    parts = {}
    for hid, part in rest.groupby(keys.to_numpy(), sort=False):
        part.attrs["file_lines"] = True  # the index is each row's line in the file (read_csv, _read)
        parts[str(hid)] = part
    return parts, path


def problems_of_header(df: pd.DataFrame) -> list[Problem]:
    """flows.csv's columns: ``household_id`` and ``FLOWS``, no others (checked once, not per
    household)."""
    wanted = [KEY, *FLOWS]
    found = [Problem("flows.csv", 1, str(c), f"unknown column (flows.csv has {', '.join(wanted)})")
             for c in df.columns if c not in wanted]
    return found + [Problem("flows.csv", 1, c, "required column is missing") for c in wanted if c not in df.columns]


# ------------------------------------------------------------------------------------- workers
def run_household(hid: str, frames: dict, shared: dict, policies: dict[str, Policy], market: Market,
                  out_dir: Path, bases: dict) -> dict:
    """Backtest one household (on its model's targets, with models.csv) under every policy and
    write its comparison or its error; never raises for the household's own problems. Returns a
    status row (with ``tables``: its comparison rows). The sweep's policies are the experiment:
    a households.csv policy file or override does not apply."""
    t0 = time.perf_counter()
    digest = frames.get("_sweep_digest")
    try:
        household, _, _ = household_and_policy(hid, frames, shared, Policy(), bases)
        flows = parse_flows(frames.get("flows"), household, market)
        stats = backtest(household, policies, market, flows=flows).stats
        columns = {"policy": np.asarray(stats.index, dtype=object),
                   **{c: stats[c].to_numpy(int if c == "events" else float) for c in STATS}}
        error_file(out_dir, hid).unlink(missing_ok=True)
        write_household(household_dir(out_dir, hid), hid, columns, digest, market)
        return {KEY: hid, "status": "ok", "seconds": time.perf_counter() - t0, "tables": {"comparison": columns}}
    except Exception as exc:  # noqa: BLE001 - one household's failure, whatever it is, is its own
        return record_error(out_dir, hid, exc, digest, t0)


def write_household(hdir: Path, hid: str, columns: dict[str, np.ndarray], digest: str | None,
                    market: Market) -> None:
    """comparison.csv and, renamed last, summary.json (the input digest and comparison.csv's
    checksum, so ``batch.finished`` and ``verify_files`` tell a whole result from a torn one)."""
    hdir.mkdir(parents=True, exist_ok=True)
    text = frame_csv(comparison_frame(columns))
    summary = {KEY: hid, "input_digest": digest, "policies": [str(p) for p in columns["policy"]],
               "start": str(market.start.date()), "end": str(market.dates[-1].date()),
               "files": {"comparison.csv": hashlib.sha256(text.encode()).hexdigest()}}
    write_files(hdir, {"comparison.csv": text, "summary.json": json.dumps(summary, indent=2) + "\n"})


def run_chunk(chunk: list[tuple[str, dict]], shared: dict, policies: dict[str, Policy], market: Market,
              out_dir: str, parent: int | None = None) -> list[dict]:
    """Backtest a chunk of households in this worker (the sweep's unit of work on every
    executor). ``parent``: the driver's process id (``batch.stop_if_orphaned``)."""
    bases: dict = {}  # the shared tables validated once per model met in this chunk
    rows = []
    for hid, frames in chunk:
        stop_if_orphaned(parent)
        rows.append(run_household(hid, frames, shared, policies, market, Path(out_dir), bases))
    return rows


# ------------------------------------------------------------------------------------ combining
def comparison_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Comparison rows with fixed types: text policy names, ``events`` whole, the rest floats
    (so the rows of this run and those read back from files write the same CSV)."""
    out = pd.DataFrame({c: columns[c] for c in columns if c in (KEY, "policy")}).astype(object)
    for c in STATS:
        out[c] = np.asarray(columns[c], dtype=np.int64 if c == "events" else float)
    return out


def read_comparison(path: Path) -> dict[str, np.ndarray]:
    """A household's comparison.csv as it was written (policy names exact, numbers as numbers)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = {"policy": df["policy"].map(from_spreadsheet_safe).to_numpy(object)}
    for c in STATS:
        columns[c] = pd.to_numeric(df[c].replace("", None)).to_numpy(np.int64 if c == "events" else float)
    return columns


def combine(out_dir: Path, ids: list[str], policies: list[str], fresh: dict[str, dict] | None = None) -> dict[str, int]:
    """Rebuild comparison.csv, policies.csv and errors.csv from this run's rows (``fresh``) and
    the files of households finished before; returns row counts. Every household appears once."""
    fresh = fresh or {}
    (out_dir / "manifest.json").unlink(missing_ok=True)  # written last; until then it vouches for nothing
    parts, errors = [], []
    for hid in ids:
        hdir = household_dir(out_dir, hid)
        if hid in fresh:
            columns = fresh[hid]["comparison"]
        elif (hdir / "summary.json").exists():
            columns = read_comparison(hdir / "comparison.csv")
        else:
            if error_file(out_dir, hid).exists():
                errors.append(json.loads(error_file(out_dir, hid).read_text()))
            continue
        parts.append(comparison_frame({KEY: np.full(len(columns["policy"]), hid, dtype=object), **columns}))
    comparison = (pd.concat(parts, ignore_index=True) if parts
                  else comparison_frame({KEY: [], "policy": [], **{c: [] for c in STATS}}))
    _write_atomic(out_dir / "comparison.csv", frame_csv(comparison[COMPARISON_COLUMNS]))
    summary = summarize(comparison, policies)
    _write_atomic(out_dir / "policies.csv", frame_csv(summary))
    err = pd.DataFrame(errors, columns=[KEY, "error", "reason"])
    _write_atomic(out_dir / "errors.csv", frame_csv(err))
    return {"comparison_rows": len(comparison), "policies": len(summary), "errors": len(err)}


def summarize(comparison: pd.DataFrame, policies: list[str]) -> pd.DataFrame:
    """One row per policy (in the order given): ``households`` and, for each statistic of
    ``SUMMARY_STATS``, its median, mean and 10th and 90th percentiles (linear interpolation)
    across households, as ``<stat>_median``, ``<stat>_mean``, ``<stat>_p10``, ``<stat>_p90``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"policy": ["a"] * 3, **{s: [1.0, 2.0, 6.0] for s in SUMMARY_STATS}})
    >>> summarize(rows, ["a"])[["policy", "households", "final_value_median", "final_value_mean"]]
      policy  households  final_value_median  final_value_mean
    0      a           3                 2.0               3.0
    """
    rows = []
    for name in policies:
        part = comparison[comparison["policy"] == name]
        row: dict = {"policy": name, "households": len(part)}
        for stat in SUMMARY_STATS:
            x = part[stat].astype(float)
            row |= {f"{stat}_median": x.median(), f"{stat}_mean": x.mean(),
                    f"{stat}_p10": x.quantile(0.1), f"{stat}_p90": x.quantile(0.9)}
        rows.append(row)
    columns = ["policy", "households", *(f"{s}_{a}" for s in SUMMARY_STATS for a in AGGREGATES)]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------- driver
def run_sweep(in_dir: str | Path, out_dir: str | Path, policies: dict[str, Policy | str | Path] | None = None, *,
              start=None, end=None, executor: str = "local", scheduler: str | None = None,
              workers: int | None = None, chunk_size: int | None = None, retry_errors: bool = False,
              progress: bool = True) -> dict:
    """Backtest every household of IN_DIR under every policy into OUT_DIR; resumes a run that
    was stopped (module docstring).

    Parameters
    ----------
    in_dir : path
        A batch input directory with market data (``prices.csv`` or ``returns.csv``) and an
        optional ``flows.csv`` (``date, household_id, account_id, amount``).
    out_dir : path
        Where the households' files and the combined tables go.
    policies : dict of name -> Policy or policy file, optional
        Default: IN_DIR/policy.toml, named ``"policy"``.
    start, end : date-like, optional
        The market window (default: all of the data).
    executor : {"local", "dask"}
        Local worker processes, or a Dask cluster (``scheduler`` address, or a local cluster).
    workers : int, optional
        Worker processes (default: the number of cores); 1 runs in this process.
    chunk_size : int, optional
        Households per task (default: at most 10, fewer when there are few per worker).
    retry_errors : bool
        Run again the households that ended in an error row.
    progress : bool
        A progress bar over households.

    Returns
    -------
    dict
        The run manifest (also written to OUT_DIR/manifest.json).

    Raises
    ------
    ValidationError
        Bad shared input, market data, flows rows or policies (no household can run).
    OutputError
        OUT_DIR cannot be written (read-only, full, a file).
    """
    try:
        return _run_sweep(in_dir, Path(out_dir), policies, start, end, executor, scheduler, workers, chunk_size,
                          retry_errors, progress)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the results in {out_dir}: {exc}") from exc


def _run_sweep(in_dir, out: Path, policies, start, end, executor, scheduler, workers, chunk_size, retry_errors,
               progress) -> dict:
    t0 = time.perf_counter()
    sweep = read_sweep(in_dir, policies, start=start, end=end)
    out.mkdir(parents=True, exist_ok=True)
    households = sweep.batch.households
    t_read = time.perf_counter() - t0
    ids = list(households)
    run_ids = pending(out, {hid: f["_sweep_digest"] for hid, f in households.items()}, retry_errors)
    todo = [(hid, households[hid]) for hid in run_ids]
    workers = workers or os.cpu_count() or 1
    size = chunk_size or max(1, min(CHUNK, math.ceil(len(todo) / (4 * workers))))
    done = execute(run_chunk, todo, (sweep.batch.shared, sweep.policies, sweep.market, str(out)),
                   executor=executor, scheduler=scheduler, workers=workers, chunk_size=size, progress=progress,
                   desc="backtesting")
    t2 = time.perf_counter()
    counts = combine(out, ids, list(sweep.policies), done.tables)
    counts |= {"households": len(ids), "run": len(todo), "succeeded": done.succeeded, "failed": done.failed,
               "skipped_finished": len(ids) - len(todo), "failed_total": counts["errors"]}
    t_run = done.run_seconds
    timings = {"read_seconds": t_read, "run_seconds": t_run, "combine_seconds": time.perf_counter() - t2,
               "household_seconds_total": done.household_seconds, "wall_seconds": time.perf_counter() - t0,
               "households_per_second": len(todo) / t_run if t_run > 0 and todo else None}
    man = manifest(sweep.batch, counts, timings, executor, workers)
    man["inputs"] |= {p.name: _sha256_file(p) for p in sweep.files}
    man["policies"] = {name: {"file": str(sweep.policy_files.get(name)) if sweep.policy_files.get(name) else None,
                              "sha256": _sha256_file(sweep.policy_files[name]) if sweep.policy_files.get(name)
                              else None,
                              "digest": policies_digest({name: p})}
                       for name, p in sweep.policies.items()}
    m = sweep.market
    man["window"] = {"source": m.source, "start": str(m.start.date()), "end": str(m.dates[-1].date()),
                     "periods": len(m.dates), "frequency": m.frequency}
    _write_atomic(out / "manifest.json", json.dumps(man, indent=2, default=str))
    return man
