"""Conversation audits: sampling, reviewer assignment, the rubric and the results of human review.

The guide's "conduct regular conversation audits" step: sample 50-100 conversations a week,
have people score them with a simple rubric, look for patterns ("3 of 5 billing conversations
show the bot is confused"), rotate reviewers and check that they agree. Everything here is
pure (no store, no UI); persistence lives in :mod:`metrics.audit.store`.

Definitions
-----------
Candidate (:func:`audit_candidates`)
    One row per conversation with what sampling needs: its primary intent, topic, channel,
    start, whether it was *escalated* (agent message, handoff event or an explicit escalated
    outcome: :func:`metrics.outcomes.escalation_signal`), its *lowest user-message
    confidence* (``low_confidence`` when below the threshold, default 0.5), its *mean user
    VADER compound* (``negative`` when <= -0.05) and whether it was *queued* for review (the
    Sentiment page's "send to audit", :mod:`metrics.audit.queue`).
Strategies (:func:`sample_conversations`, all seeded with ``random.Random(seed)`` over the
candidates sorted by id, so the same candidates and seed give the same round in any row order)
    ``random``: a simple random sample of ``n``.
    ``stratified``: proportional allocation over the strata of ``stratify_by`` (intent or
    topic; missing values form the stratum ``(none)``): every stratum first gets
    ``min_per_stratum`` (when ``n`` allows; otherwise the largest strata get one each), the rest
    is shared in proportion to what is left of each stratum by largest remainder (ties: the
    larger stratum, then the name), then a random sample within each stratum.
    ``prioritised``: ``round(n * random_share)`` conversations (half up) stay random so a round
    is not only bad cases; the other slots take, in this order, queued conversations, then
    conversations with more problem signals (negative sentiment, escalated, low confidence),
    then the most negative, then the least confident, ties broken at random. Slots the
    flagged conversations cannot fill go to the random share.
Assignment (:func:`assign_reviewers`)
    Conversation ``i`` of the sample goes to reviewer ``i mod R`` (balanced); then
    ``round(overlap_rate * n)`` conversations drawn at random get a second, different
    reviewer (the least loaded so far, ties by list order after the first) so agreement can be
    measured. With a single reviewer there is no overlap.
Rubric (:data:`RUBRIC`)
    Five criteria scored 1-5, each level with an anchor text: ``understood_intent``,
    ``accurate_helpful``, ``tone``, ``edge_cases``, ``overall``. Flags :data:`FLAGS`: a good
    or a bad training example (not both), and "designed limitation, don't penalise".
Results
    Conversation score = mean over the reviewers who scored it (:func:`conversation_scores`).
    A conversation is *low* on a criterion when that score is <= ``low_score`` (default 2).
    Agreement (:func:`rater_agreement`) is Cohen's kappa with **quadratic** weights by default
    (``weights="linear"`` is accepted), computed by ``sklearn.metrics.cohen_kappa_score`` with
    ``labels=[1, 2, 3, 4, 5]`` so distances are on the full 1-5 scale even when a level is
    unused; NaN when undefined (both reviewers always gave the same single score, or fewer than
    2 shared conversations). ``agreement_rate`` = share of identical scores,
    ``adjacent_agreement_rate`` = share within one point. Reviewer bias
    (:func:`reviewer_bias`) = reviewer's mean score - the mean of every score in the round.

Score frames (input of the result functions) have one row per (conversation, reviewer):
``conversation_id``, ``reviewer``, one integer column per criterion in :data:`CRITERIA`, and
optionally ``flags`` (``;``-joined flag names), ``note``, ``saved_at``
(:func:`metrics.audit.store.load_scores` returns exactly this).
"""

from __future__ import annotations

import json
import math
import random
import warnings
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from metrics.errors import ConfigError, InsufficientDataError

__all__ = [
    "CRITERIA",
    "FLAGS",
    "VERDICTS",
    "STRATEGIES",
    "STRATIFY_COLUMNS",
    "SCORE_LEVELS",
    "KAPPA_WEIGHTS",
    "Criterion",
    "RUBRIC",
    "RUBRIC_BY_NAME",
    "FLAG_LABELS",
    "audit_candidates",
    "sample_conversations",
    "assign_reviewers",
    "validate_review",
    "parse_flags",
    "conversation_scores",
    "criterion_means",
    "group_means",
    "problem_patterns",
    "rater_agreement",
    "largest_disagreements",
    "reviewer_bias",
    "training_examples",
    "training_examples_jsonl",
    "AutomatedVsHuman",
    "automated_vs_human",
]

CRITERIA = ("understood_intent", "accurate_helpful", "tone", "edge_cases", "overall")
FLAGS = ("good_example", "bad_example", "designed_limitation")
FLAG_LABELS = {"good_example": "Good training example", "bad_example": "Bad training example",
               "designed_limitation": "Designed limitation, don't penalise"}
VERDICTS = ("yes", "no", "unsure")
STRATEGIES = ("random", "stratified", "prioritised")
STRATIFY_COLUMNS = ("intent", "topic")
SCORE_LEVELS = (1, 2, 3, 4, 5)
KAPPA_WEIGHTS = ("quadratic", "linear")
_NONE = "(none)"


@dataclass(frozen=True)
class Criterion:
    """One rubric criterion: ``name`` (column), ``label``, the reviewer's ``question``,
    ``anchors[k]`` = what a score of ``k + 1`` means, and ``low_phrase`` (how a low score reads
    in a pattern sentence)."""

    name: str
    label: str
    question: str
    anchors: tuple[str, str, str, str, str]
    low_phrase: str

    def anchor(self, score: int) -> str:
        """The anchor text of a 1-5 score."""
        return self.anchors[int(score) - 1]


RUBRIC: tuple[Criterion, ...] = (
    Criterion("understood_intent", "Understood intent", "Does the bot understand the user's intent correctly?",
              ("Misread the user throughout; answered a different question",
               "Mostly misunderstood; the user had to rephrase several times",
               "Understood after a rephrase, or only part of the request",
               "Understood the main request; minor misses",
               "Understood every request the first time"),
              "show the bot is confused"),
    Criterion("accurate_helpful", "Accurate & helpful", "Are the responses accurate and helpful?",
              ("Wrong or harmful information",
               "Mostly unhelpful: generic or off-topic answers",
               "Partly helpful: correct but incomplete",
               "Accurate and helpful, small gaps",
               "Accurate, complete, solved the need"),
              "got inaccurate or unhelpful answers"),
    Criterion("tone", "Tone", "Is the tone appropriate?",
              ("Rude, dismissive or inappropriate",
               "Robotic or repetitive; ignored frustration",
               "Neutral, acceptable",
               "Friendly and clear",
               "Warm, on-brand, empathetic where needed"),
              "had an inappropriate tone"),
    Criterion("edge_cases", "Edge cases", "Does the bot handle edge cases gracefully?",
              ("Broke: loops, dead ends, no way out",
               "Poor recovery: repeated fallbacks, no hand-off offered",
               "Recovered after some friction (or no edge case came up)",
               "Handled well: clear fallback or hand-off",
               "Graceful: clarified, set expectations, offered a human in time"),
              "handled edge cases badly"),
    Criterion("overall", "Overall", "Overall, how good was this conversation for the user?",
              ("Failed the user", "Poor experience", "Acceptable", "Good", "Excellent: a model conversation"),
              "were poor overall"),
)
RUBRIC_BY_NAME = {c.name: c for c in RUBRIC}


# --------------------------------------------------------------------------- helpers

