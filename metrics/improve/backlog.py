"""The improvement backlog: candidates found in the data, their impact, the team's effort, a ranking.

The guide: "Weight this feedback by frequency and impact", "Create a backlog of improvements
ranked by impact and effort", "Don't make changes based on single user complaints - look for
patterns across many conversations".

Candidates (:func:`improvement_candidates`), one per problem, from five sources
------------------------------------------------------------------------------
``intent``
    An intent the bot misreads: ``error_rate = 1 - recall`` of the intent on the labelled
    messages (:func:`metrics.intents.per_intent_table`, intents with at least
    ``min_labelled`` labelled messages, the fallback intent excluded), times the
    conversations whose primary intent it is (:func:`metrics.outcomes.primary_intent`):
    ``affected_count = round(conversations x error_rate)`` (an estimate). Expected to move
    ``intent_accuracy``.
``escalation_reason``
    Escalated conversations per reason (:func:`metrics.outcomes.escalation.escalation_reasons`).
    Expected to move ``escalation_rate``.
``funnel_stage``
    Conversations that stopped at a stage of the lead funnel (``dropped`` of
    :func:`metrics.funnel.funnel_table`). Expected to move ``lead_conversion_rate``.
``audit_topic``
    A topic whose audited conversations score low: mean ``overall`` audit score (over the
    topic's audited conversations, :func:`metrics.audit.conversation_scores`) at or below
    ``audit_max_mean`` (default 3), ``affected_count = round(topic conversations x share of
    its audited conversations scored <= 2 overall)``. Needs audit scores. Expected to move
    ``csat``.
``knowledge_gap``
    A knowledge-gap topic of the Topics page (:func:`metrics.topics.gap_report`) that the team added
    to the backlog (:func:`gap_item`, stored by :func:`metrics.improve.store.add_backlog_item`):
    ``affected_count`` = the conversations with a gap message of the topic. Not found by
    :func:`improvement_candidates` itself: pass the stored items as ``added``. Expected to move
    ``intent_accuracy`` when the bot has intents, else ``escalation_rate``.
``bot_message``
    A bot message often followed by a negative user reply
    (:func:`metrics.sentiment.measures.negative_reactions`): ``affected_count`` = its negative
    replies. Needs scored messages (a ``compound`` column). Expected to move
    ``negative_sentiment_rate``.

Each candidate names the ``view`` that shows its problem (the family: ``intents``, ``outcomes``,
``funnel``, ``audit``, ``sentiment``, ``topics``; the UI maps it to a page, ``ui/kpi_pages.py``) and the
query (``query_key``/``query_value``) that filters that view to it.

``impact_per_week = affected_count / weeks`` where ``weeks`` is the data's span (first start
to last message) in weeks, at least 1 (data without timestamps counts as one week).
Candidates with ``affected_count < min_count`` (default 20) are dropped: single complaints
are not candidates.

Ranking (:func:`rank_backlog`)
------------------------------
``score = impact_per_week / effort`` (effort edited by the team, default 1; any unit, the
same for every item). Open items first, then accepted, then done; within a status by score,
then impact (both descending), then key.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.errors import ChatlensError, ConfigError, InsufficientDataError

__all__ = [
    "SOURCES",
    "SOURCE_LABELS",
    "DEFAULT_MIN_COUNT",
    "CANDIDATE_COLUMNS",
    "BacklogCandidates",
    "data_weeks",
    "gap_item",
    "improvement_candidates",
    "rank_backlog",
]

SOURCES = ("intent", "escalation_reason", "funnel_stage", "audit_topic", "bot_message", "knowledge_gap")
SOURCE_LABELS = {"intent": "Intent misread", "escalation_reason": "Escalation reason",
                 "funnel_stage": "Funnel drop-off", "audit_topic": "Low audit score",
                 "bot_message": "Negative reaction to a bot message", "knowledge_gap": "Knowledge gap"}
DEFAULT_MIN_COUNT = 20
CANDIDATE_COLUMNS = ("key", "source", "subject", "problem", "metric", "affected_count", "weeks", "impact_per_week",
                     "view", "query_key", "query_value")
_STATUS_ORDER = {"open": 0, "accepted": 1, "done": 2}


@dataclass(frozen=True)
class BacklogCandidates:
    """``table`` has :data:`CANDIDATE_COLUMNS` (largest impact first); ``skipped`` lists
    ``(source, reason)`` for sources the data cannot feed (no labels, no audit, ...)."""

    table: pd.DataFrame
    skipped: tuple[tuple[str, str], ...]


def data_weeks(rollup: pd.DataFrame) -> float:
    """The data's span in weeks (first conversation start to last message), at least 1.

    Examples
    --------
    >>> r = pd.DataFrame({"started_at": pd.to_datetime(["2026-08-03", "2026-08-24"], utc=True),
    ...                   "ended_at": pd.to_datetime(["2026-08-03", "2026-08-31"], utc=True)})
    >>> data_weeks(r)
    4.0
    """
    if len(rollup) == 0 or "started_at" not in rollup.columns or not rollup["started_at"].notna().any():
        return 1.0
    first = rollup["started_at"].min()
    last = max(rollup["ended_at"].max(), rollup["started_at"].max()) if rollup["ended_at"].notna().any() \
        else rollup["started_at"].max()
    return max(1.0, (last - first) / pd.Timedelta(days=7))


def _key(source: str, value: str) -> str:
    """``source:value``; values longer than 200 characters are cut and suffixed with a hash of the whole."""
    if len(value) <= 200:
        return f"{source}:{value}"
    return f"{source}:{value[:180]}#{hashlib.sha1(value.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def _row(source, subject, problem, metric, affected, weeks, view, query_key, query_value=None) -> dict:
    value = str(subject if query_value is None else query_value)
    return {"key": _key(source, value), "source": source, "subject": str(subject), "problem": problem,
            "metric": metric, "affected_count": int(affected), "weeks": float(weeks),
            "impact_per_week": affected / weeks, "view": view, "query_key": query_key,
            "query_value": value}


def _intents(messages, fallback_intent, min_labelled, weeks) -> list[dict]:
    from metrics.intents import per_intent_table
    from metrics.outcomes import primary_intent

    table = per_intent_table(messages, fallback_intent=fallback_intent)
    if len(table) == 0:
        raise InsufficientDataError("no labelled user messages (true_intent) to measure intent accuracy")
    volume = primary_intent(messages).value_counts()
    rows = []
    for r in table.itertuples(index=False):
        if r.intent == fallback_intent or r.support < min_labelled or r.recall >= 1.0:
            continue
        convs = int(volume.get(r.intent, 0))
        error = 1.0 - float(r.recall)
        affected = int(round(convs * error))
        confused = f"; confused with {r.confused_with}" if r.confused_with else ""
        problem = (f"{error:.0%} of labelled '{r.intent}' messages are misread (recall {r.recall:.2f} on "
                   f"{r.support} labelled{confused}); {convs:,} conversations are about '{r.intent}'")
        rows.append(_row("intent", r.intent, problem, "intent_accuracy", affected, weeks, "intents",
                         "intent"))
    return rows


def _escalations(messages, rollup, weeks) -> list[dict]:
    from metrics.outcomes.escalation import escalation_reasons

    table = escalation_reasons(messages, rollup)
    return [_row("escalation_reason", r.reason,
                 f"{r.conversation_count:,} escalations ({r.share_rate:.0%} of all escalations) for "
                 f"'{r.reason}'", "escalation_rate", r.conversation_count, weeks, "outcomes", "reason")
            for r in table.itertuples(index=False)]


def _funnel(messages, stages, weeks) -> list[dict]:
    from metrics.funnel import DEFAULT_LEAD_FUNNEL, funnel_table

    stages = list(stages) if stages else list(DEFAULT_LEAD_FUNNEL)
    if "event" not in messages.columns and any(s.rule.kind == "event" for s in stages):
        raise InsufficientDataError("the lead funnel needs an 'event' column")
    table = funnel_table(messages, stages)
    rows = []
    for k, r in enumerate(table.itertuples(index=False)):
        if k == len(table) - 1 or r.conversations == 0:
            continue
        nxt = table.iloc[k + 1]
        problem = (f"{r.dropped:,} of {r.conversations:,} conversations stopped at '{r.stage}' and never reached "
                   f"'{nxt['stage']}' (step rate {nxt['step_rate']:.0%})")
        rows.append(_row("funnel_stage", r.stage, problem, "lead_conversion_rate", r.dropped, weeks,
                         "funnel", "stage"))
    return rows


def _audit(rollup, audit_scores, weeks, audit_max_mean) -> list[dict]:
    from metrics.audit import conversation_scores

    if audit_scores is None or len(audit_scores) == 0:
        raise InsufficientDataError("no audit scores yet (score conversations on the Audit page)")
    if "topic" not in rollup.columns:
        raise InsufficientDataError("audit topics need a 'topic' column")
    conv = conversation_scores(audit_scores)[["conversation_id", "overall"]]
    topics = rollup[["conversation_id", "topic"]].astype({"conversation_id": "str"})
    merged = conv.merge(topics, on="conversation_id", how="inner")
    merged = merged[merged["topic"].notna()]
    volume = rollup["topic"].astype("str").value_counts()
    rows = []
    for topic, part in merged.groupby(merged["topic"].astype("str"), sort=True):
        mean = float(part["overall"].mean())
        if mean > audit_max_mean:
            continue
        low = int((part["overall"] <= 2).sum())
        convs = int(volume.get(topic, 0))
        affected = int(round(convs * low / len(part)))
        problem = (f"'{topic}' conversations score {mean:.1f}/5 overall in the audit ({low} of {len(part)} "
                   f"audited scored 2 or lower); {convs:,} conversations are on '{topic}'")
        rows.append(_row("audit_topic", topic, problem, "csat", affected, weeks, "audit", "topic"))
    return rows


def _bot_messages(messages, weeks) -> list[dict]:
    from metrics.sentiment.measures import negative_reactions

    if "compound" not in messages.columns:
        raise InsufficientDataError("messages are not scored for sentiment (no 'compound' column)")
    table = negative_reactions(messages, min_count=1, top=10_000)
    rows = []
    for r in table.itertuples(index=False):
        text = str(r.bot_text)
        short = text if len(text) <= 80 else text[:77] + "..."
        problem = (f"the bot message \"{short}\" was followed by a negative reply {r.negative_count:,} times "
                   f"({r.negative_rate:.0%} of {r.reply_count:,} replies)")
        rows.append(_row("bot_message", short, problem, "negative_sentiment_rate", r.negative_count, weeks,
                         "sentiment", "bot_text", text))
    return rows


def gap_item(gap, *, weeks: float, has_intents: bool) -> dict:
    """A backlog item (the columns of :data:`CANDIDATE_COLUMNS`) for one gap topic: a row of the gap table of
    the Topics page (``topic``, ``name``, ``message_count``, ``conversation_count``, ``escalation_rate``,
    ``negative_rate``, ``impact``, ``score``, ``top_signal``; ``nearest_intent`` optional). ``weeks`` is the
    data's span (:func:`data_weeks`). The key follows the gap topic's id, which stays with the topic across
    runs, so adding it again refreshes the item.

    Examples
    --------
    >>> row = {"topic": 3, "name": "refund status", "message_count": 40, "conversation_count": 30,
    ...        "escalation_rate": 0.5, "negative_rate": 0.25, "impact": 1.75, "score": 70.0,
    ...        "top_signal": "fallback", "nearest_intent": "refund"}
    >>> item = gap_item(row, weeks=3.0, has_intents=True)
    >>> item["key"], item["affected_count"], item["impact_per_week"], item["metric"]
    ('knowledge_gap:3', 30, 10.0, 'intent_accuracy')
    """
    get = gap.get if isinstance(gap, dict) else gap.__getitem__
    weeks = float(weeks)
    if not math.isfinite(weeks) or weeks <= 0:
        raise ConfigError(f"weeks must be a number above 0, got {weeks!r}")
    topic, name = int(get("topic")), str(get("name"))
    affected = int(get("conversation_count"))
    nearest = get("nearest_intent") if "nearest_intent" in (gap if isinstance(gap, dict) else gap.index) else None
    nearest = None if nearest is None or (isinstance(nearest, float) and math.isnan(nearest)) else str(nearest)
    problem = (f"Users ask this and the bot does not handle it: {int(get('message_count')):,} message(s) in "
               f"{affected:,} conversation(s) (mostly {str(get('top_signal')).replace('_', ' ')}); "
               f"{float(get('escalation_rate')):.0%} escalated, {float(get('negative_rate')):.0%} negative; "
               f"gap score {float(get('score')):.1f} (messages x {float(get('impact')):.2f})"
               + (f"; closest intent: {nearest}" if nearest else "") + ".")
    row = _row("knowledge_gap", name, problem, "intent_accuracy" if has_intents else "escalation_rate",
               affected, weeks, "topics", "gap", str(topic))
    return row


def _added(added: pd.DataFrame | None) -> list[dict]:
    if added is None or len(added) == 0:
        raise InsufficientDataError("none added yet: add a gap topic from the Topics page (Knowledge gaps)")
    return [{c: row[c] for c in CANDIDATE_COLUMNS} for row in added.to_dict("records")
            if row["source"] == "knowledge_gap"]


def _empty() -> pd.DataFrame:
    types = {"key": "str", "source": "str", "subject": "str", "problem": "str", "metric": "str",
             "affected_count": "int64", "weeks": "float64", "impact_per_week": "float64", "view": "str",
             "query_key": "str", "query_value": "str"}
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in types.items()})


def improvement_candidates(messages: pd.DataFrame, rollup: pd.DataFrame, *, min_count: int = DEFAULT_MIN_COUNT,
                           sources=SOURCES, audit_scores: pd.DataFrame | None = None, funnel=None,
                           fallback_intent: str = "nlu_fallback", min_labelled: int = 10,
                           audit_max_mean: float = 3.0, added: pd.DataFrame | None = None) -> BacklogCandidates:
    """Improvement candidates of every source (module docstring), largest impact first.

    ``messages`` may carry a ``compound`` column (:func:`metrics.sentiment.add_sentiment`)
    for the ``bot_message`` source; ``audit_scores`` is a score frame of
    :func:`metrics.audit.store.load_scores` for ``audit_topic``; ``funnel`` the lead funnel's
    stages (default :data:`metrics.funnel.DEFAULT_LEAD_FUNNEL`). A source the data cannot
    feed is listed in ``skipped`` with the reason. ``added`` holds the items the team added by hand
    (:func:`metrics.improve.store.added_backlog_items`; the ``knowledge_gap`` source): they are kept
    whatever ``min_count``. Inputs are not modified.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": [f"c{i}" for i in range(30)], "row": range(1, 31),
    ...     "speaker": ["agent"] * 30, "text": ["hi"] * 30, "escalation_reason": ["Billing"] * 25 + ["Other"] * 5,
    ...     "timestamp": pd.Series([pd.NaT] * 30, dtype="datetime64[ns, UTC]")})
    >>> c = improvement_candidates(m, conversation_rollup(m), sources=("escalation_reason",))
    >>> c.table[["key", "affected_count"]].values.tolist()
    [['escalation_reason:Billing', 25]]
    """
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise ConfigError(f"min_count must be a whole number >= 1, got {min_count!r}")
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ConfigError(f"unknown backlog source(s) {unknown}; known: {', '.join(SOURCES)}")
    weeks = data_weeks(rollup)
    makers = {
        "intent": lambda: _intents(messages, fallback_intent, min_labelled, weeks),
        "escalation_reason": lambda: _escalations(messages, rollup, weeks),
        "funnel_stage": lambda: _funnel(messages, funnel, weeks),
        "audit_topic": lambda: _audit(rollup, audit_scores, weeks, audit_max_mean),
        "bot_message": lambda: _bot_messages(messages, weeks),
        "knowledge_gap": lambda: _added(added),
    }
    rows, skipped = [], []
    for source in sources:
        if len(rollup) == 0:
            skipped.append((source, "no conversations"))
            continue
        try:
            rows.extend(makers[source]())
        except ChatlensError as exc:
            skipped.append((source, str(exc)))
    table = pd.DataFrame(rows, columns=list(CANDIDATE_COLUMNS)) if rows else _empty()
    table = table[(table["affected_count"].ge(int(min_count)) | table["source"].eq("knowledge_gap")).to_numpy(bool)]
    table = table.sort_values(["impact_per_week", "key"], ascending=[False, True], kind="stable")
    table = table.astype({"affected_count": "int64", "weeks": "float64", "impact_per_week": "float64"})
    return BacklogCandidates(table.reset_index(drop=True), tuple(skipped))


def rank_backlog(candidates: pd.DataFrame, state: pd.DataFrame | None = None, *,
                 default_effort: float = 1.0) -> pd.DataFrame:
    """Candidates with the team's ``effort`` and ``status`` (from ``state``:
    :func:`metrics.improve.store.backlog_state`), ``score = impact_per_week / effort`` and
    ``rank`` (1 = do first), sorted as in the module docstring. Items only in ``state`` are
    not shown (the data no longer supports them). Inputs are not modified.

    Examples
    --------
    >>> c = pd.DataFrame({"key": ["a", "b"], "impact_per_week": [10.0, 6.0]})
    >>> s = pd.DataFrame({"item_key": ["a"], "effort": [5.0], "status": ["open"], "change_id": [None]})
    >>> rank_backlog(c, s)[["key", "effort", "score", "rank"]].values.tolist()
    [['b', 1.0, 6.0, 1], ['a', 5.0, 2.0, 2]]
    """
    if isinstance(default_effort, bool) or not isinstance(default_effort, (int, float)) \
            or not math.isfinite(default_effort) or default_effort <= 0:
        raise ConfigError(f"default_effort must be a number above 0, got {default_effort!r}")
    out = candidates.copy()
    if state is not None and len(state):
        s = state.assign(item_key=state["item_key"].astype("str")).drop_duplicates("item_key", keep="last")
        s = s.set_index("item_key")
        keys = out["key"].astype("str")
        out["effort"] = keys.map(s["effort"]).astype("float64").fillna(float(default_effort)).to_numpy()
        out["status"] = keys.map(s["status"]).astype("str").fillna("open").to_numpy()
        out["change_id"] = keys.map(s["change_id"]).astype("Int64").to_numpy() if "change_id" in s.columns \
            else pd.array([pd.NA] * len(out), dtype="Int64")
    else:
        out["effort"] = float(default_effort)
        out["status"] = pd.Series(["open"] * len(out), dtype="str", index=out.index)
        out["change_id"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["effort"] = out["effort"].astype("float64")
    out["status"] = out["status"].astype("str")
    out["score"] = (out["impact_per_week"].astype("float64") / out["effort"]).astype("float64")
    out["_status"] = out["status"].map(_STATUS_ORDER).fillna(3)
    out = out.sort_values(["_status", "score", "impact_per_week", "key"], ascending=[True, False, False, True],
                          kind="stable").drop(columns="_status").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1, dtype="int64")
    return out
