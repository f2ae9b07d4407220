"""Running a batch or a sweep: chunks of households on local worker processes (default) or a Dask
cluster.

The executors know nothing of what a household's work is: they run a *chunk runner*
``runner(chunk, *context, parent=None) -> list[dict]`` (``batch.run_chunk`` rebalances,
``sweep.run_chunk`` backtests) over chunks of ``(household_id, frames)``, ``context`` being what
every chunk shares (the shared tables, the policies, OUT_DIR), sent to each worker once. Each
status row has ``household_id``, ``status`` (``"ok"`` or ``"error"``), ``seconds`` and, for a
household that succeeded, optionally ``tables`` (its rows for the combined tables, so the driver
reads no file back).

Each worker compiles a problem template once per shape and reuses it for every household of its
chunks; chunks of ~50 households amortize the per-task overhead (about 2 ms on Dask, more than
one solve). Outputs are written by the workers, household by household, atomically; the driver
then rebuilds the combined tables and the manifest.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from cvxrebalance.optimizer.apps.batch import (
    KEY,
    _write_atomic,
    combine,
    error_file,
    finished,
    manifest,
    read_batch,
    run_chunk,
)
from cvxrebalance.optimizer.domain.errors import OutputError

CHUNK = 50

ChunkRunner = Callable[..., list[dict]]


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _local(runner: ChunkRunner, todo: list, context: tuple, workers: int, size: int) -> Iterator[list[dict]]:
    if workers <= 1:  # in this process: no pickling, easiest to debug
        for chunk in chunks(todo, size):
            yield runner(chunk, *context)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(runner, chunk, *context, parent=os.getpid()) for chunk in chunks(todo, size)]
        for fut in as_completed(futures):
            yield fut.result()


def _dask(runner: ChunkRunner, todo: list, context: tuple, workers: int, size: int,
          scheduler: str | None) -> Iterator[list[dict]]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError("the Dask executor needs the optional extra: pip install 'cvxrebalance[dask]'") from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        # Sent to every worker once, not with every chunk (a path is sent as it is).
        shared = [c if isinstance(c, str) else client.scatter(c, broadcast=True) for c in context]
        futures = [client.submit(runner, chunk, *shared, pure=False) for chunk in chunks(todo, size)]
        for fut in dask_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def pending(out: Path, digests: dict[str, str | None], retry_errors: bool) -> list[str]:
    """The households of ``digests`` (id -> input fingerprint, in run order) still to run in
    OUT_DIR: not finished from the same input, and not failed from it unless ``retry_errors``
    (their error files are then removed). Temporary files left by a run that was killed
    mid-write are removed first."""
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    done, failed = finished(out, digests)
    skip = done | (set() if retry_errors else failed)
    if retry_errors:
        for hid in failed - done:
            error_file(out, hid).unlink(missing_ok=True)
    return [hid for hid in digests if hid not in skip]


@dataclass
class Outcome:
    """What the workers reported: households that succeeded and failed, the sum of their own
    seconds, the wall time of the run, and the ``tables`` rows of this run's households."""

    succeeded: int = 0
    failed: int = 0
    household_seconds: float = 0.0
    run_seconds: float = 0.0
    tables: dict[str, dict] = field(default_factory=dict)


def execute(runner: ChunkRunner, todo: list, context: tuple, *, executor: str = "local",
            scheduler: str | None = None, workers: int = 1, chunk_size: int | None = None,
            progress: bool = True, desc: str = "rebalancing",
            on_rows: Callable[[list[dict]], None] | None = None) -> Outcome:
    """Run ``runner`` over ``todo`` (``(household_id, frames)`` pairs) in chunks on the chosen
    executor, with a progress bar over households.

    Parameters
    ----------
    runner : callable
        ``runner(chunk, *context, parent=None) -> list[dict]``, a module-level function (it is
        pickled to the workers).
    context : tuple
        The runner's arguments after the chunk, the same for every chunk.
    executor : {"local", "dask"}
    workers : int
        Worker processes (1: in this process, local executor).
    chunk_size : int, optional
        Households per task (default 50, fewer when there are few households per worker).
    on_rows : callable, optional
        Called in this (the driver) process with each chunk's status rows as they come back
        (``--results-to`` writes the chunk's households to the results database).
    """
    size = chunk_size or max(1, min(CHUNK, math.ceil(len(todo) / (4 * workers))))
    runs = (_dask(runner, todo, context, workers, size, scheduler) if executor == "dask"
            else _local(runner, todo, context, workers, size))
    outcome = Outcome()
    t1 = time.perf_counter()
    bar = _progress(len(todo), progress, desc)
    for rows in runs:
        if on_rows is not None:
            on_rows(rows)
        outcome.tables.update((r[KEY], r.pop("tables")) for r in rows if "tables" in r)
        outcome.succeeded += sum(r["status"] == "ok" for r in rows)
        outcome.failed += sum(r["status"] == "error" for r in rows)
        outcome.household_seconds += sum(r["seconds"] for r in rows)
        if bar is not None:
            bar.update(len(rows))
            bar.set_postfix(done=outcome.succeeded, failed=outcome.failed, refresh=False)
    if bar is not None:
        bar.close()
    outcome.run_seconds = time.perf_counter() - t1
    return outcome