def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
            or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _check_rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _require(frame: pd.DataFrame, columns: Sequence[str], *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InsufficientDataError(f"{what} needs the column(s) {missing} (the frame has {list(frame.columns)!r})")


def _utc(value, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} is not a date or time: {value!r} ({exc})") from None
    if stamp is pd.NaT:
        raise ConfigError(f"{name} is not a date or time: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _str_col(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return frame[column].astype("str")
    return pd.Series(pd.NA, index=frame.index, dtype="str")


# --------------------------------------------------------------------------- candidates

_CANDIDATE_COLUMNS = ["conversation_id", "started_at", "channel", "topic", "intent", "escalated", "min_confidence",
                      "low_confidence", "mean_compound", "negative", "queued", "signal_count"]


def audit_candidates(messages: pd.DataFrame, rollup: pd.DataFrame, *, compound: pd.Series | None = None,
                     queued: Iterable[str] = (), low_confidence: float = 0.5,
                     negative_cutoff: float = -0.05, score_sentiment: bool = True) -> pd.DataFrame:
    """One row per conversation of ``rollup`` with the facts sampling and results need.

    Columns: ``conversation_id`` (str), ``started_at`` (UTC, NaT without timestamps),
    ``channel``, ``topic``, ``intent`` (str, NA when absent; ``intent`` is the primary intent,
    :func:`metrics.outcomes.primary_intent`), ``escalated`` (bool), ``min_confidence`` (lowest
    confidence of the user messages, NaN when none), ``low_confidence`` (bool:
    ``min_confidence < low_confidence``), ``mean_compound`` (mean VADER compound of the user
    messages, NaN when none), ``negative`` (bool: ``mean_compound <= negative_cutoff``),
    ``queued`` (bool: id in ``queued``) and ``signal_count`` (negative + escalated +
    low_confidence, 0-3). Sorted by conversation_id.

    ``compound`` is the per-message compound score aligned with ``messages``' index
    (:func:`metrics.sentiment.score_messages`); when None the user messages are scored here,
    unless ``score_sentiment=False`` (then ``mean_compound`` is NaN and ``negative`` False:
    random and stratified rounds do not need sentiment). Empty rollup: an empty frame with these
    columns. Inputs are not modified.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user", "agent", "user"],
    ...     "text": ["this is awful", "Hi, Sam here", "thanks"], "intent": ["refund", None, "thanks"],
    ...     "confidence": [0.3, None, 0.9], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-03 11:00"], utc=True)})
    >>> c = audit_candidates(m, conversation_rollup(m))
    >>> c[["conversation_id", "escalated", "low_confidence", "negative", "signal_count"]].values.tolist()
    [['a', True, True, True, 3], ['b', False, False, False, 0]]
    """
    _require(rollup, ("conversation_id",), what="audit candidates")
    low_confidence = _check_rate("low_confidence", low_confidence)
    if isinstance(negative_cutoff, bool) or not isinstance(negative_cutoff, (int, float)) \
            or not -1.0 <= float(negative_cutoff) <= 1.0:
        raise ConfigError(f"negative_cutoff must be a number between -1 and 1, got {negative_cutoff!r}")
    ids = rollup["conversation_id"].astype("str").reset_index(drop=True)
    out = pd.DataFrame({"conversation_id": ids})
    if "started_at" in rollup.columns:  # assigned as a Series: to_numpy of tz-aware times would box every value
        out["started_at"] = pd.to_datetime(rollup["started_at"], utc=True).reset_index(drop=True) \
            .astype("datetime64[ns, UTC]")
    else:
        out["started_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    for column in ("channel", "topic"):
        out[column] = _str_col(rollup, column).reset_index(drop=True).astype("str")
    queued_set = {str(q) for q in queued}
    if len(out) == 0:
        return _empty_candidates()
    target = pd.Index(ids, name="conversation_id")
    # User rows located once by position in the rollup (-1: not in the rollup); the per-conversation
    # aggregates below group these positions instead of copying the frame's user rows and re-keying by id.
    is_user = messages["speaker"].eq("user").fillna(False).to_numpy(bool) if len(messages) else np.zeros(0, bool)
    n_users = int(is_user.sum())
    user_pos = target.get_indexer(messages["conversation_id"][is_user].astype("str")) if n_users \
        else np.zeros(0, np.intp)
    # primary intent (outcomes' definition when available)
    intent = pd.Series(pd.NA, index=target, dtype="str")
    if "intent" in messages.columns and n_users:
        try:
            from metrics.outcomes import primary_intent
            found = primary_intent(messages)
        except ImportError:  # pragma: no cover - outcomes is part of the project
            users = messages[is_user]
            found = users[users["intent"].notna()].groupby("conversation_id")["intent"].first()
        intent = found.reindex(target).astype("str")
    out["intent"] = intent.reset_index(drop=True).astype("str")
    escalated = _escalated(messages, rollup)
    escalated = escalated if escalated.index.equals(target) else escalated.reindex(target)
    out["escalated"] = escalated.fillna(False).astype(bool).to_numpy()
    if "confidence" in messages.columns and n_users:
        conf = pd.to_numeric(messages["confidence"][is_user], errors="coerce").to_numpy(dtype="float64")
        out["min_confidence"] = _by_position(conf, user_pos, len(out), "min")
    else:
        out["min_confidence"] = np.nan
    out["low_confidence"] = (out["min_confidence"] < low_confidence).fillna(False).astype(bool)
    if n_users and (compound is not None or score_sentiment):
        user_index = messages.index[is_user]
        if compound is None:
            from metrics.sentiment import score_messages
            user_compound = score_messages(messages[is_user])  # on the user rows' index, in their order
        else:
            if not isinstance(compound, pd.Series):
                raise ConfigError("compound must be a pandas Series aligned with messages, "
                                  f"got {type(compound).__name__}")
            # the usual input is already the user rows' scores in order: no reindex needed then
            aligned = compound if compound.index.equals(user_index) else compound.reindex(user_index)
            user_compound = pd.to_numeric(aligned, errors="coerce")
        out["mean_compound"] = _by_position(user_compound.to_numpy(dtype="float64"), user_pos, len(out), "mean")
    else:
        out["mean_compound"] = np.nan
    out["negative"] = (out["mean_compound"] <= float(negative_cutoff)).fillna(False).astype(bool)
    out["queued"] = out["conversation_id"].isin(queued_set).astype(bool)
    out["signal_count"] = (out["negative"].astype(int) + out["escalated"].astype(int)
                           + out["low_confidence"].astype(int)).astype("int64")
    return out.sort_values("conversation_id", kind="stable").reset_index(drop=True)[_CANDIDATE_COLUMNS]


def _by_position(values: np.ndarray, positions: np.ndarray, size: int, how: str) -> np.ndarray:
    """``how`` ('min' | 'mean', NaN skipped) of ``values`` per rollup position; NaN where none."""
    keep = positions >= 0
    agg = pd.Series(values[keep]).groupby(positions[keep]).agg(how)
    out = np.full(size, np.nan)
    out[agg.index.to_numpy()] = agg.to_numpy(dtype="float64")
    return out


def _empty_candidates() -> pd.DataFrame:
    return pd.DataFrame({
        "conversation_id": pd.Series([], dtype="str"),
        "started_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        "channel": pd.Series([], dtype="str"), "topic": pd.Series([], dtype="str"),
        "intent": pd.Series([], dtype="str"), "escalated": pd.Series([], dtype=bool),
        "min_confidence": pd.Series([], dtype="float64"), "low_confidence": pd.Series([], dtype=bool),
        "mean_compound": pd.Series([], dtype="float64"), "negative": pd.Series([], dtype=bool),
        "queued": pd.Series([], dtype=bool), "signal_count": pd.Series([], dtype="int64")})


def _escalated(messages: pd.DataFrame, rollup: pd.DataFrame) -> pd.Series:
    ids = pd.Index(rollup["conversation_id"].astype("str"), name="conversation_id")
    if {"has_agent", "handoff_event"} <= set(rollup.columns):
        try:
            from metrics.outcomes import escalation_signal
            return escalation_signal(messages, rollup)
        except ImportError:  # pragma: no cover
            pass
        flag = rollup["has_agent"].astype(bool) | rollup["handoff_event"].astype(bool)
        return pd.Series(flag.to_numpy(bool), index=ids)
    if "has_agent" in rollup.columns:
        return pd.Series(rollup["has_agent"].astype(bool).to_numpy(), index=ids)
    return pd.Series(False, index=ids)


# --------------------------------------------------------------------------- sampling

_SAMPLE_COLUMNS = ["position", "conversation_id", "reason"]


def _empty_sample() -> pd.DataFrame:
    return pd.DataFrame({"position": pd.Series([], dtype="int64"), "conversation_id": pd.Series([], dtype="str"),
                         "reason": pd.Series([], dtype="str")})


def _allocate(sizes: dict[str, int], n: int, minimum: int) -> dict[str, int]:
    """Proportional allocation of ``n`` over strata (see the module docstring)."""
    order = sorted(sizes, key=lambda s: (-sizes[s], s))
    base = {s: 0 for s in sizes}
    wanted = sum(min(minimum, sizes[s]) for s in order)
    if wanted <= n:
        for s in order:
            base[s] = min(minimum, sizes[s])
    else:  # not enough for everyone's minimum: the largest strata get one each
        for s in order[:n]:
            base[s] = 1
    left = n - sum(base.values())
    capacity = {s: sizes[s] - base[s] for s in order}
    total = sum(capacity.values())
    if left <= 0 or total == 0:
        return base
    quotas = {s: left * capacity[s] / total for s in order}
    extra = {s: int(math.floor(quotas[s])) for s in order}
    rest = left - sum(extra.values())
    by_remainder = sorted(order, key=lambda s: (-(quotas[s] - extra[s]), -sizes[s], s))
    for s in by_remainder[:rest]:
        extra[s] += 1
    return {s: base[s] + extra[s] for s in order}


def sample_conversations(candidates: pd.DataFrame, *, n: int = 50, strategy: str = "random", seed: int = 0,
                         stratify_by: str = "intent", random_share: float = 0.2, min_per_stratum: int = 1,
                         start=None, end=None) -> pd.DataFrame:
    """Draw an audit round from :func:`audit_candidates` (strategies in the module docstring).

    ``start``/``end`` (dates or timestamps, inclusive days, UTC) keep the conversations that
    started in that range (conversations without a start are dropped when a range is given).
    Returns columns ``position`` (1-based review order), ``conversation_id`` and ``reason``
    (why it was picked: ``random``, ``intent = billing``, ``queued: most negative``,
    ``negative sentiment, escalated`` ...), ``min(n, candidates)`` rows. The prioritised round
    lists its priority picks first, then the random share; the others are in random order.
    No candidate (after the date range): an empty frame with these columns.

    ``ConfigError`` for an unknown strategy or ``stratify_by``, ``n < 1``, a share outside
    [0, 1] or a non-integer seed; ``InsufficientDataError`` when stratifying by a column the
    candidates do not have.

    Examples
    --------
    >>> c = pd.DataFrame({"conversation_id": ["a", "b", "c", "d"], "intent": ["x", "x", "y", "y"]})
    >>> s = sample_conversations(c, n=2, strategy="stratified", seed=1)
    >>> sorted(s["reason"].tolist())
    ['intent = x', 'intent = y']
    >>> sample_conversations(c, n=3, seed=7).equals(sample_conversations(c.iloc[::-1], n=3, seed=7))
    True
    """
    _require(candidates, ("conversation_id",), what="sampling")
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    random_share = _check_rate("random_share", random_share)
    min_per_stratum = _check_int("min_per_stratum", min_per_stratum, 0)
    pool = candidates.copy()
    pool["conversation_id"] = pool["conversation_id"].astype("str")
    pool = pool.drop_duplicates("conversation_id").sort_values("conversation_id", kind="stable")
    if start is not None or end is not None:
        if "started_at" not in pool.columns:
            raise InsufficientDataError("a date range needs conversation start times (started_at)")
        started = pd.to_datetime(pool["started_at"], utc=True)
        keep = started.notna()
        if start is not None:
            keep &= started >= _utc(start, "start")
        if end is not None:
            stop = _utc(end, "end")
            if stop == stop.normalize():  # a date: the whole day is included
                keep &= started < stop + pd.Timedelta(days=1)
            else:
                keep &= started <= stop
        pool = pool[keep.to_numpy()]
    pool = pool.reset_index(drop=True)
    if len(pool) == 0:
        return _empty_sample()
    rng = random.Random(seed)
    ids = pool["conversation_id"].tolist()
    take = min(n, len(ids))
    if strategy == "random":
        picked = rng.sample(ids, take)
        reasons = ["random"] * take
    elif strategy == "stratified":
        if stratify_by not in STRATIFY_COLUMNS:
            raise ConfigError(f"stratify_by must be one of {STRATIFY_COLUMNS}, got {stratify_by!r}")
        _require(pool, (stratify_by,), what=f"stratified sampling by {stratify_by}")
        strata = pool[stratify_by].astype("str").fillna(_NONE).tolist()
        members: dict[str, list[str]] = {}
        for cid, stratum in zip(ids, strata):
            members.setdefault(stratum, []).append(cid)
        counts = _allocate({s: len(v) for s, v in members.items()}, take, min_per_stratum)
        chosen = []
        for stratum in sorted(members):
            for cid in rng.sample(members[stratum], counts[stratum]):
                chosen.append((cid, f"{stratify_by} = {stratum}"))
        rng.shuffle(chosen)
        picked = [c for c, _ in chosen]
        reasons = [r for _, r in chosen]
    else:
        picked, reasons = _prioritised(pool, take, random_share, rng)
    return pd.DataFrame({"position": np.arange(1, len(picked) + 1, dtype="int64"),
                         "conversation_id": pd.array(picked, dtype="str"),
                         "reason": pd.array(reasons, dtype="str")})


def _prioritised(pool: pd.DataFrame, take: int, random_share: float, rng: random.Random):
    n_random = min(take, _half_up(take * random_share))
    n_priority = take - n_random
    work = pool.copy()
    for column, default in (("queued", False), ("negative", False), ("escalated", False),
                            ("low_confidence", False)):
        if column not in work.columns:
            work[column] = default
        work[column] = work[column].fillna(default).astype(bool)
    for column in ("mean_compound", "min_confidence"):
        if column not in work.columns:
            work[column] = np.nan
    work["signals"] = work["negative"].astype(int) + work["escalated"].astype(int) + work["low_confidence"].astype(int)
    work["tiebreak"] = [rng.random() for _ in range(len(work))]  # drawn in id order: reproducible
    flagged = work[work["queued"] | work["signals"].gt(0)].copy()
    flagged["not_queued"] = ~flagged["queued"]
    flagged["neg_signals"] = -flagged["signals"]
    flagged["compound_key"] = flagged["mean_compound"].fillna(np.inf)
    flagged["confidence_key"] = flagged["min_confidence"].fillna(np.inf)
    flagged = flagged.sort_values(["not_queued", "neg_signals", "compound_key", "confidence_key", "tiebreak"],
                                  kind="stable")
    first = flagged.head(n_priority)
    picked = first["conversation_id"].tolist()
    reasons = [_priority_reason(row) for row in first.itertuples(index=False)]
    chosen = set(picked)  # built once (not once per candidate)
    rest = [c for c in work["conversation_id"].tolist() if c not in chosen]
    n_rest = take - len(picked)
    randoms = rng.sample(rest, min(n_rest, len(rest)))
    picked += randoms
    reasons += ["random share"] * len(randoms)
    return picked, reasons


def _priority_reason(row) -> str:
    parts = []
    if getattr(row, "queued", False):
        parts.append("queued for review")
    if getattr(row, "negative", False):
        parts.append("negative sentiment")
    if getattr(row, "escalated", False):
        parts.append("escalated")
    if getattr(row, "low_confidence", False):
        parts.append("low confidence")
    return ", ".join(parts)


# --------------------------------------------------------------------------- assignment

def assign_reviewers(conversation_ids: Sequence[str], reviewers: Sequence[str], *, overlap_rate: float = 0.2,
                     seed: int = 0) -> pd.DataFrame:
    """Who reviews what: columns ``conversation_id``, ``reviewer``, ``role`` (``first``/``second``).

    Every conversation gets one reviewer, in turn (balanced, in the order given);
    ``round(overlap_rate * len(conversation_ids))`` conversations drawn with
    ``random.Random(seed)`` get a second, different reviewer (definition in the module
    docstring). Rows are in sample order, first before second. Empty ids: empty frame.
    ``ConfigError`` without reviewers, for a blank reviewer name, a rate outside [0, 1] or
    repeated conversation ids.

    Examples
    --------
    >>> a = assign_reviewers(["c1", "c2", "c3", "c4"], ["ann", "ben"], overlap_rate=0.5, seed=3)
    >>> a.groupby("reviewer").size().tolist(), int((a["role"] == "second").sum())
    ([3, 3], 2)
    """
    overlap_rate = _check_rate("overlap_rate", overlap_rate)
    seed = _check_int("seed", seed, 0)
    names = []
    for r in reviewers:
        if not isinstance(r, str) or not r.strip():
            raise ConfigError(f"reviewer names must be non-empty strings, got {r!r}")
        if r.strip() not in names:
            names.append(r.strip())
    if not names:
        raise ConfigError(f"a round needs at least one reviewer, got {list(reviewers)!r}")
    ids = [str(c) for c in conversation_ids]
    if len(set(ids)) != len(ids):
        dup = next(c for c in ids if ids.count(c) > 1)
        raise ConfigError(f"conversation ids must be unique in a round, {dup!r} is repeated")
    load = {r: 0 for r in names}
    first = []
    for i, cid in enumerate(ids):
        reviewer = names[i % len(names)]
        first.append(reviewer)
        load[reviewer] += 1
    second: dict[int, str] = {}
    if len(names) >= 2 and ids:
        rng = random.Random(seed)
        n_overlap = min(len(ids), _half_up(len(ids) * overlap_rate))
        for i in sorted(rng.sample(range(len(ids)), n_overlap)):
            start = names.index(first[i])
            others = [names[(start + j) % len(names)] for j in range(1, len(names))]
            pick = min(others, key=lambda r: (load[r], others.index(r)))
            second[i] = pick
            load[pick] += 1
    rows = []
    for i, cid in enumerate(ids):
        rows.append((cid, first[i], "first"))
        if i in second:
            rows.append((cid, second[i], "second"))
    return pd.DataFrame({"conversation_id": pd.array([r[0] for r in rows], dtype="str"),
                         "reviewer": pd.array([r[1] for r in rows], dtype="str"),
                         "role": pd.array([r[2] for r in rows], dtype="str")})


# --------------------------------------------------------------------------- one review

def parse_flags(flags) -> tuple[str, ...]:
    """Flags as a tuple in :data:`FLAGS` order from a list or a ``;``-joined string.

    ``ConfigError`` for an unknown flag or for good and bad example together.

    Examples
    --------
    >>> parse_flags("designed_limitation;good_example")
    ('good_example', 'designed_limitation')
    >>> parse_flags(None)
    ()
    """
    if flags is None or (not isinstance(flags, (str, list, tuple, set, frozenset)) and pd.isna(flags)):
        return ()
    items = [f for f in flags.split(";")] if isinstance(flags, str) else list(flags)
    items = {str(f).strip() for f in items if str(f).strip()}
    unknown = sorted(items - set(FLAGS))
    if unknown:
        raise ConfigError(f"unknown flag(s) {unknown!r}; flags are {FLAGS}")
    if {"good_example", "bad_example"} <= items:
        raise ConfigError("a conversation cannot be both a good and a bad training example "
                          "(got flags good_example and bad_example)")
    return tuple(f for f in FLAGS if f in items)


def validate_review(scores: Mapping[str, object], *, flags=(), note: str | None = "",
                    labels: Sequence[Mapping[str, object]] = ()) -> tuple[dict, tuple, str, list[dict]]:
    """Check one review and return it normalised: ``(scores, flags, note, labels)``.

    ``scores`` must give every criterion of :data:`CRITERIA` an integer 1-5 (numpy integers
    and integral floats are accepted). ``flags``: see :func:`parse_flags`. ``note``: any text
    (None is ""). ``labels``: one mapping per user message with ``message_key``, ``verdict``
    (``yes``/``no``/``unsure``; None means unanswered and the label is dropped), optional
    ``true_intent`` (kept only for ``no``; stripped, "" is None), ``predicted_intent`` and
    ``conversation_id``. A repeated ``message_key`` keeps the last. ``ConfigError`` names
    the first bad value.

    Examples
    --------
    >>> s, f, n, lab = validate_review({c: 4 for c in CRITERIA}, flags=["good_example"],
    ...     labels=[{"message_key": "m1", "verdict": "no", "true_intent": " billing "}])
    >>> s["tone"], f, lab[0]["true_intent"]
    (4, ('good_example',), 'billing')
    """
    if not isinstance(scores, Mapping):
        raise ConfigError(f"scores must be a mapping criterion -> 1-5, got {type(scores).__name__}")
    missing = [c for c in CRITERIA if scores.get(c) is None]
    if missing:
        raise ConfigError(f"every criterion needs a score from 1 to 5; missing: {missing}")
    unknown = [c for c in scores if c not in CRITERIA]
    if unknown:
        raise ConfigError(f"unknown criteria {unknown!r}; the rubric has {CRITERIA}")
    clean = {}
    for c in CRITERIA:
        value = scores[c]
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= 5:
            raise ConfigError(f"score {c!r} must be an integer from 1 to 5, got {value!r}")
        clean[c] = int(value)
    flag_tuple = parse_flags(flags)
    if note is None or (not isinstance(note, str) and pd.isna(note)):
        note = ""
    if not isinstance(note, str):
        raise ConfigError(f"note must be text, got {note!r}")
    out_labels: dict[str, dict] = {}
    for label in labels:
        key = label.get("message_key")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"each intent label needs a message_key, got {key!r}")
        verdict = label.get("verdict")
        if verdict is None:
            continue
        if verdict not in VERDICTS:
            raise ConfigError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        true_intent = label.get("true_intent")
        if true_intent is not None and not isinstance(true_intent, str):
            true_intent = None if pd.isna(true_intent) else str(true_intent)
        true_intent = (true_intent or "").strip() or None
        predicted = label.get("predicted_intent")
        predicted = None if predicted is None or (not isinstance(predicted, str) and pd.isna(predicted)) \
            else str(predicted)
        out_labels[key] = {"message_key": key, "verdict": verdict,
                           "true_intent": true_intent if verdict == "no" else None,
                           "predicted_intent": predicted,
                           "conversation_id": None if label.get("conversation_id") is None
                           else str(label.get("conversation_id"))}
    return clean, flag_tuple, note, list(out_labels.values())


# --------------------------------------------------------------------------- results

def _scores_frame(scores: pd.DataFrame, *, what: str) -> pd.DataFrame:
    _require(scores, ("conversation_id", "reviewer") + CRITERIA, what=what)
    work = scores.copy()
    work["conversation_id"] = work["conversation_id"].astype("str")
    work["reviewer"] = work["reviewer"].astype("str")
    for c in CRITERIA:
        work[c] = pd.to_numeric(work[c], errors="coerce").astype("float64")
        bad = work[c][(work[c] < 1) | (work[c] > 5)]
        if len(bad):
            raise ConfigError(f"scores must be between 1 and 5; {c!r} has {bad.iloc[0]!r}")
    return work


def conversation_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score per conversation over its reviewers.

    Columns ``conversation_id``, ``reviewer_count`` and one float column per criterion,
    sorted by conversation_id. Empty scores: empty frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "a"], "reviewer": ["x", "y"],
    ...     **{c: [2, 3] for c in CRITERIA}})
    >>> conversation_scores(s)[["reviewer_count", "tone"]].values.tolist()
    [[2.0, 2.5]]
    """
    work = _scores_frame(scores, what="conversation scores")
    g = work.groupby("conversation_id", sort=True)
    out = g[list(CRITERIA)].mean()
    out.insert(0, "reviewer_count", g["reviewer"].nunique().astype("int64"))
    out = out.reset_index()
    out["conversation_id"] = out["conversation_id"].astype("str")
    return out


def criterion_means(scores: pd.DataFrame, *, low_score: int = 2) -> pd.DataFrame:
    """Per criterion: ``criterion``, ``label``, ``mean_score`` (mean of the conversation scores),
    ``conversation_count``, ``low_count`` (conversations scored <= ``low_score``) and
    ``low_rate``; lowest mean first (ties: rubric order). Empty scores: NaN means, zero counts.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "b"], "reviewer": ["x", "x"],
    ...     "understood_intent": [1, 3], "accurate_helpful": [4, 4], "tone": [5, 5], "edge_cases": [3, 3],
    ...     "overall": [2, 4]})
    >>> criterion_means(s)[["criterion", "mean_score", "low_count"]].values.tolist()[0]
    ['understood_intent', 2.0, 1]
    """
    low_score = _check_int("low_score", low_score, 1, 5)
    conv = conversation_scores(scores)
    rows = []
    for order, c in enumerate(CRITERIA):
        values = conv[c].dropna()
        low = int((values <= low_score).sum())
        rows.append({"criterion": c, "label": RUBRIC_BY_NAME[c].label,
                     "mean_score": float(values.mean()) if len(values) else math.nan,
                     "conversation_count": int(len(values)), "low_count": low,
                     "low_rate": low / len(values) if len(values) else math.nan, "_order": order})
    out = pd.DataFrame(rows).sort_values(["mean_score", "_order"], kind="stable", na_position="last")
    return out.drop(columns="_order").reset_index(drop=True).astype(
        {"criterion": "str", "label": "str", "conversation_count": "int64", "low_count": "int64"})


def group_means(scores: pd.DataFrame, attributes: pd.DataFrame, *, by: str = "intent",
                sort_by: str = "overall") -> pd.DataFrame:
    """Mean conversation score per group of ``by`` (a column of ``attributes``: intent, topic, channel ...).

    ``attributes`` has ``conversation_id`` and ``by`` (e.g. :func:`audit_candidates`);
    conversations without a value form the group ``(none)``. Columns: ``by``,
    ``conversation_count`` and one mean column per criterion, sorted by ``sort_by`` (a
    criterion) ascending, so the weakest groups come first (ties: more conversations, then
    the name). Empty scores: empty frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "b", "c"], "reviewer": ["x"] * 3,
    ...     **{c: [2, 4, 5] for c in CRITERIA}})
    >>> attrs = pd.DataFrame({"conversation_id": ["a", "b", "c"], "intent": ["billing", "billing", "greet"]})
    >>> group_means(s, attrs)[["intent", "conversation_count", "overall"]].values.tolist()
    [['billing', 2, 3.0], ['greet', 1, 5.0]]
    """
    if sort_by not in CRITERIA:
        raise ConfigError(f"sort_by must be one of {CRITERIA}, got {sort_by!r}")
    _require(attributes, ("conversation_id", by), what=f"scores by {by}")
    conv = conversation_scores(scores)
    attrs = attributes[["conversation_id", by]].copy()
    attrs["conversation_id"] = attrs["conversation_id"].astype("str")
    attrs = attrs.drop_duplicates("conversation_id")
    merged = conv.merge(attrs, on="conversation_id", how="left")
    merged[by] = merged[by].astype("str").fillna(_NONE)
    g = merged.groupby(by, sort=True)
    out = g[list(CRITERIA)].mean()
    out.insert(0, "conversation_count", g.size().astype("int64"))
    out = out.reset_index()
    out["_neg_count"] = -out["conversation_count"]
    out = out.sort_values([sort_by, "_neg_count", by], kind="stable").drop(columns="_neg_count")
    out[by] = out[by].astype("str")
    return out.reset_index(drop=True)


def problem_patterns(scores: pd.DataFrame, attributes: pd.DataFrame, *,
                     by: Sequence[str] = ("intent", "topic", "channel"), low_score: int = 2,
                     min_conversations: int = 2, min_rate: float = 0.5) -> pd.DataFrame:
    """The seed's "3 of 5 billing conversations show the bot is confused", as rows and sentences.

    For each column of ``by`` present in ``attributes``, each group with at least
    ``min_conversations`` scored conversations and each criterion: ``low_count`` = its
    conversations whose score (mean over reviewers) is <= ``low_score``. Rows with
    ``low_count >= 1`` and ``low_rate >= min_rate`` are kept. Columns ``dimension``, ``group``,
    ``criterion``, ``low_count``, ``conversation_count``, ``low_rate``, ``sentence``; highest
    rate first (then more low conversations, then dimension, group, rubric order). Missing
    group values are skipped. No pattern: an empty frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": list("abcde"), "reviewer": ["x"] * 5,
    ...     "understood_intent": [1, 2, 2, 4, 5], "accurate_helpful": [4] * 5, "tone": [4] * 5,
    ...     "edge_cases": [4] * 5, "overall": [4] * 5})
    >>> attrs = pd.DataFrame({"conversation_id": list("abcde"), "intent": ["billing"] * 5})
    >>> problem_patterns(s, attrs)["sentence"].tolist()
    ['3 of 5 billing conversations show the bot is confused (understood intent scored 2 or lower).']
    """
    low_score = _check_int("low_score", low_score, 1, 5)
    min_conversations = _check_int("min_conversations", min_conversations, 1)
    min_rate = _check_rate("min_rate", min_rate)
    columns = ["dimension", "group", "criterion", "low_count", "conversation_count", "low_rate", "sentence"]
    _require(attributes, ("conversation_id",), what="problem patterns")
    conv = conversation_scores(scores)
    attrs = attributes.copy()
    attrs["conversation_id"] = attrs["conversation_id"].astype("str")
    attrs = attrs.drop_duplicates("conversation_id")
    rows = []
    for dimension in by:
        if dimension not in attrs.columns:
            continue
        merged = conv.merge(attrs[["conversation_id", dimension]], on="conversation_id", how="inner")
        merged = merged[merged[dimension].notna()]
        for group, part in merged.groupby(merged[dimension].astype("str"), sort=True):
            total = len(part)
            if total < min_conversations:
                continue
            for order, c in enumerate(CRITERIA):
                low = int((part[c] <= low_score).sum())
                rate = low / total
                if low >= 1 and rate >= min_rate:
                    rows.append({"dimension": dimension, "group": group, "criterion": c, "low_count": low,
                                 "conversation_count": total, "low_rate": rate, "_order": order,
                                 "sentence": _sentence(dimension, group, c, low, total, low_score)})
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in zip(
            columns, ["str", "str", "str", "int64", "int64", "float64", "str"])})
    out = pd.DataFrame(rows)
    out["_neg_rate"], out["_neg_low"] = -out["low_rate"], -out["low_count"]
    out = out.sort_values(["_neg_rate", "_neg_low", "dimension", "group", "_order"], kind="stable")
    return out[columns].reset_index(drop=True).astype({"dimension": "str", "group": "str", "criterion": "str",
                                                       "sentence": "str"})


def _sentence(dimension: str, group: str, criterion: str, low: int, total: int, low_score: int) -> str:
    crit = RUBRIC_BY_NAME[criterion]
    subject = f"conversations on {group}" if dimension == "channel" else f"{group} conversations"
    return (f"{low} of {total} {subject} {crit.low_phrase} "
            f"({crit.label.lower().replace('&', 'and')} scored {low_score} or lower).")


def _pair_frame(work: pd.DataFrame) -> pd.DataFrame:
    """One row per (conversation, reviewer_a < reviewer_b) with both reviewers' scores."""
    latest = work.drop_duplicates(["conversation_id", "reviewer"], keep="last")
    a = latest.rename(columns={"reviewer": "reviewer_a", **{c: f"{c}_a" for c in CRITERIA}})
    b = latest.rename(columns={"reviewer": "reviewer_b", **{c: f"{c}_b" for c in CRITERIA}})
    cols_a = ["conversation_id", "reviewer_a"] + [f"{c}_a" for c in CRITERIA]
    cols_b = ["conversation_id", "reviewer_b"] + [f"{c}_b" for c in CRITERIA]
    pairs = a[cols_a].merge(b[cols_b], on="conversation_id")
    return pairs[pairs["reviewer_a"] < pairs["reviewer_b"]].reset_index(drop=True)


