"""Facts: the per-shard step between the messages and the metrics.

The pipeline is ``messages -> facts -> metrics``. A *shard* is a set of whole conversations (every
message of a conversation is in the same shard: :func:`shard_of` hashes the conversation id). Each
family declares its facts in a module ``metrics/<family>/facts.py`` listed in :data:`FAMILIES`:

``TABLES``
    ``{table name: Table(keys=..., agg=...)}``. A table with ``agg=None`` holds *rows* (one per
    conversation, or per labelled message, ...): the facts of several shards are their rows
    concatenated and sorted by ``keys``. A table with ``agg={column: "sum" | "min" | "max"}`` is an
    *additive aggregate*: the facts of several shards are grouped by ``keys`` and reduced.
``shard_facts(shard, ctx) -> {table name: DataFrame}``
    A pure function of one shard and the dataset :class:`Context`.
``sections(facts, ctx, meta) -> dict``
    The family's ``summary`` sections, computed from the combined facts of every family
    (``facts[family][table]``) and never from the messages.

**The shard contract** (a Hypothesis test per family, ``tests/metrics/core/test_facts_contract.py``): for any partition
of the conversations into shards, ``combine([shard_facts(s) for s in shards])`` equals
``shard_facts(whole)`` (floating sums to 1e-9). That property is what lets the same functions run
in a local process pool (:mod:`metrics.engines.local`) and on Spark (:mod:`metrics.engines.spark`).

Facts that span conversations (repeat users) are not shard facts: they are computed in
``sections`` from the per-conversation rows, so shards are keyed by conversation, never by user.

The :class:`Context` holds the few dataset-wide values a shard needs (the export's last timestamp,
which the outcome rules use for "still open"; the columns the dataset has, so an empty shard gives
facts of the same shape). It is computed by a cheap first pass (:func:`context_of` per shard,
:func:`merge_contexts` across them).
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["Context", "Table", "FAMILIES", "SECTION_ORDER", "DEFAULT_BUCKETS", "context_of", "merge_contexts",
           "shard_of", "split_shards", "shard_facts", "combine", "combine_table", "canonical", "summarise",
           "facts_of_frame", "family_modules", "shard_rollup"]

#: The facts modules, in the order their sections are computed.
FAMILIES: tuple[str, ...] = (
    "metrics.engagement.facts",
    "metrics.outcomes.facts",
    "metrics.intents.facts",
    "metrics.funnel.facts",
    "metrics.sentiment.facts",
    "metrics.improve.facts",
)

#: The summary's sections in report order (``metrics.summary.build_summary`` gives the same order).
SECTION_ORDER: tuple[str, ...] = ("dataset", "volume", "engagement", "outcomes", "escalation", "intents",
                                  "funnel", "sentiment", "ratings", "kpis")

#: Buckets a dataset's conversations are hashed into (the store's parts and the engines' shards).
DEFAULT_BUCKETS = 64


@dataclasses.dataclass(frozen=True)
class Table:
    """How a facts table combines across shards (module docstring)."""

    keys: tuple[str, ...]
    agg: Mapping[str, str] | None = None

    def __post_init__(self):
        if self.agg is not None and any(op not in ("sum", "min", "max") for op in self.agg.values()):
            raise ValueError(f"Table.agg ops must be sum, min or max: {dict(self.agg)!r}")


@dataclasses.dataclass(frozen=True)
class Context:
    """Dataset-wide values every shard's facts may read.

    ``export_end``: the latest message timestamp of the whole dataset (NaT without timestamps).
    ``columns``: the columns of the dataset's messages (sorted), so a shard that lacks a column's
    values still computes facts of the same shape.
    """

    export_end: pd.Timestamp = pd.NaT
    columns: tuple[str, ...] = ()

    def has(self, column: str) -> bool:
        return column in self.columns


def context_of(messages: pd.DataFrame) -> Context:
    """The :class:`Context` of one frame (a shard or the whole dataset).

    >>> m = pd.DataFrame({"conversation_id": ["a"], "speaker": ["user"], "text": ["hi"],
    ...                   "timestamp": pd.to_datetime(["2026-01-02"], utc=True)})
    >>> context_of(m).export_end
    Timestamp('2026-01-02 00:00:00+0000', tz='UTC')
    """
    end = pd.NaT
    if "timestamp" in messages.columns and len(messages):
        end = messages["timestamp"].max()
    return Context(export_end=end, columns=tuple(sorted(messages.columns)))


def merge_contexts(contexts: Iterable[Context]) -> Context:
    """The :class:`Context` of the union of the shards whose contexts are given."""
    ends = [c.export_end for c in contexts if not pd.isna(c.export_end)]
    cols: set[str] = set()
    for c in contexts:
        cols.update(c.columns)
    return Context(export_end=max(ends) if ends else pd.NaT, columns=tuple(sorted(cols)))


def shard_of(conversation_ids: pd.Series, buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """The bucket (0..buckets-1) of each message: a stable hash of its conversation id.

    The same in every process and on Spark (pandas' SipHash with its fixed key), so a later upload's
    messages of a conversation land in the bucket of its earlier ones. A missing id hashes as the empty id.

    >>> b = shard_of(pd.Series(["a", "b", "a"]), 8)
    >>> bool(b[0] == b[2] == shard_of(pd.Series(["a"]), 8)[0]), b.dtype
    (True, dtype('int64'))
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets!r}")
    ids = pd.Series(conversation_ids, copy=False).astype("str").fillna("")
    hashed = pd.util.hash_array(ids.to_numpy(dtype=object), categorize=True)
    return (hashed % np.uint64(buckets)).astype("int64")