def run_batch(in_dir: str | Path, out_dir: str | Path, *, executor: str = "local",
              scheduler: str | None = None, workers: int | None = None, chunk_size: int | None = None,
              retry_errors: bool = False, progress: bool = True, only_needed: bool = False,
              cross: bool = False, results_to: str | None = None) -> dict:
    """Rebalance every household of IN_DIR into OUT_DIR; resumes a run that was stopped.

    Parameters
    ----------
    executor : {"local", "dask"}
        Local worker processes (one per core), or a Dask cluster (``scheduler`` address, or a
        local cluster when None). Both run the same chunks and give the same outputs.
    workers : int, optional
        Worker processes (default: the number of cores); 1 runs in this process.
    chunk_size : int, optional
        Households per task (default 50, fewer when there are few households per worker).
    retry_errors : bool
        Run again the households that ended in an error row (after fixing their data).
    only_needed : bool
        Rebalance only the households the drift scan says need it (``optimizer.apps.scan``,
        default thresholds); the combined tables cover those.
    cross : bool
        Cross opposite sides of a security across clients before the blocks go to the street
        (``optimizer.apps.orders``); off by default: buys and sells are never netted.
    results_to : str, optional
        A database URL (``optimizer.apps.database.ResultsDB``): each household's trades, lots,
        futures and summary row are written there too, in one transaction per household, as its
        chunk comes back; households finished in OUT_DIR by an earlier run but missing there (or
        there from another input) are written first, so every household has exactly one set of rows.
        After the combine step, the desk's tables (orders, order lots, block trades, allocations)
        are written there in one transaction, replacing this batch's earlier rows (keyed by
        ``batch_id``, OUT_DIR's: the manifest's ``batch_id``). IN_DIR may be a database URL too
        (``optimizer.apps.database``).

    Returns
    -------
    dict
        The run manifest (also written to OUT_DIR/manifest.json).

    Raises
    ------
    ValidationError
        The shared input is bad (no household can run).
    OutputError
        OUT_DIR cannot be written (read-only, full, a file).
    """
    try:
        return _run_batch(in_dir, Path(out_dir), executor, scheduler, workers, chunk_size, retry_errors,
                          progress, only_needed, cross, results_to)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the results in {out_dir}: {exc}") from exc


def _run_batch(in_dir, out: Path, executor, scheduler, workers, chunk_size, retry_errors, progress,
               only_needed=False, cross=False, results_to: str | None = None) -> dict:
    t0 = time.perf_counter()
    batch = read_batch(in_dir)  # first: bad input leaves no empty OUT_DIR behind
    out.mkdir(parents=True, exist_ok=True)
    ids = list(batch.households)
    if only_needed:
        from cvxrebalance.optimizer.apps.scan import scan

        needed = set(scan(in_dir).query("needs_rebalance")["household_id"])
        ids = [hid for hid in ids if hid in needed]
    t_read = time.perf_counter() - t0
    digests = {hid: batch.households[hid].get("_digest") for hid in ids}
    run_ids = pending(out, digests, retry_errors)
    todo = [(hid, batch.households[hid]) for hid in run_ids]
    workers = workers or os.cpu_count() or 1
    db = on_rows = None
    synced = 0
    if results_to:
        from cvxrebalance.optimizer.apps.database import ResultsDB, batch_id

        db = ResultsDB(results_to)
        # Finished in OUT_DIR but not (or from another input) in the database: a run killed
        # between a household's files and its database write.
        running = set(run_ids)
        synced = db.sync(out, {hid: digests[hid] for hid in ids if hid not in running})

        def on_rows(rows: list[dict]) -> None:
            for r in rows:
                db.write_household(out, r[KEY])
    try:
        done = execute(run_chunk, todo, (batch.shared, batch.policy, str(out)), executor=executor,
                       scheduler=scheduler, workers=workers, chunk_size=chunk_size, progress=progress,
                       on_rows=on_rows)
        t2 = time.perf_counter()
        counts = combine(out, ids, done.tables, cross, batch.account_numbers)  # this run's tables as they are, so combining reads no file back
        if db is not None:  # the desk's tables too, once combined (before the manifest, written last)
            counts["database_caught_up"] = synced
            counts["database_desk_rows"] = db.write_desk(out, batch_id(out))
    finally:
        if db is not None:
            db.close()
    counts |= {"households": len(ids), "run": len(todo), "succeeded": done.succeeded, "failed": done.failed,
               "skipped_finished": len(ids) - len(todo), "failed_total": counts["errors"],
               "not_needed": len(batch.households) - len(ids)}
    t_run = done.run_seconds
    timings = {"read_seconds": t_read, "run_seconds": t_run, "combine_seconds": time.perf_counter() - t2,
               "household_seconds_total": done.household_seconds, "wall_seconds": time.perf_counter() - t0,
               "households_per_second": len(todo) / t_run if t_run > 0 and todo else None}
    man = manifest(batch, counts, timings, executor, workers)
    if results_to:
        man["batch_id"] = batch_id(out)  # the key of this batch's desk rows in the results database
    _write_atomic(out / "manifest.json", json.dumps(man, indent=2, default=str))
    return man


def _progress(total: int, on: bool, desc: str = "rebalancing"):
    if not on or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="household", desc=desc, smoothing=0.1)
