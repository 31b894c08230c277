"""The contract every public metric function keeps, checked over ALL of them at once.

The spec: "property tests across all metrics (shuffling rows changes nothing, empty input
gives the documented result, the input is never mutated)". Each family has its own tests;
this file is the net that makes sure no public function slips through:

* ``REGISTRY`` has one entry per public function that takes a transcript-derived frame
  (messages, rollup, scored frame, audit scores, KPI table ...): a small callable
  ``lambda d: fn(d.messages, d.rollup, ...)`` on a :class:`Data` bundle (``over`` / ``each``
  run one function under several options). ``EXCLUDED`` names every other public function of
  the family modules with a one-line reason; the completeness tests fail when a new public
  function (or a new metrics module) appears without an entry.
* Properties, parametrized over the registry, on random transcripts (Hypothesis) and on a
  hand-written one (``RICH``):
  a. shuffling the message rows (and the rows of every other raw input: reviewer scores,
     label rows, backlog state; the rollup and derived frames are rebuilt from the shuffled
     messages) gives the same result, up to row order and float noise;
  b. no input frame (nor its ``attrs``) is modified;
  c. ``messages.iloc[0:0]`` and everything built from it gives a result or a typed
     :class:`metrics.errors.ChatlensError`, never another exception;
  d. naming: ``*_rate`` in [0, 1] or NaN, ``*_count`` non-negative integers (integer dtype;
     ``mean_*_count`` non-negative), ``*_seconds`` non-negative or NaN -- in
     DataFrame columns, dataclass fields, numeric dict values, and the float a ``*_rate``
     function returns.
  a, b and d run in one test (they share the first call), c in its own. A typed
  ChatlensError is an accepted outcome everywhere (after a shuffle it must be the same error);
  any other exception fails. ``CHATLENS_CONTRACT_EXAMPLES`` (default 25) and
  ``CHATLENS_CONTRACT_SEED`` set the examples for a deeper or different run.

An entry whose function legitimately breaks a property says so in ``Entry.not_applicable``
with the reason (none does today).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import inspect
import math
import os
import random
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from types import CodeType
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import pytest
from conftest import messages_frame
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from metrics.improve import compare
from metrics import audit, engagement, funnel, intents, kpis, outcomes, overview, roi, sentiment, store
from metrics.outcomes import abandonment
from metrics.improve import alerts
from metrics.audit import labels as audit_labels
from metrics.improve import backlog
from metrics.improve import changelog
from metrics.outcomes import escalation
from metrics.io import labels
from metrics.improve import review
from metrics.core import rollup
from metrics.sentiment import measures as sentiment_metrics
from metrics.engagement import volume
from metrics.errors import ChatlensError

# ============================================================================ modules in scope
#: Metric family modules: every public function is registered or excluded.
FAMILY_MODULES = ("engagement", "volume", "outcomes", "escalation", "abandonment", "intents", "sentiment_metrics",
                  "funnel", "kpis", "alerts", "roi", "audit", "audit_queue", "audit_labels", "backlog", "changelog",
                  "overview", "labels", "review", "stats", "summary", "goals", "rollup", "sentiment", "pii",
                  "compare")
#: Where each module lives in the family layout (short name -> path under metrics/); a name not listed is a
#: module of the package root.
PATHS = {
    "schema": "io.schema", "readers": "io.readers", "validate": "io.validate", "loaders": "io.loaders",
    "pii": "io.pii", "labels": "io.labels", "export": "io.export",
    "rollup": "core.rollup", "frames": "core.frames", "memo": "core.memo", "stats": "core.stats",
    "periods": "core.periods", "order": "core.order", "migrations": "store.migrations",
    "search": "store.search", "engagement_charts": "engagement.charts", "volume": "engagement.volume",
    "outcome_charts": "outcomes.charts", "cli_outcomes": "outcomes.cli", "escalation": "outcomes.escalation",
    "abandonment": "outcomes.abandonment", "intent_charts": "intents.charts", "cli_intents": "intents.cli",
    "sentiment_metrics": "sentiment.measures", "sentiment_charts": "sentiment.charts",
    "sentiment_cache": "sentiment.cache", "cli_sentiment": "sentiment.cli", "funnel_charts": "funnel.charts",
    "funnel_store": "funnel.store", "cli_funnel": "funnel.cli", "roi_charts": "roi.charts", "roi_params": "roi.params",
    "roi_store": "roi.store", "cli_roi": "roi.cli", "audit_labels": "audit.labels", "audit_queue": "audit.queue",
    "audit_store": "audit.store", "cli_audit": "audit.cli", "changelog": "improve.changelog",
    "changelog_charts": "improve.changelog_charts", "backlog": "improve.backlog", "goals": "improve.goals",
    "goals_store": "improve.store", "alerts": "improve.alerts", "cli_alerts": "improve.cli_alerts",
    "review": "improve.review", "compare": "improve.compare", "notify": "improve.notify",
}
#: Every other module of metrics/, with the reason it is not a metric family.
OTHER_MODULES = {
    "__init__": "package marker", "__main__": "CLI entry point",
    "errors": "exception types", "schema": "column catalogue of the validated frame",
    "validate": "normalises raw tables into the validated frame (fuzzed in test_fuzz)",
    "loaders": "file loading (bytes in, LoadResult out)", "readers": "file readers (bytes in)",
    "export": "CSV writing", "store": "sqlite persistence", "audit_store": "sqlite persistence",
    "funnel_store": "sqlite persistence", "goals_store": "sqlite persistence", "roi_store": "sqlite persistence",
    "sentiment_cache": "sqlite persistence", "search": "sqlite persistence (FTS5 search index)",
    "roi_params": "URL query parameters",
    "frames": "row selection helper (tests/metrics/core/test_frames.py)",
    "memo": "internal cache of intermediate tables shared by metric functions (tests/metrics/core/test_memo.py)",
    "periods": "day / ISO week / month start, end and label (tests/metrics/core/test_core_periods_order.py)",
    "order": "the conversation order of messages (tests/metrics/core/test_core_periods_order.py)",
    "migrations": "the store's schema migrations: mechanism and plan (tests/metrics/store/test_migrations.py)",
    "cli": "command line", "cli_alerts": "command line", "cli_audit": "command line", "cli_funnel": "command line",
    "cli_intents": "command line", "cli_outcomes": "command line", "cli_roi": "command line",
    "cli_sentiment": "command line", "cli_ingest": "command line", "cli_report": "command line",
    "notify": "delivers alert reports (webhooks, e-mail), no frame",
    "engagement_charts": "altair chart builders", "outcome_charts": "altair chart builders",
    "intent_charts": "altair chart builders", "sentiment_charts": "altair chart builders",
    "funnel_charts": "altair chart builders", "roi_charts": "altair chart builders",
    "changelog_charts": "altair chart builders",
    **{f"{fam}.facts": f"the {fam} family's per-shard facts: the shard contract in tests/metrics/core/test_facts.py "
                       f"and tests/metrics/{fam}/test_*_facts.py, the summary from facts in test_facts.py"
       for fam in ("engagement", "outcomes", "intents", "funnel", "sentiment", "improve")},
    "core.facts": "the facts framework (tables, combining, shards): tests/metrics/core/test_facts.py",
    "engines": "runs the facts shard by shard (local pool, Spark): tests/metrics/engines/test_engines.py",
    "engines.local": "the local process-pool engine: tests/metrics/engines/test_engines.py",
    "engines.spark": "the Spark engine: tests/metrics/engines/test_engines.py (Spark equals local)",
    "io.stream": "streamed ingest of a large CSV: tests/metrics/io/test_stream.py",
    "store.facts_cache": "sqlite persistence (facts kept per dataset version)",
}

# ============================================================================ random transcripts
BASE = pd.Timestamp("2026-08-03T00:00:00Z")  # a Monday
USER_TEXTS = ["hi", "thanks", "where is my order?", "I want a human", "this is useless", "my card was stolen",
              "price of pro?", "ok", "blorp", "my email is jane@example.org", "call me on +44 20 7946 0958",
              "great, that really helped!", "I hate this bot"]
BOT_TEXTS = ["Hello! How can I help?", "It ships tomorrow.", "Did that answer your question?", "Your e-mail?",
             "Bye!", "Connecting you.", "Which plan?", "Sorry, I did not get that."]
INTENTS = ["greet", "order_status", "nlu_fallback", "pricing", None]
EVENTS = [None, None, None, "handoff", "survey", "fallback", "inquiry", "qualification", "email"]
#: Optional columns a random frame may lack (the required ones are always there).
OPTIONAL = ("message_id", "user_id", "channel", "intent", "confidence", "true_intent", "event", "model_version",
            "outcome", "goal_achieved", "escalation_reason", "rating", "thumbs", "survey_solved", "topic",
            "converted", "conversion_value", "segment", "utm_source", "utm_campaign")

CONFIDENCES = (None, 0.1, 0.35, 0.5, 0.6, 0.75, 0.9, 1.0)        # the 0.5 / 0.6 thresholds exactly, too
TRUE_INTENTS = ("same", None, "greet", "order_status", "nlu_fallback", "pricing", "same", "same")
#: Conversation fields, each drawn from a few bits of one integer (0 = every field missing), so a
#: conversation costs Hypothesis three draws and still shrinks towards "nothing set".
FIELDS = (("user", (None, "u1", "u2", "u3")), ("goal", (None, True, False, None)),
          ("survey", (None, True, False, None)),
          ("outcome", (None, "resolved", "escalated", "abandoned", "unknown-value", None, None, None)),
          ("topic", (None, "inquiry", "complaint", None)), ("rating", (None, 1.0, 2.0, 4.0, 5.0, 3.0, None, None)),
          ("thumbs", (None, "up", "down", None)), ("reason", (None, "Customer requested agent")),
          ("converted", (None, True, False, None)), ("value", (None, 0.0, 120.0, None)),
          ("channel", (None, "web", "app", "web")), ("segment", (None, "smb", "enterprise", None)),
          ("utm", (None, "ads", "mail", None)))
_BITS = [(name, choices, len(choices).bit_length() - 1) for name, choices in FIELDS]


def decode(profile: int) -> dict:
    out = {}
    for name, choices, bits in _BITS:
        out[name] = choices[profile & ((1 << bits) - 1)]
        profile >>= bits
    return out


def encode(**fields) -> int:
    """The profile integer of ``fields`` (the others missing); the inverse of :func:`decode`."""
    profile, shift = 0, 0
    for name, choices, bits in _BITS:
        profile |= choices.index(fields.get(name)) << shift
        shift += bits
    return profile


def extra(true_intent="same", confidence=None, version="v1") -> int:
    """A message's packed (true intent, confidence, model version) choice."""
    return TRUE_INTENTS.index(true_intent) | CONFIDENCES.index(confidence) << 3 | ("v1", "v2").index(version) << 6


