"""The Chatlens transcript format: one row per message.

Every metric in :mod:`metrics` takes a frame in this format (a *validated*
frame, as returned by :func:`metrics.io.loaders.load_bytes` or
:func:`metrics.io.schema.normalize`). The columns are listed in :data:`COLUMNS`;
only ``conversation_id``, ``timestamp``, ``speaker`` and ``text`` are always
present, the optional ones exist only when the source had them.

Conventions of a validated frame
--------------------------------
* ``timestamp`` is ``datetime64[ns, UTC]``; it is all-NaT when the source had
  no timestamps (``has_timestamps(frame)`` is then False).
* ``speaker`` is one of :data:`SPEAKERS`.
* string columns hold ``str`` or missing (``NA``); ids are always strings.
* ``confidence`` is a float in [0, 1] or NaN.
* boolean fields (``is_test``, ``goal_achieved``, ``survey_solved``,
  ``converted``) are pandas nullable ``boolean``.
* ``rating`` is a float in [1, 5] or NaN; ``conversion_value`` a float.
* rows are sorted by (conversation_id, timestamp, original order) and the
  index is a fresh RangeIndex; ``row`` holds the 1-based data row in the
  source file, so any message can be traced back to its file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Column",
    "COLUMNS",
    "REQUIRED",
    "MESSAGE_FIELDS",
    "CONVERSATION_FIELDS",
    "SPEAKERS",
    "SPEAKER_SYNONYMS",
    "COLUMN_SYNONYMS",
    "canonical_name",
    "normalize_speaker",
    "has_timestamps",
    "empty_frame",
]

SPEAKERS = ("user", "bot", "agent", "system")

#: Lower-cased source value -> canonical speaker.
SPEAKER_SYNONYMS: dict[str, str] = {
    "user": "user", "customer": "user", "visitor": "user", "human": "user",
    "client": "user", "end_user": "user", "enduser": "user", "contact": "user",
    "lead": "user", "participant": "user", "guest": "user", "inbound": "user",
    "bot": "bot", "assistant": "bot", "ai": "bot", "chatbot": "bot",
    "virtual_agent": "bot", "virtualagent": "bot", "ai_agent": "bot", "model": "bot",
    "agent": "agent", "operator": "agent", "human_agent": "agent", "staff": "agent",
    "admin": "agent", "support": "agent", "representative": "agent", "rep": "agent",
    "live_agent": "agent", "teammate": "agent",
    "system": "system", "event": "system", "notification": "system",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "id" | "str" | "datetime" | "speaker" | "float" | "bool" | "rating"
    level: str  # "message" | "conversation"
    description: str
    synonyms: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("conversation_id", "id", "message",
           "Groups messages into one conversation (session, chat, thread).",
           ("session_id", "sessionid", "chat_id", "chatid", "thread_id", "threadid", "sender_id",
            "conversation", "conversationid", "dialog_id", "dialogue_id", "conv_id", "ticket_id")),
    Column("timestamp", "datetime", "message",
           "When the message was sent; ISO 8601 (with or without offset), epoch seconds or ms. "
           "Stored in UTC; naive values are read in the chosen time zone.",
           ("created_at", "createdat", "time", "date", "datetime", "ts", "sent_at", "created",
            "message_time", "request_time", "event_time")),
    Column("speaker", "speaker", "message",
           "Who wrote it: user | bot | agent | system (synonyms such as customer, assistant, "
           "operator are mapped).",
           ("role", "author", "sender", "from", "sender_type", "author_type", "speaker_type",
            "participant", "actor", "source")),
    Column("text", "str", "message", "The message text, kept verbatim.",
           ("message", "content", "body", "utterance", "sentence", "msg", "message_text",
            "text_message", "query", "question")),
    Column("message_id", "id", "message", "Unique id of the message; used to de-duplicate re-uploads.",
           ("msg_id", "messageid", "tweet_id", "event_id", "activity_id")),
    Column("user_id", "id", "message", "The end user; used for repeat-user metrics.",
           ("userid", "customer_id", "visitor_id", "contact_id", "author_id", "client_id")),
    Column("channel", "str", "message", "Where the conversation happened (web, whatsapp, ...).",
           ("platform", "medium", "source_channel", "channel_id")),
    Column("intent", "str", "message", "The bot's predicted intent for a user message.",
           ("predicted_intent", "intent_name", "predicted_node", "predicted_label", "nlu_intent",
            "top_intent", "prediction")),
    Column("confidence", "float", "message",
           "The NLU confidence of ``intent`` in [0, 1]; 0-100 is scaled with a notice.",
           ("score", "intent_confidence", "predicted_node_score", "confidence_score",
            "intent_score", "probability")),
    Column("true_intent", "str", "message", "A human label of the user's real intent.",
           ("label", "gold_intent", "actual_intent", "true_label", "expected_intent",
            "labelled_intent", "labeled_intent")),
    Column("event", "str", "message",
           "A named event: a funnel stage, 'handoff', 'survey', 'goal' ...",
           ("event_name", "event_type", "type")),
    Column("model_version", "str", "message", "The NLU/bot model that answered (for A/B).",
           ("model", "version", "release", "bot_version", "model_id")),
    Column("is_test", "bool", "message", "True for test or bot-to-bot traffic; excluded at load.",
           ("test", "is_test_conversation", "test_traffic")),
    Column("outcome", "str", "conversation",
           "Explicit outcome: resolved | escalated | abandoned | unresolved | in_progress | ...",
           ("resolution", "status", "result", "conversation_outcome")),
    Column("goal_achieved", "bool", "conversation", "The conversation reached its goal.",
           ("goal", "success", "completed", "goal_completed")),
    Column("escalation_reason", "str", "conversation", "Why it was handed to a human.",
           ("handoff_reason", "escalation_code", "reason")),
    Column("rating", "rating", "conversation", "Post-conversation rating, 1-5 stars.",
           ("csat", "stars", "satisfaction", "score_rating", "user_rating")),
    Column("thumbs", "str", "conversation", "Thumbs rating: up | down.",
           ("thumb", "feedback", "thumbs_rating")),
    Column("survey_solved", "bool", "conversation", "Answer to 'Did we solve your problem?'.",
           ("solved", "problem_solved", "resolved_survey", "did_we_solve")),
    Column("topic", "str", "conversation", "Conversation type: inquiry | complaint | request | ...",
           ("category", "conversation_type", "tag")),
    Column("converted", "bool", "conversation", "The lead/user converted downstream.",
           ("conversion", "is_converted", "purchased")),
    Column("conversion_value", "float", "conversation", "Value of the conversion (currency).",
           ("revenue", "value", "order_value", "deal_value")),
    Column("segment", "str", "conversation", "A customer segment.", ("customer_segment", "tier")),
    Column("utm_source", "str", "conversation", "Campaign source.", ("source_utm", "utmsource")),
    Column("utm_campaign", "str", "conversation", "Campaign name.", ("campaign", "utmcampaign")),
)

BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = ("text",)
MESSAGE_FIELDS = tuple(c.name for c in COLUMNS if c.level == "message")
CONVERSATION_FIELDS = tuple(c.name for c in COLUMNS if c.level == "conversation")
ALWAYS_PRESENT = ("conversation_id", "timestamp", "speaker", "text")

_NORMALISE = re.compile(r"[^a-z0-9]+")


def _key(name: str) -> str:
    return _NORMALISE.sub("_", str(name).strip().lower()).strip("_")


#: Normalised source header -> canonical column name.
COLUMN_SYNONYMS: dict[str, str] = {}
for _c in COLUMNS:
    COLUMN_SYNONYMS[_key(_c.name)] = _c.name
    for _s in _c.synonyms:
        COLUMN_SYNONYMS.setdefault(_key(_s), _c.name)


def canonical_name(header: str) -> str | None:
    """Return the canonical column a source header maps to, or None.

    Examples
    --------
    >>> canonical_name("Session ID")
    'conversation_id'
    >>> canonical_name("created_at")
    'timestamp'
    >>> canonical_name("favourite colour") is None
    True
    """
    return COLUMN_SYNONYMS.get(_key(header))


def normalize_speaker(value: object) -> str | None:
    """Map a raw speaker value to ``user|bot|agent|system``; None if unknown.

    Examples
    --------
    >>> normalize_speaker("Customer")
    'user'
    >>> normalize_speaker("human_agent")
    'agent'
    >>> normalize_speaker("robot") is None
    True
    """
    if value is None:
        return None
    return SPEAKER_SYNONYMS.get(_key(value))


def has_timestamps(frame) -> bool:
    """True when the validated frame has at least one real timestamp."""
    return "timestamp" in frame.columns and bool(frame["timestamp"].notna().any())


def empty_frame():
    """A validated frame with no rows and the always-present columns."""
    import pandas as pd

    return pd.DataFrame({
        "conversation_id": pd.Series([], dtype="str"),
        "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
        "speaker": pd.Series([], dtype="str"),
        "text": pd.Series([], dtype="str"),
        "row": pd.Series([], dtype="int64"),
    })
