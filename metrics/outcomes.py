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
    :mod:`metrics.escalation`.
Last message
    The last message of the conversation that is not a ``system`` message, in
    (timestamp, source row) order.
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

from metrics.errors import ConfigError
from metrics.stats import wilson_interval

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


def _ordered(messages: pd.DataFrame) -> pd.DataFrame:
    """Messages sorted by (conversation, time, source row), with ``_pos`` within the conversation."""
    cols = [c for c in messages.columns]
    work = messages[cols].copy()
    if "row" not in work.columns:
        work["row"] = np.arange(1, len(work) + 1)
    work = work.sort_values(["conversation_id", "timestamp", "row"], kind="stable", na_position="last")
    work = work.reset_index(drop=True)
    work["_pos"] = work.groupby("conversation_id", sort=False).cumcount()
    return work


def _col(frame: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype(dtype)
    return pd.Series(np.nan if dtype == "float64" else pd.NA, index=frame.index, dtype=dtype)


def _is_fallback(intent: pd.Series, rules: OutcomeRules) -> pd.Series:
    norm = intent.astype("str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    return (norm.isin(rules.fallback_intents) | norm.str.contains("fallback", regex=False)).fillna(False)


def _export_end(messages: pd.DataFrame, rules: OutcomeRules) -> pd.Timestamp:
    if rules.export_end is not None:
        return rules.export_end
    if "timestamp" in messages.columns and messages["timestamp"].notna().any():
        return messages["timestamp"].max()
    return pd.NaT


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
    explicit = _col(rollup, "outcome", "object").map(canonical_outcome)
    signal = (rollup["has_agent"].astype(bool) | rollup["handoff_event"].astype(bool)
              | explicit.eq("escalated").fillna(False).astype(bool))
    return pd.Series(signal.to_numpy(bool), index=pd.Index(rollup["conversation_id"].astype("str"),
                                                            name="conversation_id"), name="escalated")


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
    m = _ordered(messages)
    users = m[(m["speaker"] == "user") & m["intent"].notna()].copy()
    users["_small"] = users["text"].map(is_small_talk).astype(bool)
    users = users.sort_values(["conversation_id", "_small", "_pos"], kind="stable")
    first = users.groupby("conversation_id", sort=True).head(1).set_index("conversation_id")["intent"]
    return first.astype("str").rename("intent")


def _facts(messages: pd.DataFrame, rollup: pd.DataFrame, rules: OutcomeRules) -> pd.DataFrame:
    """Per-conversation signals used by every outcome rule (index: conversation_id, rollup order)."""
    ids = pd.Index(rollup["conversation_id"].astype("str"), name="conversation_id")
    m = _ordered(messages) if len(messages) else messages
    f = pd.DataFrame(index=ids)
    if len(m):
        nonsys = m[m["speaker"] != "system"]
        last = nonsys.groupby("conversation_id", sort=False).tail(1).set_index("conversation_id")
        f["last_speaker"] = last["speaker"].reindex(ids).astype("str")
        f["last_text"] = last["text"].reindex(ids).astype("str")
        bots = m[m["speaker"] == "bot"]
        last_bot = bots.groupby("conversation_id", sort=False).tail(1).set_index("conversation_id")
        f["last_bot_text"] = last_bot["text"].reindex(ids).astype("str")
        events = _col(m, "event", "str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
        f["end_event"] = events.isin(_END_EVENTS).fillna(False).groupby(m["conversation_id"]).any().reindex(
            ids, fill_value=False).astype(bool)
    else:
        for col in ("last_speaker", "last_text", "last_bot_text"):
            f[col] = pd.Series(pd.NA, index=ids, dtype="str")
        f["end_event"] = False
    r = rollup.set_index(ids)
    f["user_turns"] = r["user_turns"].astype("int64")
    f["bot_turns"] = r["bot_turns"].astype("int64")
    f["ended_at"] = r["ended_at"]
    f["explicit"] = _col(r, "outcome", "object").map(canonical_outcome).astype("str")
    f["goal"] = _col(r, "goal_achieved", "boolean")
    f["survey"] = _col(r, "survey_solved", "boolean")
    f["thumbs"] = _col(r, "thumbs", "str").str.strip().str.lower()
    f["escalated"] = escalation_signal(messages, rollup).to_numpy()
    end = _export_end(messages, rules)
    f["silence_seconds"] = (end - f["ended_at"]).dt.total_seconds() if end is not pd.NaT else _NAN
    pattern = re.compile(rules.question_pattern, re.IGNORECASE)
    ends_on_bot = f["last_speaker"].eq("bot").fillna(False).astype(bool)
    asks = f["last_text"].map(lambda t: bool(pattern.search(t)) if isinstance(t, str) else False).astype(bool)
    f["ends_on_bot_question"] = ends_on_bot & asks
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
    >>> from metrics.rollup import conversation_rollup
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
    f = _facts(messages, rollup, rules)
    explicit = f["explicit"]
    goal = f["goal"].fillna(False).astype(bool)
    survey_yes = f["survey"].fillna(False).astype(bool)
    survey_no = (~f["survey"].fillna(True)).astype(bool)
    in_progress = (f["silence_seconds"] < rules.timeout_minutes * 60).fillna(False).astype(bool)
    if rules.abandonment_mode == "silence_after_bot_question":
        abandoned, abandon_rule = f["ends_on_bot_question"], "silence_after_bot_question"
    else:
        abandoned, abandon_rule = pd.Series(True, index=f.index), "no_goal"
    steps = [  # (condition, outcome, rule) in precedence order
        (explicit.notna(), explicit, "explicit_outcome"),
        (goal, "resolved", "goal_achieved"),
        (survey_yes, "resolved", "survey_solved"),
        (f["escalated"], "escalated", "escalation"),
        (survey_no, "unresolved", "survey_not_solved"),
        (in_progress, "in_progress", "in_progress_timeout"),
        (abandoned, "abandoned", abandon_rule),
    ]
    outcome = pd.Series("unresolved", index=f.index, dtype="object")
    rule = pd.Series("default_unresolved", index=f.index, dtype="object")
    decided = pd.Series(False, index=f.index)
    for cond, value, name in steps:
        hit = cond.fillna(False).astype(bool) & ~decided
        outcome[hit] = value[hit] if isinstance(value, pd.Series) else value
        rule[hit] = name
        decided |= hit
    out = pd.DataFrame({"conversation_id": f.index.astype("str"), "outcome": outcome.astype("str").to_numpy(),
                        "rule": rule.astype("str").to_numpy(), "escalated": f["escalated"].to_numpy(bool),
                        "user_turns": f["user_turns"].to_numpy(), "last_bot_text": f["last_bot_text"].to_numpy()})
    out["last_bot_text"] = out["last_bot_text"].astype("str")
    return out[cols]


def classify_outcomes(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                      rules: OutcomeRules | None = None) -> pd.Series:
    """Label every conversation ``resolved | escalated | abandoned | unresolved | in_progress``.

    ``rollup`` must be :func:`metrics.rollup.conversation_rollup` of ``messages``; it fixes
    the conversations labelled. The first rule that applies wins (precedence top to bottom):

    1. **Explicit outcome** - the conversation's ``outcome`` field, mapped through
       :data:`OUTCOME_ALIASES` (``'Transferred'`` -> escalated, ``'solved'`` -> resolved, ...).
       Values not in the list are ignored and the next rules decide.
    2. **Goal achieved** - ``goal_achieved`` is True -> ``resolved``.
    3. **Survey solved** - ``survey_solved`` ("did we solve your problem?") is True -> ``resolved``.
    4. **Escalation** - an ``agent`` message or an ``event == 'handoff'`` -> ``escalated``.
       (So a handed-off conversation whose goal was then reached counts as resolved; use
       :mod:`metrics.escalation` or ``containment_rate`` to count every human hand-off.)
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
    >>> from metrics.rollup import conversation_rollup
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
    >>> from metrics.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"], "speaker": ["user", "bot", "user", "agent"],
    ...     "text": ["hi", "Anything else?", "refund", "On it"], "goal_achieved": [True, True, None, None],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00"] * 4, utc=True), "row": [1, 2, 3, 4]})
    >>> m["goal_achieved"] = m["goal_achieved"].astype("boolean")
    >>> r = outcome_rates(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-05"))
    >>> r.resolution_rate, r.escalation_rate, r.containment_rate
    (0.5, 0.5, 0.5)
    """
    table = outcome_table(messages, rollup, rules=rules)
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

    Columns: ``period`` (label as in :func:`metrics.volume.conversations_per_period`),
    ``period_start``, ``outcome``, ``conversation_count``, ``share_rate`` (count / the
    period's conversations; NaN for an empty period). Every period x outcome pair is present.
    Empty rollup: empty frame. No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["bot", "user"], "text": ["Hello?", "hi"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-10 10:00"], utc=True), "row": [1, 2]})
    >>> mix = outcome_mix(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-09-01"))
    >>> mix[mix["conversation_count"] > 0][["period", "outcome"]].values.tolist()
    [['2026-W32', 'abandoned'], ['2026-W33', 'unresolved']]
    """
    from metrics.volume import conversation_periods, conversations_per_period

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
        "export end). Outcomes by the precedence of classify_outcomes: explicit outcome field, then "
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


def _closed(f: pd.DataFrame, window_seconds: float) -> pd.Series:
    """Not still open: the silence before the export end is at least the style's window (or unknown)."""
    return ~(f["silence_seconds"] < window_seconds).fillna(False).astype(bool)


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
    >>> from metrics.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "bot"], "text": ["hi", "Hello! Bye."],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01"], utc=True), "row": [1, 2]})
    >>> t = vendor_outcome_table(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-10"))
    >>> t.set_index("style").loc[["Intercom Fin style", "Rasa style"], ["resolved", "abandoned"]].values.tolist()
    [[False, True], [False, True]]
    """
    rules = rules or OutcomeRules()
    for name, value in (("fin_window_hours", fin_window_hours), ("rasa_session_minutes", rasa_session_minutes),
                        ("zendesk_session_hours", zendesk_session_hours)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    flags = ["counted", "resolved", "escalated", "abandoned", "contained"]
    if len(rollup) == 0:
        data = {"style": pd.Series([], dtype="str"), "conversation_id": pd.Series([], dtype="str")}
        data.update({c: pd.Series([], dtype=bool) for c in flags})
        return pd.DataFrame(data)
    f = _facts(messages, rollup, rules)
    ids = f.index
    esc = f["escalated"].astype(bool)
    goal_yes = f["goal"].fillna(False).astype(bool)
    goal_no = (~f["goal"].fillna(True)).astype(bool)
    survey_yes = f["survey"].fillna(False).astype(bool)
    survey_no = (~f["survey"].fillna(True)).astype(bool)
    survey_answered = f["survey"].notna().astype(bool)
    thumbs_up = f["thumbs"].eq("up").fillna(False).astype(bool)
    thumbs_down = f["thumbs"].eq("down").fillna(False).astype(bool)
    user_turns = f["user_turns"]
    styles: dict[str, dict[str, pd.Series]] = {}

    # Chatlens default
    table = outcome_table(messages, rollup, rules=rules).set_index("conversation_id")["outcome"].reindex(ids)
    counted = table.ne("in_progress")
    styles["Chatlens default"] = {"counted": counted, "resolved": table.eq("resolved"),
                                  "escalated": table.eq("escalated"), "abandoned": table.eq("abandoned"),
                                  "contained": counted & ~esc}

    # Copilot Studio style
    counted = ((user_turns >= 1) | esc) & _closed(f, rules.timeout_minutes * 60)
    end_reached = goal_yes | survey_answered | f["end_event"].astype(bool)
    resolved = counted & ~esc & (survey_yes | (end_reached & ~survey_answered))
    styles["Copilot Studio style"] = {"counted": counted, "resolved": resolved, "escalated": counted & esc,
                                      "abandoned": counted & ~resolved & ~esc, "contained": counted & ~esc}

    # Intercom Fin style and Zendesk style need message-level signals.
    m = _ordered(messages)
    conv = m["conversation_id"].astype("str")
    is_user = m["speaker"].eq("user").to_numpy(bool)
    is_bot = m["speaker"].eq("bot").to_numpy(bool)
    substantive = is_user & ~m["text"].map(is_small_talk).to_numpy(bool)
    pos = m["_pos"]
    first_sub = pd.Series(np.where(substantive, pos, np.nan)).groupby(conv).transform("min")
    answer = is_bot & (pos.to_numpy() > first_sub.fillna(np.inf).to_numpy())
    last_answer_pos = pd.Series(np.where(answer, pos, np.nan)).groupby(conv).max()
    last_answer_at = m["timestamp"].where(answer).groupby(conv).max()
    answered = last_answer_pos.notna().reindex(ids, fill_value=False).astype(bool)
    after = substantive & (pos.to_numpy() > conv.map(last_answer_pos).fillna(np.inf).to_numpy())
    asked_again = pd.Series(after).groupby(conv).any().reindex(ids, fill_value=False).astype(bool)
    window = pd.Timedelta(hours=float(fin_window_hours))
    returned = pd.Series(False, index=ids)
    if "user_id" in rollup.columns and rollup["started_at"].notna().any():
        r = rollup[["conversation_id", "user_id", "started_at"]].copy()
        r["conversation_id"] = r["conversation_id"].astype("str")
        r = r[r["user_id"].notna() & r["started_at"].notna()].sort_values(
            ["user_id", "started_at", "conversation_id"], kind="stable")
        r["next_start"] = r.groupby("user_id")["started_at"].shift(-1)
        r["answer_at"] = r["conversation_id"].map(last_answer_at)
        back = (r["next_start"] - r["answer_at"]) <= window
        returned = back.fillna(False).astype(bool).set_axis(r["conversation_id"]).reindex(ids, fill_value=False)
    involved = (user_turns >= 1) & (f["bot_turns"] >= 1)
    counted = involved & _closed(f, float(fin_window_hours) * 3600)
    confirmed = survey_yes | thumbs_up
    negative = survey_no | thumbs_down
    assumed = ~asked_again & ~returned & ~negative
    resolved = counted & ~esc & answered & (confirmed | assumed)
    styles["Intercom Fin style"] = {"counted": counted, "resolved": resolved, "escalated": counted & esc,
                                    "abandoned": counted & ~resolved & ~esc, "contained": counted & ~esc}

    # Rasa style
    counted = _closed(f, float(rasa_session_minutes) * 60)
    bot_last = f["last_speaker"].eq("bot").fillna(False).astype(bool)
    styles["Rasa style"] = {"counted": counted, "resolved": counted & goal_yes, "escalated": counted & esc,
                            "abandoned": counted & bot_last, "contained": counted & ~esc}

    # Zendesk style
    counted = (f["bot_turns"] >= 1) & _closed(f, float(zendesk_session_hours) * 3600)
    if "intent" in m.columns:
        fallback = _is_fallback(m["intent"], rules).to_numpy(bool)
        has_intent = m["intent"].notna().to_numpy(bool)
        meaningful = pd.Series(substantive & has_intent & ~fallback).groupby(conv).any()
        meaningful = meaningful.reindex(ids, fill_value=False).astype(bool)
        misunderstood_msg = is_user & fallback
    else:
        meaningful = pd.Series(True, index=ids)
        misunderstood_msg = np.zeros(len(m), dtype=bool)
    events = _col(m, "event", "str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    misunderstood_msg = misunderstood_msg | events.isin(_MISUNDERSTOOD_EVENTS).fillna(False).to_numpy(bool)
    misunderstood = pd.Series(misunderstood_msg).groupby(conv).any().reindex(ids, fill_value=False).astype(bool)
    bot_handled = counted & meaningful & ~esc & ~misunderstood
    resolved = bot_handled & ~(survey_no | goal_no | thumbs_down)
    styles["Zendesk style"] = {"counted": counted, "resolved": resolved, "escalated": counted & esc,
                               "abandoned": counted & ~resolved & ~esc, "contained": bot_handled}

    frames = []
    for style, cols in styles.items():
        part = pd.DataFrame({"style": style, "conversation_id": ids.astype("str")})
        for c in flags:
            part[c] = (cols[c].reindex(ids).fillna(False).astype(bool) & cols["counted"].reindex(ids)
                       .fillna(False).astype(bool)).to_numpy()
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    out["style"] = out["style"].astype("str")
    out["conversation_id"] = out["conversation_id"].astype("str")
    return out


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
    >>> from metrics.rollup import conversation_rollup
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
    table = vendor_outcome_table(messages, rollup, rules=rules, fin_window_hours=fin_window_hours,
                                 rasa_session_minutes=rasa_session_minutes,
                                 zendesk_session_hours=zendesk_session_hours)
    fill = {"timeout": f"{rules.timeout_minutes:g}", "mode": rules.abandonment_mode,
            "fin_hours": f"{fin_window_hours:g}", "rasa_minutes": f"{rasa_session_minutes:g}",
            "zendesk_hours": f"{zendesk_session_hours:g}"}
    rows = []
    for style, text in VENDOR_STYLES.items():
        part = table[table["style"] == style]
        n = int(part["counted"].sum())
        counts = {c: int(part[c].sum()) for c in ("resolved", "escalated", "abandoned", "contained")}
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
    ``confidence`` (:func:`metrics.stats.wilson_interval`), ``small_group`` = fewer than
    ``min_group`` conversations (read the rate with care). Sorted by count, largest first,
    then tag. A group with only in-progress conversations has count 0 and NaN rate/interval.

    Empty rollup: empty frame. ``by`` not in ``('topic', 'intent')`` or ``min_group < 1``
    raise ConfigError; a ``topic`` column or ``intent`` column that the data lacks raises
    InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.rollup import conversation_rollup
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
    >>> from metrics.rollup import conversation_rollup
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
