"""Engines: the same facts functions (:mod:`metrics.core.facts`) run shard by shard, here or on Spark.

The pipeline is ``messages -> facts -> metrics``; an engine computes the facts of a dataset bucket by bucket
and combines them, then :func:`metrics.core.facts.summarise` turns them into the ``summary`` report:

``local`` (:mod:`metrics.engines.local`)
    a process pool over the buckets of a stored dataset (each worker opens the store and reads one bucket:
    memory is about workers x bucket size), or over the shards of a frame already in memory.
``spark`` (:mod:`metrics.engines.spark`)
    ``groupBy("bucket").applyInPandas`` over a stored dataset's parts (written out as a Parquet directory
    beside the store) or over a Parquet/CSV export with Chatlens's canonical column names.
``auto``
    ``spark`` when PySpark and Java are available and the input is big (:data:`AUTO_SPARK_ROWS` stored
    messages, or an export of :data:`AUTO_SPARK_BYTES` bytes), else ``local``.

An input is a :class:`StoredInput` (``--db DB --dataset NAME``), a :class:`FrameInput` (an export loaded as
``summary PATH`` loads it) or a :class:`PathInput` (an export read by Spark itself). :func:`run_summary`
returns the report; :func:`run_facts` the combined facts and their :class:`~metrics.core.facts.Context`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable, Mapping

import pandas as pd

from metrics.errors import ConfigError

__all__ = ["ENGINES", "AUTO_SPARK_ROWS", "AUTO_SPARK_BYTES", "StoredInput", "FrameInput", "PathInput",
           "Progress", "run_facts", "run_summary", "choose_engine", "spark_available", "stored_meta",
           "file_meta", "META_KEYS"]

#: The engine names ``--engine`` accepts.
ENGINES: tuple[str, ...] = ("auto", "local", "spark")
#: ``auto`` picks Spark from this many stored messages on (when PySpark and Java are installed).
AUTO_SPARK_ROWS = 5_000_000
#: ... or for an export file (or Parquet folder) of this many bytes.
AUTO_SPARK_BYTES = 1 << 30
#: The keys of the summary ``meta`` (what the load recorded and the facts cannot know).
META_KEYS: tuple[str, ...] = ("file", "format", "excluded_conversations", "skipped_rows", "mapping", "warnings")

Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class StoredInput:
    """A stored dataset: the store's file ``db_path`` and the dataset's ``name``."""

    db_path: str
    name: str


@dataclasses.dataclass(frozen=True)
class FrameInput:
    """A validated frame in memory (an export loaded by :func:`metrics.io.loaders.load_path`) and its meta."""

    frame: pd.DataFrame
    meta: Mapping


@dataclasses.dataclass(frozen=True)
class PathInput:
    """An export Spark reads itself: a Parquet file or folder, or a CSV (``.csv``, ``.csv.gz``), with
    Chatlens's canonical column names (:mod:`metrics.engines.spark`)."""

    path: str
    timezone: str = "UTC"
    redact_pii: bool = True


def spark_available() -> str | None:
    """None when the Spark engine can run here, else why not (one sentence)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'chatlens[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and os.path.exists(os.path.join(java_home, "bin", "java")))):
        return "Java is not installed (PySpark needs a JRE 17+, e.g. apt-get install openjdk-17-jre-headless)"
    return None


def _input_size(source) -> tuple[int, int]:
    """(stored messages, bytes of an export) of an input, whichever applies (0 otherwise)."""
    if isinstance(source, StoredInput):
        from metrics import store

        db = store.connect(source.db_path)
        try:
            return store.find_dataset(db, source.name).message_count, 0
        finally:
            db.close()
    if isinstance(source, PathInput):
        if os.path.isdir(source.path):
            return 0, sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(source.path) for f in fs)
        return 0, os.path.getsize(source.path) if os.path.exists(source.path) else 0
    return len(source.frame), 0


def choose_engine(engine: str, source) -> str:
    """``local`` or ``spark`` for ``engine`` (``auto`` decides as the module docstring says)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "auto":
        if engine == "spark":
            missing = spark_available()
            if missing:
                raise ConfigError(f"the spark engine cannot run: {missing}. Fix: install it, or use --engine local")
        return engine
    if spark_available() is not None or isinstance(source, FrameInput):
        return "local"
    rows, size = _input_size(source)
    return "spark" if rows >= AUTO_SPARK_ROWS or size >= AUTO_SPARK_BYTES else "local"


