"""Conversation outcomes (resolved / escalated / abandoned / unresolved / in_progress) and their rates.

Chatlens classifies each conversation with :func:`classify_outcomes`, whose rules are written
in its docstring and configured by :class:`OutcomeRules`. :func:`outcome_rates` turns the
labels into rates, :func:`vendor_definitions` recomputes the same four rates the way other
tools define them (so a PM can see why two dashboards disagree), :func:`outcome_mix` gives the
outcome mix over time and :func:`resolution_by_tag` the resolution rate per topic or intent
with a Wilson interval.

Shared definitions
------------------
Escalation signal
    The conversation has an ``agent`` message, or a message whose ``event`` is ``handoff``,
    or an explicit ``outcome`` meaning escalated. Used by every style and by
    :mod:`metrics.outcomes.escalation`.
Last message
    The last message of the conversation that is not a ``system`` message, in
    (timestamp, source row) order: the conversation order of :mod:`metrics.core.order`.
Bot question
    A bot message whose text matches ``OutcomeRules.question_pattern`` (default: it
    contains a ``?``).
Export end
    ``OutcomeRules.export_end`` when set, else the latest message timestamp in ``messages``.
    Pass the unfiltered dataset's end when ``messages`` is a date-filtered slice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.core import memo
from metrics.core.order import ORDER_COLUMNS, conversation_order, time_key
from metrics.errors import ConfigError
from metrics.core.stats import wilson_interval

__all__ = [
    "OUTCOMES",
    "ABANDONMENT_MODES",
    "OUTCOME_ALIASES",
    "SMALL_TALK_WORDS",
    "TAGS",
    "NO_TAG",
    "VENDOR_STYLES",
    "OutcomeRules",
    "OutcomeRates",
    "canonical_outcome",
    "is_small_talk",
    "escalation_signal",
    "primary_intent",
    "outcome_table",
    "classify_outcomes",
    "outcome_rates",
    "outcome_mix",
    "vendor_outcome_table",
    "vendor_definitions",
    "resolution_by_tag",
    "conversation_tags",
]

OUTCOMES = ("resolved", "escalated", "abandoned", "unresolved", "in_progress")
ABANDONMENT_MODES = ("silence_after_bot_question", "no_goal")

#: Normalised explicit ``outcome`` value -> canonical outcome. Unknown values are ignored.
OUTCOME_ALIASES: tuple[tuple[str, str], ...] = (
    ("resolved", "resolved"), ("solved", "resolved"), ("success", "resolved"),
    ("successful", "resolved"), ("completed", "resolved"), ("complete", "resolved"),
    ("goal_achieved", "resolved"), ("answered", "resolved"), ("done", "resolved"),
    ("escalated", "escalated"), ("escalation", "escalated"), ("handoff", "escalated"),
    ("handed_off", "escalated"), ("transferred", "escalated"), ("transfer", "escalated"),
    ("abandoned", "abandoned"), ("dropped", "abandoned"), ("drop_off", "abandoned"),
    ("dropoff", "abandoned"), ("timeout", "abandoned"), ("timed_out", "abandoned"),
    ("unresolved", "unresolved"), ("not_resolved", "unresolved"), ("failed", "unresolved"),
    ("failure", "unresolved"), ("fail", "unresolved"), ("unsolved", "unresolved"),
    ("in_progress", "in_progress"), ("open", "in_progress"), ("ongoing", "in_progress"),
    ("active", "in_progress"), ("pending", "in_progress"),
)
_ALIASES = dict(OUTCOME_ALIASES)

#: Words that make a user message small talk when it consists of nothing else.
SMALL_TALK_WORDS = frozenset("""
hi hello hey hiya howdy yo greetings good morning afternoon evening day there
thanks thank you thx ty cheers ok okay k bye goodbye great cool perfect got it
awesome nice fine sure yes yeah yep alright right
""".split())
_WORDS = re.compile(r"[a-z']+")
_END_EVENTS = frozenset({"end_of_conversation", "endofconversation", "end_conversation", "survey"})
_MISUNDERSTOOD_EVENTS = frozenset({"fallback", "misunderstood", "nlu_fallback"})
_NAN = float("nan")


def _norm(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())


@dataclass(frozen=True)
class OutcomeRules:
    """Options of :func:`classify_outcomes` (all keyword, all validated).

    ``timeout_minutes``
        Inactivity time-out (default 30): a conversation whose last message is less than this
        before the export end is ``in_progress``; silence after a bot question longer than
        this is abandonment.
    ``abandonment_mode``
        ``'silence_after_bot_question'`` (default): abandoned = the last message is a bot
        question the user never answered. ``'no_goal'``: abandoned = the conversation ended
        without a goal, an escalation or a survey answer.
    ``export_end``
        When the export was taken (UTC, anything ``pd.Timestamp`` parses); ``None`` = the
        latest message timestamp.
    ``question_pattern``
        Regular expression (searched, case-insensitive) that makes a bot message a question.
    ``fallback_intents``
        Intent names that mean "the bot did not understand" (normalised: lower case, spaces
        and dashes as ``_``); any intent containing ``fallback`` also counts.

    Examples
    --------
    >>> OutcomeRules(timeout_minutes=60, abandonment_mode="no_goal").timeout_minutes
    60
    >>> OutcomeRules(abandonment_mode="gone")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: abandonment_mode must be one of ...
    """

    timeout_minutes: float = 30.0
    abandonment_mode: str = "silence_after_bot_question"
    export_end: pd.Timestamp | str | None = None
    question_pattern: str = r"\?"
    fallback_intents: tuple[str, ...] = field(default=(
        "fallback", "nlu_fallback", "default_fallback_intent", "out_of_scope", "none",
        "unknown", "misunderstood", "oos"))

    def __post_init__(self):
        t = self.timeout_minutes
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0) or math.isinf(t):
            raise ConfigError(f"timeout_minutes must be a positive number of minutes, got {t!r}")
        if self.abandonment_mode not in ABANDONMENT_MODES:
            raise ConfigError(f"abandonment_mode must be one of {ABANDONMENT_MODES}, "
                              f"got {self.abandonment_mode!r}")
        try:
            re.compile(self.question_pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(f"question_pattern is not a valid regular expression: "
                              f"{self.question_pattern!r} ({exc})") from None
        if self.export_end is not None:
            try:
                end = pd.Timestamp(self.export_end)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"export_end is not a time: {self.export_end!r} ({exc})") from None
            if end is pd.NaT:
                raise ConfigError(f"export_end is not a time: {self.export_end!r}")
            end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
            object.__setattr__(self, "export_end", end)
        object.__setattr__(self, "fallback_intents", tuple(_norm(i) for i in self.fallback_intents))


def canonical_outcome(value) -> str | None:
    """Map an explicit ``outcome`` value to one of :data:`OUTCOMES`, or None when unknown/missing.

    Examples
    --------
    >>> canonical_outcome("Handed off"), canonical_outcome("SOLVED"), canonical_outcome("maybe")
    ('escalated', 'resolved', None)
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return _ALIASES.get(_norm(value))


def is_small_talk(text) -> bool:
    """True when a message is only greetings / thanks / acknowledgements (:data:`SMALL_TALK_WORDS`).

    Empty or missing text counts as small talk (it asks for nothing).

    Examples
    --------
    >>> is_small_talk("Hi there!"), is_small_talk("thank you :)"), is_small_talk("hi, where is my order?")
    (True, True, False)
    """
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return True
    words = _WORDS.findall(str(text).lower())
    return all(w in SMALL_TALK_WORDS for w in words)


