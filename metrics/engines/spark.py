"""The Spark engine: the facts functions through ``groupBy("bucket").applyInPandas`` (:mod:`metrics.engines`).

Each group is one bucket of whole conversations; the function turns Spark's pandas frame back into Chatlens's
validated frame (the dtypes and row order :func:`metrics.store.load_messages` gives: ``str`` strings,
``datetime64[ns, UTC]``, nullable ``boolean``, ``float64``, int64 ``row``), computes
:func:`metrics.core.facts.shard_facts` and returns one row ``(bucket, pickled facts)``; the driver unpickles
and :func:`~metrics.core.facts.combine`\\ s them as they arrive.

Inputs
------
A stored dataset (``--db DB --dataset NAME``): its parts ARE Parquet files, so they are written as they are
to ``<DB>.parquet/<dataset id>/v<version>/bucket=NN/part-K.parquet`` (reused while the version exists;
written to a temporary folder renamed into place, so a crash leaves nothing half-written; older versions'
folders are removed, and a deleted dataset's folder goes with it: :func:`drop_orphan_exports`) and read with
Spark. Timestamps are read as int64 nanoseconds
(``spark.sql.legacy.parquet.nanosAsLong``: exact, where Spark's own timestamps keep microseconds), a missing
one as pandas' NaT value, so nothing is rounded. The :class:`~metrics.core.facts.Context` comes from the
store's plan (:func:`metrics.store.bucket_plan`).

An export (``summary PATH --engine spark``): a Parquet file or folder, or a CSV (``.csv``, ``.csv.gz``)
whose columns have Chatlens's canonical names (``conversation_id``, ``timestamp``, ``speaker``, ``text``,
...; a synonym or an unknown column is refused with a clear error: the local engine maps them). Every value
is read as text; ``row`` is the record's number in the file (1-based, as the loader numbers it); the bucket
is :func:`~metrics.core.facts.shard_of` of the raw ``conversation_id`` (a pandas UDF); each bucket is
validated by the loader's own steps (:func:`metrics.io.validate.normalize`, test and bot-to-bot exclusion,
PII masking with one key for the whole run). A bad value refuses the file (as ``summary PATH`` does without
``--skip-bad-rows``). What is decided over the whole file by the loader (a timestamp format guessed from
every value, platform adapters, made-up conversation ids) is decided per bucket here.

The session is small and quiet: master ``--spark-master`` (default ``local[2]``), UTC session time zone,
8 shuffle partitions, no UI, log level ERROR.
"""

from __future__ import annotations

import os
import re
import pickle
import secrets
import shutil
import warnings

import numpy as np
import pandas as pd

from metrics.core import facts as F
from metrics.errors import ConfigError, ValidationError

__all__ = ["run", "get_session", "export_parts", "drop_orphan_exports", "DEFAULT_MASTER", "read_export"]

DEFAULT_MASTER = "local[2]"
#: errors only (the JVM's own log configuration, beside this module)
_LOG_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
# PySpark warns on every pandas UDF that it "does not yet fully support pandas >= 3.0.0"; the engine's tests
# compare its results with the local engine's, number by number.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
_NAT = int(np.iinfo(np.int64).min)
_SESSION = None


#: SQL settings the shard functions rely on, set on a session Chatlens did not create too.
_RUNTIME_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.legacy.parquet.nanosAsLong": "true",
                 "spark.sql.execution.arrow.pyspark.enabled": "true"}


def get_session(master: str | None = None):
    """The process's SparkSession: without ``master``, the active session when there is one (a Databricks
    notebook, a job started by ``spark-submit``), else one created on ``local[2]``; a different ``master``
    restarts the one Chatlens created."""
    global _SESSION
    from pyspark.sql import SparkSession

    if master is None:
        active = SparkSession.getActiveSession()
        if active is not None and active is not _SESSION:  # a cluster's own session (Databricks, spark-submit)
            for key, value in _RUNTIME_CONF.items():
                active.conf.set(key, value)
            return active
    master = master or DEFAULT_MASTER
    if _SESSION is not None:
        if _SESSION.sparkContext.master == master and _SESSION.sparkContext._jsc is not None:
            return _SESSION
        _SESSION.stop()
    os.environ.setdefault("PYSPARK_PYTHON", __import__("sys").executable)
    session = (SparkSession.builder.master(master).appName("chatlens")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "8")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.legacy.parquet.nanosAsLong", "true")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_LOG_CONFIG}")
               .config("spark.executor.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_LOG_CONFIG}")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    _SESSION = session
    return session