message = st.tuples(
    st.sampled_from(["user", "user", "user", "bot", "bot", "agent", "system"]),
    st.integers(0, 100),                          # text choice
    st.integers(0, 90),                           # minutes after the conversation start (ties allowed)
    st.sampled_from(EVENTS),
    st.sampled_from(INTENTS),
    st.integers(0, 127),                          # packed true intent, confidence, model version (extra())
)
conversation = st.tuples(
    st.lists(message, min_size=1, max_size=6),
    st.integers(0, 60 * 24 * 45),                 # start minute: six and a half weeks, two months
    st.integers(0, 2 ** sum(bits for _, _, bits in _BITS) - 1),   # conversation fields (decode())
)


def build(convs, *, timed=True, drop=()) -> pd.DataFrame:
    """A validated-format frame of ``convs`` (timestamps all set, or all NaT), without the ``drop`` columns."""
    rows = []
    for i, (messages, start_minute, profile) in enumerate(convs):
        c = decode(profile)
        start = BASE + pd.Timedelta(minutes=start_minute)
        for speaker, t, minute, event, intent, packed in messages:
            user = speaker == "user"
            true_intent = TRUE_INTENTS[packed & 7]
            row = {"conversation_id": f"c{i:02d}", "speaker": speaker,
                   "text": USER_TEXTS[t % len(USER_TEXTS)] if user else BOT_TEXTS[t % len(BOT_TEXTS)],
                   "message_id": f"m{len(rows) + 1}", "user_id": c["user"], "channel": c["channel"],
                   "intent": intent if user else None,
                   "confidence": CONFIDENCES[packed >> 3 & 7] if user else None,
                   "true_intent": (intent if true_intent == "same" else true_intent) if user else None,
                   "event": event, "model_version": ("v1", "v2")[packed >> 6 & 1], "outcome": c["outcome"],
                   "goal_achieved": c["goal"], "escalation_reason": c["reason"], "rating": c["rating"],
                   "thumbs": c["thumbs"], "survey_solved": c["survey"], "topic": c["topic"],
                   "converted": c["converted"], "conversion_value": c["value"], "segment": c["segment"],
                   "utm_source": c["utm"], "utm_campaign": None if c["utm"] is None else f"{c['utm']}-q3"}
            if timed:
                row["timestamp"] = (start + pd.Timedelta(minutes=minute)).isoformat()
            rows.append(row)
    frame = messages_frame(rows)
    return frame.drop(columns=[c for c in drop if c in frame.columns])


transcripts = st.fixed_dictionaries({
    "convs": st.lists(conversation, min_size=1, max_size=8),
    "timed": st.sampled_from([True, True, False]),
    "drop": st.one_of(st.just(()), st.just(()), st.lists(st.sampled_from(OPTIONAL), max_size=5, unique=True)),
    "seed": st.integers(0, 2**16),                # side frames (reviews, labels)
})

#: A hand-written transcript every property always runs on (timed, every column, every feature).
RICH = {"timed": True, "drop": (), "seed": 7, "convs": [
    ([("user", 6, 0, "inquiry", "pricing", extra(confidence=0.9)), ("bot", 6, 1, None, None, 0),
      ("user", 9, 2, "qualification", "pricing", extra(confidence=0.75)), ("bot", 3, 3, None, None, 0),
      ("user", 11, 5, "email", "greet", extra("pricing", 0.35, "v2"))],
     600, encode(user="u1", goal=True, topic="inquiry", rating=5.0, thumbs="up", converted=True, value=120.0,
                 channel="web", segment="smb", utm="ads")),
    ([("user", 2, 0, None, "order_status", extra(confidence=0.35, version="v2")), ("bot", 2, 1, None, None, 0),
      ("user", 3, 2, None, "nlu_fallback", extra("order_status", None, "v2")),
      ("bot", 5, 2, "handoff", None, 0), ("agent", 0, 9, None, None, 0)],
     60 * 24 * 8 + 700, encode(user="u1", survey=False, topic="complaint", rating=1.0, thumbs="down",
                               reason="Customer requested agent", converted=False, channel="app",
                               segment="enterprise")),
    ([("user", 4, 0, None, "order_status", extra("pricing", 0.75)), ("bot", 6, 1, None, None, 0)],
     60 * 24 * 16, encode(user="u2")),
    ([("user", 0, 0, None, "greet", extra(confidence=1.0, version="v2")),
      ("user", 12, 0, "survey", "pricing", extra(confidence=0.1))],
     60 * 24 * 30, encode(goal=False, survey=True, outcome="escalated", topic="complaint", rating=2.0,
                          converted=True, value=0.0, channel="web", segment="smb", utm="mail")),
]}

#: Edge cases every property also runs on: a conversation without any user message (rated),
#: and an untimed one-message transcript with only the required columns.
BOT_ONLY = {"timed": True, "drop": (), "seed": 0, "convs": [([("bot", 0, 0, None, None, 0)], 0, encode(rating=4.0))]}
BARE = {"timed": False, "drop": OPTIONAL, "seed": 0, "convs": [([("user", 2, 0, None, None, 0)], 0, 0)]}

# ============================================================================ the inputs of one run
SCORE_CACHE = sentiment.MemoryCache()             # VADER scores of the fixed texts, shared by every run
CHANGES = (changelog.ChangeEntry(dt.date(2026, 8, 17), "New hand-off flow", "workflow_change", "escalation_rate", id=1),
           changelog.ChangeEntry(dt.date(2026, 8, 24), "Retrained NLU", "training_data", "intent_accuracy", id=2),
           changelog.ChangeEntry(dt.date(2026, 9, 7), "Shorter answers", "response_rewrite", "resolution_rate", id=3))
