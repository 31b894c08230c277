"""The local engine: the facts of a dataset bucket by bucket in a process pool (:mod:`metrics.engines`).

A stored dataset (:class:`~metrics.engines.StoredInput`): a first pass reads the store's plan
(:func:`metrics.store.bucket_plan`: the columns, the latest timestamp, the buckets holding messages, one
snapshot), which is the :class:`~metrics.core.facts.Context`; then each worker of a
``concurrent.futures.ProcessPoolExecutor`` opens the store itself, reads one bucket
(:func:`metrics.store.iter_buckets`, as of the plan's last part: whole buckets up to about
:data:`TASK_MESSAGES` messages per task) and returns ``shard_facts(shard, ctx)``.
The parent combines the results as they come (every :data:`FOLD_EVERY` results into one), so memory is about
workers x one bucket's messages plus the facts. ``workers=1`` runs in this process, without a pool.

A frame in memory (:class:`~metrics.engines.FrameInput`, an export loaded as ``summary PATH`` loads it): its
context is :func:`~metrics.core.facts.context_of` of the whole frame, and its shards
(:func:`~metrics.core.facts.split_shards`) go to the pool.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import pandas as pd

from metrics.core import facts as F
from metrics.errors import ConfigError

__all__ = ["run", "default_workers", "group_buckets", "FOLD_EVERY", "TASK_MESSAGES"]

#: The parent folds this many shards' facts into one as they arrive (bounded memory, few concatenations).
FOLD_EVERY = 8

#: A worker's task reads whole buckets until it holds about this many messages (at least one bucket):
#: every shard costs the families a fixed time, so a small dataset is one or two shards, not 64, while a
#: large one is still read a bucket-sized piece at a time.
TASK_MESSAGES = 250_000

_DB = None  # a worker's own connection to the store (opened by _init_worker)


def default_workers() -> int:
    """min(2, CPUs)."""
    return max(1, min(2, os.cpu_count() or 1))


def _check_workers(workers) -> int:
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    return workers


def _init_worker(db_path: str) -> None:
    global _DB
    from metrics import store

    _DB = store.connect(db_path)


def group_buckets(buckets, rows, *, workers: int, target: int | None = None) -> list[tuple[int, ...]]:
    """The buckets in tasks of about ``target`` messages (default :data:`TASK_MESSAGES`; whole buckets, in
    order), and at least ``workers`` tasks when there are that many buckets and more than ``target`` messages.

    >>> group_buckets([0, 1, 2, 3], [10, 10, 10, 10], workers=2, target=100)
    [(0, 1, 2, 3)]
    >>> group_buckets([0, 1, 2, 3], [40, 40, 40, 40], workers=2, target=100)
    [(0, 1), (2, 3)]
    >>> group_buckets([0, 1, 2], [300, 10, 10], workers=1, target=100)
    [(0,), (1, 2)]
    """
    target = TASK_MESSAGES if target is None else target
    total = sum(rows)
    if workers > 1 and len(buckets) >= workers and total > target:
        target = min(target, max(1, -(-total // workers)))
    tasks, current, size = [], [], 0
    for bucket, n in zip(buckets, rows):
        if current and size + n > target:
            tasks.append(tuple(current))
            current, size = [], 0
        current.append(int(bucket))
        size += int(n)
    if current:
        tasks.append(tuple(current))
    return tasks


def _stored_bucket_facts(dataset_id: int, buckets: tuple[int, ...], upto_part: int, ctx: F.Context):
    from metrics import store

    frames = [frame for _, frame in store.iter_buckets(_DB, dataset_id, buckets=list(buckets), upto_part=upto_part)]
    shard = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    del frames
    return F.shard_facts(shard, ctx)


def _frame_facts(frame: pd.DataFrame, ctx: F.Context):
    return F.shard_facts(frame, ctx)


class _Folder:
    """Combines shard facts as they arrive: every FOLD_EVERY of them become one."""

    def __init__(self):
        self.pending: list = []

    def add(self, facts) -> None:
        self.pending.append(facts)
        if len(self.pending) >= FOLD_EVERY:
            self.pending = [F.combine(self.pending)]

    def result(self):
        return F.combine(self.pending)


def _pool(workers: int, **kwargs) -> ProcessPoolExecutor:
    # spawn: a worker inherits no open SQLite connection, lock or thread of the parent
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), **kwargs)


def _drain(pool: ProcessPoolExecutor, calls, folder: _Folder, progress, total: int, workers: int) -> None:
    """Submit ``calls`` (fn, *args) at most 2 x workers at a time, folding results as they complete."""
    calls = iter(calls)
    running, done = set(), 0
    for call in calls:
        running.add(pool.submit(*call))
        if len(running) >= 2 * workers:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                folder.add(future.result())
                done += 1
                if progress:
                    progress(done, total)
    while running:
        finished, running = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            folder.add(future.result())
            done += 1
            if progress:
                progress(done, total)


def run_stored(db_path: str, name: str, *, workers: int | None = None, progress=None):
    """``(facts, ctx, meta)`` of the stored dataset ``name`` in the store at ``db_path``."""
    from metrics import store
    from metrics.engines import stored_meta

    workers = _check_workers(workers)
    db = store.connect(db_path)
    try:
        meta = stored_meta(db, name)
        plan = store.bucket_plan(db, store.find_dataset(db, name).id)
        ctx = F.Context(export_end=plan.export_end, columns=tuple(sorted(plan.columns)))
        tasks = group_buckets(plan.buckets, plan.rows, workers=workers)
        total = len(tasks)
        if total <= 1 or workers == 1:  # one task: no pool to start
            folder = _Folder()
            for done, task in enumerate(tasks or [(0,)], start=1):  # an empty dataset: its empty frame's facts
                frames = [f for _, f in store.iter_buckets(db, plan.dataset_id, buckets=list(task),
                                                           upto_part=plan.upto_part)]
                shard = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
                del frames
                folder.add(F.shard_facts(shard, ctx))
                del shard
                if progress and total:
                    progress(done, total)
            return folder.result(), ctx, meta
    finally:
        db.close()
    folder = _Folder()
    with _pool(min(workers, total), initializer=_init_worker, initargs=(str(db_path),)) as pool:
        _drain(pool, ((_stored_bucket_facts, plan.dataset_id, task, plan.upto_part, ctx) for task in tasks),
               folder, progress, total, workers)
    return folder.result(), ctx, meta


def run_frame(frame: pd.DataFrame, meta, *, workers: int | None = None, progress=None, buckets: int | None = None):
    """``(facts, ctx, meta)`` of a validated frame, computed over ``buckets`` shards (empty ones skipped).

    Default: one shard per worker. The frame is in memory already, so more shards would bound nothing, and
    every shard costs the families' fixed time per call."""
    workers = _check_workers(workers)
    buckets = workers if buckets is None else int(buckets)
    if buckets < 1:
        raise ConfigError(f"buckets must be >= 1, got {buckets!r}")
    ctx = F.context_of(frame)
    shards = [s for s in F.split_shards(frame, buckets) if len(s)] or [frame.iloc[0:0].reset_index(drop=True)]
    total = len(shards)
    folder = _Folder()
    if workers == 1 or total == 1:
        for done, shard in enumerate(shards, start=1):
            folder.add(F.shard_facts(shard, ctx))
            if progress:
                progress(done, total)
        return folder.result(), ctx, dict(meta)
    with _pool(min(workers, total)) as pool:
        _drain(pool, ((_frame_facts, shard, ctx) for shard in shards), folder, progress, total, workers)
    return folder.result(), ctx, dict(meta)


def run(source, *, workers: int | None = None, progress=None, buckets: int | None = None):
    """``(facts, ctx, meta)`` of a :class:`~metrics.engines.StoredInput` or :class:`~metrics.engines.FrameInput`."""
    from metrics.engines import FrameInput, PathInput, StoredInput

    if isinstance(source, StoredInput):
        return run_stored(source.db_path, source.name, workers=workers, progress=progress)
    if isinstance(source, FrameInput):
        return run_frame(source.frame, source.meta, workers=workers, progress=progress, buckets=buckets)
    if isinstance(source, PathInput):
        raise ConfigError("the local engine reads an export through the loader: pass a FrameInput")
    raise ConfigError(f"not an engine input: {type(source).__name__}")