def rater_agreement(scores: pd.DataFrame, *, weights: str = "quadratic") -> pd.DataFrame:
    """Inter-rater agreement per reviewer pair and criterion, on the conversations both scored.

    Columns: ``reviewer_a``, ``reviewer_b`` (a < b), ``criterion``, ``pair_count`` (shared
    conversations), ``kappa`` (weighted Cohen's kappa, ``sklearn.metrics.cohen_kappa_score``
    with ``labels=[1..5]`` and ``weights`` = ``"quadratic"`` (default) or ``"linear"``; NaN when
    undefined or with fewer than 2 shared conversations), ``agreement_rate`` (identical
    scores / pair_count) and ``adjacent_agreement_rate`` (within one point). Sorted by pair
    then rubric order. No overlap: an empty frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"], "reviewer": ["x", "y", "x", "y"],
    ...     **{c: [1, 1, 5, 5] for c in CRITERIA}})
    >>> r = rater_agreement(s)
    >>> float(r.loc[0, "kappa"]), float(r.loc[0, "agreement_rate"])
    (1.0, 1.0)
    """
    from sklearn.metrics import cohen_kappa_score

    if weights not in KAPPA_WEIGHTS:
        raise ConfigError(f"weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")
    work = _scores_frame(scores, what="rater agreement")
    pairs = _pair_frame(work)
    rows = []
    for (ra, rb), part in pairs.groupby(["reviewer_a", "reviewer_b"], sort=True):
        for c in CRITERIA:
            both = part[[f"{c}_a", f"{c}_b"]].dropna()
            x = both[f"{c}_a"].astype(int).to_numpy()
            y = both[f"{c}_b"].astype(int).to_numpy()
            count = len(both)
            kappa = math.nan
            if count >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    kappa = float(cohen_kappa_score(x, y, labels=list(SCORE_LEVELS), weights=weights))
                if not np.isfinite(kappa):
                    kappa = math.nan
            diff = np.abs(x - y)
            rows.append({"reviewer_a": ra, "reviewer_b": rb, "criterion": c, "pair_count": count, "kappa": kappa,
                         "agreement_rate": float((diff == 0).mean()) if count else math.nan,
                         "adjacent_agreement_rate": float((diff <= 1).mean()) if count else math.nan})
    columns = ["reviewer_a", "reviewer_b", "criterion", "pair_count", "kappa", "agreement_rate",
               "adjacent_agreement_rate"]
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in zip(
            columns, ["str", "str", "str", "int64", "float64", "float64", "float64"])})
    return pd.DataFrame(rows)[columns].astype({"reviewer_a": "str", "reviewer_b": "str", "criterion": "str",
                                               "pair_count": "int64"})