REVIEWERS = ("ann", "ben", "cy")
WEEKS = compare.PeriodPair(
    compare.Window(pd.Timestamp("2026-08-10", tz="UTC"), pd.Timestamp("2026-08-17", tz="UTC"), "2026-W33", "W"),
    compare.Window(pd.Timestamp("2026-08-03", tz="UTC"), pd.Timestamp("2026-08-10", tz="UTC"), "2026-W32", "W"), "week")


class Data:
    """The frames a metric function may take, built from one transcript.

    ``messages`` is the validated frame; the rest are built from it on first use. Raw side
    inputs (reviewer scores, label rows, backlog state) are a function of the conversation
    ids / message keys and ``seed``, so they are the same after a shuffle. ``shuffled(seed)``
    returns the same data with the rows of ``messages`` and of every raw side frame
    permuted (index labels travel with their rows); derived frames are rebuilt from it.
    """

    #: Attributes that are frames (the inputs compared before/after each call).
    FRAMES = ("messages", "rollup", "scored", "scores", "raw_labels", "label_rows", "label_file", "candidates",
              "series", "kpi_frame", "backlog_table", "state", "changes", "examples")

    def __init__(self, messages: pd.DataFrame, *, seed: int = 0, permute: int | None = None):
        self.messages = messages
        self.seed = seed
        self.permute = permute

    def shuffled(self, permute: int) -> "Data":
        return Data(self._mix(self.messages, permute), seed=self.seed, permute=permute)

    @staticmethod
    def _mix(frame: pd.DataFrame, permute: int | None) -> pd.DataFrame:
        if permute is None:
            return frame
        return frame.iloc[np.random.default_rng(permute).permutation(len(frame))]

    def copy(self, name: str) -> pd.DataFrame:
        """A deep copy of frame ``name`` (derived frames are built from copies, so a metric that
        modifies its input cannot spoil the shared data)."""
        return getattr(self, name).copy(deep=True)

    def _rng(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}:{key}")

    # ---------------------------------------------------------------- derived from the messages
    @cached_property
    def rollup(self) -> pd.DataFrame:
        return rollup.conversation_rollup(self.copy("messages"))

    @cached_property
    def scored(self) -> pd.DataFrame:
        return sentiment.add_sentiment(self.copy("messages"), cache=SCORE_CACHE)

    @cached_property
    def candidates(self) -> pd.DataFrame:
        return audit.audit_candidates(self.copy("messages"), self.copy("rollup"),
                                      compound=self.copy("scored")["compound"])

    @cached_property
    def series(self) -> pd.DataFrame:
        return kpis.kpi_series(self.copy("messages"), self.copy("rollup"), metric="escalation_rate")

    @cached_property
    def kpi_frame(self) -> pd.DataFrame:
        return kpis.kpi_table(self.copy("scored"), self.copy("rollup"), spark_periods=0)

    @cached_property
    def backlog_table(self) -> pd.DataFrame:
        return backlog.improvement_candidates(self.copy("messages"), self.copy("rollup"), min_count=1, min_labelled=1,
                                              audit_scores=self.copy("scores")).table

    @cached_property
    def changes(self) -> pd.DataFrame:
        return changelog.before_after_table(self.copy("messages"), self.copy("rollup"), CHANGES, window_days=7,
                                            min_days=1)

    @cached_property
    def examples(self) -> pd.DataFrame:
        return audit.training_examples(self.copy("scores"))

    # ---------------------------------------------------------------- raw side inputs
    @cached_property
    def scores(self) -> pd.DataFrame:
        """Reviewer scores as metrics.audit.store.load_scores gives them: 0-3 reviewers per conversation."""
        rows = []
        for cid in sorted(self.messages["conversation_id"].unique()):
            rng = self._rng(cid)
            for reviewer in rng.sample(REVIEWERS, rng.randint(0, 3)):
                rows.append({"conversation_id": cid, "reviewer": reviewer,
                             **{c: rng.randint(1, 5) for c in audit.CRITERIA},
                             "flags": rng.choice(["", "", "good_example", "bad_example",
                                                  "good_example;designed_limitation"]),
                             "note": rng.choice(["", "slow", "confused about billing"]),
                             "saved_at": f"2026-09-{rng.randint(10, 28)}T10:00:00Z", "revision": 1})
        frame = pd.DataFrame(rows, columns=["conversation_id", "reviewer", *audit.CRITERIA, "flags", "note",
                                            "saved_at", "revision"])
        frame = frame.astype({"conversation_id": "str", "reviewer": "str", **{c: "int64" for c in audit.CRITERIA},
                              "flags": "str", "note": "str", "saved_at": "str", "revision": "int64"})
        return self._mix(frame, self.permute)

    @cached_property
    def _keys(self) -> list[str]:
        users = self.messages[self.messages["speaker"] == "user"]
        return sorted(set(store.message_keys(users)))

    @cached_property
    def raw_labels(self) -> pd.DataFrame:
        """Reviewer label rows as metrics.audit.store.load_labels gives them."""
        rows = []
        for key in self._keys:
            rng = self._rng(key)
            for reviewer in rng.sample(REVIEWERS, rng.randint(0, 2)):
                verdict = rng.choice(["yes", "no", "unsure"])
                rows.append({"message_key": key, "reviewer": reviewer, "verdict": verdict,
                             "true_intent": rng.choice(["pricing", "greet"]) if verdict == "no" else None,
                             "predicted_intent": rng.choice(["pricing", "order_status", None]),
                             "saved_at": f"2026-09-{rng.randint(10, 28)}T10:00:00Z"})
        frame = pd.DataFrame(rows, columns=["message_key", "reviewer", "verdict", "true_intent", "predicted_intent",
                                            "saved_at"]).astype("str")
        return self._mix(frame, self.permute)

    @cached_property
    def label_rows(self) -> pd.DataFrame:
        """message_key -> true_intent for about a third of the user messages (metrics.intents.apply_labels)."""
        keys = [k for k in self._keys if self._rng(k).random() < 0.35]
        frame = pd.DataFrame({"message_key": keys, "true_intent": [self._rng(k).choice(["pricing", "greet"])
                                                                  for k in keys]}, dtype="str")
        return self._mix(frame, self.permute)

    @cached_property
    def label_file(self) -> pd.DataFrame:
        """A labels file by message id, as metrics.io.labels.read_labels gives it."""
        ids = sorted(self.messages["message_id"].dropna().unique()) if "message_id" in self.messages else []
        keys = [k for k in ids if self._rng(k).random() < 0.35] + ["not-a-message"]
        frame = pd.DataFrame({"message_key": keys, "true_intent": ["pricing"] * len(keys)}, dtype="str")
        return self._mix(frame, self.permute)

    @cached_property
    def state(self) -> pd.DataFrame:
        """The team's backlog edits (metrics.improve.store.backlog_state) for some candidate keys."""
        keys = [k for k in sorted(self.backlog_table["key"]) if self._rng(k).random() < 0.5] + ["gone:item"]
        frame = pd.DataFrame({"item_key": keys, "effort": [float(self._rng(k).randint(1, 8)) for k in keys],
                              "status": [self._rng(k).choice(["open", "accepted", "done"]) for k in keys],
                              "change_id": pd.array([None] * len(keys), dtype="Int64"),
                              "updated_at": ["2026-09-01T00:00:00Z"] * len(keys)})
        return self._mix(frame.astype({"item_key": "str", "status": "str", "updated_at": "str"}), self.permute)


class View:
    """What one call sees: fresh deep copies of the shared :class:`Data` frames it reads."""

    def __init__(self, data: Data):
        self._data = data
        self.frames: dict[str, pd.DataFrame] = {}

    def __getattr__(self, name):
        if name in Data.FRAMES:
            if name not in self.frames:
                self.frames[name] = self._data.copy(name)
            return self.frames[name]
        return getattr(self._data, name)


#: Data of recent examples (every registry entry runs on the same examples, see ``seed`` below),
#: so each transcript, rollup, scored frame and KPI table is built once, not once per entry.
_SHARED: OrderedDict = OrderedDict()


def _shared(key, make: Callable[[], Data]) -> Data:
    if key not in _SHARED:
        _SHARED[key] = make()
        while len(_SHARED) > 200:
            _SHARED.popitem(last=False)
    _SHARED.move_to_end(key)
    return _SHARED[key]


