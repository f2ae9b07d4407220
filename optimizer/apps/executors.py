"""Running a batch: chunks of households on local worker processes (default) or a Dask cluster.

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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from cvxrebalance.optimizer.apps.batch import (
    KEY,
    BatchInput,
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


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _local(batch: BatchInput, todo: list, out: Path, workers: int, size: int) -> Iterator[list[dict]]:
    if workers <= 1:  # in this process: no pickling, easiest to debug
        for chunk in chunks(todo, size):
            yield run_chunk(chunk, batch.shared, batch.policy, str(out))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_chunk, chunk, batch.shared, batch.policy, str(out), os.getpid())
                   for chunk in chunks(todo, size)]
        for fut in as_completed(futures):
            yield fut.result()


def _dask(batch: BatchInput, todo: list, out: Path, workers: int, size: int,
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
        shared = client.scatter(batch.shared, broadcast=True)
        policy = client.scatter(batch.policy, broadcast=True)
        futures = [client.submit(run_chunk, chunk, shared, policy, str(out), pure=False)
                   for chunk in chunks(todo, size)]
        for fut in dask_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(in_dir: str | Path, out_dir: str | Path, *, executor: str = "local",
              scheduler: str | None = None, workers: int | None = None, chunk_size: int | None = None,
              retry_errors: bool = False, progress: bool = True) -> dict:
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
                          progress)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the results in {out_dir}: {exc}") from exc


def _run_batch(in_dir, out: Path, executor, scheduler, workers, chunk_size, retry_errors, progress) -> dict:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    batch = read_batch(in_dir)
    t_read = time.perf_counter() - t0
    ids = list(batch.households)
    for tmp in out.rglob(".*.tmp"):  # left by a run that was killed mid-write
        tmp.unlink(missing_ok=True)
    done, failed = finished(out, {hid: f.get("_digest") for hid, f in batch.households.items()})
    skip = done | (set() if retry_errors else failed)
    if retry_errors:
        for hid in failed - done:
            error_file(out, hid).unlink(missing_ok=True)
    todo = [(hid, batch.households[hid]) for hid in ids if hid not in skip]
    workers = workers or os.cpu_count() or 1
    size = chunk_size or max(1, min(CHUNK, math.ceil(len(todo) / (4 * workers))))
    runner = (_dask(batch, todo, out, workers, size, scheduler) if executor == "dask"
              else _local(batch, todo, out, workers, size))
    ok = bad = 0
    solve_seconds = 0.0
    t1 = time.perf_counter()
    bar = _progress(len(todo), progress)
    fresh: dict[str, dict] = {}  # this run's tables, so combining reads no file back
    for rows in runner:
        fresh.update((r[KEY], r.pop("tables")) for r in rows if "tables" in r)
        ok += sum(r["status"] == "ok" for r in rows)
        bad += sum(r["status"] == "error" for r in rows)
        solve_seconds += sum(r["seconds"] for r in rows)
        if bar is not None:
            bar.update(len(rows))
            bar.set_postfix(done=ok, failed=bad, refresh=False)
    if bar is not None:
        bar.close()
    t_run = time.perf_counter() - t1
    t2 = time.perf_counter()
    counts = combine(out, ids, fresh)
    counts |= {"households": len(ids), "run": len(todo), "succeeded": ok, "failed": bad,
               "skipped_finished": len(ids) - len(todo), "failed_total": counts["errors"]}
    timings = {"read_seconds": t_read, "run_seconds": t_run, "combine_seconds": time.perf_counter() - t2,
               "household_seconds_total": solve_seconds, "wall_seconds": time.perf_counter() - t0,
               "households_per_second": len(todo) / t_run if t_run > 0 and todo else None}
    man = manifest(batch, counts, timings, executor, workers)
    _write_atomic(out / "manifest.json", json.dumps(man, indent=2, default=str))
    return man


def _progress(total: int, on: bool):
    if not on or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="household", desc="rebalancing", smoothing=0.1)