def largest_disagreements(scores: pd.DataFrame, *, limit: int = 20, min_gap: int = 2) -> pd.DataFrame:
    """The score gaps worth a calibration discussion.

    One row per (conversation, reviewer pair, criterion) with ``gap = |score_a - score_b| >=
    min_gap``: ``conversation_id``, ``criterion``, ``reviewer_a``, ``score_a``, ``reviewer_b``,
    ``score_b``, ``gap``, plus ``note_a``/``note_b`` when the scores have a ``note``. Largest
    gap first (then conversation, pair, rubric order), at most ``limit`` rows. None: an empty
    frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "a"], "reviewer": ["x", "y"],
    ...     "understood_intent": [1, 5], "accurate_helpful": [3, 4], "tone": [3, 3], "edge_cases": [3, 3],
    ...     "overall": [2, 4]})
    >>> largest_disagreements(s)[["criterion", "gap"]].values.tolist()
    [['understood_intent', 4], ['overall', 2]]
    """
    limit = _check_int("limit", limit, 1)
    min_gap = _check_int("min_gap", min_gap, 0, 4)
    work = _scores_frame(scores, what="disagreements")
    has_note = "note" in work.columns
    pairs = _pair_frame(work)
    notes = {}
    if has_note:
        notes = {(c, r): n for c, r, n in zip(work["conversation_id"], work["reviewer"], work["note"].astype("str"))}
    rows = []
    for row in pairs.to_dict("records"):
        for order, c in enumerate(CRITERIA):
            a, b = row[f"{c}_a"], row[f"{c}_b"]
            if pd.isna(a) or pd.isna(b):
                continue
            gap = int(abs(a - b))
            if gap >= min_gap:
                item = {"conversation_id": row["conversation_id"], "criterion": c, "reviewer_a": row["reviewer_a"],
                        "score_a": int(a), "reviewer_b": row["reviewer_b"], "score_b": int(b), "gap": gap,
                        "_order": order}
                if has_note:
                    item["note_a"] = notes.get((row["conversation_id"], row["reviewer_a"]))
                    item["note_b"] = notes.get((row["conversation_id"], row["reviewer_b"]))
                rows.append(item)
    columns = ["conversation_id", "criterion", "reviewer_a", "score_a", "reviewer_b", "score_b", "gap"] \
        + (["note_a", "note_b"] if has_note else [])
    if not rows:
        types = ["str", "str", "str", "int64", "str", "int64", "int64", "str", "str"]
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in zip(columns, types)})
    out = pd.DataFrame(rows)
    out["_neg_gap"] = -out["gap"]
    out = out.sort_values(["_neg_gap", "conversation_id", "reviewer_a", "reviewer_b", "_order"], kind="stable")
    out = out[columns].head(limit).reset_index(drop=True)
    return out.astype({c: "str" for c in columns if c in ("conversation_id", "criterion", "reviewer_a",
                                                          "reviewer_b", "note_a", "note_b")})