# --------------------------------------------------------------------------- the shard function

def _validated(pdf: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Spark's pandas frame of stored parts -> the frame :func:`metrics.store.iter_buckets` gives."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from metrics import store

    n = len(pdf)
    data = {}
    for c in list(columns) + ["msg_key"]:
        kind = store._arrow_type(c)
        if c not in pdf.columns:
            data[c] = pa.nulls(n, type=kind)
        elif c == "timestamp":
            ns = pdf[c].to_numpy(dtype="int64")  # nanoseconds, NaT's value where missing (no nulls: exact)
            data[c] = pa.array(ns.view("datetime64[ns]"), type=pa.timestamp("ns")).cast(kind)
        else:
            data[c] = pa.array(pdf[c].astype(object).where(pdf[c].notna(), None).tolist()
                               if pdf[c].dtype == object else pdf[c], from_pandas=True).cast(kind)
    table = pa.table(data)
    order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_end")
                                              for c in ("conversation_id", "timestamp", "row", "msg_key")])
    return store._to_frame(table.take(order).drop_columns(["msg_key"]))


def _stored_shard_fn(columns: tuple[str, ...], ctx: F.Context):
    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        bucket = int(pdf["bucket"].iloc[0]) if len(pdf) else -1
        frame = _validated(pdf.drop(columns=["bucket"]), columns)
        payload = pickle.dumps(("facts", F.shard_facts(frame, ctx)), protocol=pickle.HIGHEST_PROTOCOL)
        return pd.DataFrame({"bucket": [bucket], "payload": [payload]})
    return fn


def _collect(grouped, progress, total: int):
    """Unpickle and fold the ``(bucket, payload)`` rows as they arrive; raise what a shard refused."""
    from metrics.engines.local import _Folder

    folder, done, extras = _Folder(), 0, []
    for row in grouped.toLocalIterator():
        kind, value = pickle.loads(bytes(row["payload"]))
        if kind == "refused":
            raise ValidationError([value])
        if kind == "facts+":
            value, extra = value
            extras.append(extra)
        folder.add(value)
        done += 1
        if progress:
            progress(done, max(total, done))
    return folder, extras


# --------------------------------------------------------------------------- a stored dataset

