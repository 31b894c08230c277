"""Hand-offs to humans: rate, reasons, the turn they happen at, when, wait time and success.

Definitions
-----------
Escalated conversation
    The escalation signal of :func:`metrics.outcomes.escalation_signal`: an ``agent`` message,
    an ``event == 'handoff'``, or an explicit ``outcome`` meaning escalated. Unlike the
    outcome label, this counts every hand-off, also those resolved afterwards.
``escalation_rate``
    Escalated conversations / all conversations (NaN for none).
Escalation turn
    The rollup's ``first_handoff_turn``: user turns up to the first agent message or handoff
    event (NaN when the only signal is an explicit outcome; such conversations are left out
    of the turn statistics).
``early_escalation_rate``
    Escalations at turn <= ``early_turns`` (default 3) / escalations with a known turn. At
    ``warn_at`` (default 40 %) or more the bot likely lacks training or capabilities:
    :data:`EARLY_ESCALATION_WARNING`.
Reason
    The ``escalation_reason`` field when present (stripped text), else derived by
    :func:`derive_reason` from the user messages up to the escalation (rules on
    :class:`EscalationRules`).
Wait
    Seconds from the first ``handoff`` event to the first ``agent`` message at or after it;
    conversations without a handoff event have no measurable wait.
Handoff success
    Escalated conversations with a resolution signal (explicit outcome resolved,
    ``goal_achieved`` or ``survey_solved`` True), and the mean ``rating`` after a hand-off vs
    in bot-only (not escalated) conversations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.core import memo
from metrics.errors import ConfigError
from metrics.outcomes import (OUTCOMES, OutcomeRules, _by_value, _col, _explicit, _intent_rows, _is_fallback,
                              _Sorted, _take, escalation_signal, primary_intent)
from metrics.engagement.volume import WEEKDAY_NAMES, require_timestamps

__all__ = [
    "EARLY_ESCALATION_WARNING",
    "REASON_REQUESTED",
    "REASON_SENSITIVE",
    "REASON_NEGATIVE",
    "REASON_LOW_CONFIDENCE",
    "REASON_UNSPECIFIED",
    "ESCALATION_GROUPS",
    "EscalationRules",
    "EscalationTiming",
    "HandoffWait",
    "HandoffSuccess",
    "EscalationSummary",
    "derive_reason",
    "escalation_table",
    "escalation_reasons",
    "escalation_turns",
    "escalation_timing",
    "escalation_by",
    "handoff_wait_times",
    "handoff_wait",
    "handoff_success",
    "escalation_summary",
]

REASON_REQUESTED = "customer requested agent"
REASON_SENSITIVE = "sensitive topic"
REASON_NEGATIVE = "negative sentiment"
REASON_LOW_CONFIDENCE = "low confidence"
REASON_UNSPECIFIED = "unspecified"
EARLY_ESCALATION_WARNING = (
    "{share:.0%} of escalations happen within the first {turns} user turns (>= {warn:.0%}): "
    "the bot likely lacks training or capabilities for these requests.")
ESCALATION_GROUPS = ("hour", "weekday", "topic", "intent", "channel")
_NAN = float("nan")


@dataclass(frozen=True)
class EscalationRules:
    """Rules that derive an escalation reason when the data has no ``escalation_reason``.

    Keywords match whole words or phrases, case-insensitively, in the user's messages up to
    (and including) the escalation point. The first rule that matches wins:

    1. ``customer requested agent`` - a message contains one of ``agent_request_keywords``.
    2. ``sensitive topic`` - a message contains one of ``sensitive_keywords``, or the
       conversation's ``topic`` is in ``sensitive_topics``.
    3. ``negative sentiment`` - a message has ``sentiment_column`` (an optional score such
       as a VADER compound in [-1, 1]) <= ``negative_threshold``, or contains one of
       ``negative_keywords``.
    4. ``low confidence`` - a user message's ``confidence`` is below
       ``low_confidence_threshold`` (the guide's 60 % routing threshold) or its intent is a
       fallback intent (:class:`metrics.outcomes.OutcomeRules`): the bot could not answer.
    5. ``unspecified`` - none of the above.

    Examples
    --------
    >>> EscalationRules(low_confidence_threshold=0.5).low_confidence_threshold
    0.5
    >>> EscalationRules(low_confidence_threshold=2)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: low_confidence_threshold must be in [0, 1], got 2
    """

    agent_request_keywords: tuple[str, ...] = field(default=(
        "human", "agent", "real person", "representative", "operator", "someone real",
        "talk to a person", "speak to a person", "talk to someone", "speak to someone",
        "live chat", "live agent", "customer service"))
    sensitive_keywords: tuple[str, ...] = field(default=(
        "lawyer", "legal", "lawsuit", "sue", "fraud", "scam", "stolen", "hacked", "data breach",
        "gdpr", "privacy", "harassment", "discrimination", "suicide", "self-harm", "medical",
        "emergency", "police", "bereavement"))
    sensitive_topics: tuple[str, ...] = ()
    negative_keywords: tuple[str, ...] = field(default=(
        "angry", "annoyed", "frustrated", "furious", "useless", "terrible", "awful", "horrible",
        "ridiculous", "worst", "hate", "stupid", "waste", "unacceptable", "disappointed",
        "rubbish", "pathetic"))
    sentiment_column: str = "sentiment"
    negative_threshold: float = -0.05
    low_confidence_threshold: float = 0.6

    def __post_init__(self):
        t = self.low_confidence_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
            raise ConfigError(f"low_confidence_threshold must be in [0, 1], got {t!r}")
        n = self.negative_threshold
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not -1 <= n <= 1:
            raise ConfigError(f"negative_threshold must be in [-1, 1], got {n!r}")
        for name in ("agent_request_keywords", "sensitive_keywords", "negative_keywords", "sensitive_topics"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"{name} must be a tuple of non-empty strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))

    def pattern(self, name: str) -> re.Pattern | None:
        words = getattr(self, name)
        if not words:
            return None
        return re.compile(r"\b(?:" + "|".join(re.escape(w.lower()) for w in words) + r")\b", re.IGNORECASE)


def derive_reason(texts, *, confidences=(), fallback=(), sentiments=(), topic=None,
                  rules: EscalationRules | None = None) -> str:
    """Derived reason of one escalation from its user messages (rules on :class:`EscalationRules`).

    ``texts``: the user's messages up to the escalation; ``confidences`` / ``fallback`` /
    ``sentiments``: per-message NLU confidence, fallback flag and sentiment score (may be
    empty); ``topic``: the conversation's topic. No messages: ``'unspecified'``.

    Examples
    --------
    >>> derive_reason(["where is my parcel", "I want to talk to a HUMAN"])
    'customer requested agent'
    >>> derive_reason(["this is useless"], confidences=[0.3])
    'negative sentiment'
    >>> derive_reason(["blorp"], confidences=[0.3])
    'low confidence'
    """
    rules = rules or EscalationRules()
    joined = "\n".join(str(t) for t in texts if isinstance(t, str))
    ask = rules.pattern("agent_request_keywords")
    if ask and ask.search(joined):
        return REASON_REQUESTED
    sensitive = rules.pattern("sensitive_keywords")
    topic_hit = (isinstance(topic, str) and topic.strip().lower()
                 in {t.strip().lower() for t in rules.sensitive_topics})
    if topic_hit or (sensitive and sensitive.search(joined)):
        return REASON_SENSITIVE
    negative = rules.pattern("negative_keywords")
    scores = [s for s in sentiments if s is not None and not pd.isna(s)]
    if any(s <= rules.negative_threshold for s in scores) or (negative and negative.search(joined)):
        return REASON_NEGATIVE
    confs = [c for c in confidences if c is not None and not pd.isna(c)]
    if any(c < rules.low_confidence_threshold for c in confs) or any(bool(f) for f in fallback):
        return REASON_LOW_CONFIDENCE
    return REASON_UNSPECIFIED


def _speaker_is(s: _Sorted, who: str) -> np.ndarray:
    """Per message in ``s``'s order: written by ``who``."""
    return s.column("speaker").eq(who).to_numpy(bool)


def _handoff_rows(s: _Sorted) -> np.ndarray:
    """Per message in ``s``'s order: its ``event`` is ``handoff`` (stripped, any case)."""
    if "event" not in s.frame.columns:
        return np.zeros(len(s.code), dtype=bool)
    return s.rows(_by_value(s.frame["event"], lambda u: u.astype("str").str.strip().str.lower().eq("handoff")
                            .fillna(False).to_numpy(bool)))


def _keyword_hits(texts: pd.Series, pattern: re.Pattern) -> np.ndarray:
    """``pattern.search`` (an :meth:`EscalationRules.pattern`) per text, once per distinct text.

    pandas runs a word-boundary pattern in its vectorised engine only when every text is ASCII
    (on other letters ``\\b`` differs from Python's ``re``) and otherwise falls back to ``re`` for
    the whole column. ASCII texts (with ASCII keywords, where both engines agree) are therefore
    searched apart from the few others, which go through the compiled pattern as before."""
    def rule(u: pd.Series) -> np.ndarray:
        found = np.zeros(len(u), dtype=bool)
        fast = (u.str.isascii().fillna(False).to_numpy(bool) if pattern.pattern.isascii()
                else np.zeros(len(u), dtype=bool))
        if fast.any():
            found[fast] = u[fast].str.contains(pattern.pattern, case=False, regex=True).fillna(False).to_numpy(bool)
        if (~fast).any():
            found[~fast] = u[~fast].str.contains(pattern, regex=True).fillna(False).to_numpy(bool)
        return found

    return _by_value(texts, rule).astype(bool)


def _derive_reasons(users: pd.DataFrame, conv: np.ndarray, count: int, *, topic_hit: np.ndarray,
                    rules: EscalationRules) -> np.ndarray:
    """Vectorised :func:`derive_reason` over the user messages of many conversations.

    ``users``: the user messages up to the escalation (columns ``text`` and, when present,
    ``intent``, ``confidence`` and the sentiment column); ``conv``: each one's conversation
    number (0 .. ``count`` - 1); ``topic_hit``: per conversation, its topic is sensitive.
    Returns the reason per conversation. A rule's keywords are only searched in the
    conversations no earlier rule decided (the first rule that matches wins).
    """
    text = users["text"].astype("str").fillna("")

    def anywhere(mask: np.ndarray) -> np.ndarray:
        return np.bincount(conv[mask], minlength=count) > 0

    def hits(name: str, open_: np.ndarray) -> np.ndarray:
        pattern = rules.pattern(name)
        found = np.zeros(len(text), dtype=bool)
        rows = np.flatnonzero(open_)
        if pattern is not None and len(rows):
            found[rows] = _keyword_hits(text.iloc[rows], pattern)
        return found

    conf = _col(users, "confidence", "float64")
    sent = (pd.to_numeric(users[rules.sentiment_column], errors="coerce") if rules.sentiment_column in users.columns
            else pd.Series(np.nan, index=users.index))
    fallback = (_is_fallback(users["intent"], OutcomeRules()).to_numpy(bool) if "intent" in users.columns
                else np.zeros(len(users), dtype=bool))
    open_ = np.ones(len(users), dtype=bool)
    requested = anywhere(hits("agent_request_keywords", open_))
    open_ &= ~requested[conv]
    sensitive = anywhere(hits("sensitive_keywords", open_)) | topic_hit
    open_ &= ~sensitive[conv]
    negative = anywhere(hits("negative_keywords", open_)
                        | (sent <= rules.negative_threshold).fillna(False).to_numpy(bool))
    low = anywhere((conf < rules.low_confidence_threshold).fillna(False).to_numpy(bool) | fallback)
    return np.select([requested, sensitive, negative, low],
                     [REASON_REQUESTED, REASON_SENSITIVE, REASON_NEGATIVE, REASON_LOW_CONFIDENCE],
                     default=REASON_UNSPECIFIED).astype(object)


def escalation_table(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                     escalation_rules: EscalationRules | None = None, timezone: str = "UTC") -> pd.DataFrame:
    """One row per escalated conversation, for drill-down and every aggregate of this module.

    Columns: ``conversation_id``, ``reason``, ``reason_source`` ('field' | 'derived'),
    ``turn`` (float; NaN when unknown), ``hour`` / ``weekday_name`` (start, in ``timezone``;
    NA without timestamps), ``topic``, ``intent`` (:func:`metrics.outcomes.primary_intent`),
    ``channel``. Rollup order. No escalations or empty input: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "a"], "speaker": ["user", "user", "agent"],
    ...     "text": ["refund?", "let me speak to a person", "Hi, Ana here"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-03 10:03"], utc=True),
    ...     "row": [1, 2, 3]})
    >>> escalation_table(m, conversation_rollup(m))[["reason", "reason_source", "turn"]].values.tolist()
    [['customer requested agent', 'derived', 2.0]]
    """
    rules = escalation_rules or EscalationRules()
    return memo.cached("escalation.escalation_table", (messages, rollup), (rules, timezone),
                       lambda: _escalation_table(messages, rollup, rules, timezone))


def _escalation_table(messages: pd.DataFrame, rollup: pd.DataFrame, rules: EscalationRules,
                      timezone: str) -> pd.DataFrame:
    cols = ["conversation_id", "reason", "reason_source", "turn", "hour", "weekday_name", "topic", "intent", "channel"]
    signal = escalation_signal(messages, rollup) if len(rollup) else pd.Series([], dtype=bool)
    escalated = signal.to_numpy(bool)
    ids = signal.index[escalated]
    if len(ids) == 0:
        out = pd.DataFrame({c: pd.Series([], dtype="str") for c in cols})
        out["turn"] = out["turn"].astype("float64")
        out["hour"] = out["hour"].astype("Int64")
        return out
    r = rollup[escalated].set_axis(ids)
    # Message-level work on arrays in (conversation, time, row) order, once per call.
    s = _Sorted(messages)
    at = s.locate(signal.index)[escalated]  # each escalated conversation's number in s (-1: no message)
    number = np.full(len(s.ids), -1)  # per conversation of s: its position in ids (-1: not escalated)
    number[at[at >= 0]] = np.flatnonzero(at >= 0)
    number = number[s.code]
    in_scope = number >= 0
    first_esc = s.first(in_scope & (_speaker_is(s, "agent") | _handoff_rows(s)))
    limit = np.where(first_esc >= 0, first_esc, len(s.code))[s.code]  # up to and including the escalation
    keep = np.flatnonzero(in_scope & _speaker_is(s, "user") & (s.index <= limit))
    needed = [c for c in ("text", "intent", "confidence", rules.sentiment_column) if c in messages.columns]
    users = messages[list(dict.fromkeys(needed))].iloc[keep if s.take is None else s.take[keep]]
    users = users.reset_index(drop=True)
    field_reason = _col(r, "escalation_reason", "str").str.strip().replace("", pd.NA)
    topic = _col(r, "topic", "str")
    sensitive_topics = {t.strip().lower() for t in rules.sensitive_topics}
    topic_hit = topic.astype("str").str.strip().str.lower().isin(sensitive_topics).fillna(False).to_numpy(bool)
    derived = _derive_reasons(users, number[keep], len(ids), topic_hit=topic_hit, rules=rules)
    has_field = field_reason.notna().to_numpy(bool)
    reasons = np.where(has_field, field_reason.to_numpy(dtype=object), derived)
    sources = np.where(has_field, "field", "derived").astype(object)
    started = r["started_at"]
    if started.notna().any():
        local = started.dt.tz_convert(timezone)
        hour = local.dt.hour.astype("Int64")
        day = local.dt.day_of_week
        weekday = pd.array(WEEKDAY_NAMES, dtype="str").take(
            np.where(day.notna().to_numpy(bool), day.fillna(0).to_numpy().astype(np.int64), -1), allow_fill=True)
    else:
        hour = pd.Series(pd.NA, index=r.index, dtype="Int64")
        weekday = pd.array([pd.NA] * len(r), dtype="str")
    if "intent" in messages.columns and len(s.code):
        pick = _intent_rows(s, scope=in_scope)
        intents = _take(s.column("intent"), np.where(at >= 0, pick[np.maximum(at, 0)], -1)).astype("str").array
    else:
        intents = pd.array([pd.NA] * len(ids), dtype="str")
    out = pd.DataFrame({
        "conversation_id": pd.array(ids, dtype="str"),
        "reason": pd.array(reasons, dtype="str"),
        "reason_source": pd.array(sources, dtype="str"),
        "turn": r["first_handoff_turn"].astype("float64").to_numpy(),
        "hour": hour.array,
        "weekday_name": weekday,
        "topic": topic.array,
        "intent": intents,
        "channel": _col(r, "channel", "str").array,
    })
    for c in ("conversation_id", "reason", "reason_source", "weekday_name", "topic", "intent", "channel"):
        out[c] = out[c].astype("str")
    out["hour"] = out["hour"].astype("Int64")
    return out[cols]


def escalation_reasons(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                       escalation_rules: EscalationRules | None = None) -> pd.DataFrame:
    """Escalated conversations per reason (field value or derived rule).

    Columns: ``reason``, ``reason_source`` ('field' | 'derived'; 'mixed' when a field value
    equals a derived label), ``conversation_count``, ``share_rate`` (count / escalated
    conversations). Sorted by count, largest first, then reason. No escalations: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["agent", "agent"], "text": ["hi", "hi"],
    ...     "escalation_reason": ["Sensitive topic detected", None], "row": [1, 2],
    ...     "timestamp": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]")})
    >>> escalation_reasons(m, conversation_rollup(m))[["reason", "conversation_count"]].values.tolist()
    [['Sensitive topic detected', 1], ['unspecified', 1]]
    """
    return _reasons_of(escalation_table(messages, rollup, escalation_rules=escalation_rules))


def _reasons_of(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`escalation_reasons` of an :func:`escalation_table` (columns ``reason`` and
    ``reason_source``; any row order)."""
    if len(table) == 0:
        return pd.DataFrame({"reason": pd.Series([], dtype="str"), "reason_source": pd.Series([], dtype="str"),
                             "conversation_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64")})
    g = table.groupby("reason", sort=True)
    out = pd.DataFrame({
        "reason_source": g["reason_source"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "mixed"),
        "conversation_count": g.size().astype("int64"),
    }).reset_index()
    out["share_rate"] = out["conversation_count"] / len(table)
    out["reason"] = out["reason"].astype("str")
    out["reason_source"] = out["reason_source"].astype("str")
    return out.sort_values(["conversation_count", "reason"], ascending=[False, True],
                           kind="stable").reset_index(drop=True)


def escalation_turns(messages: pd.DataFrame, rollup: pd.DataFrame) -> pd.DataFrame:
    """Histogram of the escalation turn: escalations at 0, 1, 2, ... user turns (up to the maximum).

    Columns: ``turn`` (int), ``conversation_count`` (int), ``share_rate`` (of escalations with a
    known turn), ``early`` (turn <= 3, for colouring). Empty when no escalation has a known turn.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c"], "has_agent": [True, True, False],
    ...                   "handoff_event": [False, False, False], "first_handoff_turn": [1.0, 3.0, float("nan")]})
    >>> escalation_turns(pd.DataFrame(), r)["conversation_count"].tolist()
    [0, 1, 0, 1]
    """
    if len(rollup) == 0:
        turns = pd.Series([], dtype="float64")
    else:
        esc = escalation_signal(messages, rollup).to_numpy(bool)
        turns = rollup.loc[esc, "first_handoff_turn"].dropna().astype("int64")
    if len(turns) == 0:
        return pd.DataFrame({"turn": pd.Series([], dtype="int64"), "conversation_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64"), "early": pd.Series([], dtype=bool)})
    counts = turns.value_counts().reindex(range(0, int(turns.max()) + 1), fill_value=0)
    out = pd.DataFrame({"turn": counts.index.astype("int64"), "conversation_count": counts.to_numpy().astype("int64")})
    out["share_rate"] = out["conversation_count"] / len(turns)
    out["early"] = out["turn"] <= 3
    return out


@dataclass(frozen=True)
class EscalationTiming:
    """How early escalations happen (see the module docstring).

    ``early_escalation_rate = early_count / known_turn_count`` (NaN when 0);
    ``warning`` is the filled :data:`EARLY_ESCALATION_WARNING` when the rate is at least
    ``warn_at``, else None.
    """

    escalated_count: int
    known_turn_count: int
    early_count: int
    early_escalation_rate: float
    early_turns: int
    warning: str | None


def escalation_timing(messages: pd.DataFrame, rollup: pd.DataFrame, *, early_turns: int = 3,
                      warn_at: float = 0.40) -> EscalationTiming:
    """Share of escalations within the first ``early_turns`` user turns, with the capability warning.

    Empty input or no escalation with a known turn: counts 0, rate NaN, no warning.
    ``early_turns < 0`` or ``warn_at`` outside (0, 1] raise ConfigError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": list("abcd"), "has_agent": [True] * 4, "handoff_event": [False] * 4,
    ...                   "first_handoff_turn": [1.0, 2.0, 5.0, 8.0]})
    >>> t = escalation_timing(pd.DataFrame(), r)
    >>> t.early_escalation_rate
    0.5
    >>> print(t.warning)
    50% of escalations happen within the first 3 user turns (>= 40%): the bot likely lacks training or ...
    """
    if isinstance(early_turns, bool) or not isinstance(early_turns, int) or early_turns < 0:
        raise ConfigError(f"early_turns must be a whole number >= 0, got {early_turns!r}")
    if isinstance(warn_at, bool) or not isinstance(warn_at, (int, float)) or not 0 < warn_at <= 1:
        raise ConfigError(f"warn_at must be in (0, 1], got {warn_at!r}")
    if len(rollup) == 0:
        return EscalationTiming(0, 0, 0, _NAN, early_turns, None)
    esc = escalation_signal(messages, rollup).to_numpy(bool)
    return _timing_of(int(esc.sum()), rollup.loc[esc, "first_handoff_turn"], early_turns, warn_at)


def _timing_of(escalated_count: int, turns: pd.Series, early_turns: int, warn_at: float) -> EscalationTiming:
    """:func:`escalation_timing` (arguments already checked) from the number of escalated
    conversations and their escalation turns (``first_handoff_turn``, NaN when unknown)."""
    turns = pd.Series(turns, dtype="float64").dropna()
    known, early = int(len(turns)), int((turns <= early_turns).sum())
    rate = early / known if known else _NAN
    warning = (EARLY_ESCALATION_WARNING.format(share=rate, turns=early_turns, warn=warn_at)
               if known and rate >= warn_at else None)
    return EscalationTiming(int(escalated_count), known, early, rate, early_turns, warning)


def escalation_by(messages: pd.DataFrame, rollup: pd.DataFrame, *, by: str = "hour",
                  timezone: str = "UTC") -> pd.DataFrame:
    """Escalation rate per start hour, weekday, topic, intent or channel.

    Columns: ``by`` value column (named after ``by``; hours 0-23 and the seven weekdays
    always present), ``conversation_count``, ``escalated_count``, ``escalation_rate``
    (escalated / conversations of the group; NaN for an empty group). Missing topic / intent /
    channel form ``'(none)'``. Empty rollup: empty frame (hour/weekday: zero rows for every
    slot). ``by`` 'hour'/'weekday' without timestamps: InsufficientDataError; a bad ``by``:
    ConfigError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": list("abc"), "has_agent": [True, False, False],
    ...     "handoff_event": [False, False, True], "topic": ["complaint", "inquiry", "complaint"]})
    >>> escalation_by(pd.DataFrame(), r, by="topic").values.tolist()
    [['complaint', 2, 2, 1.0], ['inquiry', 1, 0, 0.0]]
    """
    if by not in ESCALATION_GROUPS:
        raise ConfigError(f"escalation_by 'by' must be one of {ESCALATION_GROUPS}, got {by!r}")
    if by in ("hour", "weekday"):
        require_timestamps(rollup, view=f"escalation-by-{by}")
    esc = (escalation_signal(messages, rollup).to_numpy(bool) if len(rollup) else np.zeros(0, dtype=bool))
    ids = rollup["conversation_id"].astype("str") if len(rollup) else pd.Series([], dtype="str")
    if by in ("hour", "weekday"):
        local = (rollup["started_at"].dt.tz_convert(timezone) if len(rollup)
                 else pd.Series([], dtype="datetime64[ns, UTC]"))
        key = local.dt.hour if by == "hour" else local.dt.day_of_week
        slots = list(range(24)) if by == "hour" else list(range(7))
    elif by == "intent":
        key = primary_intent(messages).reindex(ids).astype("str").fillna("(none)")
        slots = None
    else:
        key = _col(rollup, by, "str").fillna("(none)")
        slots = None
    work = pd.DataFrame({"key": np.asarray(key), "esc": esc})
    if by in ("hour", "weekday"):
        work = work[pd.notna(work["key"])]
        work["key"] = work["key"].astype("int64")
    g = work.groupby("key", sort=True)
    out = pd.DataFrame({"conversation_count": g.size(), "escalated_count": g["esc"].sum()})
    if slots is not None:
        out = out.reindex(slots, fill_value=0)
    out = out.astype("int64")
    out["escalation_rate"] = out["escalated_count"] / out["conversation_count"].where(out["conversation_count"] > 0)
    out["escalation_rate"] = out["escalation_rate"].astype("float64")
    out.index.name = by
    out = out.reset_index()
    if by == "weekday":
        out.insert(1, "weekday_name", out["weekday"].map(lambda d: WEEKDAY_NAMES[d]).astype("str"))
    elif by not in ("hour",):
        out[by] = out[by].astype("str")
    return out


def handoff_wait_times(messages: pd.DataFrame, rollup: pd.DataFrame) -> pd.DataFrame:
    """Per conversation with a handoff event: when it was handed off and when an agent first wrote.

    Columns: ``conversation_id``, ``handoff_at`` (first ``event == 'handoff'`` message),
    ``first_agent_at`` (first agent message at or after it; NaT when no agent answered),
    ``wait_seconds`` (NaN when unanswered). Empty input or no handoff event: empty frame.
    No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a"] * 3, "speaker": ["user", "bot", "agent"],
    ...     "text": ["agent", "Connecting you", "Hi"], "event": [None, "handoff", None], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-03 10:05"], utc=True)})
    >>> handoff_wait_times(m, conversation_rollup(m))["wait_seconds"].tolist()
    [240.0]
    """
    require_timestamps(rollup, view="handoff wait")
    return _handoff_wait_times(messages)


def _handoff_wait_times(messages: pd.DataFrame) -> pd.DataFrame:
    """:func:`handoff_wait_times` without the timestamp check (a shard of a dataset with timestamps
    may have none: its handoff conversations then have NaT times and NaN waits)."""
    cols = ["conversation_id", "handoff_at", "first_agent_at", "wait_seconds"]
    empty = pd.DataFrame({"conversation_id": pd.Series([], dtype="str"),
                          "handoff_at": pd.Series([], dtype="datetime64[ns, UTC]"),
                          "first_agent_at": pd.Series([], dtype="datetime64[ns, UTC]"),
                          "wait_seconds": pd.Series([], dtype="float64")})
    if len(messages) == 0 or "event" not in messages.columns:
        return empty
    s = _Sorted(messages)
    handoff = _handoff_rows(s)
    if not handoff.any():
        return empty
    first = s.first(handoff)  # per conversation: its first handoff event
    found = first >= 0
    stamps = s.column("timestamp")
    after = s.index >= np.where(found, first, len(s.code))[s.code]
    # Agent messages at or after the handoff; the earliest time is the first with a time (NaT sorts last).
    first_agent = s.first(_speaker_is(s, "agent") & after & stamps.notna().to_numpy(bool))
    out = pd.DataFrame({
        "conversation_id": pd.Series(s.ids[found], dtype="str"),
        "handoff_at": pd.to_datetime(_take(stamps, first[found]), utc=True),
        "first_agent_at": pd.to_datetime(_take(stamps, first_agent[found]), utc=True),
    })
    out["handoff_at"] = out["handoff_at"].astype("datetime64[ns, UTC]")
    out["first_agent_at"] = out["first_agent_at"].astype("datetime64[ns, UTC]")
    out["wait_seconds"] = (out["first_agent_at"] - out["handoff_at"]).dt.total_seconds().astype("float64")
    return out[cols]


@dataclass(frozen=True)
class HandoffWait:
    """Wait from handoff to first agent message: ``handoff_count`` handoff events,
    ``answered_count`` of them answered by an agent, the median / mean / 90th percentile of
    ``wait_seconds`` over the answered ones (NaN when none)."""

    handoff_count: int
    answered_count: int
    median_wait_seconds: float
    mean_wait_seconds: float
    p90_wait_seconds: float


def handoff_wait(messages: pd.DataFrame, rollup: pd.DataFrame) -> HandoffWait:
    """Summary of :func:`handoff_wait_times`. No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["bot", "agent", "bot"],
    ...     "text": ["wait", "hi", "wait"], "event": ["handoff", None, "handoff"], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:02", "2026-08-03 11:00"], utc=True)})
    >>> w = handoff_wait(m, conversation_rollup(m))
    >>> w.handoff_count, w.answered_count, w.median_wait_seconds
    (2, 1, 120.0)
    """
    times = handoff_wait_times(messages, rollup)
    waits = times["wait_seconds"].dropna()
    if len(waits) == 0:
        return HandoffWait(int(len(times)), 0, _NAN, _NAN, _NAN)
    return HandoffWait(int(len(times)), int(len(waits)), float(waits.median()), float(waits.mean()),
                       float(waits.quantile(0.9)))


@dataclass(frozen=True)
class HandoffSuccess:
    """Did the hand-off help? ``resolved_after_handoff_rate = resolved_after_handoff_count /
    escalated_count``; mean ``rating`` (1-5) of escalated vs bot-only conversations with a
    rating, and how many ratings each mean rests on. NaN when a denominator is 0."""

    escalated_count: int
    resolved_after_handoff_count: int
    resolved_after_handoff_rate: float
    rating_after_handoff_mean: float
    rating_after_handoff_count: int
    rating_bot_only_mean: float
    rating_bot_only_count: int


def handoff_success(messages: pd.DataFrame, rollup: pd.DataFrame) -> HandoffSuccess:
    """Resolution after hand-off and rating after hand-off vs bot-only conversations.

    Resolved after hand-off = an escalated conversation with an explicit outcome meaning
    resolved, ``goal_achieved`` True or ``survey_solved`` True. Needs no timestamps. Empty
    input: zeros and NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": list("abc"), "has_agent": [True, True, False],
    ...     "handoff_event": [False] * 3, "survey_solved": pd.array([True, False, None], dtype="boolean"),
    ...     "rating": [5.0, 2.0, 4.0]})
    >>> s = handoff_success(pd.DataFrame(), r)
    >>> s.resolved_after_handoff_rate, s.rating_after_handoff_mean, s.rating_bot_only_mean
    (0.5, 3.5, 4.0)
    """
    if len(rollup) == 0:
        return HandoffSuccess(0, 0, _NAN, _NAN, 0, _NAN, 0)
    esc = escalation_signal(messages, rollup).to_numpy(bool)
    explicit = _explicit(rollup) == OUTCOMES.index("resolved")
    resolved = (explicit | _col(rollup, "goal_achieved", "boolean").fillna(False).to_numpy(bool)
                | _col(rollup, "survey_solved", "boolean").fillna(False).to_numpy(bool))
    rating = _col(rollup, "rating", "float64").to_numpy()
    after, bot_only = rating[esc], rating[~esc]
    after, bot_only = after[~np.isnan(after)], bot_only[~np.isnan(bot_only)]
    n_esc = int(esc.sum())
    n_res = int((resolved & esc).sum())
    return HandoffSuccess(
        escalated_count=n_esc, resolved_after_handoff_count=n_res,
        resolved_after_handoff_rate=n_res / n_esc if n_esc else _NAN,
        rating_after_handoff_mean=float(after.mean()) if len(after) else _NAN,
        rating_after_handoff_count=int(len(after)),
        rating_bot_only_mean=float(bot_only.mean()) if len(bot_only) else _NAN,
        rating_bot_only_count=int(len(bot_only)),
    )


@dataclass(frozen=True)
class EscalationSummary:
    """Headline escalation numbers (definitions in the module docstring).

    ``reasons`` maps reason -> escalated conversations; ``median_wait_seconds`` is NaN
    without timestamps or without an answered handoff event."""

    conversation_count: int
    escalated_count: int
    escalation_rate: float
    reasons: dict
    early_escalation_rate: float
    warning: str | None
    median_wait_seconds: float


def escalation_summary(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                       escalation_rules: EscalationRules | None = None, early_turns: int = 3,
                       warn_at: float = 0.40) -> EscalationSummary:
    """Rate, reasons, early share (with warning) and median wait in one result.

    Works without timestamps (the wait is then NaN). Empty input: zeros, ``{}`` and NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user", "agent", "user"],
    ...     "text": ["I hate this", "Sorry!", "thanks"], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:02", "2026-08-03 11:00"], utc=True)})
    >>> s = escalation_summary(m, conversation_rollup(m))
    >>> s.escalation_rate, s.reasons, s.early_escalation_rate
    (0.5, {'negative sentiment': 1}, 1.0)
    """
    timing = escalation_timing(messages, rollup, early_turns=early_turns, warn_at=warn_at)
    reasons = escalation_reasons(messages, rollup, escalation_rules=escalation_rules)
    timed = len(rollup) > 0 and bool(rollup["started_at"].notna().any())
    wait = handoff_wait(messages, rollup).median_wait_seconds if timed else _NAN
    n = int(len(rollup))
    return EscalationSummary(
        conversation_count=n, escalated_count=timing.escalated_count,
        escalation_rate=timing.escalated_count / n if n else _NAN,
        reasons={str(k): int(v) for k, v in zip(reasons["reason"], reasons["conversation_count"])},
        early_escalation_rate=timing.early_escalation_rate, warning=timing.warning,
        median_wait_seconds=wait,
    )