def spec_key(spec: dict) -> str:
    return repr(sorted(spec.items()))


def make_data(spec: dict, permute: int | None = None) -> View:
    """The example's data, or with ``permute`` its shuffled twin (rollup etc. rebuilt from it)."""
    key = spec_key(spec)
    data = _shared(("full", key), lambda: Data(build(spec["convs"], timed=spec["timed"], drop=spec["drop"]),
                                               seed=spec["seed"]))
    if permute is not None:
        data = _shared(("shuffled", key, permute), lambda: data.shuffled(permute))
    return View(data)


def empty_data(spec: dict) -> View:
    """``messages.iloc[0:0]`` of the example (its columns and dtypes), and everything built from that."""
    return View(_shared(("empty", spec_key(spec)), lambda: Data(
        build(spec["convs"], timed=spec["timed"], drop=spec["drop"]).iloc[0:0], seed=spec["seed"])))


# ============================================================================ registry helpers
@dataclasses.dataclass(frozen=True)
class Raised:
    """A typed Chatlens error, kept as a result (one option of several may legitimately raise)."""

    type: str
    message: str


class Variants(dict):
    """Results of one function under several options, keyed by the option (not a result field)."""


def each(**calls: Callable[[], object]) -> Variants:
    """``{name: call()}``; a ChatlensError becomes :class:`Raised`, any other exception propagates."""
    out = Variants()
    for name, call in calls.items():
        try:
            out[name] = call()
        except ChatlensError as exc:
            out[name] = Raised(type(exc).__name__, str(exc))
    return out


def over(call: Callable[..., object], **choices) -> Variants:
    """``call`` once per value of one keyword option, as :func:`each`."""
    ((key, values),) = choices.items()
    return each(**{str(v): (lambda v=v: call(**{key: v})) for v in values})


@dataclasses.dataclass(frozen=True)
class Entry:
    call: Callable[[Data], object]
    #: property name ("shuffle", "mutation", "empty", "naming") -> why it does not apply.
    not_applicable: Mapping[str, str] = dataclasses.field(default_factory=dict)


F = funnel.DEFAULT_LEAD_FUNNEL
TWO_STAGES = ("in=event:inquiry", "qual=event:qualification")