def stored_meta(db, name: str) -> dict:
    """The summary ``meta`` of a stored dataset: what ``summary --db --dataset`` reports today
    (:func:`metrics.cli_ingest.stored_result`), without reading its messages."""
    from metrics import store
    from metrics.io.loaders import LoadResult
    from metrics.summary import dataset_section

    info = store.find_dataset(db, name)
    empty = pd.DataFrame({"conversation_id": pd.Series([], dtype="str"),
                          "timestamp": pd.Series([], dtype="datetime64[ns, UTC]")})
    section = dataset_section(LoadResult(frame=empty, file=info.name, format=f"store ({info.source_format})",
                                         mapping={}, notices=[], source_rows=0))
    return {k: section[k] for k in META_KEYS}


def file_meta(result) -> dict:
    """The summary ``meta`` of a loaded export (:func:`metrics.summary.dataset_section`)."""
    from metrics.summary import dataset_section

    section = dataset_section(result)
    return {k: section[k] for k in META_KEYS}


def run_facts(source, *, engine: str = "local", workers: int | None = None, spark_master: str | None = None,
              progress: Progress | None = None, buckets: int | None = None, use_cache: bool = False):
    """``(facts, ctx, meta)`` of ``source`` computed by ``engine`` (``local``, ``spark`` or ``auto``).

    ``use_cache`` (a stored dataset only): read the facts kept for this dataset version
    (:mod:`metrics.store.facts_cache`) instead of the messages, and keep them after computing them."""
    if workers is not None:
        from metrics.engines.local import _check_workers

        _check_workers(workers)  # a bad --workers is an error even when the facts are kept
    if use_cache and isinstance(source, StoredInput):
        return _cached_facts(source, engine=engine, workers=workers, spark_master=spark_master,
                             progress=progress, buckets=buckets)
    chosen = choose_engine(engine, source)
    if chosen == "local":
        from metrics.engines import local

        return local.run(source, workers=workers, progress=progress, buckets=buckets)
    from metrics.engines import spark

    return spark.run(source, master=spark_master, progress=progress, buckets=buckets)


def _cached_facts(source: StoredInput, *, progress, **options):
    from metrics import store
    from metrics.store.facts_cache import facts_key, load_facts, save_facts

    def key_of(db):
        info = store.find_dataset(db, source.name)
        return info.id, facts_key(info.version, store.dataset_buckets(db, info.id))

    db = store.connect(source.db_path)
    try:
        dataset_id, key = key_of(db)
        hit = load_facts(db, dataset_id, key)
        if hit is not None:
            if progress:
                progress(1, 1)
            return hit[0], hit[1], stored_meta(db, source.name)
    finally:
        db.close()
    facts, ctx, meta = run_facts(source, progress=progress, **options)
    db = store.connect(source.db_path)
    try:
        if key_of(db) == (dataset_id, key):  # not changed meanwhile: these are the facts of that version
            save_facts(db, dataset_id, key, facts, ctx)
    finally:
        db.close()
    return facts, ctx, meta


def run_summary(source, *, engine: str = "local", workers: int | None = None, spark_master: str | None = None,
                progress: Progress | None = None, buckets: int | None = None, use_cache: bool = False) -> dict:
    """The ``summary`` report of ``source`` (the JSON of :func:`metrics.summary.build_summary`), computed
    through the facts by ``engine``."""
    from metrics.core.facts import summarise

    facts, ctx, meta = run_facts(source, engine=engine, workers=workers, spark_master=spark_master,
                                 progress=progress, buckets=buckets, use_cache=use_cache)
    return summarise(facts, ctx, meta)