def reviewer_bias(scores: pd.DataFrame) -> pd.DataFrame:
    """Each reviewer's mean against the overall mean (the reason the guide asks to rotate reviewers).

    Columns: ``reviewer``, ``conversation_count``, ``mean_score`` (mean of all their criterion
    scores), ``bias`` = ``mean_score`` - mean of every criterion score in ``scores``, and
    ``<criterion>_bias`` = their mean on the criterion - everyone's mean on it. Harshest
    (most negative bias) first, ties by name. A single reviewer has bias 0. Empty scores: an
    empty frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "a"], "reviewer": ["x", "y"], **{c: [2, 4] for c in CRITERIA}})
    >>> reviewer_bias(s)[["reviewer", "mean_score", "bias"]].values.tolist()
    [['x', 2.0, -1.0], ['y', 4.0, 1.0]]
    """
    work = _scores_frame(scores, what="reviewer bias")
    columns = ["reviewer", "conversation_count", "mean_score", "bias"] + [f"{c}_bias" for c in CRITERIA]
    if len(work) == 0:
        return pd.DataFrame({c: pd.Series([], dtype="str" if c == "reviewer" else
                                          ("int64" if c == "conversation_count" else "float64")) for c in columns})
    values = work[list(CRITERIA)].to_numpy(dtype="float64")
    overall = float(np.nanmean(values))
    per_criterion = work[list(CRITERIA)].mean()
    g = work.groupby("reviewer", sort=True)
    out = pd.DataFrame({"reviewer": list(g.groups)})
    out["conversation_count"] = g["conversation_id"].nunique().to_numpy().astype("int64")
    out["mean_score"] = [float(np.nanmean(part[list(CRITERIA)].to_numpy(dtype="float64"))) for _, part in g]
    out["bias"] = out["mean_score"] - overall
    means = g[list(CRITERIA)].mean()
    for c in CRITERIA:
        out[f"{c}_bias"] = (means[c] - per_criterion[c]).to_numpy()
    out = out.sort_values(["bias", "reviewer"], kind="stable").reset_index(drop=True)
    return out[columns].astype({"reviewer": "str"})