class _Sorted:
    """The messages in conversation order (:mod:`metrics.core.order`: conversation, time with
    missing times last, source row), as arrays; built once per metric call.

    Stands in for sorting a copy of the whole frame and grouping it per conversation (slow at
    1M rows). ``code`` numbers each message's conversation (0 .. len(ids) - 1, ``ids`` in sorted
    order); ``take`` holds the frame positions in that order (None when the frame is already in
    order, as validated frames are). Per-conversation results are arrays aligned with ``ids``;
    "index" means a position in the sorted order, -1 for none. Messages without a conversation
    id are left out (as ``groupby`` leaves them out).
    """

    def __init__(self, messages: pd.DataFrame):
        self.frame = messages
        order = conversation_order(messages)  # kept per frame content (metrics.core.memo)
        known = order.known_count  # messages without a conversation id come last: leave them out
        self.ids = order.ids
        if known == len(order.codes):
            self.code, self.take = order.codes, order.take
        else:
            self.code, self.take = order.codes[:known], order.positions[:known]

    @property
    def index(self) -> np.ndarray:
        """Each message's index (its position in the sorted order)."""
        return np.arange(len(self.code))

    def rows(self, values) -> np.ndarray:
        """A per-message array of the frame (frame order) in the sorted order."""
        values = np.asarray(values)
        return values if self.take is None else values[self.take]

    def column(self, name: str) -> pd.Series:
        """A column of the messages in the sorted order (RangeIndex)."""
        col = self.frame[name]
        return (col if self.take is None else col.iloc[self.take]).reset_index(drop=True)

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per conversation: index of its first message where ``mask`` holds, -1 when none."""
        return self._edge(mask, first=True)

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per conversation: index of its last message where ``mask`` holds, -1 when none."""
        return self._edge(mask, first=False)

    def _edge(self, mask: np.ndarray, *, first: bool) -> np.ndarray:
        out = np.full(len(self.ids), -1, dtype=np.int64)
        idx = np.flatnonzero(mask)
        if len(idx):
            c = self.code[idx]
            change = c[1:] != c[:-1]
            edge = np.r_[True, change] if first else np.r_[change, True]
            out[c[edge]] = idx[edge]
        return out

    def any(self, mask: np.ndarray) -> np.ndarray:
        """Per conversation: ``mask`` holds for at least one of its messages."""
        return np.bincount(self.code[np.asarray(mask, dtype=bool)], minlength=len(self.ids)) > 0

    def locate(self, ids: pd.Index) -> np.ndarray:
        """Position of each of ``ids`` in ``self.ids`` (-1 when it has no message)."""
        if len(ids) == len(self.ids) and self.ids.equals(ids):
            return np.arange(len(ids))
        return self.ids.get_indexer(ids)

    def per(self, ids: pd.Index, values: np.ndarray, fill) -> np.ndarray:
        """Per-conversation ``values`` (aligned with ``self.ids``) in the order of ``ids``; ``fill`` when absent."""
        at = self.locate(ids)
        values = np.asarray(values)
        out = values[np.maximum(at, 0)] if len(values) else np.full(len(at), fill)
        return np.where(at >= 0, out, fill)


#: The message columns that decide the sorted order (:class:`_Sorted`), and every message column the
#: outcome facts and vendor flags read: their cached results are keyed on these only (metrics.core.memo).
_ORDER_INPUTS = ORDER_COLUMNS
_MESSAGE_INPUTS = _ORDER_INPUTS + ("speaker", "text", "event", "intent")


def _take(values: pd.Series, at: np.ndarray) -> pd.Series:
    """``values.iloc[at]`` on a RangeIndex, missing (NA / NaT) where ``at`` is -1."""
    return pd.Series(values.array.take(np.asarray(at, dtype=np.int64), allow_fill=True))


