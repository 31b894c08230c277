"""Knowledge gaps: the user messages the bot did not handle, grouped into gap topics and ranked.

Signals (each a boolean column of :func:`gap_messages`; a user message is a *gap* when any enabled one holds)
----------------------------------------------------------------------------------------------------------
``fallback``
    the predicted ``intent`` is the fallback intent (``fallback_intent``; by default the one
    :func:`metrics.intents.suggest_fallback_intent` finds). A missing prediction counts as the fallback when
    the data has an ``intent`` column (as in :mod:`metrics.intents`).
``low_confidence``
    ``confidence < threshold`` (default :data:`metrics.intents.DEFAULT_THRESHOLD`); a missing confidence
    is never low.
``misunderstood_reply``
    the bot's first reply to the message (before the user's next message) is one of the bot's own
    "I did not understand" templates, learned from the data by :func:`misunderstanding_templates`.
``rephrased``
    the user's next message in the conversation says the same again: the TF-IDF cosine (word and character
    n-grams) of the two texts is at least ``rephrase_similarity`` (0.5); small talk on either side never
    counts. The *first* of the two is flagged: it was not handled.
``escalated_after``
    an agent message or a ``handoff`` event comes after the message and before the user's next one.
``abandoned_after``
    the message is the last user message of a conversation whose outcome is ``abandoned``
    (:func:`metrics.outcomes.outcome_table`). For these two signals the message must ask for something:
    small talk and replies of fewer than :data:`MIN_REQUEST_WORDS` words ("yes please" confirming a
    hand-off) never count.

Templates (:func:`misunderstanding_templates`)
----------------------------------------------
For each distinct bot text (clustering key: case, spaces and digits folded) occurring at least
``template_min_count`` times, over its occurrences: ``after_unhandled_rate`` = the share whose preceding user
message was a fallback or low-confidence one; ``before_rephrase_rate`` = the share after which the user
rephrased that message; ``before_escalation_rate`` = the share followed by an escalation before the user's
next message. It is a template (``reason`` says which) when ``after_unhandled_rate`` or
``before_rephrase_rate`` is at least ``template_min_rate`` (0.5), or when ``before_escalation_rate`` is and
the text also follows unhandled messages at least twice as often as user messages are unhandled overall (a
hand-off the user asked for, "connecting you with our team", is not a misunderstanding).

Gap topics and their rank (:func:`gap_report`)
----------------------------------------------
Gap messages are clustered by :func:`metrics.topics.discover_topics` (small talk kept: a greeting the bot
could not handle is a gap). For each gap topic: ``message_count``, ``conversation_count``,
``escalation_rate`` (share of its messages in conversations with an escalation signal), ``negative_rate``
(share of its messages with negative sentiment), ``impact = 1 + escalation_rate + negative_rate`` and
``score = message_count * impact``; ``rank`` 1 is the highest score (ties: more messages, then smaller id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.errors import ConfigError, InsufficientDataError
from metrics.intents import DEFAULT_THRESHOLD, suggest_fallback_intent
from metrics.outcomes import OutcomeRules, is_small_talk, outcome_table
from metrics.core.rollup import conversation_rollup
from metrics.sentiment import Cutoffs, score_messages
from metrics.topics._discover import TopicModel, TopicOptions, TopicSnapshot, discover_topics
from metrics.topics._text import Featurizer, clustering_key, message_columns, text_hashes

__all__ = ["SIGNALS", "MIN_REQUEST_WORDS", "GapOptions", "GapReport", "gap_messages", "misunderstanding_templates",
           "gap_report"]

SIGNALS = ("fallback", "low_confidence", "misunderstood_reply", "rephrased", "escalated_after", "abandoned_after")
_FIT_TEXTS = 50_000  # distinct texts the rephrase TF-IDF is fitted on
#: Words a message needs for an escalation or abandonment right after it to make it a gap.
MIN_REQUEST_WORDS = 3
_WORD = r"\w+"


@dataclass(frozen=True)
class GapOptions:
    """Options of the gap functions (see the module docstring). ``fallback_intent=None`` means the one the
    data suggests; ``signals`` the signals that make a gap.

    Examples
    --------
    >>> GapOptions(signals=("fallback",)).signals
    ('fallback',)
    >>> GapOptions(threshold=2)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: threshold must be ...
    """

    fallback_intent: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    rephrase_similarity: float = 0.5
    template_min_count: int = 3
    template_min_rate: float = 0.5
    signals: tuple[str, ...] = SIGNALS

    def __post_init__(self):
        if self.fallback_intent is not None and (not isinstance(self.fallback_intent, str)
                                                 or not self.fallback_intent.strip()):
            raise ConfigError(f"fallback_intent must be a non-empty intent name, got {self.fallback_intent!r}")
        for name in ("threshold", "rephrase_similarity", "template_min_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
        if isinstance(self.template_min_count, bool) or not isinstance(self.template_min_count, int) \
                or self.template_min_count < 1:
            raise ConfigError(f"template_min_count must be a whole number >= 1, got {self.template_min_count!r}")
        signals = tuple(self.signals)
        unknown = [s for s in signals if s not in SIGNALS]
        if unknown or not signals:
            raise ConfigError(f"signals must be a non-empty selection of {SIGNALS}, got {self.signals!r}")
        object.__setattr__(self, "signals", signals)


@dataclass(frozen=True)
class GapReport:
    """What :func:`gap_report` found.

    ``messages``: the gap messages (:func:`gap_messages` columns) with their gap ``topic``; ``topics``: the gap
    topics ranked (``rank``, ``topic``, ``label``, ``message_count``, ``conversation_count``,
    ``escalation_rate``, ``negative_rate``, ``impact``, ``score``, ``share_of_gaps``, ``top_signal``, then one
    ``<signal>_count`` column per signal, ``terms``); ``examples``: as :attr:`TopicModel.examples`;
    ``templates``: :func:`misunderstanding_templates`; ``model``: the gap clustering; ``fallback_intent``
    used; ``user_message_count``: user messages looked at.
    """

    messages: pd.DataFrame
    topics: pd.DataFrame
    examples: pd.DataFrame
    templates: pd.DataFrame
    model: TopicModel
    fallback_intent: str
    user_message_count: int = 0
    options: GapOptions = field(default_factory=GapOptions)

    @property
    def empty(self) -> bool:
        return len(self.topics) == 0


# --------------------------------------------------------------------------- turns

def _sorted_frame(messages: pd.DataFrame) -> pd.DataFrame:
    n = len(messages)
    frame = message_columns(messages, "speaker", "intent", "confidence", "event")
    stamps = frame["timestamp"].astype("int64").to_numpy() if n else np.zeros(0, dtype=np.int64)
    stamps = np.where(frame["timestamp"].isna().to_numpy(), np.iinfo(np.int64).max, stamps)
    order = np.lexsort((frame["row"].to_numpy(), stamps, pd.factorize(frame["conversation_id"].fillna(""),
                                                                       sort=True)[0]))
    return frame.iloc[order].reset_index(drop=True)


@dataclass
class _Turns:
    frame: pd.DataFrame          # sorted messages
    users: np.ndarray            # positions of user messages
    boundary: np.ndarray         # per user message: position of the next user message or the conversation end
    next_user: np.ndarray        # per user message: position of the next user message in the conversation, -1
    prev_user: np.ndarray        # per message: position of the last user message before it in the conversation
    reply: np.ndarray            # per user message: position of the first bot reply before the boundary, -1
    escalated_after: np.ndarray  # per user message
    unhandled: np.ndarray        # per user message: fallback or low confidence
    fallback: np.ndarray
    low: np.ndarray


def _turns(messages: pd.DataFrame, options: GapOptions, fallback: str) -> _Turns:
    f = _sorted_frame(messages)
    n = len(f)
    conv = pd.factorize(f["conversation_id"].fillna(""))[0]
    speaker = f["speaker"].to_numpy(dtype=object)
    is_user = speaker == "user"
    users = np.flatnonzero(is_user)
    # conversation end (exclusive) of each position
    change = np.r_[np.flatnonzero(np.diff(conv) != 0) + 1, n]
    conv_end = np.repeat(change, np.diff(np.r_[0, change]))
    nxt = np.r_[users[1:], n] if len(users) else np.zeros(0, dtype=np.int64)
    same = np.zeros(len(users), dtype=bool)
    if len(users):
        same[:-1] = conv[users[1:]] == conv[users[:-1]]
    next_user = np.where(same, nxt, -1)
    boundary = np.where(same, nxt, conv_end[users] if len(users) else np.zeros(0, dtype=np.int64))
    # last user message at or before each position, within the conversation
    last = np.full(n, -1, dtype=np.int64)
    last[users] = users
    last = np.maximum.accumulate(last) if n else last
    prev_user = np.where((last >= 0) & (conv[np.maximum(last, 0)] == conv), last, -1)
    # first bot message at or after each position
    is_bot = speaker == "bot"
    nxt_bot = np.full(n + 1, n, dtype=np.int64)
    for_bot = np.where(is_bot, np.arange(n), n)
    nxt_bot[:n] = np.minimum.accumulate(for_bot[::-1])[::-1] if n else for_bot
    first_bot = nxt_bot[np.minimum(users + 1, n)]
    reply = np.where(first_bot < boundary, first_bot, -1)
    # escalation between the message and the boundary
    events = f["event"].str.strip().str.casefold().eq("handoff").fillna(False).to_numpy(bool)
    esc = (speaker == "agent") | (events & ~is_user)
    cum = np.r_[0, np.cumsum(esc)]
    escalated_after = (cum[boundary] - cum[np.minimum(users + 1, n)]) > 0
    # fallback and low confidence
    intents = f["intent"].iloc[users] if len(users) else f["intent"].iloc[:0]
    has_intents = "intent" in messages.columns and messages["intent"].notna().any()
    fb = (intents.eq(fallback) | intents.isna()).fillna(False).to_numpy(bool) if has_intents \
        else np.zeros(len(users), dtype=bool)
    conf = f["confidence"].to_numpy(dtype=float)[users]
    low = np.nan_to_num(conf, nan=np.inf) < options.threshold
    return _Turns(f, users, boundary, next_user, prev_user, reply, escalated_after, fb | low, fb, low)


def _rephrased(t: _Turns, options: GapOptions, talk: np.ndarray) -> np.ndarray:
    """Per user message: the next user message repeats it (cosine >= rephrase_similarity, no small talk)."""
    out = np.zeros(len(t.users), dtype=bool)
    has_next = (t.next_user >= 0) & ~talk
    if not has_next.any():
        return out
    texts = t.frame["text"]
    next_pos_in_users = np.searchsorted(t.users, t.next_user[has_next])
    ok = ~talk[next_pos_in_users]
    first = t.users[has_next][ok]
    second = t.next_user[has_next][ok]
    if len(first) == 0:
        return out
    a = clustering_key(texts.iloc[first].reset_index(drop=True))
    b = clustering_key(texts.iloc[second].reset_index(drop=True))
    keys = pd.unique(pd.concat([a, b]).dropna())
    codes = {k: i for i, k in enumerate(keys)}
    ia = np.array([codes.get(v, -1) if isinstance(v, str) else -1 for v in a])
    ib = np.array([codes.get(v, -1) if isinstance(v, str) else -1 for v in b])
    valid = (ia >= 0) & (ib >= 0)
    sims = np.zeros(len(ia))
    if len(keys) > 1 and valid.any():
        order = np.argsort(text_hashes(keys), kind="stable")  # fit on a hash sample when there are many
        x = Featurizer().tfidf(keys[order], fit_limit=_FIT_TEXTS)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        sims[valid] = np.asarray(x[rank[ia[valid]]].multiply(x[rank[ib[valid]]]).sum(axis=1)).ravel()
    elif valid.any():
        sims[valid] = (ia[valid] == ib[valid]).astype(float)
    flagged = np.zeros(len(t.users), dtype=bool)
    idx = np.flatnonzero(has_next)[ok]
    flagged[idx] = sims >= options.rephrase_similarity
    return flagged


def _small_talk(texts: pd.Series) -> np.ndarray:
    codes, uniques = pd.factorize(texts)
    talk = np.fromiter((is_small_talk(u) for u in uniques), dtype=bool, count=len(uniques))
    return np.where(codes >= 0, talk[np.maximum(codes, 0)], True)


def _fallback(messages: pd.DataFrame, options: GapOptions) -> str:
    return options.fallback_intent if options.fallback_intent is not None else suggest_fallback_intent(messages)


def _template_table(t: _Turns, options: GapOptions, rephrased: np.ndarray) -> pd.DataFrame:
    f = t.frame
    bots = np.flatnonzero(f["speaker"].to_numpy(dtype=object) == "bot")
    cols = {"bot_text": "str", "count": "int64", "after_unhandled_rate": "float64",
            "before_rephrase_rate": "float64", "before_escalation_rate": "float64", "is_template": "bool",
            "reason": "str"}
    if len(bots) == 0 or len(t.users) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=ty) for c, ty in cols.items()})
    prev = t.prev_user[bots]
    at = np.minimum(np.searchsorted(t.users, np.maximum(prev, 0)), len(t.users) - 1)
    has_prev = prev >= 0
    keys = clustering_key(f["text"].iloc[bots].reset_index(drop=True))
    frame = pd.DataFrame({"key": keys, "text": f["text"].iloc[bots].to_numpy(),
                          "after": has_prev & t.unhandled[at], "rephrase": has_prev & rephrased[at],
                          "escalation": has_prev & t.escalated_after[at]}).dropna(subset=["key"])
    if len(frame) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=ty) for c, ty in cols.items()})
    grouped = frame.groupby("key", sort=True).agg(bot_text=("text", "first"), count=("text", "size"),
                                                   after_unhandled_rate=("after", "mean"),
                                                   before_rephrase_rate=("rephrase", "mean"),
                                                   before_escalation_rate=("escalation", "mean"))
    grouped = grouped[grouped["count"] >= options.template_min_count]
    base = float(t.unhandled.mean()) if len(t.unhandled) else 0.0
    rate = options.template_min_rate
    after = grouped["after_unhandled_rate"] >= rate
    rephrase = grouped["before_rephrase_rate"] >= rate
    escalation = (grouped["before_escalation_rate"] >= rate) & \
        (grouped["after_unhandled_rate"] >= max(2 * base, 1e-9))
    grouped["is_template"] = after | rephrase | escalation
    grouped["reason"] = np.select([after, rephrase, escalation],
                                  ["recurs after unhandled messages", "precedes rephrasing",
                                   "precedes escalation after unhandled messages"], default="")
    grouped = grouped.sort_values(["is_template", "count", "bot_text"], ascending=[False, False, True],
                                  kind="stable").reset_index()
    return grouped[list(cols)].astype(cols)


def misunderstanding_templates(messages: pd.DataFrame, *, options: GapOptions = GapOptions()) -> pd.DataFrame:
    """The bot texts seen at least ``template_min_count`` times, with ``bot_text`` (one spelling), ``count``,
    ``after_unhandled_rate``, ``before_rephrase_rate``, ``before_escalation_rate``, ``is_template`` and
    ``reason`` (see the module docstring); templates first, then by count. No bot message: an empty frame
    with these columns.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a"] * 4 + ["b"] * 4, "row": range(1, 9),
    ...     "speaker": ["user", "bot", "user", "bot"] * 2,
    ...     "text": ["blorp", "Sorry, I did not get that.", "where is my order", "On its way."] * 2,
    ...     "intent": ["nlu_fallback", None, "order_status", None] * 2, "confidence": [0.2, None, 0.9, None] * 2})
    >>> t = misunderstanding_templates(m, options=GapOptions(template_min_count=2))
    >>> t[["bot_text", "is_template"]].values.tolist()
    [['Sorry, I did not get that.', True], ['On its way.', False]]
    """
    return _core(messages, options, None, None)[1]


def _require_text(messages: pd.DataFrame) -> None:
    if "text" not in messages.columns:
        raise InsufficientDataError(f"knowledge gaps need a 'text' column; the data has {list(messages.columns)!r}")


def _message_columns() -> dict:
    return {"conversation_id": "str", "row": "int64", "timestamp": "datetime64[ns, UTC]", "text": "str",
            "intent": "str", "confidence": "float64", **{s: "bool" for s in SIGNALS}, "signals": "str",
            "bot_reply": "str"}


def gap_messages(messages: pd.DataFrame, *, options: GapOptions = GapOptions(),
                 rules: OutcomeRules | None = None, rollup: pd.DataFrame | None = None) -> pd.DataFrame:
    """The user messages the bot did not handle: columns ``conversation_id``, ``row``, ``timestamp``,
    ``text``, ``intent``, ``confidence``, one bool per signal of :data:`SIGNALS` (all computed; only
    ``options.signals`` make a gap), ``signals`` (the holding enabled ones, ", "-joined) and ``bot_reply``
    (the bot's first reply, or missing). Ordered by conversation, time and row. Nothing is modified; empty
    in, empty (typed) out.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a"] * 4, "row": [1, 2, 3, 4], "speaker": ["user", "bot"] * 2,
    ...     "text": ["where is my parcel", "Sorry?", "where is my parcel now", "Here it is."],
    ...     "intent": ["nlu_fallback", None, "order_status", None], "confidence": [0.3, None, 0.95, None]})
    >>> gap_messages(m)[["text", "signals"]].values.tolist()
    [['where is my parcel', 'fallback, low_confidence, rephrased']]
    """
    return _core(messages, options, rules, rollup)[0]


def _core(messages: pd.DataFrame, options: GapOptions, rules, rollup, outcomes=None):
    """(gap messages, templates); ``outcomes``: :func:`outcome_table` of the messages when already known."""
    _require_text(messages)
    cols = _message_columns()
    fallback = _fallback(messages, options) if len(messages) else (options.fallback_intent or "nlu_fallback")
    t = _turns(messages, options, fallback)
    if len(t.users) == 0:
        return (pd.DataFrame({c: pd.Series([], dtype=ty) for c, ty in cols.items()}),
                _template_table(t, options, np.zeros(0, dtype=bool)))
    f = t.frame
    users = t.users
    user_text = f["text"].iloc[users]
    talk = _small_talk(user_text)
    request = ~talk & (user_text.str.count(_WORD).fillna(0).to_numpy() >= MIN_REQUEST_WORDS)
    rephrased = _rephrased(t, options, talk)
    templates = _template_table(t, options, rephrased)
    template_keys = set(clustering_key(templates.loc[templates["is_template"], "bot_text"]).dropna())
    texts = f["text"].to_numpy(dtype=object)
    reply_text = pd.Series(np.where(t.reply >= 0, texts[np.maximum(t.reply, 0)], None), dtype="str")
    misunderstood = clustering_key(reply_text).isin(template_keys).fillna(False).to_numpy(bool)
    abandoned = np.zeros(len(users), dtype=bool)
    if "abandoned_after" in options.signals:
        last_of_conv = t.next_user < 0
        if outcomes is None:
            rollup = conversation_rollup(messages) if rollup is None else rollup
            outcomes = outcome_table(messages, rollup, rules=rules)
        gone = set(outcomes.loc[outcomes["outcome"].eq("abandoned"), "conversation_id"])
        abandoned = last_of_conv & f["conversation_id"].iloc[users].isin(gone).to_numpy(bool)
    flags = {"fallback": t.fallback, "low_confidence": t.low, "misunderstood_reply": misunderstood,
             "rephrased": rephrased, "escalated_after": t.escalated_after & request,
             "abandoned_after": abandoned & request}
    enabled = np.zeros(len(users), dtype=bool)
    for name in options.signals:
        enabled |= flags[name]
    pick = np.flatnonzero(enabled)
    chosen = users[pick]
    out = pd.DataFrame({
        "conversation_id": f["conversation_id"].iloc[chosen].to_numpy(),
        "row": f["row"].iloc[chosen].to_numpy(),
        "timestamp": f["timestamp"].iloc[chosen].to_numpy(),
        "text": f["text"].iloc[chosen].to_numpy(),
        "intent": f["intent"].iloc[chosen].to_numpy(),
        "confidence": f["confidence"].iloc[chosen].to_numpy(),
        **{name: flags[name][pick] for name in SIGNALS},
        "bot_reply": reply_text.iloc[pick].to_numpy(),
    })
    joined = np.full(len(out), "", dtype=object)
    for name in options.signals:
        on = out[name].to_numpy(bool)
        joined[on] = np.where(joined[on] == "", name, joined[on] + ", " + name)
    out["signals"] = pd.Series(joined, index=out.index, dtype="str")
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out[list(cols)].astype(cols), templates


def _gap_topic_options(topic_options: TopicOptions | None) -> TopicOptions:
    base = topic_options if topic_options is not None else TopicOptions(max_topics=20)
    return TopicOptions(**{**{f: getattr(base, f) for f in base.__dataclass_fields__},
                           "unit": "messages", "skip_small_talk": False})


def gap_report(messages: pd.DataFrame, *, options: GapOptions = GapOptions(),
               topic_options: TopicOptions | None = None, previous: TopicSnapshot | None = None,
               merges: dict | None = None, rules: OutcomeRules | None = None, rollup: pd.DataFrame | None = None,
               compound: pd.Series | None = None, cutoffs: Cutoffs = Cutoffs()) -> GapReport:
    """Find the gap messages, cluster them into gap topics and rank those (module docstring).

    ``topic_options`` sets the clustering (its ``unit`` and ``skip_small_talk`` are ignored; by default up to
    20 topics, chosen automatically); ``previous``/``merges`` as for :func:`discover_topics` (gap topics keep
    their ids and names across runs). ``compound``: VADER scores of ``messages`` (Series on its index) when
    already known. Nothing is modified.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4], "speaker": "user",
    ...     "text": ["cancel my gym plan", "cancel gym membership", "order pizza", "where is my order"],
    ...     "intent": ["nlu_fallback", "nlu_fallback", "order", "order"], "confidence": [0.2, 0.3, 0.9, 0.95]})
    >>> r = gap_report(m)
    >>> r.topics[["rank", "message_count"]].values.tolist()
    [[1, 2]]
    """
    _require_text(messages)
    fallback = _fallback(messages, options) if len(messages) else (options.fallback_intent or "nlu_fallback")
    rollup = conversation_rollup(messages) if rollup is None else rollup
    outcomes = outcome_table(messages, rollup, rules=rules)
    gaps, templates = _core(messages, options, rules, rollup, outcomes)
    user_count = int(messages["speaker"].eq("user").sum()) if "speaker" in messages.columns else len(messages)
    frame = gaps[["conversation_id", "row", "timestamp", "text"]].assign(speaker="user")
    model = discover_topics(frame, options=_gap_topic_options(topic_options), previous=previous, merges=merges)
    tagged = gaps.merge(model.assignments[["conversation_id", "row", "topic"]], on=["conversation_id", "row"],
                        how="left")
    tagged["topic"] = tagged["topic"].fillna(-1).astype("int64")
    topics = _rank(model, tagged, messages, outcomes, compound, cutoffs, options)
    return GapReport(messages=tagged, topics=topics, examples=model.examples, templates=templates, model=model,
                     fallback_intent=fallback, user_message_count=user_count, options=options)


def _rank(model: TopicModel, tagged: pd.DataFrame, messages, table, compound, cutoffs,
          options: GapOptions) -> pd.DataFrame:
    cols = {"rank": "int64", "topic": "int64", "label": "str", "message_count": "int64",
            "conversation_count": "int64", "escalation_rate": "float64", "negative_rate": "float64",
            "impact": "float64", "score": "float64", "share_of_gaps": "float64", "top_signal": "str",
            **{f"{s}_count": "int64" for s in SIGNALS}, "terms": "str"}
    if model.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    clustered = tagged[tagged["topic"] >= 0]
    escalated = set(table.loc[table["escalated"], "conversation_id"])
    if compound is not None:
        keyed = pd.DataFrame({"conversation_id": messages["conversation_id"].astype("str").to_numpy(),
                              "row": pd.to_numeric(messages["row"], errors="coerce").to_numpy(),
                              "compound": pd.to_numeric(compound, errors="coerce").to_numpy(dtype=float)})
        scores = clustered[["conversation_id", "row"]].merge(
            keyed.drop_duplicates(["conversation_id", "row"]), on=["conversation_id", "row"], how="left")["compound"]
        scores = scores.to_numpy(dtype=float)
    else:
        scores = score_messages(clustered[["text"]]).to_numpy(dtype=float)
    work = pd.DataFrame({"topic": clustered["topic"].to_numpy(),
                         "conversation_id": clustered["conversation_id"].to_numpy(),
                         "escalated": clustered["conversation_id"].isin(escalated).to_numpy(bool),
                         "negative": scores <= cutoffs.negative,
                         **{s: clustered[s].to_numpy(bool) for s in SIGNALS}})
    g = work.groupby("topic")
    out = pd.DataFrame({"message_count": g.size(), "conversation_count": g["conversation_id"].nunique(),
                        "escalation_rate": g["escalated"].mean(), "negative_rate": g["negative"].mean(),
                        **{f"{s}_count": g[s].sum() for s in SIGNALS}}).reset_index()
    out["impact"] = 1.0 + out["escalation_rate"] + out["negative_rate"]
    out["score"] = out["message_count"] * out["impact"]
    out["share_of_gaps"] = out["message_count"] / max(len(clustered), 1)
    counts = out[[f"{s}_count" for s in options.signals]].to_numpy()
    out["top_signal"] = [options.signals[i] for i in np.argmax(counts, axis=1)]
    labels = model.topics.set_index("topic")
    out["label"] = out["topic"].map(labels["label"])
    out["terms"] = out["topic"].map(labels["terms"])
    out = out.sort_values(["score", "message_count", "topic"], ascending=[False, False, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out[list(cols)].astype(cols).reset_index(drop=True)