def training_examples(scores: pd.DataFrame) -> pd.DataFrame:
    """The conversations reviewers flagged as good or bad training examples.

    Columns ``conversation_id``, ``example`` (``good``/``bad``), ``reviewer``, ``overall``,
    ``designed_limitation`` (bool), ``note``, ``saved_at`` (str, "" when absent); sorted by
    example (bad first), then conversation and reviewer. Needs a ``flags`` column
    (``;``-joined or lists). None flagged: an empty frame with these columns.

    Examples
    --------
    >>> s = pd.DataFrame({"conversation_id": ["a", "b"], "reviewer": ["x", "x"], "flags": ["good_example", ""],
    ...     "note": ["crisp", ""], **{c: [5, 3] for c in CRITERIA}})
    >>> training_examples(s)[["conversation_id", "example", "note"]].values.tolist()
    [['a', 'good', 'crisp']]
    """
    work = _scores_frame(scores, what="training examples")
    _require(work, ("flags",), what="training examples")
    rows = []
    for rec in work.to_dict("records"):
        flags = parse_flags(rec.get("flags"))
        for flag, label in (("good_example", "good"), ("bad_example", "bad")):
            if flag in flags:
                note = rec.get("note")
                saved = rec.get("saved_at")
                rows.append({"conversation_id": rec["conversation_id"], "example": label, "reviewer": rec["reviewer"],
                             "overall": rec["overall"], "designed_limitation": "designed_limitation" in flags,
                             "note": "" if note is None or (not isinstance(note, str) and pd.isna(note)) else str(note),
                             "saved_at": "" if saved is None or (not isinstance(saved, str) and pd.isna(saved))
                             else str(saved)})
    columns = ["conversation_id", "example", "reviewer", "overall", "designed_limitation", "note", "saved_at"]
    if not rows:
        types = ["str", "str", "str", "float64", "bool", "str", "str"]
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in zip(columns, types)})
    out = pd.DataFrame(rows)[columns].sort_values(["example", "conversation_id", "reviewer"], kind="stable")
    return out.reset_index(drop=True).astype({"conversation_id": "str", "example": "str", "reviewer": "str",
                                              "note": "str", "saved_at": "str", "overall": "float64"})