REGISTRY: dict[str, Entry | Callable[[Data], object]] = {
    "compare.compare_periods": lambda d: compare.compare_periods(d.scored, d.rollup, WEEKS),
    "compare.compare_datasets": lambda d: compare.compare_datasets((d.scored, d.rollup), (d.messages, d.rollup)),
    "compare.compare_intents": lambda d: compare.compare_intents(d.messages, d.messages),
    "compare.window_slice": lambda d: compare.window_slice(d.messages, d.rollup, WEEKS.current),
    "compare.latest_period": lambda d: compare.latest_period(d.rollup),
    "compare.parse_period": lambda d: compare.parse_period("2026-08-03..2026-08-16", d.rollup),
    # ------------------------------------------------------------------ rollup
    "rollup.conversation_rollup": lambda d: each(
        default=lambda: rollup.conversation_rollup(d.messages),
        berlin=lambda: rollup.conversation_rollup(
            d.messages, business_hours=rollup.BusinessHours(start_hour=8, end_hour=18, timezone="Europe/Berlin"))),
    # ------------------------------------------------------------------ sentiment
    "sentiment.score_messages": lambda d: sentiment.score_messages(d.messages, cache=SCORE_CACHE),
    "sentiment.add_sentiment": lambda d: sentiment.add_sentiment(d.messages, cache=SCORE_CACHE),
    # ------------------------------------------------------------------ engagement
    "engagement.user_turns_distribution": lambda d: engagement.user_turns_distribution(d.rollup),
    "engagement.message_count_distribution": lambda d: engagement.message_count_distribution(d.rollup),
    "engagement.duration_distribution": lambda d: engagement.duration_distribution(d.rollup),
    "engagement.repeat_users": lambda d: engagement.repeat_users(d.rollup),
    "engagement.after_hours_rate": lambda d: engagement.after_hours_rate(d.rollup),
    "engagement.engagement_by_segment": lambda d: over(
        lambda **kw: engagement.engagement_by_segment(d.rollup, **kw), by=engagement.SEGMENTS),
    "engagement.engagement_summary": lambda d: engagement.engagement_summary(d.rollup),
    "engagement.segment_labels": lambda d: over(
        lambda **kw: engagement.segment_labels(d.rollup, **kw), by=engagement.SEGMENTS),
    "engagement.duration_buckets": lambda d: engagement.duration_buckets(d.rollup),
    # ------------------------------------------------------------------ volume
    "volume.require_timestamps": lambda d: volume.require_timestamps(d.rollup, view="volume"),
    "volume.conversation_periods": lambda d: over(
        lambda **kw: volume.conversation_periods(d.rollup, **kw), timezone=("UTC", "America/New_York")),
    "volume.conversations_per_period": lambda d: over(
        lambda **kw: volume.conversations_per_period(d.rollup, **kw), period=volume.PERIODS),
    "volume.hour_weekday_heatmap": lambda d: volume.hour_weekday_heatmap(d.rollup, timezone="Asia/Kolkata"),
    "volume.business_hours_split": lambda d: volume.business_hours_split(d.rollup),
    "volume.conversations_by_channel": lambda d: volume.conversations_by_channel(d.rollup),
    "volume.volume_spikes": lambda d: volume.volume_spikes(d.rollup, k=1.0, window=7, min_history=2, min_sd=0.5),
    "volume.spike_days": lambda d: volume.spike_days(d.rollup, k=1.0, window=7, min_history=2, min_sd=0.5),
    "volume.dense_span": lambda d: volume.dense_span(d.rollup),
    "volume.within_dense_span": lambda d: volume.within_dense_span(d.rollup, volume.dense_span(d.rollup)),
    # ------------------------------------------------------------------ outcomes
    "outcomes.escalation_signal": lambda d: outcomes.escalation_signal(d.messages, d.rollup),
    "outcomes.primary_intent": lambda d: outcomes.primary_intent(d.messages),
    "outcomes.outcome_table": lambda d: outcomes.outcome_table(d.messages, d.rollup),
    "outcomes.classify_outcomes": lambda d: each(
        default=lambda: outcomes.classify_outcomes(d.messages, d.rollup),
        no_goal=lambda: outcomes.classify_outcomes(
            d.messages, d.rollup, rules=outcomes.OutcomeRules(abandonment_mode="no_goal", timeout_minutes=5))),
    "outcomes.outcome_rates": lambda d: outcomes.outcome_rates(d.messages, d.rollup),
    "outcomes.outcome_mix": lambda d: over(
        lambda **kw: outcomes.outcome_mix(d.messages, d.rollup, **kw), period=volume.PERIODS),
    "outcomes.vendor_outcome_table": lambda d: outcomes.vendor_outcome_table(d.messages, d.rollup),
    "outcomes.vendor_definitions": lambda d: outcomes.vendor_definitions(d.messages, d.rollup),
    "outcomes.resolution_by_tag": lambda d: over(
        lambda **kw: outcomes.resolution_by_tag(d.messages, d.rollup, min_group=2, **kw), by=("topic", "intent")),
    "outcomes.conversation_tags": lambda d: over(
        lambda **kw: outcomes.conversation_tags(d.messages, d.rollup, **kw), by=("topic", "intent")),
    # ------------------------------------------------------------------ escalation
    "escalation.escalation_table": lambda d: escalation.escalation_table(d.messages, d.rollup, timezone="Europe/Paris"),
    "escalation.escalation_reasons": lambda d: escalation.escalation_reasons(d.messages, d.rollup),
    "escalation.escalation_turns": lambda d: escalation.escalation_turns(d.messages, d.rollup),
    "escalation.escalation_timing": lambda d: escalation.escalation_timing(d.messages, d.rollup, early_turns=1),
    "escalation.escalation_by": lambda d: over(
        lambda **kw: escalation.escalation_by(d.messages, d.rollup, **kw), by=escalation.ESCALATION_GROUPS),
    "escalation.handoff_wait_times": lambda d: escalation.handoff_wait_times(d.messages, d.rollup),
    "escalation.handoff_wait": lambda d: escalation.handoff_wait(d.messages, d.rollup),
    "escalation.handoff_success": lambda d: escalation.handoff_success(d.messages, d.rollup),
    "escalation.escalation_summary": lambda d: escalation.escalation_summary(d.messages, d.rollup),
    # ------------------------------------------------------------------ abandonment
    "abandonment.abandonment_table": lambda d: abandonment.abandonment_table(d.messages, d.rollup),
    "abandonment.abandonment_turns": lambda d: abandonment.abandonment_turns(d.messages, d.rollup),
    "abandonment.last_bot_messages": lambda d: abandonment.last_bot_messages(d.messages, d.rollup, top=3),
    # ------------------------------------------------------------------ intents
    "intents.has_intent_labels": lambda d: intents.has_intent_labels(d.messages),
    "intents.suggest_fallback_intent": lambda d: intents.suggest_fallback_intent(d.messages),
    "intents.labelled_messages": lambda d: intents.labelled_messages(d.messages),
    "intents.apply_labels": lambda d: intents.apply_labels(d.messages, d.label_rows,
                                                           keys=store.message_keys(d.messages)),
    "intents.intent_report": lambda d: intents.intent_report(d.messages),
    "intents.per_intent_table": lambda d: intents.per_intent_table(d.messages),
    "intents.confusion": lambda d: over(lambda **kw: intents.confusion(d.messages, **kw), top_n=(None, 2)),
    "intents.pair_messages": lambda d: each(
        cell=lambda: intents.pair_messages(d.messages, true_intent="order_status", intent="nlu_fallback"),
        folded=lambda: intents.pair_messages(d.messages, true_intent="other", intent="pricing",
                                             folded=("greet", "order_status"))),
    "intents.top_confused_pairs": lambda d: intents.top_confused_pairs(d.messages, limit=3),
    "intents.false_positives": lambda d: intents.false_positives(d.messages, threshold=0.5),
    "intents.false_negatives": lambda d: intents.false_negatives(d.messages, threshold=0.5),
    "intents.confidence_histogram": lambda d: intents.confidence_histogram(d.messages, bins=4),
    "intents.reliability_curve": lambda d: intents.reliability_curve(d.messages, bins=4),
    "intents.threshold_table": lambda d: intents.threshold_table(d.messages, thresholds=[0.0, 0.5, 0.8]),
    "intents.escalation_rate": lambda d: intents.escalation_rate(d.messages, threshold=0.5),
    "intents.intent_drift": lambda d: intents.intent_drift(d.messages, min_support=1, limit=5),
    "intents.model_comparison": lambda d: intents.model_comparison(d.messages, min_support=2),
    # ------------------------------------------------------------------ sentiment metrics
    "sentiment_metrics.sentiment_distribution": lambda d: over(
        lambda **kw: sentiment_metrics.sentiment_distribution(d.scored, **kw), speaker=("user", "bot", None)),
    "sentiment_metrics.sentiment_trend": lambda d: over(
        lambda **kw: sentiment_metrics.sentiment_trend(d.scored, window=2, **kw), freq=sentiment_metrics.FREQUENCIES),
    "sentiment_metrics.sentiment_breakdown": lambda d: over(
        lambda **kw: sentiment_metrics.sentiment_breakdown(d.scored, **kw), by=("intent", "topic", "channel")),
    "sentiment_metrics.conversation_sentiment": lambda d: sentiment_metrics.conversation_sentiment(d.scored),
    "sentiment_metrics.sentiment_shift": lambda d: sentiment_metrics.sentiment_shift(d.scored),
    "sentiment_metrics.conversation_first_last": lambda d: sentiment_metrics.conversation_first_last(d.scored),
    "sentiment_metrics.worsened_conversation_rate": lambda d: sentiment_metrics.worsened_conversation_rate(d.scored),
    "sentiment_metrics.bot_reaction_pairs": lambda d: sentiment_metrics.bot_reaction_pairs(d.scored),
    "sentiment_metrics.negative_reactions": lambda d: sentiment_metrics.negative_reactions(d.scored, min_count=1),
    "sentiment_metrics.conversations_matching": lambda d: each(
        negative=lambda: sentiment_metrics.conversations_matching(d.scored, sentiment="negative"),
        topic=lambda: sentiment_metrics.conversations_matching(d.scored, by="topic", value="complaint"),
        week=lambda: sentiment_metrics.conversations_matching(d.scored, period="2026-08-10", freq="week")),
    "sentiment_metrics.reaction_conversations": lambda d: over(
        lambda **kw: sentiment_metrics.reaction_conversations(d.scored, BOT_TEXTS[2], **kw),
        sentiment=("negative", None)),
    "sentiment_metrics.most_negative_conversations": lambda d: sentiment_metrics.most_negative_conversations(
        d.scored, limit=3),
    "sentiment_metrics.rating_summary": lambda d: sentiment_metrics.rating_summary(d.rollup),
    "sentiment_metrics.rating_trend": lambda d: over(
        lambda **kw: sentiment_metrics.rating_trend(d.rollup, **kw), freq=sentiment_metrics.FREQUENCIES),
    "sentiment_metrics.rating_by_group": lambda d: over(
        lambda **kw: sentiment_metrics.rating_by_group(d.messages, d.rollup, **kw),
        by=("intent", "escalated", "topic")),
    "sentiment_metrics.rating_correlations": lambda d: sentiment_metrics.rating_correlations(d.scored, d.rollup),
    "sentiment_metrics.conversations_with_rating": lambda d: sentiment_metrics.conversations_with_rating(d.rollup, 5),
    "sentiment_metrics.human_judgements": lambda d: each(
        rating=lambda: sentiment_metrics.human_judgements(d.rollup),
        tone=lambda: sentiment_metrics.human_judgements(d.scores, score_column="tone")),
    "sentiment_metrics.sentiment_calibration": lambda d: each(
        rating=lambda: sentiment_metrics.sentiment_calibration(d.scored, d.rollup, top=3),
        tone_last=lambda: sentiment_metrics.sentiment_calibration(d.scored, d.scores, score_column="tone",
                                                                  aggregate="last")),
    # ------------------------------------------------------------------ funnel
    "funnel.validate_funnel": lambda d: funnel.validate_funnel(F, d.messages),
    "funnel.reached_stage": lambda d: over(lambda **kw: funnel.reached_stage(d.messages, F, **kw),
                                           strict=(True, False)),
    "funnel.funnel_table": lambda d: over(lambda **kw: funnel.funnel_table(d.messages, F, **kw), strict=(True, False)),
    "funnel.dropoff_conversations": lambda d: over(
        lambda **kw: funnel.dropoff_conversations(d.messages, F, **kw), stage=("inquiry", 1)),
    "funnel.last_bot_message_before_dropoff": lambda d: funnel.last_bot_message_before_dropoff(d.messages, F, top=2),
    "funnel.funnel_by_segment": lambda d: over(
        lambda **kw: funnel.funnel_by_segment(d.messages, TWO_STAGES, **kw), by=funnel.SEGMENT_COLUMNS),
    "funnel.segment_columns": lambda d: funnel.segment_columns(d.messages),
    "funnel.conversion_by_stage": lambda d: funnel.conversion_by_stage(d.messages, F),
    "funnel.conversion_summary": lambda d: over(
        lambda **kw: funnel.conversion_summary(d.messages, F, **kw), lead_stage=(0, "email provided")),
    "funnel.lead_quality": lambda d: over(
        lambda **kw: funnel.lead_quality(d.messages, TWO_STAGES, **kw), by=("segment", "channel", "week")),
    "funnel.mask_messages": lambda d: funnel.mask_messages(d.messages),
    "funnel.suggest_stages": lambda d: funnel.suggest_stages(d.messages),
    # ------------------------------------------------------------------ KPIs and alerts
    "kpis.kpi_units": lambda d: over(lambda **kw: kpis.kpi_units(d.scored, d.rollup, **kw),
                                     metric=[k for k in kpis.KPI_NAMES if kpis.get_kpi(k).kind != "money"]),
    "kpis.kpi_series": lambda d: over(lambda **kw: kpis.kpi_series(d.scored, d.rollup, **kw),
                                      metric=("resolution_rate", "csat", "lead_count", "cost_per_outcome")),
    "kpis.kpi_value": lambda d: over(lambda **kw: kpis.kpi_value(d.scored, d.rollup, **kw), metric=kpis.KPI_NAMES),
    "kpis.kpi_window": lambda d: over(
        lambda **kw: kpis.kpi_window(d.scored, d.rollup, start="2026-08-10", end="2026-08-24", **kw),
        metric=("escalation_rate", "intent_accuracy", "negative_sentiment_rate", "revenue", "automation_savings")),
    "kpis.kpi_delta": lambda d: over(lambda **kw: kpis.kpi_delta(d.scored, d.rollup, **kw),
                                     metric=("resolution_rate", "csat", "total_conversations")),
    "kpis.period_delta": lambda d: kpis.period_delta(d.series),
    "kpis.latest_complete_period": lambda d: kpis.latest_complete_period(d.series),
    "kpis.kpi_table": lambda d: kpis.kpi_table(d.scored, d.rollup, spark_periods=1,
                                               bands={"escalation_rate": (0.4, 0.2), "csat": (3.0, 4.0)}),
    "alerts.evaluate_rules": lambda d: alerts.evaluate_rules(
        d.scored, d.rollup, [*alerts.default_rules(), alerts.parse_rule("csat < 4"),
                               alerts.parse_rule("resolution_rate < 50%", min_count=3)], spike_k=1.0),
    # ------------------------------------------------------------------ ROI
    "roi.data_basis": lambda d: roi.data_basis(d.messages, d.rollup),
    "roi.inputs_from_data": lambda d: roi.inputs_from_data(d.messages, d.rollup),
    # ------------------------------------------------------------------ audit
    "audit.audit_candidates": lambda d: each(
        scored=lambda: audit.audit_candidates(d.messages, d.rollup, queued=("c01", "c03")),
        unscored=lambda: audit.audit_candidates(d.messages, d.rollup, score_sentiment=False, low_confidence=0.6)),
    "audit.sample_conversations": lambda d: each(
        **{s: (lambda s=s: audit.sample_conversations(d.candidates, n=3, strategy=s, seed=5))
           for s in audit.STRATEGIES},
        topic=lambda: audit.sample_conversations(d.candidates, n=4, strategy="stratified", stratify_by="topic"),
        window=lambda: audit.sample_conversations(d.candidates, n=9, start="2026-08-10", end="2026-08-31")),
    "audit.conversation_scores": lambda d: audit.conversation_scores(d.scores),
    "audit.criterion_means": lambda d: audit.criterion_means(d.scores),
    "audit.group_means": lambda d: over(lambda **kw: audit.group_means(d.scores, d.candidates, **kw),
                                        by=("intent", "topic", "channel")),
    "audit.problem_patterns": lambda d: audit.problem_patterns(d.scores, d.candidates, min_conversations=1,
                                                               min_rate=0.3),
    "audit.rater_agreement": lambda d: audit.rater_agreement(d.scores, weights="linear"),
    "audit.largest_disagreements": lambda d: audit.largest_disagreements(d.scores, limit=5, min_gap=1),
    "audit.reviewer_bias": lambda d: audit.reviewer_bias(d.scores),
    "audit.training_examples": lambda d: audit.training_examples(d.scores),
    "audit.training_examples_jsonl": lambda d: audit.training_examples_jsonl(d.examples, d.messages),
    "audit.automated_vs_human": lambda d: audit.automated_vs_human(d.scores, d.messages, d.rollup,
                                                                   compound=d.scored["compound"]),
    "audit_labels.resolve_labels": lambda d: audit_labels.resolve_labels(d.raw_labels),
    # ------------------------------------------------------------------ backlog, change log, review
    "backlog.data_weeks": lambda d: backlog.data_weeks(d.rollup),
    "backlog.improvement_candidates": lambda d: backlog.improvement_candidates(
        d.scored, d.rollup, min_count=1, min_labelled=1, audit_scores=d.scores, audit_max_mean=3.5),
    "backlog.rank_backlog": lambda d: backlog.rank_backlog(d.backlog_table, d.state, default_effort=2.0),
    "changelog.before_after": lambda d: over(
        lambda **kw: changelog.before_after(d.messages, d.rollup, CHANGES[0], entries=CHANGES, window_days=7,
                                            min_days=1, **kw), confidence=(0.95,)),
    "changelog.before_after_table": lambda d: changelog.before_after_table(d.messages, d.rollup, CHANGES,
                                                                           window_days=7, min_days=1),
    "overview.dataset_overview": lambda d: overview.dataset_overview(d.messages, d.rollup),
    "labels.apply_label_file": lambda d: labels.apply_label_file(d.messages, d.label_file),
    "review.weekly_review": lambda d: review.weekly_review(d.kpi_frame, min_relative=0.1, max_moves=3),
    "review.improvement_report": lambda d: review.improvement_report(CHANGES, d.changes, dataset_name="demo"),
    "review.recent_window": lambda d: over(lambda **kw: review.recent_window(d.messages, d.rollup, **kw),
                                           weeks=(1, 4)),
}