def export_parts(db, db_path: str, plan) -> str:
    """The dataset's parts as a Parquet folder beside the store (module docstring); returns its path."""
    root = os.path.join(f"{db_path}.parquet", str(plan.dataset_id))
    target = os.path.join(root, f"v{plan.version}")
    if os.path.isdir(target):
        return target
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, f".v{plan.version}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        cursor = db.conn.execute("SELECT part, bucket, data FROM message_parts WHERE dataset_id = ? AND part <= ? "
                                 "ORDER BY part", (plan.dataset_id, plan.upto_part))
        for part, bucket, data in cursor:
            folder = os.path.join(tmp, f"bucket={int(bucket):02d}")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"part-{int(part)}.parquet"), "wb") as out:
                out.write(data)
        os.makedirs(tmp, exist_ok=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # not another process that wrote the same version meanwhile
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in os.listdir(root):  # older versions (and temporary folders of crashed runs) are stale
        if name != f"v{plan.version}" and name.startswith(("v", ".v")) and not name.startswith(f".v{plan.version}."):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return target


def drop_orphan_exports(db) -> int:
    """Remove the Parquet folders (:func:`export_parts`) of datasets no longer in the store; returns how many.

    Run after every dataset delete (:data:`metrics.store.AFTER_DELETE_HOOKS`): a deleted dataset's messages
    must not outlive it beside the store."""
    row = next((r for r in db.conn.execute("PRAGMA database_list") if r[1] == "main"), None)
    if row is None or not row[2]:
        return 0  # an in-memory store has no folder
    root = f"{row[2]}.parquet"
    if not os.path.isdir(root):
        return 0
    alive = {str(i) for (i,) in db.conn.execute("SELECT id FROM datasets")}
    removed = 0
    for name in os.listdir(root):
        if name not in alive and os.path.isdir(os.path.join(root, name)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    return removed


def _run_stored(source, *, master, progress):
    from metrics import store
    from metrics.engines import stored_meta

    db = store.connect(source.db_path)
    try:
        meta = stored_meta(db, source.name)
        plan = store.bucket_plan(db, store.find_dataset(db, source.name).id)
        ctx = F.Context(export_end=plan.export_end, columns=tuple(sorted(plan.columns)))
        if not plan.buckets:  # nothing stored: the facts of the empty frame
            (_, empty), = store.iter_buckets(db, plan.dataset_id, buckets=[0])
            return F.combine([F.shard_facts(empty, ctx)]), ctx, meta
        folder_path = export_parts(db, source.db_path, plan)
    finally:
        db.close()
    from pyspark.sql import functions as S

    spark = get_session(master)
    frame = spark.read.option("mergeSchema", "true").parquet(folder_path)
    if "timestamp" in frame.columns:
        frame = frame.withColumn("timestamp", S.coalesce(S.col("timestamp").cast("long"), S.lit(_NAT)))
    grouped = frame.groupBy("bucket").applyInPandas(_stored_shard_fn(plan.columns, ctx),
                                                    schema="bucket long, payload binary")
    folder, _ = _collect(grouped, progress, len(plan.buckets))
    return folder.result(), ctx, meta


# --------------------------------------------------------------------------- an export file

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def _export_format(path: str) -> str:
    low = path.lower().rstrip("/")
    if low.endswith(".csv"):
        return "csv"
    if low.endswith(".csv.gz"):
        return "csv+gz"
    if os.path.isdir(path) or low.endswith(".parquet") or _URI.match(path):  # a lake folder: s3a://, abfss://, dbfs:/
        return "parquet"
    raise ConfigError(f"the spark engine reads Parquet (a file or a folder) or CSV (.csv, .csv.gz) exports, not "
                      f"{os.path.basename(path)!r}. Fix: use --engine local (every format), or convert the export")


def read_export(spark, path: str):
    """``(Spark frame of strings with a 1-based ``row``, format, nanosecond columns)`` of an export with canonical
    column names (a nanosecond column's values are tagged int64 text, see :func:`_iso_nanos`)."""
    from pyspark.sql import functions as S

    from metrics.io.schema import BY_NAME

    if not os.path.exists(path):
        raise ConfigError(f"no such file or folder: {path!r}")
    fmt = _export_format(path)
    nanos: list[str] = []
    if fmt == "parquet":
        frame = spark.read.parquet(path)
        nanos = _nanosecond_columns(path)
    else:
        frame = (spark.read.option("header", "true").option("inferSchema", "false").option("multiLine", "true")
                 .option("escape", '"').option("mode", "FAILFAST").csv(path))
    names = {c.lower(): c for c in frame.columns}
    unknown = [c for c in frame.columns if c.lower() not in BY_NAME or c.lower() == "row"]
    if unknown or len(names) != len(frame.columns) or "conversation_id" not in names:
        problem = (f"columns that are not Chatlens's canonical names: {unknown[:10]}" if unknown
                   else "no conversation_id column" if "conversation_id" not in names else "a column given twice")
        raise ConfigError(f"the spark engine reads exports whose columns have Chatlens's canonical names, and "
                          f"{os.path.basename(path.rstrip('/'))!r} has {problem}. Fix: rename them (see the "
                          "README's format table), or use --engine local, which maps synonyms and platform exports")
    types = dict(frame.dtypes)

    def as_text(c):
        column = S.col(f"`{names[c]}`")
        if types[names[c]] == "timestamp":  # ISO 8601 with its offset (the naive reading is the loader's choice)
            return S.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").alias(c)
        if names[c] in nanos:  # read as int64 nanoseconds (nanosAsLong): ISO 8601 in the shard function
            return S.concat(S.lit(_NANOS_TAG), column.cast("string")).alias(c)
        return column.cast("string").alias(c)

    frame = frame.select([as_text(c) for c in names])
    # the record number: partitions are read in file order, so a partition's offset plus the position in it
    frame = frame.withColumn("_id", S.monotonically_increasing_id())
    frame = (frame.withColumn("_p", S.shiftrightunsigned("_id", 33))
             .withColumn("_i", S.col("_id").bitwiseAND((1 << 33) - 1)))
    counts = sorted((r["_p"], r["n"]) for r in frame.groupBy("_p").agg(S.count(S.lit(1)).alias("n")).collect())
    offsets, total = {}, 0
    for part, n in counts:
        offsets[part] = total
        total += n
    mapping = S.create_map([S.lit(x) for kv in offsets.items() for x in kv]) if offsets else None
    row = (mapping[S.col("_p")] + S.col("_i") + S.lit(1)) if mapping is not None else S.lit(1)
    frame = frame.withColumn("row", row.cast("long")).drop("_id", "_p", "_i")
    return frame, fmt, [c for c in names if names[c] in nanos]


#: Marks a Parquet TIMESTAMP(NANOS) value read as int64 (the shard function writes it as ISO 8601).
_NANOS_TAG = "\x00ns:"


def _nanosecond_columns(path: str) -> list[str]:
    """The columns of a Parquet export stored as nanosecond timestamps (Spark reads them as int64)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = path
    if os.path.isdir(path):
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
                       if f.endswith(".parquet") and not f.startswith((".", "_")))
        if not files:
            return []
        first = files[0]
    schema = pq.read_schema(first)
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


def _iso_nanos(values: pd.Series) -> pd.Series:
    """Tagged int64 nanoseconds (:data:`_NANOS_TAG`) -> ISO 8601 UTC text; other values unchanged."""
    text = values.astype(object)
    tagged = text.map(lambda v: isinstance(v, str) and v.startswith(_NANOS_TAG)).astype(bool)
    if tagged.any():
        ns = text[tagged].str.slice(len(_NANOS_TAG)).astype("int64").to_numpy()
        stamps = pd.Series(ns.view("datetime64[ns]"), index=text[tagged].index).dt.tz_localize("UTC")
        text[tagged] = stamps.map(lambda t: t.isoformat())
    return text


def _export_shard_fn(columns: list[str], nanos: list[str], file: str, timezone: str, key: bytes | None, test_users,
                     ctx_holder):
    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        from metrics.io import loaders
        from metrics.io.validate import normalize

        bucket = int(pdf["bucket"].iloc[0]) if len(pdf) else -1
        pdf = pdf.sort_values("row", kind="stable").reset_index(drop=True)
        raw = pd.DataFrame({c: pdf[c].astype(object).where(pdf[c].notna(), None) for c in columns})
        for c in nanos:
            raw[c] = _iso_nanos(raw[c]).where(raw[c].notna(), None)
        norm = normalize(raw, file=file, mapping={c: c for c in columns}, rows=pdf["row"].astype("int64"),
                         timezone=timezone)
        if len(norm.problems):
            first = norm.problems.iloc[0]
            from metrics.io.validate import Problem

            problem = Problem(*[None if pd.isna(v) else v for v in first.tolist()][:6])
            return pd.DataFrame({"bucket": [bucket], "payload": [pickle.dumps(("refused", problem))]})
        frame, notices = norm.frame, list(norm.notices)
        keep = np.ones(len(frame), dtype=bool)
        rows, excluded = loaders._test_rows(frame, keep, test_users)
        keep &= ~rows
        frame = loaders._keep_sorted(frame, keep) if keep.any() else frame.iloc[0:0].reset_index(drop=True)
        masked: dict = {}
        if key is not None and len(frame):
            frame, masked = _redact(frame, key)
        extra = {"excluded": int(excluded), "excluded_messages": int(rows.sum()), "notices": notices,
                 "masked": masked,
                 "columns": list(frame.columns),
                 "end": frame["timestamp"].max() if "timestamp" in frame.columns and len(frame) else pd.NaT}
        if ctx_holder is None:  # first pass: only the context
            return pd.DataFrame({"bucket": [bucket], "payload": [pickle.dumps(("facts+", (None, extra)))]})
        facts = F.shard_facts(frame, ctx_holder)
        return pd.DataFrame({"bucket": [bucket], "payload": [pickle.dumps(("facts+", (facts, extra)))]})
    return fn


def _redact(frame: pd.DataFrame, key: bytes) -> tuple[pd.DataFrame, dict]:
    """The loader's PII step (:func:`metrics.io.loaders._redact`) on one bucket, returning the counts (summed
    over the buckets into the loader's notices by :func:`_redaction_notices`) instead of its notices."""
    from metrics.io.loaders import _FREE_TEXT, _IDS
    from metrics.io.pii import redact_ids, redact_series

    text, counts = redact_series(frame["text"])
    changes, found = {"text": text}, {"text": counts.as_dict()}
    for column in _FREE_TEXT:
        if column in frame.columns and frame[column].notna().any():
            masked, counts = redact_series(frame[column])
            if counts.total_count:
                changes[column] = masked
                found[column] = counts.as_dict()
    for column in _IDS:
        if column in frame.columns and frame[column].notna().any():
            original = frame[column]
            masked = redact_ids(original, key=key)
            changed = int(((masked != original) & original.notna()).fillna(False).sum())
            if changed:
                changes[column] = masked
                found[f"ids:{column}"] = changed
    return frame.assign(**changes), found


def _redaction_notices(extras: list[dict]) -> list[str]:
    """The loader's PII notices for the whole file, from every bucket's counts (in the loader's order)."""
    from metrics.io.loaders import _FREE_TEXT, _IDS
    from metrics.io.pii import RedactionCounts

    def total(name):
        counts = [e["masked"][name] for e in extras if name in e["masked"]]
        if not counts:
            return None
        if isinstance(counts[0], int):
            return sum(counts)
        return RedactionCounts(**{k: sum(c[k] for c in counts) for k in counts[0]})

    notices = []
    text = total("text")
    if text is not None and text.total_count:
        notices.append(text.summary())
    for column in _FREE_TEXT:
        counts = total(column)
        if counts is not None and counts.total_count:
            notices.append(f"{column}: {counts.summary()}")
    for column in _IDS:
        changed = total(f"ids:{column}")
        if changed:
            notices.append(f"Pseudonymised personal data (e-mail addresses, phone numbers) inside {changed:,} "
                           f"{column} value(s) with a keyed hash; the same person keeps one id.")
    return notices


def _run_export(source, *, master, progress, buckets):
    from pyspark.sql import functions as S
    from pyspark.sql.functions import pandas_udf

    from metrics.io.loaders import _PROCESS_KEY

    spark = get_session(master)
    frame, fmt, nanos = read_export(spark, source.path)
    count = buckets or F.DEFAULT_BUCKETS

    @pandas_udf("long")
    def bucket_of(ids: pd.Series) -> pd.Series:
        return pd.Series(F.shard_of(ids.astype("str"), count))

    frame = frame.withColumn("bucket", bucket_of(S.col("conversation_id"))).cache()
    columns = [c for c in frame.columns if c not in ("bucket", "row")]
    file = os.path.basename(source.path.rstrip("/"))
    key = _PROCESS_KEY if source.redact_pii else None
    first = frame.groupBy("bucket").applyInPandas(
        _export_shard_fn(columns, nanos, file, source.timezone, key, (), None), schema="bucket long, payload binary")
    extras = []
    for row in first.toLocalIterator():
        kind, value = pickle.loads(bytes(row["payload"]))
        if kind == "refused":
            raise ValidationError([value])
        extras.append(value[1])
    ends = [e["end"] for e in extras if not pd.isna(e["end"])]
    cols = set()
    for e in extras:
        cols.update(e["columns"])
    ctx = F.Context(export_end=max(ends) if ends else pd.NaT, columns=tuple(sorted(cols)))
    second = frame.groupBy("bucket").applyInPandas(
        _export_shard_fn(columns, nanos, file, source.timezone, key, (), ctx), schema="bucket long, payload binary")
    folder, extras = _collect(second, progress, len(extras))
    frame.unpersist()
    excluded = sum(e["excluded"] for e in extras)
    notices = list(dict.fromkeys(n for e in extras for n in e["notices"]))
    if excluded:
        notices.append(f"Excluded {excluded} test/bot-to-bot conversation(s) "
                       f"({sum(e['excluded_messages'] for e in extras)} messages).")
    notices.extend(_redaction_notices(extras))
    from metrics.io.schema import COLUMNS

    meta = {"file": file, "format": fmt, "excluded_conversations": excluded, "skipped_rows": 0,
            "mapping": {c.name: c.name for c in COLUMNS if c.name in columns}, "warnings": notices}
    return folder.result(), ctx, meta


def run(source, *, master: str | None = None, progress=None, buckets: int | None = None):
    """``(facts, ctx, meta)`` of a :class:`~metrics.engines.StoredInput` or :class:`~metrics.engines.PathInput`."""
    from metrics.engines import FrameInput, PathInput, StoredInput

    if isinstance(source, StoredInput):
        return _run_stored(source, master=master, progress=progress)
    if isinstance(source, PathInput):
        return _run_export(source, master=master, progress=progress, buckets=buckets)
    if isinstance(source, FrameInput):
        raise ConfigError("the spark engine reads a stored dataset or an export itself, not a frame in memory")
    raise ConfigError(f"not an engine input: {type(source).__name__}")