def _by_value(values: pd.Series, rule):
    """``rule`` (a function of a Series) applied once per distinct value, NA included, instead of
    once per row: a million rows hold a few thousand distinct texts, intents or events. Returns
    an array aligned with ``values`` (a pandas array when ``rule`` returns one)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    result = rule(pd.Series(uniques, dtype=values.dtype))
    if isinstance(result, pd.api.extensions.ExtensionArray):
        return result.take(codes)
    result = np.asarray(result)
    return result[codes] if len(codes) else result[:0]


def _normalised(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def _event_in(frame: pd.DataFrame, names: frozenset) -> np.ndarray:
    """Per row: the normalised ``event`` is one of ``names`` (False without an event column)."""
    if "event" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return _by_value(frame["event"], lambda u: _normalised(u).isin(names).fillna(False).to_numpy(bool))


def _col(frame: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype(dtype)
    return pd.Series(np.nan if dtype == "float64" else pd.NA, index=frame.index, dtype=dtype)


def _is_fallback(intent: pd.Series, rules: OutcomeRules) -> pd.Series:
    def rule(u: pd.Series) -> np.ndarray:
        norm = _normalised(u)
        return (norm.isin(rules.fallback_intents) | norm.str.contains("fallback", regex=False)).fillna(False)

    return pd.Series(_by_value(intent, rule).astype(bool), index=intent.index)


#: :func:`is_small_talk` as one full-match pattern over the lower-cased text: separators, then
#: small-talk words each followed by separators or the end (so every ``[a-z']+`` run is one).
_SMALL_TALK_PATTERN = (r"[^a-z']*(?:(?:" + "|".join(sorted(SMALL_TALK_WORDS, key=lambda w: (-len(w), w)))
                       + r")(?:[^a-z']+|$))*")


def _small_talk(text: pd.Series) -> np.ndarray:
    """:func:`is_small_talk` per row, once per distinct text. ASCII texts go through the
    equivalent vectorised pattern; other texts through is_small_talk itself (Python's
    ``lower`` maps a few non-ASCII letters to ASCII ones, which a vectorised lower may not)."""
    def rule(u: pd.Series) -> np.ndarray:
        values = u.to_numpy(dtype=object)
        out = np.ones(len(values), dtype=bool)  # missing text: small talk
        ascii_ = u.astype("str").str.isascii().fillna(False).to_numpy(bool)
        if ascii_.any():
            out[ascii_] = u[ascii_].astype("str").str.lower().str.fullmatch(_SMALL_TALK_PATTERN).to_numpy(bool)
        other = ~ascii_ & u.notna().to_numpy(bool)
        out[other] = [is_small_talk(v) for v in values[other]]
        return out

    return _by_value(text, rule).astype(bool)


def _small_talk_column(text: pd.Series) -> np.ndarray:
    """:func:`_small_talk` of a whole text column, computed once per column (:mod:`metrics.core.memo`)."""
    return memo.cached("outcomes.small_talk", (text.to_frame("text").reset_index(drop=True),), None,
                       lambda: _small_talk(text))


def _export_end(messages: pd.DataFrame, rules: OutcomeRules) -> pd.Timestamp:
    if rules.export_end is not None:
        return rules.export_end
    if "timestamp" in messages.columns and messages["timestamp"].notna().any():
        return messages["timestamp"].max()
    return pd.NaT


def _explicit(frame: pd.DataFrame) -> np.ndarray:
    """:func:`canonical_outcome` of the ``outcome`` column as a position in :data:`OUTCOMES`
    (-1 when unknown, missing or without the column), computed once per distinct value."""
    if "outcome" not in frame.columns:
        return np.full(len(frame), -1, dtype=np.int64)

    def rule(u: pd.Series) -> np.ndarray:
        canonical = [canonical_outcome(v) for v in u.astype("object")]
        return np.array([-1 if c is None else OUTCOMES.index(c) for c in canonical], dtype=np.int64)

    return _by_value(frame["outcome"], rule)


def _escalated(rollup: pd.DataFrame, explicit: np.ndarray) -> np.ndarray:
    """The escalation signal per rollup row, given :func:`_explicit` of the rollup."""
    return (rollup["has_agent"].astype(bool).to_numpy() | rollup["handoff_event"].astype(bool).to_numpy()
            | (explicit == OUTCOMES.index("escalated")))


def escalation_signal(messages: pd.DataFrame, rollup: pd.DataFrame) -> pd.Series:
    """Boolean per conversation (index ``conversation_id``, rollup order): agent message, handoff
    event, or an explicit ``outcome`` meaning escalated.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c"], "has_agent": [True, False, False],
    ...                   "handoff_event": [False, False, False], "outcome": ["resolved", "Transferred", None]})
    >>> escalation_signal(pd.DataFrame(), r).tolist()
    [True, True, False]
    """
    signal = _escalated(rollup, _explicit(rollup))
    return pd.Series(signal, index=pd.Index(rollup["conversation_id"].astype("str"), name="conversation_id"),
                     name="escalated")


def primary_intent(messages: pd.DataFrame) -> pd.Series:
    """The conversation's intent: what the user came for.

    The predicted ``intent`` of the first user message that has an intent and is not small
    talk (:func:`is_small_talk`: "hi", "thanks" ...); when every such message is small talk,
    the intent of the first user message that has one. Index ``conversation_id``;
    conversations without any user intent are absent. Without an ``intent`` column: an empty
    series.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "a", "b"], "speaker": ["user", "user", "user", "user"],
    ...     "text": ["hello", "refund please", "thanks", "hi"], "intent": ["greet", "refund", "thanks", "greet"],
    ...     "timestamp": pd.to_datetime(["2026-08-03"] * 4, utc=True), "row": [1, 2, 3, 4]})
    >>> primary_intent(m).to_dict()
    {'a': 'refund', 'b': 'greet'}
    """
    if "intent" not in messages.columns or len(messages) == 0:
        return pd.Series([], dtype="str", index=pd.Index([], name="conversation_id"), name="intent")
    return _primary_intent(_Sorted(messages))


def _primary_intent(s: _Sorted) -> pd.Series:
    """:func:`primary_intent` of prepared messages."""
    pick = _intent_rows(s)
    found = pick >= 0
    intents = s.column("intent").iloc[pick[found]].astype("str")
    return pd.Series(intents.array, index=pd.Index(s.ids[found], name="conversation_id"), dtype="str", name="intent")


def _intent_rows(s: _Sorted, scope: np.ndarray | None = None) -> np.ndarray:
    """Per conversation of ``s``: index of the message giving :func:`primary_intent` (-1: none).
    ``scope`` (per message) limits the search, e.g. to some conversations."""
    candidate = s.column("speaker").eq("user").to_numpy(bool) & s.column("intent").notna().to_numpy(bool)
    if scope is not None:
        candidate &= scope
    small = _small_talk_column(s.column("text"))  # every message: shared by all callers on this text column
    pick = s.first(candidate & ~small)
    return np.where(pick >= 0, pick, s.first(candidate))


def _facts(messages: pd.DataFrame, rollup: pd.DataFrame, rules: OutcomeRules,
           s: _Sorted | None = None, *, end_event: bool = False) -> pd.DataFrame:
    """Per-conversation signals used by every outcome rule (index: conversation_id, rollup order).
    ``end_event`` (only the vendor styles need it) adds whether an end/survey event occurred.
    ``explicit`` is the explicit outcome as a position in OUTCOMES (-1: none).
    Computed once per messages, rollup and rules (:mod:`metrics.core.memo`)."""
    return memo.cached("outcomes.facts", (memo.only(messages, _MESSAGE_INPUTS), rollup), (rules, end_event),
                       lambda: _compute_facts(messages, rollup, rules, s, end_event=end_event))


def _compute_facts(messages: pd.DataFrame, rollup: pd.DataFrame, rules: OutcomeRules,
                   s: _Sorted | None = None, *, end_event: bool = False) -> pd.DataFrame:
    ids = pd.Index(rollup["conversation_id"].astype("str"), name="conversation_id")
    f = {}  # column -> array in rollup order; one DataFrame at the end (no index alignment per column)
    if len(messages):
        s = s or _Sorted(messages)
        speaker = s.column("speaker")
        text = s.column("text")
        last = s.per(ids, s.last((speaker != "system").to_numpy(bool)), -1)
        f["last_speaker"] = _take(speaker, last).astype("str").array
        f["last_text"] = _take(text, last).astype("str").array
        f["last_bot_text"] = _take(text, s.per(ids, s.last((speaker == "bot").to_numpy(bool)), -1)).astype("str").array
        if end_event:
            f["end_event"] = s.per(ids, s.any(s.rows(_event_in(messages, _END_EVENTS))), False).astype(bool)
    else:
        for col in ("last_speaker", "last_text", "last_bot_text"):
            f[col] = pd.array([pd.NA] * len(ids), dtype="str")
        f["end_event"] = np.zeros(len(ids), dtype=bool)
    f["user_turns"] = rollup["user_turns"].astype("int64").to_numpy()
    f["bot_turns"] = rollup["bot_turns"].astype("int64").to_numpy()
    f["ended_at"] = rollup["ended_at"].array
    f["explicit"] = _explicit(rollup)
    f["goal"] = _col(rollup, "goal_achieved", "boolean").array
    f["survey"] = _col(rollup, "survey_solved", "boolean").array
    f["thumbs"] = _col(rollup, "thumbs", "str").str.strip().str.lower().array
    f["escalated"] = _escalated(rollup, f["explicit"])
    f = pd.DataFrame(f, index=ids)
    end = _export_end(messages, rules)
    f["silence_seconds"] = (end - f["ended_at"]).dt.total_seconds() if end is not pd.NaT else _NAN
    pattern = re.compile(rules.question_pattern, re.IGNORECASE)
    ends_on_bot = f["last_speaker"].eq("bot").fillna(False).to_numpy(bool)
    asks = _by_value(f["last_text"], lambda u: [isinstance(t, str) and bool(pattern.search(t)) for t in u])
    f["ends_on_bot_question"] = ends_on_bot & asks.astype(bool)
    return f


def outcome_table(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                  rules: OutcomeRules | None = None) -> pd.DataFrame:
    """Per-conversation outcome with the rule that decided it (see :func:`classify_outcomes`).

    Columns: ``conversation_id``, ``outcome`` (one of :data:`OUTCOMES`), ``rule`` (the rule
    that fired: ``explicit_outcome``, ``goal_achieved``, ``survey_solved``, ``escalation``,
    ``survey_not_solved``, ``in_progress_timeout``, ``silence_after_bot_question``,
    ``no_goal`` or ``default_unresolved``), ``escalated`` (escalation signal, bool),
    ``user_turns``, ``last_bot_text``. Rollup order. Empty rollup: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "bot"], "text": ["hi", "Which order?"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01"], utc=True), "row": [1, 2]})
    >>> t = outcome_table(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-04"))
    >>> t[["outcome", "rule"]].values.tolist()
    [['abandoned', 'silence_after_bot_question']]
    """
    rules = rules or OutcomeRules()
    cols = ["conversation_id", "outcome", "rule", "escalated", "user_turns", "last_bot_text"]
    if len(rollup) == 0:
        return pd.DataFrame({"conversation_id": pd.Series([], dtype="str"), "outcome": pd.Series([], dtype="str"),
                             "rule": pd.Series([], dtype="str"), "escalated": pd.Series([], dtype=bool),
                             "user_turns": pd.Series([], dtype="int64"),
                             "last_bot_text": pd.Series([], dtype="str")})
    return _outcome_frame(_facts(messages, rollup, rules), rules)[cols]


_RULES = ("explicit_outcome", "goal_achieved", "survey_solved", "escalation", "survey_not_solved",
          "in_progress_timeout", "silence_after_bot_question", "no_goal", "default_unresolved")


def _decide(f: pd.DataFrame, rules: OutcomeRules) -> tuple[np.ndarray, np.ndarray]:
    """Outcome and rule of each conversation of the facts, as positions in OUTCOMES and _RULES."""
    explicit = f["explicit"].to_numpy()  # position in OUTCOMES, -1: none
    goal = f["goal"].fillna(False).to_numpy(bool)
    survey_yes = f["survey"].fillna(False).to_numpy(bool)
    survey_no = (~f["survey"].fillna(True)).to_numpy(bool)
    in_progress = (f["silence_seconds"] < rules.timeout_minutes * 60).fillna(False).to_numpy(bool)
    if rules.abandonment_mode == "silence_after_bot_question":
        abandoned, abandon_rule = f["ends_on_bot_question"].to_numpy(bool), "silence_after_bot_question"
    else:
        abandoned, abandon_rule = np.ones(len(f), dtype=bool), "no_goal"
    code = OUTCOMES.index
    steps = [  # (condition, outcome, rule) in precedence order: np.select picks the first that holds
        (explicit >= 0, explicit, "explicit_outcome"),
        (goal, code("resolved"), "goal_achieved"),
        (survey_yes, code("resolved"), "survey_solved"),
        (f["escalated"].to_numpy(bool), code("escalated"), "escalation"),
        (survey_no, code("unresolved"), "survey_not_solved"),
        (in_progress, code("in_progress"), "in_progress_timeout"),
        (abandoned, code("abandoned"), abandon_rule),
    ]
    conditions = [cond for cond, _, _ in steps]
    outcome = np.select(conditions, [value for _, value, _ in steps], default=code("unresolved"))
    rule = np.select(conditions, [_RULES.index(name) for _, _, name in steps],
                     default=_RULES.index("default_unresolved"))
    return outcome, rule


def _outcome_frame(f: pd.DataFrame, rules: OutcomeRules) -> pd.DataFrame:
    """:func:`outcome_table` from the facts of :func:`_facts` (so callers holding them decide once)."""
    outcome, rule = _decide(f, rules)
    out = pd.DataFrame({"conversation_id": f.index.astype("str"),
                        "outcome": pd.array(OUTCOMES, dtype="str").take(outcome),
                        "rule": pd.array(_RULES, dtype="str").take(rule), "escalated": f["escalated"].to_numpy(bool),
                        "user_turns": f["user_turns"].to_numpy(), "last_bot_text": f["last_bot_text"].array})
    out["last_bot_text"] = out["last_bot_text"].astype("str")
    return out


def classify_outcomes(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                      rules: OutcomeRules | None = None) -> pd.Series:
    """Label every conversation ``resolved | escalated | abandoned | unresolved | in_progress``.

    ``rollup`` must be :func:`metrics.core.rollup.conversation_rollup` of ``messages``; it fixes
    the conversations labelled. The first rule that applies wins (precedence top to bottom):

    1. **Explicit outcome** - the conversation's ``outcome`` field, mapped through
       :data:`OUTCOME_ALIASES` (``'Transferred'`` -> escalated, ``'solved'`` -> resolved, ...).
       Values not in the list are ignored and the next rules decide.
    2. **Goal achieved** - ``goal_achieved`` is True -> ``resolved``.
    3. **Survey solved** - ``survey_solved`` ("did we solve your problem?") is True -> ``resolved``.
    4. **Escalation** - an ``agent`` message or an ``event == 'handoff'`` -> ``escalated``.
       (So a handed-off conversation whose goal was then reached counts as resolved; use
       :mod:`metrics.outcomes.escalation` or ``containment_rate`` to count every human hand-off.)
    5. **Survey not solved** - ``survey_solved`` is False -> ``unresolved`` (the user answered
       the survey, so they did not simply walk away).
    6. **In progress** - with timestamps, the last message (any speaker) is less than
       ``rules.timeout_minutes`` before the export end -> ``in_progress`` (it may still end
       either way).
    7. **Abandoned** - by ``rules.abandonment_mode``:
       ``'silence_after_bot_question'`` - the last non-system message is a bot question
       (``rules.question_pattern``) and the user stayed silent longer than the time-out
       (guaranteed by rule 6; without timestamps the export is taken as final, so the
       silence is assumed long enough);
       ``'no_goal'`` - the conversation ended without a goal, an escalation or a survey
       answer (everything rules 1-6 left).
    8. Otherwise -> ``unresolved`` (for example the bot's last word was a statement, or
       the user's last message got no reply).

    Returns a ``str`` Series named ``outcome``, indexed by ``conversation_id`` in rollup
    order. An empty rollup gives an empty Series. Neither input is modified; row order of
    ``messages`` does not matter.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b", "c"],
    ...     "speaker": ["user", "bot", "user", "agent", "user"],
    ...     "text": ["where is my parcel?", "Can you give me the order number?", "refund", "Hi, Sam here", "hello"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-03 11:00",
    ...                                  "2026-08-03 11:05", "2026-08-03 12:00"], utc=True), "row": [1, 2, 3, 4, 5]})
    >>> classify_outcomes(m, conversation_rollup(m)).to_dict()
    {'a': 'abandoned', 'b': 'escalated', 'c': 'in_progress'}
    """
    table = outcome_table(messages, rollup, rules=rules)
    return pd.Series(table["outcome"].to_numpy(), index=pd.Index(table["conversation_id"], name="conversation_id"),
                     name="outcome", dtype="str")


@dataclass(frozen=True)
class OutcomeRates:
    """Counts and rates of the Chatlens outcomes.

    ``decided_count`` (all conversations minus ``in_progress``) is the denominator of every
    rate: ``resolution_rate = resolved_count / decided_count`` and likewise
    ``escalation_rate``, ``abandonment_rate``, ``unresolved_rate``;
    ``containment_rate = contained_count / decided_count`` where contained = decided and no
    escalation signal (no human involved, whatever the outcome). All rates are NaN when
    ``decided_count`` is 0.
    """

    conversation_count: int
    decided_count: int
    resolved_count: int
    escalated_count: int
    abandoned_count: int
    unresolved_count: int
    in_progress_count: int
    contained_count: int
    resolution_rate: float
    escalation_rate: float
    abandonment_rate: float
    unresolved_rate: float
    containment_rate: float


def _rate(num: int, den: int) -> float:
    return num / den if den else _NAN


def outcome_rates(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                  rules: OutcomeRules | None = None) -> OutcomeRates:
    """Resolution, escalation, abandonment and containment rates of :func:`classify_outcomes`.

    Definitions are on :class:`OutcomeRates`. In-progress conversations are left out of the
    denominator (they have no outcome yet). Empty rollup, or only in-progress
    conversations: counts 0 and rates NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"], "speaker": ["user", "bot", "user", "agent"],
    ...     "text": ["hi", "Anything else?", "refund", "On it"], "goal_achieved": [True, True, None, None],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00"] * 4, utc=True), "row": [1, 2, 3, 4]})
    >>> m["goal_achieved"] = m["goal_achieved"].astype("boolean")
    >>> r = outcome_rates(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-05"))
    >>> r.resolution_rate, r.escalation_rate, r.containment_rate
    (0.5, 0.5, 0.5)
    """
    return _rates_of(outcome_table(messages, rollup, rules=rules))


def _rates_of(table: pd.DataFrame) -> OutcomeRates:
    """:func:`outcome_rates` of an :func:`outcome_table` (columns ``outcome`` and ``escalated``; any
    row order): the aggregate the facts layer applies to the combined per-conversation rows."""
    counts = table["outcome"].value_counts()
    n = int(len(table))
    in_progress = int(counts.get("in_progress", 0))
    decided = n - in_progress
    contained = int((~table["escalated"] & table["outcome"].ne("in_progress")).sum())
    c = {o: int(counts.get(o, 0)) for o in OUTCOMES}
    return OutcomeRates(
        conversation_count=n, decided_count=decided,
        resolved_count=c["resolved"], escalated_count=c["escalated"], abandoned_count=c["abandoned"],
        unresolved_count=c["unresolved"], in_progress_count=in_progress, contained_count=contained,
        resolution_rate=_rate(c["resolved"], decided), escalation_rate=_rate(c["escalated"], decided),
        abandonment_rate=_rate(c["abandoned"], decided), unresolved_rate=_rate(c["unresolved"], decided),
        containment_rate=_rate(contained, decided),
    )


def outcome_mix(messages: pd.DataFrame, rollup: pd.DataFrame, *, rules: OutcomeRules | None = None,
                period: str = "week", timezone: str = "UTC") -> pd.DataFrame:
    """Outcome mix per day / ISO week / month of the conversation's start.

    Columns: ``period`` (label as in :func:`metrics.engagement.volume.conversations_per_period`),
    ``period_start``, ``outcome``, ``conversation_count``, ``share_rate`` (count / the
    period's conversations; NaN for an empty period). Every period x outcome pair is present.
    Empty rollup: empty frame. No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["bot", "user"], "text": ["Hello?", "hi"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-10 10:00"], utc=True), "row": [1, 2]})
    >>> mix = outcome_mix(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-09-01"))
    >>> mix[mix["conversation_count"] > 0][["period", "outcome"]].values.tolist()
    [['2026-W32', 'abandoned'], ['2026-W33', 'unresolved']]
    """
    from metrics.engagement.volume import conversation_periods, conversations_per_period

    periods = conversations_per_period(rollup, period=period, timezone=timezone)
    cols = ["period", "period_start", "outcome", "conversation_count", "share_rate"]
    if len(periods) == 0:
        return pd.DataFrame({"period": pd.Series([], dtype="str"),
                             "period_start": pd.Series([], dtype="datetime64[ns]"),
                             "outcome": pd.Series([], dtype="str"), "conversation_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64")})
    labels = conversation_periods(rollup, timezone=timezone)[["conversation_id", period]]
    table = outcome_table(messages, rollup, rules=rules)[["conversation_id", "outcome"]]
    joined = labels.merge(table, on="conversation_id", how="left")
    counts = joined.groupby([period, "outcome"]).size()
    grid = pd.MultiIndex.from_product([periods["period"], list(OUTCOMES)], names=["period", "outcome"])
    out = counts.reindex(grid, fill_value=0).rename("conversation_count").reset_index()
    out["conversation_count"] = out["conversation_count"].astype("int64")
    totals = out.groupby("period")["conversation_count"].transform("sum")
    out["share_rate"] = (out["conversation_count"] / totals.where(totals > 0)).astype("float64")
    out["period_start"] = out["period"].map(dict(zip(periods["period"], periods["period_start"])))
    out["period"] = out["period"].astype("str")
    out["outcome"] = out["outcome"].astype("str")
    return out[cols]


# --------------------------------------------------------------------------------------------
# Vendor definitions side by side
# --------------------------------------------------------------------------------------------

#: Style name -> written definition (``{...}`` fields are filled with the options in use).
VENDOR_STYLES: dict[str, str] = {
    "Chatlens default": (
        "Counted: every conversation except in_progress (last message < {timeout} min before the "
        "export end). Outcomes by the precedence of the Chatlens rules: explicit outcome field, then "
        "goal_achieved / survey_solved -> resolved, then agent message or handoff event -> escalated, "
        "then survey answered 'no' -> unresolved, then abandonment ({mode}), else unresolved. "
        "Containment = counted conversations with no agent, no handoff and no explicit escalation."),
    "Copilot Studio style": (
        "Counted: engaged sessions only (at least one user message, or an escalation), closed "
        "({timeout} min of inactivity before the export end). Escalated = handoff / agent / "
        "explicit escalation. Resolved = not escalated and end of conversation reached with "
        "confirmed success (survey 'yes') or implied success (end reached - goal achieved, an "
        "end_of_conversation/survey event or a survey answer - and the survey left unanswered). "
        "Abandoned = every other engaged session, so a survey 'no' counts as abandoned. "
        "Containment = engaged sessions not escalated. The explicit outcome field is ignored."),
    "Intercom Fin style": (
        "Counted: conversations where the bot replied to the user, closed ({fin_hours} h before the "
        "export end). Resolved = not escalated, the bot gave a real answer (a reply to a message that "
        "is not only a greeting or thanks - replying to a greeting is not an answer), and either "
        "confirmed (survey 'yes' or thumbs up) or assumed: no further request after the bot's last "
        "answer - no new non-small-talk user message in the conversation (a reopened conversation "
        "loses its resolution) and no new conversation by the same user within {fin_hours} h - and no "
        "survey 'no' / thumbs down. Escalated = handoff / agent. Fin has no abandonment rate: "
        "Chatlens shows the rest (neither resolved nor escalated). Containment = not escalated."),
    "Rasa style": (
        "Counted: every session, closed ({rasa_minutes} min session expiry before the export end). "
        "Containment = no human involved (no agent, handoff or explicit escalation); escalation = "
        "1 - containment. Abandonment = the session ended without a user message after a bot "
        "utterance (the last non-system message is the bot's), whatever else happened, so a polite "
        "'Glad I could help!' counts too and the rates need not add up to 1. Resolution = a success "
        "marker fired (goal_achieved is True)."),
    "Zendesk style": (
        "Counted: conversations the bot took part in, closed ({zendesk_hours} h messaging session end "
        "before the export end). Bot-handled = a meaningful intent (a user message that is not only a "
        "greeting or thanks, with a predicted intent that is not a fallback; skipped when the data has no "
        "intents), no escalation attempt "
        "(agent / handoff / explicit escalation) and no misunderstood turn (a fallback intent or a "
        "fallback/misunderstood event). Resolved (automated resolution) = bot-handled and no explicit "
        "failure (survey 'no', goal_achieved False, thumbs down) - a stand-in for Zendesk's LLM check. "
        "Containment = bot-handled. Zendesk has no abandonment rate: Chatlens shows the rest."),
}
_STYLE_IDS = {"Chatlens default": "chatlens_default", "Copilot Studio style": "copilot_studio",
              "Intercom Fin style": "intercom_fin", "Rasa style": "rasa", "Zendesk style": "zendesk"}


def _closed(f: pd.DataFrame, window_seconds: float) -> np.ndarray:
    """Not still open: the silence before the export end is at least the style's window (or unknown)."""
    return ~(f["silence_seconds"] < window_seconds).fillna(False).to_numpy(bool)


def vendor_outcome_table(messages: pd.DataFrame, rollup: pd.DataFrame, *, rules: OutcomeRules | None = None,
                         fin_window_hours: float = 24.0, rasa_session_minutes: float = 60.0,
                         zendesk_session_hours: float = 2.0) -> pd.DataFrame:
    """Per conversation and style: counted / resolved / escalated / abandoned / contained flags.

    Long format, one row per (style, conversation): ``style`` (a key of :data:`VENDOR_STYLES`),
    ``conversation_id``, ``counted`` (in the style's denominator), ``resolved``, ``escalated``,
    ``abandoned``, ``contained`` (each False when not counted). The rules are the texts of
    :data:`VENDOR_STYLES`. Empty rollup: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "bot"], "text": ["hi", "Hello! Bye."],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01"], utc=True), "row": [1, 2]})
    >>> t = vendor_outcome_table(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-10"))
    >>> t.set_index("style").loc[["Intercom Fin style", "Rasa style"], ["resolved", "abandoned"]].values.tolist()
    [[False, True], [False, True]]
    """
    rules = rules or OutcomeRules()
    _check_windows(fin_window_hours, rasa_session_minutes, zendesk_session_hours)
    if len(rollup) == 0:
        data = {"style": pd.Series([], dtype="str"), "conversation_id": pd.Series([], dtype="str")}
        data.update({c: pd.Series([], dtype=bool) for c in _FLAGS})
        return pd.DataFrame(data)
    ids, styles = _vendor_flags(messages, rollup, rules, fin_window_hours, rasa_session_minutes,
                                zendesk_session_hours)
    n, k = len(ids), len(styles)
    out = pd.DataFrame({"style": pd.array(list(styles), dtype="str").take(np.repeat(np.arange(k), n)),
                        "conversation_id": pd.array(ids.astype("str"), dtype="str").take(np.tile(np.arange(n), k))})
    for c in _FLAGS:
        out[c] = np.concatenate([cols[c] for cols in styles.values()])
    return out


_FLAGS = ("counted", "resolved", "escalated", "abandoned", "contained")


def _check_windows(fin_window_hours, rasa_session_minutes, zendesk_session_hours) -> None:
    for name, value in (("fin_window_hours", fin_window_hours), ("rasa_session_minutes", rasa_session_minutes),
                        ("zendesk_session_hours", zendesk_session_hours)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"{name} must be a positive number, got {value!r}")


def _vendor_flags(messages: pd.DataFrame, rollup: pd.DataFrame, rules: OutcomeRules, fin_window_hours: float,
                  rasa_session_minutes: float, zendesk_session_hours: float
                  ) -> tuple[pd.Index, dict[str, dict[str, np.ndarray]]]:
    """The rules of :data:`VENDOR_STYLES`: per style, each flag of :func:`vendor_outcome_table` as a
    boolean array over the rollup's conversations (False where the style does not count it).
    Computed once per messages, rollup and options (:mod:`metrics.core.memo`)."""
    options = (rules, fin_window_hours, rasa_session_minutes, zendesk_session_hours)
    ids, styles = memo.cached("outcomes.vendor_flags", (memo.only(messages, _MESSAGE_INPUTS), rollup), options,
                              lambda: _compute_vendor_flags(messages, rollup, *options))
    return ids, {style: {name: np.array(values, copy=True) for name, values in flags.items()}
                 for style, flags in styles.items()}


def _compute_vendor_flags(messages: pd.DataFrame, rollup: pd.DataFrame, rules: OutcomeRules, fin_window_hours: float,
                          rasa_session_minutes: float, zendesk_session_hours: float
                          ) -> tuple[pd.Index, dict[str, dict[str, np.ndarray]]]:
    local = _vendor_local(messages, rollup, rules, fin_window_hours, rasa_session_minutes, zendesk_session_hours)
    return local.index, _vendor_styles(local, rollup, fin_window_hours)


#: The columns of :func:`_vendor_local`: ``<style id>_<flag>`` for every flag that depends on the
#: conversation alone (all but Intercom Fin's ``resolved`` and ``abandoned``), then Fin's parts.
_VENDOR_LOCAL_FLAGS = tuple(f"{_STYLE_IDS[style]}_{c}" for style in VENDOR_STYLES for c in _FLAGS
                            if not (style == "Intercom Fin style" and c in ("resolved", "abandoned")))
_FIN_PARTS = ("intercom_fin_confirmed", "intercom_fin_assumed")


def _vendor_local(messages: pd.DataFrame, rollup: pd.DataFrame, rules: OutcomeRules, fin_window_hours: float,
                  rasa_session_minutes: float, zendesk_session_hours: float) -> pd.DataFrame:
    """The part of :func:`_vendor_flags` that each conversation decides alone (index
    ``conversation_id``, rollup order): the bool columns :data:`_VENDOR_LOCAL_FLAGS` (each False
    where the style does not count the conversation), ``intercom_fin_confirmed`` (counted, not
    escalated, answered and confirmed), ``intercom_fin_assumed`` (counted, not escalated, answered,
    no further request in the conversation and no negative feedback: resolved unless the same user
    came back, which spans conversations) and ``intercom_fin_last_answer_at`` (the latest time of a
    bot answer, NaT when none). :func:`_vendor_styles` completes Fin's flags from these."""
    s = _Sorted(messages)
    f = _facts(messages, rollup, rules, s, end_event=True)
    ids = f.index

    def flag(values) -> np.ndarray:
        return np.asarray(values, dtype=bool)

    esc = flag(f["escalated"])
    goal_yes = flag(f["goal"].fillna(False))
    goal_no = flag(~f["goal"].fillna(True))
    survey_yes = flag(f["survey"].fillna(False))
    survey_no = flag(~f["survey"].fillna(True))
    survey_answered = flag(f["survey"].notna())
    thumbs_up = flag(f["thumbs"].eq("up").fillna(False))
    thumbs_down = flag(f["thumbs"].eq("down").fillna(False))
    user_turns = f["user_turns"].to_numpy()
    bot_turns = f["bot_turns"].to_numpy()
    styles: dict[str, dict[str, np.ndarray]] = {}

    # Chatlens default
    outcome = np.asarray(OUTCOMES, dtype=object)[_decide(f, rules)[0]]
    counted = outcome != "in_progress"
    styles["Chatlens default"] = {"counted": counted, "resolved": outcome == "resolved",
                                  "escalated": outcome == "escalated", "abandoned": outcome == "abandoned",
                                  "contained": counted & ~esc}

    # Copilot Studio style
    counted = ((user_turns >= 1) | esc) & _closed(f, rules.timeout_minutes * 60)
    end_reached = goal_yes | survey_answered | flag(f["end_event"])
    resolved = counted & ~esc & (survey_yes | (end_reached & ~survey_answered))
    styles["Copilot Studio style"] = {"counted": counted, "resolved": resolved, "escalated": counted & esc,
                                      "abandoned": counted & ~resolved & ~esc, "contained": counted & ~esc}

    # Intercom Fin style and Zendesk style need message-level signals (arrays in s's order; a
    # message's index grows with its position in the conversation, so "after" compares indexes).
    speaker = s.column("speaker")
    is_user = speaker.eq("user").to_numpy(bool)
    is_bot = speaker.eq("bot").to_numpy(bool)
    substantive = is_user & ~_small_talk_column(s.column("text"))
    never = len(s.code)  # an index no message reaches

    def index_of(first_or_last: np.ndarray) -> np.ndarray:  # per message, its conversation's index
        return np.where(first_or_last >= 0, first_or_last, never)[s.code]

    answer = is_bot & (s.index > index_of(s.first(substantive)))
    last_answer = s.last(answer)
    stamps = s.column("timestamp")
    last_answer_at = _take(stamps, s.per(ids, s.last(answer & stamps.notna().to_numpy(bool)), -1))
    answered = s.per(ids, last_answer >= 0, False).astype(bool)
    asked_again = s.per(ids, s.any(substantive & (s.index > index_of(last_answer))), False).astype(bool)
    involved = (user_turns >= 1) & (bot_turns >= 1)
    counted = involved & _closed(f, float(fin_window_hours) * 3600)
    confirmed = survey_yes | thumbs_up
    negative = survey_no | thumbs_down
    answering = counted & ~esc & answered
    styles["Intercom Fin style"] = {"counted": counted, "escalated": counted & esc, "contained": counted & ~esc,
                                    "confirmed": answering & confirmed,
                                    "assumed": answering & ~asked_again & ~negative}

    # Rasa style
    counted = _closed(f, float(rasa_session_minutes) * 60)
    bot_last = flag(f["last_speaker"].eq("bot").fillna(False))
    styles["Rasa style"] = {"counted": counted, "resolved": counted & goal_yes, "escalated": counted & esc,
                            "abandoned": counted & bot_last, "contained": counted & ~esc}

    # Zendesk style
    counted = (bot_turns >= 1) & _closed(f, float(zendesk_session_hours) * 3600)
    if "intent" in messages.columns:
        intent = s.column("intent")
        fallback = _is_fallback(intent, rules).to_numpy(bool)
        has_intent = intent.notna().to_numpy(bool)
        meaningful = s.per(ids, s.any(substantive & has_intent & ~fallback), False).astype(bool)
        misunderstood_msg = is_user & fallback
    else:
        meaningful = np.ones(len(ids), dtype=bool)
        misunderstood_msg = np.zeros(len(s.code), dtype=bool)
    misunderstood_msg = misunderstood_msg | s.rows(_event_in(messages, _MISUNDERSTOOD_EVENTS))
    misunderstood = s.per(ids, s.any(misunderstood_msg), False).astype(bool)
    bot_handled = counted & meaningful & ~esc & ~misunderstood
    resolved = bot_handled & ~(survey_no | goal_no | thumbs_down)
    styles["Zendesk style"] = {"counted": counted, "resolved": resolved, "escalated": counted & esc,
                               "abandoned": counted & ~resolved & ~esc, "contained": bot_handled}

    out = {f"{_STYLE_IDS[style]}_{c}": np.asarray(v, dtype=bool) & np.asarray(cols["counted"], dtype=bool)
           for style, cols in styles.items() for c, v in cols.items()}
    out = pd.DataFrame({c: out[c] for c in _VENDOR_LOCAL_FLAGS + _FIN_PARTS}, index=ids)
    out["intercom_fin_last_answer_at"] = last_answer_at.array
    return out


def _fin_returned(ids: pd.Index, rollup: pd.DataFrame, last_answer_at: pd.Series,
                  fin_window_hours: float) -> np.ndarray:
    """Per conversation of ``rollup`` (whose ``conversation_id`` is ``ids``): the same user started
    another conversation within the Fin window after its last bot answer (``last_answer_at``,
    aligned with the rollup). This spans conversations: it needs every conversation of the user."""
    window = pd.Timedelta(hours=float(fin_window_hours))
    returned = np.zeros(len(ids), dtype=bool)
    if "user_id" in rollup.columns and rollup["started_at"].notna().any():
        started = rollup["started_at"]
        keep = np.flatnonzero((rollup["user_id"].notna() & started.notna()).to_numpy(bool))
        user = pd.factorize(rollup["user_id"])[0][keep]
        by_id = (np.arange(len(ids)) if ids.is_monotonic_increasing  # ties in start: conversation id order
                 else pd.factorize(ids, sort=True)[0])[keep]
        rank = np.lexsort((by_id, time_key(started)[keep], user))  # by user, then start
        order, user = keep[rank], user[rank]
        same_user = np.r_[user[1:] == user[:-1], False]
        next_start = started.iloc[order].reset_index(drop=True).shift(-1).where(pd.Series(same_user))
        answer_at = pd.Series(pd.Series(last_answer_at).array.take(order))
        returned[order] = ((next_start - answer_at) <= window).fillna(False).to_numpy(bool)
    return returned


def _vendor_styles(local: pd.DataFrame, rollup: pd.DataFrame,
                   fin_window_hours: float) -> dict[str, dict[str, np.ndarray]]:
    """Every style's flags (as :func:`_vendor_flags`) from :func:`_vendor_local` and the rollup of
    the same conversations in the same order (its ``user_id`` and ``started_at`` decide Fin's
    "the user came back")."""
    returned = _fin_returned(local.index, rollup, local["intercom_fin_last_answer_at"], fin_window_hours)
    styles: dict[str, dict[str, np.ndarray]] = {}
    for style, sid in _STYLE_IDS.items():
        cols = {c: local[f"{sid}_{c}"].to_numpy(bool) for c in _FLAGS if f"{sid}_{c}" in local.columns}
        if style == "Intercom Fin style":
            resolved = local["intercom_fin_confirmed"].to_numpy(bool) | (
                local["intercom_fin_assumed"].to_numpy(bool) & ~returned)
            cols["resolved"] = resolved
            cols["abandoned"] = cols["counted"] & ~resolved & ~cols["escalated"]
        styles[style] = {c: cols[c] for c in _FLAGS}
    return styles


def vendor_definitions(messages: pd.DataFrame, rollup: pd.DataFrame, *, rules: OutcomeRules | None = None,
                       fin_window_hours: float = 24.0, rasa_session_minutes: float = 60.0,
                       zendesk_session_hours: float = 2.0) -> pd.DataFrame:
    """Resolution / escalation / abandonment / containment of one dataset under five definitions.

    Rows, in this order: ``Chatlens default``, ``Copilot Studio style``, ``Intercom Fin
    style``, ``Rasa style``, ``Zendesk style`` (each rule is the text of
    :data:`VENDOR_STYLES`, filled with the options in use, and is returned in
    ``definition`` for a tooltip). Columns: ``style``, ``style_id`` (JSON key),
    ``resolution_rate``, ``escalation_rate``, ``abandonment_rate``, ``containment_rate``,
    ``counted_count`` (the style's denominator), ``resolved_count``, ``escalated_count``,
    ``abandoned_count``, ``contained_count``, ``definition``. Every rate is its count divided
    by ``counted_count``; NaN when a style counts no conversation (and for every style on an
    empty rollup). Rasa's rates are independent and need not add up to 1.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"], "speaker": ["user", "bot", "user", "agent"],
    ...     "text": ["cancel my plan", "Done, cancelled.", "human please", "Hi, Sam here"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-03 11:00",
    ...                                  "2026-08-03 11:02"], utc=True), "row": [1, 2, 3, 4]})
    >>> v = vendor_definitions(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-10"))
    >>> v.set_index("style_id")[["resolution_rate", "counted_count"]].to_dict("index")["intercom_fin"]
    {'resolution_rate': 1.0, 'counted_count': 1}
    >>> v.set_index("style_id")["escalation_rate"].to_dict()
    {'chatlens_default': 0.5, 'copilot_studio': 0.5, 'intercom_fin': 0.0, 'rasa': 0.5, 'zendesk': 0.0}
    """
    rules = rules or OutcomeRules()
    _check_windows(fin_window_hours, rasa_session_minutes, zendesk_session_hours)
    styles = (_vendor_flags(messages, rollup, rules, fin_window_hours, rasa_session_minutes, zendesk_session_hours)[1]
              if len(rollup) else {})
    return _definitions_of(styles, rules, fin_window_hours, rasa_session_minutes, zendesk_session_hours)


def _definitions_of(styles: dict[str, dict[str, np.ndarray]], rules: OutcomeRules, fin_window_hours: float,
                    rasa_session_minutes: float, zendesk_session_hours: float) -> pd.DataFrame:
    """:func:`vendor_definitions` from the flags of :func:`_vendor_flags` (``{}`` for no conversation)."""
    fill = {"timeout": f"{rules.timeout_minutes:g}", "mode": rules.abandonment_mode,
            "fin_hours": f"{fin_window_hours:g}", "rasa_minutes": f"{rasa_session_minutes:g}",
            "zendesk_hours": f"{zendesk_session_hours:g}"}
    rows = []
    for style, text in VENDOR_STYLES.items():
        part = styles.get(style, {})  # the style's flags (none on an empty rollup)
        n = int(part["counted"].sum()) if part else 0
        counts = {c: int(part[c].sum()) if part else 0 for c in ("resolved", "escalated", "abandoned", "contained")}
        rows.append({
            "style": style, "style_id": _STYLE_IDS[style],
            "resolution_rate": _rate(counts["resolved"], n), "escalation_rate": _rate(counts["escalated"], n),
            "abandonment_rate": _rate(counts["abandoned"], n), "containment_rate": _rate(counts["contained"], n),
            "counted_count": n, "resolved_count": counts["resolved"], "escalated_count": counts["escalated"],
            "abandoned_count": counts["abandoned"], "contained_count": counts["contained"],
            "definition": text.format(**fill),
        })
    out = pd.DataFrame(rows)
    for c in ("style", "style_id", "definition"):
        out[c] = out[c].astype("str")
    for c in ("resolution_rate", "escalation_rate", "abandonment_rate", "containment_rate"):
        out[c] = out[c].astype("float64")
    return out


# --------------------------------------------------------------------------------------------
# Success by tag
# --------------------------------------------------------------------------------------------

TAGS = ("topic", "intent")
NO_TAG = "(none)"


def resolution_by_tag(messages: pd.DataFrame, rollup: pd.DataFrame, *, by: str = "topic",
                      rules: OutcomeRules | None = None, min_group: int = 30,
                      confidence: float = 0.95) -> pd.DataFrame:
    """Resolution rate per ``topic`` (inquiry / complaint / request ...) or per intent, with a Wilson interval.

    A conversation's tag is its ``topic`` field (``by='topic'``) or :func:`primary_intent`
    (``by='intent'``); missing tags form the group ``'(none)'``. Per group:
    ``conversation_count`` = decided conversations (in_progress left out),
    ``resolved_count`` = those :func:`classify_outcomes` labels resolved,
    ``resolution_rate`` = resolved / decided, ``ci_low`` / ``ci_high`` = Wilson interval at
    ``confidence`` (:func:`metrics.core.stats.wilson_interval`), ``small_group`` = fewer than
    ``min_group`` conversations (read the rate with care). Sorted by count, largest first,
    then tag. A group with only in-progress conversations has count 0 and NaN rate/interval.

    Empty rollup: empty frame. ``by`` not in ``('topic', 'intent')`` or ``min_group < 1``
    raise ConfigError; a ``topic`` column or ``intent`` column that the data lacks raises
    InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "speaker": ["user"] * 3, "text": ["x"] * 3,
    ...     "topic": ["complaint", "complaint", "inquiry"], "goal_achieved": [True, False, True],
    ...     "timestamp": pd.to_datetime(["2026-08-03"] * 3, utc=True), "row": [1, 2, 3]})
    >>> m["goal_achieved"] = m["goal_achieved"].astype("boolean")
    >>> t = resolution_by_tag(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-10"))
    >>> t[["topic", "conversation_count", "resolution_rate", "small_group"]].values.tolist()
    [['complaint', 2, 0.5, True], ['inquiry', 1, 1.0, True]]
    """
    from metrics.errors import InsufficientDataError

    if by not in TAGS:
        raise ConfigError(f"resolution_by_tag 'by' must be one of {TAGS}, got {by!r}")
    if isinstance(min_group, bool) or not isinstance(min_group, int) or min_group < 1:
        raise ConfigError(f"min_group must be a whole number >= 1, got {min_group!r}")
    cols = [by, "conversation_count", "resolved_count", "resolution_rate", "ci_low", "ci_high", "small_group"]
    source = rollup if by == "topic" else messages
    if by not in source.columns:
        raise InsufficientDataError(f"resolution by {by} needs a '{by}' column, and this dataset has none")
    if len(rollup) == 0:
        return pd.DataFrame({by: pd.Series([], dtype="str"), "conversation_count": pd.Series([], dtype="int64"),
                             "resolved_count": pd.Series([], dtype="int64"),
                             "resolution_rate": pd.Series([], dtype="float64"),
                             "ci_low": pd.Series([], dtype="float64"), "ci_high": pd.Series([], dtype="float64"),
                             "small_group": pd.Series([], dtype=bool)})
    table = outcome_table(messages, rollup, rules=rules).set_index("conversation_id")
    if by == "topic":
        tag = rollup.set_index(rollup["conversation_id"].astype("str"))["topic"]
    else:
        tag = primary_intent(messages)
    table[by] = tag.reindex(table.index).astype("str").fillna(NO_TAG)
    table["decided"] = table["outcome"].ne("in_progress")
    table["resolved"] = table["outcome"].eq("resolved")
    g = table.groupby(by, sort=True)
    out = pd.DataFrame({"conversation_count": g["decided"].sum().astype("int64"),
                        "resolved_count": g["resolved"].sum().astype("int64")}).reset_index()
    ci = [wilson_interval(int(k), int(n), confidence=confidence)
          for k, n in zip(out["resolved_count"], out["conversation_count"])]
    out["resolution_rate"] = [k / n if n else _NAN for k, n in zip(out["resolved_count"], out["conversation_count"])]
    out["ci_low"] = [c[0] for c in ci]
    out["ci_high"] = [c[1] for c in ci]
    out["small_group"] = (out["conversation_count"] < min_group).astype(bool)
    out[by] = out[by].astype("str")
    out = out.sort_values(["conversation_count", by], ascending=[False, True], kind="stable")
    return out[cols].reset_index(drop=True).astype({"resolution_rate": "float64", "ci_low": "float64",
                                                     "ci_high": "float64"})


def conversation_tags(messages: pd.DataFrame, rollup: pd.DataFrame, *, by: str = "topic") -> pd.DataFrame:
    """Each conversation's tag, as :func:`resolution_by_tag` groups it (the rows behind one of its points).

    The tag is the conversation's ``topic`` field (``by='topic'``) or :func:`primary_intent`
    (``by='intent'``); a missing tag is :data:`NO_TAG`. Columns ``conversation_id`` and ``tag``
    (both ``str``), one row per conversation of ``rollup``, in rollup order; in-progress
    conversations are included (they have a tag even though the rate leaves them out).

    Empty rollup: empty frame with those columns. ``by`` not in ``('topic', 'intent')`` raises
    ConfigError; a ``topic`` (rollup) or ``intent`` (messages) column that the data lacks raises
    InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": "user", "row": [1, 2, 3],
    ...     "text": ["hi", "refund please", "where is it?"], "intent": ["greet", "refund", None],
    ...     "timestamp": pd.Timestamp("2026-08-03", tz="UTC")})
    >>> conversation_tags(m, conversation_rollup(m), by="intent").values.tolist()  # "hi" is small talk
    [['a', 'refund'], ['b', '(none)']]
    """
    from metrics.errors import InsufficientDataError

    if by not in TAGS:
        raise ConfigError(f"conversation_tags 'by' must be one of {TAGS}, got {by!r}")
    source = rollup if by == "topic" else messages
    if by not in source.columns:
        raise InsufficientDataError(f"tagging by {by} needs a '{by}' column, and this dataset has none")
    ids = pd.DataFrame({"conversation_id": rollup["conversation_id"].astype("str")})
    if by == "topic":
        tag_of = pd.DataFrame({"conversation_id": ids["conversation_id"], "tag": rollup["topic"].to_numpy()})
    else:
        tag_of = primary_intent(messages).rename("tag").reset_index()
        tag_of["conversation_id"] = tag_of["conversation_id"].astype("str")
    out = ids.merge(tag_of, on="conversation_id", how="left")
    out["tag"] = out["tag"].astype("str").fillna(NO_TAG)
    return out.reset_index(drop=True)