_NOT_A_FRAME = "takes no transcript-derived frame"
EXCLUDED: dict[str, str] = {
    **{f"volume.{n}": "takes a list of 'YYYY-MM-DD' day labels, not a frame" for n in ("period_labels",)},
    **{f"outcomes.{n}": "takes one value, not a frame" for n in ("canonical_outcome", "is_small_talk")},
    "escalation.derive_reason": "takes one conversation's texts and signals as lists, not a frame",
    "backlog.gap_item": "builds one backlog row from one gap-table row (a dict or Series), not a frame; golden "
                        "test in tests/metrics/improve/test_backlog_gaps.py",
    "sentiment_metrics.quality_band": "takes three numbers, not a frame",
    **{f"sentiment_metrics.{n}": "takes the sentiment facts (totals per period, first/last per conversation), not "
                                 "a message frame; equal to the frame path in tests/metrics/sentiment/"
                                 "test_sentiment_facts.py" for n in ("trend_from_totals", "shift_from_conversations")},
    **{f"funnel.{n}": "parses, prints or converts a funnel definition, not a frame" for n in (
        "parse_rule", "rule_label", "parse_stage", "parse_stage_lines", "stages_to_lines", "stages_from_dicts",
        "stages_to_dicts", "contact_stage_warning")},
    "funnel.mask_contact_details": "takes one text, not a frame",
    **{f"kpis.{n}": "catalogue look-up / formats one number, not a frame" for n in (
        "get_kpi", "rag_status", "format_value", "format_delta")},
    "kpis.definitions_markdown": "renders the registry as README Markdown, not a frame (tests/metrics/test_kpis.py)",
    **{f"alerts.{n}": "parses rule text or files, not a frame" for n in (
        "parse_rule", "rule_from_mapping", "parse_rules", "load_rules_file", "default_rules")},
    **{f"alerts.{n}": "takes a list of AlertResult, not a frame" for n in ("results_frame", "alerts_report")},
    **{f"roi.{n}": "takes a RoiInputs dataclass, not a frame" for n in (
        "compute_roi", "scale_volume", "what_if", "tornado", "two_way_table", "grid_around")},
    "roi.compare_scenarios": "takes a mapping of RoiInputs, not a frame",
    "roi.inputs_from_basis": "takes a DataBasis dataclass, not a frame",
    "audit.assign_reviewers": "takes lists of ids and reviewer names, not a frame",
    **{f"audit.{n}": "validates one review's form values, not a frame" for n in ("validate_review", "parse_flags")},
    **{f"audit_queue.{n}": "sqlite persistence (db, ids), not a frame" for n in (
        "queue_conversations", "queued_conversations", "dequeue_conversations")},
    "changelog.annotations_frame": "takes ChangeEntry objects, not a frame",
    "changelog.annotations": "reads the store (db), not a frame",
    "labels.read_labels": "parses file bytes, not a frame",
    **{f"review.{n}": "formats a WeeklyReview dataclass, not a frame" for n in ("review_markdown", "review_frame")},
    "review.md_escape": "takes one text, not a frame",
    **{f"stats.{n}": "takes counts, not a frame" for n in ("wilson_interval", "two_proportion_ztest")},
    **{f"summary.{n}": "takes a loaders.LoadResult, not a frame" for n in ("dataset_section", "build_summary")},
    "summary.jsonable": "converts one value to JSON-ready form, not a frame",
    **{f"goals.{n}": "goal definitions, not a frame" for n in (
        "check_goals", "suggested_goals", "goal_bands", "goals_from_records", "goals_to_records", "business_metrics")},
    **{f"sentiment.{n}": "takes one text or analyzer options, not a frame" for n in (
        "analyzer_version", "text_hash", "touched_by_fixes")},
    "sentiment.sentiment_labels": "takes a Series of scores, not a frame (add_sentiment covers it)",
    "sentiment.prefetch_scores": "starts scoring in a background thread and returns a handle (PendingScores), "
                                 "no metric result; score_messages(pending=...) equals score_messages in "
                                 "tests/metrics/sentiment/test_sentiment.py",
    **{f"pii.{n}": "takes one text, not a frame" for n in ("luhn_valid", "iban_valid", "find_pii", "redact_text")},
    "pii.redact_series": "takes a Series of texts, not a frame",
    "pii.pseudonymise": "takes a Series of ids, not a frame",
    "pii.redact_ids": "takes a Series of ids, not a frame",
}