def training_examples_jsonl(examples: pd.DataFrame, messages: pd.DataFrame) -> bytes:
    """JSON Lines for the flagged examples: one object per :func:`training_examples` row.

    Keys: ``conversation_id``, ``example``, ``reviewer``, ``overall``, ``designed_limitation``,
    ``note``, ``messages`` (the transcript in order: ``speaker``, ``text`` and, when present,
    ``intent``, ``confidence``, ``timestamp`` as ISO 8601). UTF-8, one line per example, no
    trailing newline when empty (``b""``). Text is written as data, never interpreted.

    Examples
    --------
    >>> ex = pd.DataFrame({"conversation_id": ["a"], "example": ["good"], "reviewer": ["x"], "overall": [5.0],
    ...     "designed_limitation": [False], "note": [""], "saved_at": [""]})
    >>> m = pd.DataFrame({"conversation_id": ["a"], "speaker": ["user"], "text": ["hi"], "row": [1]})
    >>> json.loads(training_examples_jsonl(ex, m))["messages"]
    [{'speaker': 'user', 'text': 'hi'}]
    """
    _require(examples, ("conversation_id", "example"), what="training example export")
    _require(messages, ("conversation_id", "speaker", "text"), what="training example export")
    by_conv = {}
    order_cols = [c for c in ("timestamp", "row") if c in messages.columns]
    ordered = messages.sort_values(["conversation_id"] + order_cols, kind="stable") if len(messages) else messages
    wanted = set(examples["conversation_id"].astype("str"))
    for cid, part in ordered[ordered["conversation_id"].astype("str").isin(wanted)].groupby(
            ordered["conversation_id"].astype("str"), sort=False):
        transcript = []
        for rec in part.to_dict("records"):
            item = {"speaker": _plain(rec.get("speaker")), "text": _plain(rec.get("text"))}
            for key in ("intent", "confidence"):
                if key in rec and not _missing(rec[key]):
                    item[key] = float(rec[key]) if key == "confidence" else str(rec[key])
            if "timestamp" in rec and not _missing(rec["timestamp"]):
                item["timestamp"] = pd.Timestamp(rec["timestamp"]).isoformat()
            transcript.append(item)
        by_conv[cid] = transcript
    lines = []
    for rec in examples.to_dict("records"):
        cid = str(rec["conversation_id"])
        obj = {"conversation_id": cid, "example": str(rec["example"]),
               "reviewer": _plain(rec.get("reviewer")),
               "overall": None if _missing(rec.get("overall")) else float(rec["overall"]),
               "designed_limitation": bool(rec.get("designed_limitation", False)),
               "note": _plain(rec.get("note")), "messages": by_conv.get(cid, [])}
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "\n".join(lines).encode("utf-8")


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value) -> str:
    return "" if _missing(value) else str(value)