def split_shards(messages: pd.DataFrame, buckets: int) -> list[pd.DataFrame]:
    """The frame split into ``buckets`` shards of whole conversations (empty shards included),
    each keeping its rows' relative order and a fresh index."""
    bucket = shard_of(messages["conversation_id"], buckets)
    return [messages[bucket == b].reset_index(drop=True) for b in range(buckets)]


def shard_rollup(shard: pd.DataFrame) -> pd.DataFrame:
    """:func:`metrics.core.rollup.conversation_rollup` of a shard, computed once for all the families
    that need it (kept by :mod:`metrics.core.memo` while the shard's data lives). The same frame each
    time, so derivations keyed on ``(shard, rollup)`` (the outcome facts) are shared too."""
    from metrics.core import memo
    from metrics.core.rollup import conversation_rollup

    return memo.cached("facts.shard_rollup", (shard,), None, lambda: conversation_rollup(shard))


def family_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FAMILIES]


def _family_name(module: ModuleType) -> str:
    return module.__name__.split(".")[-2]


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, dict[str, pd.DataFrame]]:
    """``{family: {table: frame}}`` for one shard (every family in :data:`FAMILIES`)."""
    return {_family_name(m): m.shard_facts(shard, ctx) for m in family_modules()}


def canonical(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """A facts table in its canonical form: aggregated when additive, sorted by its keys."""
    if table.agg is not None:
        if not table.keys:
            if len(frame) == 0:
                return frame.iloc[0:0].reset_index(drop=True)
            row = {c: getattr(frame[c], op)() for c, op in table.agg.items()}
            return pd.DataFrame({c: pd.Series([v], dtype=frame[c].dtype) for c, v in row.items()})
        if len(frame) == 0:
            return frame[list(table.keys) + list(table.agg)].reset_index(drop=True)
        out = frame.groupby(list(table.keys), dropna=False, sort=True).agg(dict(table.agg)).reset_index()
        for c in out.columns:
            if c in frame.columns and out[c].dtype != frame[c].dtype:
                try:
                    out[c] = out[c].astype(frame[c].dtype)
                except (TypeError, ValueError):
                    pass
        return out.reset_index(drop=True)
    if table.keys and len(frame):
        frame = frame.sort_values(list(table.keys), kind="stable", na_position="last")
    return frame.reset_index(drop=True)


def combine_table(frames: list[pd.DataFrame], table: Table) -> pd.DataFrame:
    """One facts table of several shards (module docstring)."""
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ValueError("combine_table needs at least one frame")
    nonempty = [f for f in frames if len(f)]
    joined = pd.concat(nonempty, ignore_index=True) if nonempty else frames[0].iloc[0:0]
    if len(nonempty) > 1:
        for c in joined.columns:  # concat of str columns with all-NA shards may give object
            dtypes = {f[c].dtype for f in nonempty if c in f.columns}
            if len(dtypes) == 1 and joined[c].dtype != next(iter(dtypes)):
                joined[c] = joined[c].astype(next(iter(dtypes)))
    return canonical(joined, table)


def combine(parts: list[dict[str, dict[str, pd.DataFrame]]]) -> dict[str, dict[str, pd.DataFrame]]:
    """The facts of the union of shards, from the facts of each shard."""
    if not parts:
        raise ValueError("combine needs the facts of at least one shard")
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for module in family_modules():
        fam = _family_name(module)
        out[fam] = {name: combine_table([p[fam][name] for p in parts], spec)
                    for name, spec in module.TABLES.items()}
    return out


def summarise(facts: dict[str, dict[str, pd.DataFrame]], ctx: Context, meta: Mapping | None = None) -> dict:
    """The ``summary`` report (the same JSON as :func:`metrics.summary.build_summary`) from facts.

    ``meta``: what the load recorded and the facts cannot know: ``file``, ``format``,
    ``excluded_conversations``, ``skipped_rows``, ``mapping``, ``warnings``.
    """
    from metrics.summary import jsonable

    sections: dict = {}
    for module in family_modules():
        got = module.sections(facts, ctx, dict(meta or {}))
        if got:
            sections.update(got)
    ordered = {k: sections[k] for k in SECTION_ORDER if k in sections}
    ordered.update({k: v for k, v in sections.items() if k not in ordered})
    return jsonable(ordered)


def facts_of_frame(messages: pd.DataFrame, *, buckets: int = 1,
                   ctx: Context | None = None) -> tuple[dict[str, dict[str, pd.DataFrame]], Context]:
    """The combined facts of an in-memory frame computed shard by shard (``buckets`` shards), and
    its context: the reference the engines are tested against."""
    ctx = ctx or context_of(messages)
    if buckets == 1:
        return combine([shard_facts(messages, ctx)]), ctx
    return combine([shard_facts(s, ctx) for s in split_shards(messages, buckets)]), ctx