def entry(name: str) -> Entry:
    value = REGISTRY[name]
    return value if isinstance(value, Entry) else Entry(value)


def skip_if_not_applicable(name: str, prop: str) -> None:
    reason = entry(name).not_applicable.get(prop)
    if reason:
        pytest.skip(reason)


# ============================================================================ completeness
def public_functions() -> dict[str, Callable]:
    out = {}
    for mod_name in FAMILY_MODULES:
        module = importlib.import_module(f"metrics.{PATHS.get(mod_name, mod_name)}")
        for name in module.__all__:
            obj = getattr(module, name)
            # a family package re-exports its submodules' API: each function counts once, where it is defined
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                out[f"{mod_name}.{name}"] = obj
    return out


FRAME_PARAM_NAMES = {"messages", "rollup", "scored", "conversations", "frame", "table", "scores", "candidates"}


def takes_frame(fn: Callable) -> bool:
    """A positional parameter annotated with DataFrame (or, unannotated, named like a frame)."""
    for p in inspect.signature(fn).parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        note = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        if "DataFrame" in str(note) or (p.annotation is p.empty and p.name in FRAME_PARAM_NAMES):
            return True
    return False


def test_every_metrics_module_is_classified():
    root = Path(__file__).resolve().parents[2] / "metrics"
    short = {dotted: name for name, dotted in PATHS.items()}
    found = set()
    for p in root.rglob("*.py"):
        rel = p.relative_to(root)
        if rel.parts[0] in ("topics", "report") or rel.parts[:2] == ("io", "adapters"):
            continue  # packages with tests of their own (test_topics*, test_report, test_adapter*)
        dotted = ".".join(rel.with_suffix("").parts)
        if dotted.endswith(".__init__"):
            dotted = dotted[:-len(".__init__")]
            if dotted in ("io", "core", "improve"):
                continue  # package markers of the layout
        found.add(short.get(dotted, dotted))
    unknown = found - set(FAMILY_MODULES) - set(OTHER_MODULES)
    assert not unknown, f"new metrics module(s) {sorted(unknown)}: add to FAMILY_MODULES or OTHER_MODULES"
    assert not (set(FAMILY_MODULES) & set(OTHER_MODULES))


def test_every_public_function_is_registered_or_excluded():
    public = public_functions()
    missing = sorted(set(public) - set(REGISTRY) - set(EXCLUDED))
    assert not missing, f"public function(s) without a REGISTRY entry or an EXCLUDED reason: {missing}"
    stale = sorted((set(REGISTRY) | set(EXCLUDED)) - set(public))
    assert not stale, f"entries naming no public function: {stale}"
    assert not set(REGISTRY) & set(EXCLUDED), sorted(set(REGISTRY) & set(EXCLUDED))
    assert SLOW <= set(REGISTRY), sorted(SLOW - set(REGISTRY))
    # a frame function may be excluded only with a reason that does not claim "not a frame"
    wrongly = sorted(n for n in EXCLUDED if takes_frame(public[n]) and "not a frame" in EXCLUDED[n])
    assert not wrongly, f"excluded as 'not a frame' but take a DataFrame: {wrongly}"
    assert all(reason.strip() for reason in EXCLUDED.values())


def test_every_frame_function_is_registered():
    frame_functions = {n for n, fn in public_functions().items() if takes_frame(fn)}
    assert len(frame_functions) > 100                      # the detector sees the families
    unregistered = sorted(frame_functions - set(REGISTRY) - set(EXCLUDED))
    assert not unregistered, f"frame-taking function(s) neither in REGISTRY nor EXCLUDED: {unregistered}"


def test_registry_entries_call_their_function():
    """Each entry's code names its own function (so an entry cannot test the wrong function) and
    reads at least one Data frame (which the mutation check then compares)."""
    for name in REGISTRY:
        names = code_names(entry(name).call)
        assert name.split(".")[1] in names, name
        assert set(Data.FRAMES) & names, f"{name}: the entry reads no Data frame"
        assert set(entry(name).not_applicable) <= {"shuffle", "mutation", "empty", "naming"}, name


# ============================================================================ comparing results
@functools.lru_cache(maxsize=None)
def code_names(fn: Callable) -> frozenset[str]:
    """Every global/attribute name used by ``fn``, nested lambdas included."""
    names: set[str] = set()

    def walk(code: CodeType) -> None:
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, CodeType):
                walk(const)

    walk(fn.__code__)
    return frozenset(names)


def frames_used(call: Callable, data: View) -> dict[str, pd.DataFrame]:
    """The Data frames ``call`` reads (built now, so a copy can be taken before the call)."""
    out = {}
    for name in Data.FRAMES:
        if name in code_names(call):
            try:
                out[name] = getattr(data, name)
            except ChatlensError:
                pass                          # the call will raise the same typed error
    return out


def run(call: Callable, data: View):
    """The result, or :class:`Raised` for a typed error; any other exception propagates."""
    try:
        return call(data)
    except ChatlensError as exc:
        return Raised(type(exc).__name__, str(exc))


def _cell_key(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else f"{float(value):.9g}"
    if value is None or value is pd.NA or value is pd.NaT:
        return "<NA>"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ",".join(_cell_key(v) for v in value) + "]"
    return f"{type(value).__name__}:{value}"


def canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order: a meaningful index becomes a column, rows sorted by every cell.

    An unnamed integer index is positions or the messages' row labels (which a shuffle
    permutes along with the rows, and the ``row`` column already identifies): dropped."""
    frame = frame.copy()
    positional = frame.index.nlevels == 1 and frame.index.name is None and pd.api.types.is_integer_dtype(frame.index)
    if not positional:
        frame = frame.reset_index(names=[f"__index{i}" for i in range(frame.index.nlevels)])
    else:
        frame = frame.reset_index(drop=True)
    for col in frame.columns:                  # list cells compare as text (NaN == NaN inside)
        if frame[col].dtype == object and frame[col].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            frame[col] = frame[col].map(_cell_key)
    keys = ["\x1f".join(_cell_key(v) for v in row) for row in frame.itertuples(index=False, name=None)]
    order = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[order].reset_index(drop=True)


def assert_same(a, b, path: str = "result") -> None:
    """Equal up to row order of frames and float noise (rtol 1e-9); NaN equals NaN."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        assert a.name == b.name, path
        a, b = a.to_frame(name="__value"), b.to_frame(name="__value")
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        assert isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame), (path, type(a), type(b))
        assert list(a.columns) == list(b.columns), (path, list(a.columns), list(b.columns))
        if a.equals(b) and a.dtypes.to_dict() == b.dtypes.to_dict() and a.index.equals(b.index):
            assert_same(dict(a.attrs), dict(b.attrs), f"{path}.attrs")
            return
        pd.testing.assert_frame_equal(canonical_frame(a), canonical_frame(b), check_exact=False, rtol=1e-9,
                                      obj=path)
        assert_same(dict(a.attrs), dict(b.attrs), f"{path}.attrs")
        return
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), (path, type(a), type(b))
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
        return
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), (path, a, b)
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
        return
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
        return
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating, int, np.integer)):
        assert (math.isnan(a) and math.isnan(float(b))) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), \
            (path, a, b)
        return
    if a is None or a is pd.NA or a is pd.NaT:
        assert b is a, (path, a, b)
        return
    assert type(a) is type(b) and a == b, (path, a, b)