@dataclass(frozen=True)
class AutomatedVsHuman:
    """How often the automated judgement disagrees with the reviewers.

    ``table``: one row per scored conversation: ``conversation_id``, ``automated_outcome``,
    ``human_overall`` (mean over reviewers), ``outcome_disagrees`` (boolean, NA when not
    comparable), ``mean_compound`` (VADER, user messages), ``vader_label``, ``human_tone``,
    ``sentiment_disagrees`` (boolean, NA when not comparable). ``outcome_compared_count``
    conversations had a comparable outcome, ``outcome_disagreement_count`` of them disagreed;
    ``outcome_disagreement_rate`` = count / compared (NaN when nothing is comparable); the
    same for sentiment. ``outcome_source`` names where the automated outcome came from.
    """

    table: pd.DataFrame
    outcome_compared_count: int
    outcome_disagreement_count: int
    outcome_disagreement_rate: float
    sentiment_compared_count: int
    sentiment_disagreement_count: int
    sentiment_disagreement_rate: float
    outcome_source: str


def automated_vs_human(scores: pd.DataFrame, messages: pd.DataFrame, rollup: pd.DataFrame, *,
                       compound: pd.Series | None = None, good_score: int = 4, poor_score: int = 2,
                       negative_cutoff: float = -0.05, positive_cutoff: float = 0.05,
                       export_end=None) -> AutomatedVsHuman:
    """Compare the automated outcome and VADER with the reviewers' overall and tone scores.

    Automated outcome: :func:`metrics.outcomes.classify_outcomes` (``export_end`` is passed
    to its rules; give the unfiltered dataset's end), or, if that module cannot be imported,
    ``escalated`` when the rollup's ``has_agent`` is True else ``contained``. Automated
    success = ``resolved`` (or ``contained``); automated failure = ``escalated``, ``abandoned``
    or ``unresolved``; ``in_progress`` is not compared. Human success = mean overall >=
    ``good_score``, failure = <= ``poor_score``; a score in between is not compared. The
    outcome **disagrees** when one side says success and the other failure.

    Sentiment: VADER label of the mean user compound (``positive`` >= ``positive_cutoff``,
    ``negative`` <= ``negative_cutoff``) against the mean tone score (>= ``good_score``
    positive, <= ``poor_score`` negative). It **disagrees** when one is positive and the
    other negative; neutral on either side is not compared. ``compound`` is the per-message
    score aligned with ``messages`` (scored here when None). Inputs are not modified.
    No score: an empty table and NaN rates.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "bot"], "row": [1, 2],
    ...     "text": ["I love this, thanks", "Glad to help"], "goal_achieved": [True, True],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01"], utc=True)})
    >>> s = pd.DataFrame({"conversation_id": ["a"], "reviewer": ["x"], **{c: [1] for c in CRITERIA}})
    >>> r = automated_vs_human(s, m, conversation_rollup(m))
    >>> r.outcome_disagreement_rate, r.sentiment_disagreement_rate
    (1.0, 1.0)
    """
    good_score = _check_int("good_score", good_score, 1, 5)
    poor_score = _check_int("poor_score", poor_score, 1, 5)
    if poor_score >= good_score:
        raise ConfigError(f"poor_score must be below good_score (got poor_score={poor_score}, good_score={good_score})")
    conv = conversation_scores(scores)
    ids = conv["conversation_id"]
    source = "classify_outcomes"
    try:
        from metrics.outcomes import OutcomeRules, classify_outcomes
        rules = OutcomeRules(export_end=export_end) if export_end is not None else None
        outcome = classify_outcomes(messages, rollup, rules=rules) if len(rollup) else pd.Series([], dtype="str")
    except ImportError:  # pragma: no cover - exercised only without metrics.outcomes
        source = "has_agent"
        flag = rollup["has_agent"].astype(bool).to_numpy() if "has_agent" in rollup.columns else False
        outcome = pd.Series(np.where(flag, "escalated", "contained"),
                            index=rollup["conversation_id"].astype("str"), dtype="str")
    automated = outcome.reindex(ids.to_numpy()).astype("str").to_numpy()
    users = messages[messages["speaker"].eq("user").fillna(False).astype(bool)
                     & messages["conversation_id"].astype("str").isin(set(ids))] if len(messages) else messages
    if len(users):
        if compound is None:
            from metrics.sentiment import score_messages
            user_compound = score_messages(users)
        else:
            user_compound = pd.to_numeric(compound.reindex(users.index), errors="coerce")
        mean_compound = user_compound.groupby(users["conversation_id"].astype("str")).mean()
    else:
        mean_compound = pd.Series([], dtype="float64")
    table = pd.DataFrame({"conversation_id": ids.to_numpy(), "automated_outcome": automated,
                          "human_overall": conv["overall"].to_numpy(),
                          "mean_compound": mean_compound.reindex(ids.to_numpy()).to_numpy(dtype="float64"),
                          "human_tone": conv["tone"].to_numpy()})
    auto_ok = table["automated_outcome"].isin(["resolved", "contained"])
    auto_bad = table["automated_outcome"].isin(["escalated", "abandoned", "unresolved"])
    human_ok = table["human_overall"] >= good_score
    human_bad = table["human_overall"] <= poor_score
    comparable = (auto_ok | auto_bad) & (human_ok | human_bad)
    table["outcome_disagrees"] = pd.array(np.where(comparable, (auto_ok & human_bad) | (auto_bad & human_ok), False),
                                          dtype="boolean")
    table.loc[~comparable, "outcome_disagrees"] = pd.NA
    mc = table["mean_compound"]
    label = np.where(mc >= positive_cutoff, "positive", np.where(mc <= negative_cutoff, "negative", "neutral"))
    table["vader_label"] = pd.array(np.where(mc.isna(), None, label), dtype="str")
    v_pos, v_neg = table["vader_label"].eq("positive").fillna(False), table["vader_label"].eq("negative").fillna(False)
    t_pos, t_neg = table["human_tone"] >= good_score, table["human_tone"] <= poor_score
    s_comp = (v_pos | v_neg) & (t_pos | t_neg)
    table["sentiment_disagrees"] = pd.array(np.where(s_comp, (v_pos & t_neg) | (v_neg & t_pos), False),
                                            dtype="boolean")
    table.loc[~s_comp.to_numpy(bool), "sentiment_disagrees"] = pd.NA
    table = table[["conversation_id", "automated_outcome", "human_overall", "outcome_disagrees", "mean_compound",
                   "vader_label", "human_tone", "sentiment_disagrees"]].astype(
        {"conversation_id": "str", "automated_outcome": "str"})
    oc, od = int(comparable.sum()), int(table["outcome_disagrees"].fillna(False).sum())
    sc, sd = int(s_comp.sum()), int(table["sentiment_disagrees"].fillna(False).sum())
    return AutomatedVsHuman(table=table, outcome_compared_count=oc, outcome_disagreement_count=od,
                            outcome_disagreement_rate=od / oc if oc else math.nan,
                            sentiment_compared_count=sc, sentiment_disagreement_count=sd,
                            sentiment_disagreement_rate=sd / sc if sc else math.nan, outcome_source=source)