# ============================================================================ naming contract
SUFFIXES = ("_rate", "_count", "_seconds")
#: A statistic of counts (``mean_message_count``) is a non-negative number, not an integer.
STATISTIC_PREFIXES = ("mean_", "median_", "avg_")
#: Names ending in a suffix that mean something else, with the reason.
NAMING_EXCEPTIONS = {
    "training_hourly_rate": "roi.RoiInputs field: money per hour (a wage rate), not a share; renaming it would "
                            "break saved scenarios and URL parameters",
}


def _is_missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _bad_values(name: str, values: list) -> list:
    """The values breaking the promise of ``name``'s suffix."""
    whole = name.endswith("_count") and not name.startswith(STATISTIC_PREFIXES)
    bad = []
    for v in values:
        if _is_missing(v):
            if whole:
                bad.append(v)              # a count is never missing
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            bad.append(v)
        elif name.endswith("_rate") and not 0.0 <= v <= 1.0:
            bad.append(v)
        elif name.endswith(("_count", "_seconds")) and v < 0:
            bad.append(v)
        elif whole and not isinstance(v, (int, np.integer)):
            bad.append(v)
    return bad


def _checked(name) -> bool:
    return isinstance(name, str) and name.endswith(SUFFIXES) and name not in NAMING_EXCEPTIONS


def naming_violations(value, path: str = "result") -> list[str]:
    """Every ``*_rate`` / ``*_count`` / ``*_seconds`` column, field or key whose values break their promise."""
    out = []
    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, pd.DataFrame):
        for col in value.columns:
            series = value[col]
            if _checked(col):
                whole = col.endswith("_count") and not col.startswith(STATISTIC_PREFIXES)
                if whole and len(series) and not pd.api.types.is_integer_dtype(series.dtype):
                    out.append(f"{path}.{col}: dtype {series.dtype}, not an integer dtype")
                cells = [v.item() if isinstance(v, np.generic) else v for v in series.astype(object).tolist()]
                if whole and pd.api.types.is_integer_dtype(series.dtype):
                    cells = [v if _is_missing(v) else int(v) for v in cells]
                bad = _bad_values(col, cells)
                if bad:
                    out.append(f"{path}.{col}: {bad[:5]}")
            elif series.dtype == object:
                for i, cell in enumerate(series):
                    if dataclasses.is_dataclass(cell) or isinstance(cell, (Mapping, pd.DataFrame)):
                        out += naming_violations(cell, f"{path}.{col}[{i}]")
        return out
    if isinstance(value, (list, tuple)):
        return [v for i, item in enumerate(value) for v in naming_violations(item, f"{path}[{i}]")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items, strict = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)], True
    elif isinstance(value, Mapping):
        # option variants: keys are option values; other dicts: only their numbers are checked
        items, strict = list(value.items()), False
    else:
        return out
    for key, item in items:
        where = f"{path}.{key}" if not isinstance(value, Variants) else f"{path}[{key!r}]"
        container = isinstance(item, (pd.DataFrame, pd.Series, Mapping, list, tuple, Raised)) or (
            dataclasses.is_dataclass(item) and not isinstance(item, type))
        numeric = isinstance(item, (int, float, np.integer, np.floating)) or _is_missing(item)
        if not isinstance(value, Variants) and _checked(key) and not container and (strict or numeric):
            bad = _bad_values(key, [item])
            if bad:
                out.append(f"{where}: {bad}")
        out += naming_violations(item, where)
    return out


def check_naming(name: str, result) -> None:
    problems = naming_violations(result)
    function = name.split(".")[1]
    results = result.values() if isinstance(result, Variants) else [result]
    if _checked(function):                       # a function named *_rate returns a share
        problems += [f"{function}() returned {bad}" for r in results if not isinstance(r, Raised)
                     for bad in _bad_values(function, [r])]
    assert not problems, f"{name}: naming contract broken: {problems}"


# ============================================================================ the properties
EXAMPLES = int(os.environ.get("CHATLENS_CONTRACT_EXAMPLES", 25))
SEED = int(os.environ.get("CHATLENS_CONTRACT_SEED", 20260803))   # another seed explores other transcripts
#: Every test draws the same ``case`` stream with the same seed, so each parametrization (entry)
#: sees the same examples and their data (transcript, rollup, scores, KPI table ...) is built once.
cases = st.tuples(transcripts, st.integers(0, 2**16))


def contract_property(max_examples: int = EXAMPLES):
    def wrap(test):
        test = given(case=cases)(test)
        for spec in (BARE, BOT_ONLY, RICH):     # explicit examples run first (and fail fast)
            test = example(case=(spec, 1))(test)
        test = settings(max_examples=max_examples, deadline=None, database=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(test)
        return seed(SEED)(test)
    return wrap


def modified_inputs(view: View) -> list[str]:
    """How the call changed the frames it was given (compared with the shared originals, never handed out)."""
    out = []
    for key, given_frame in view.frames.items():
        original = getattr(view._data, key)
        same = (given_frame.equals(original) and list(given_frame.columns) == list(original.columns)
                and given_frame.index.equals(original.index)
                and given_frame.dtypes.to_dict() == original.dtypes.to_dict())
        if not same:
            try:
                pd.testing.assert_frame_equal(given_frame, original, obj=f"input {key}")
                out.append(f"input {key} changed")
            except AssertionError as exc:
                out.append(str(exc))
        if given_frame.attrs != original.attrs:
            out.append(f"input {key}.attrs changed: {original.attrs} -> {given_frame.attrs}")
    return out


#: Entries costing 25-60 ms a call (KPI and ROI models per week, sklearn's kappa, VADER): fewer
#: examples, so the whole file stays around a minute on two cores. They still run the hand-written
#: RICH transcript first.
SLOW = {"compare.compare_periods", "compare.compare_datasets", "kpis.kpi_table", "review.weekly_review", "kpis.kpi_value", "kpis.kpi_series", "kpis.kpi_units",
        "outcomes.outcome_mix", "backlog.improvement_candidates", "backlog.rank_backlog", "audit.rater_agreement",
        "sentiment_metrics.sentiment_calibration", "audit.group_means", "alerts.evaluate_rules"}
NAMES = sorted(REGISTRY)


def check_shuffle_mutation_and_naming(name: str, case) -> None:
    """(a) shuffled rows give the same result, (b) no input is modified, (d) names keep their promise.

    One Hypothesis run checks the three on each example (they share the first call: runtime);
    the failure message names every property broken.
    """
    spec, permute = case
    item, view = entry(name), make_data(spec)
    frames_used(item.call, view)                # built before the call: each is a fresh copy for it
    result = run(item.call, view)               # a non-Chatlens exception propagates and fails
    broken = []
    if "mutation" not in item.not_applicable:
        broken += [f"(b) mutation: {m}" for m in modified_inputs(view)]
    if "naming" not in item.not_applicable:
        try:
            check_naming(name, result)
        except AssertionError as exc:
            broken.append(f"(d) {exc}")
    if "shuffle" not in item.not_applicable:
        try:
            assert_same(result, run(item.call, make_data(spec, permute)), name)
        except AssertionError as exc:
            broken.append(f"(a) shuffle: {exc}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in SLOW])
@contract_property()
def test_shuffle_mutation_and_naming(name, case):
    check_shuffle_mutation_and_naming(name, case)


@pytest.mark.parametrize("name", sorted(SLOW))
@contract_property(max_examples=max(EXAMPLES // 2, 1))
def test_shuffle_mutation_and_naming_slow_functions(name, case):
    check_shuffle_mutation_and_naming(name, case)


@pytest.mark.parametrize("name", NAMES)
@contract_property(max_examples=max(EXAMPLES // 3, 1))
def test_empty_input_gives_a_result_or_a_typed_error(name, case):
    """(c) ``messages.iloc[0:0]`` (and everything built from it): a result or a ChatlensError."""
    skip_if_not_applicable(name, "empty")
    run(entry(name).call, empty_data(case[0]))   # anything but a ChatlensError propagates and fails
