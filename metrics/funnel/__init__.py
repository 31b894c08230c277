"""Funnels: ordered stages, drop-off, segments, downstream conversion and lead quality.

A *funnel* is an ordered list of :class:`Stage` objects. Each stage has a name and a
:class:`Rule` written in the RULE syntax:

=====================  ==================================================================
``event:NAME``         a message whose ``event`` equals NAME (case-insensitive, trimmed)
``intent:NAME``        a message whose predicted ``intent`` *or* ``true_intent`` equals NAME
                       (case-insensitive, trimmed)
``user~REGEX``         a *user* message whose text matches REGEX (searched with RE2, which
                       runs in linear time on any text; case-insensitive; lookarounds and
                       backreferences are not supported)
``bot~REGEX``          a *bot* message whose text matches REGEX (same)
``field:NAME=VALUE``   the conversation has a message whose column NAME equals VALUE
                       (booleans accept true/false/yes/no/1/0; numbers compare as numbers;
                       text case-insensitively), e.g. ``field:converted=true``
=====================  ==================================================================

Order of messages
-----------------
Within a conversation, messages are ordered by ``(timestamp, row)``: equal timestamps are
ordered by their source row, and rows without a timestamp come last. Without any
timestamps the order is the source row order. Call this the *position* of a message.

Reaching a stage (strict mode, the default)
-------------------------------------------
* Stage 0 is reached at the first message that matches it.
* Stage k (k >= 1) is reached at the first message that matches stage k *at or after the
  position where stage k-1 was reached*. The same message may satisfy several consecutive
  stages (one user message giving both an e-mail and a phone reaches both), and a message
  that shares its timestamp with the stage k-1 message counts when its source row is not
  earlier. A match *before* the stage k-1 message does not count (a conversation that gives
  its e-mail before answering the qualification question stops at the qualification stage).
* A ``field:`` stage has no time of its own: it is reached when stage k-1 was reached and
  the conversation has the field value; later stages continue from the position of stage
  k-1. Its reach time is reported as NaT and its ``median_seconds_from_previous`` is NaN.
* Taking the *earliest* match at every step is what maximises the stages reached, so the
  result does not depend on any choice.

Non-strict mode (``strict=False``)
----------------------------------
Stage k is reached when the conversation matches every stage 0..k, in any order. The reach
time of a stage is its own first match, so "seconds from previous" can be negative.

In both modes reaching is prefix-closed, hence stage counts never increase along the funnel.

Per-stage table (:func:`funnel_table`)
--------------------------------------
``conversations``
    Conversations that reached the stage.
``rate_of_entry``
    ``conversations / conversations of stage 0``; NaN when nobody entered.
``step_rate``
    ``conversations / conversations of the previous stage``; for stage 0 it is the share of
    *all* conversations in the data that entered the funnel. NaN on a zero denominator.
``dropped``
    Conversations that reached this stage and not the next one (they *stopped here*); 0 for
    the last stage, since finishing the funnel is not a drop-off.
``median_seconds_from_previous``
    Median over conversations reaching the stage of (reach time - reach time of the previous
    stage) in seconds; NaN for stage 0, for ``field:`` stages and the stage after one, and
    without timestamps.

Contact details
---------------
Views show which stage was reached, never the captured value: texts shown (the last bot
message before a drop-off) are masked by :func:`mask_contact_details`, which is the loader's
redaction (:func:`metrics.io.pii.redact_text`: ``<EMAIL>``, ``<PHONE>``, ``<CARD>``,
``<IBAN>``). The contact *stages* match a raw address or number (:data:`EMAIL_PATTERN`,
:data:`PHONE_PATTERN`: 7 to 15 digits with optional ``+``, spaces, dots, dashes or
parentheses; dates are not phones) or the placeholder that redaction at upload left
(:data:`EMAIL_STAGE_PATTERN`, :data:`PHONE_STAGE_PATTERN`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from metrics.core import memo
from metrics.core.order import conversation_codes, group_starts, row_key, sort_positions, time_key
from metrics.core.periods import period_label
from metrics.errors import ConfigError, InsufficientDataError
from metrics.io import pii
from metrics.io.schema import has_timestamps

__all__ = [
    "RULE_KINDS",
    "RULE_SYNTAX_HELP",
    "EMAIL_PATTERN",
    "PHONE_PATTERN",
    "SEGMENT_COLUMNS",
    "NOT_ENTERED",
    "Rule",
    "Stage",
    "ConversionSummary",
    "DEFAULT_LEAD_FUNNEL",
    "parse_rule",
    "rule_label",
    "parse_stage",
    "parse_stage_lines",
    "stages_to_lines",
    "stages_from_dicts",
    "stages_to_dicts",
    "validate_funnel",
    "reached_stage",
    "funnel_table",
    "dropoff_conversations",
    "last_bot_message_before_dropoff",
    "funnel_by_segment",
    "segment_columns",
    "conversion_by_stage",
    "conversion_summary",
    "lead_quality",
    "mask_contact_details",
    "mask_messages",
    "contact_stage_warning",
    "suggest_stages",
]

RULE_KINDS = ("event", "intent", "user", "bot", "field")
RULE_SYNTAX_HELP = ("use one of event:NAME, intent:NAME, user~REGEX, bot~REGEX, "
                    "field:NAME=VALUE (e.g. event:inquiry, user~@, field:converted=true)")

#: An e-mail address (local part, ``@``, a dotted domain ending in 2+ letters).
#: Possessive runs, so a long run of letters with an ``@`` is read once (linear time), never backtracked.
EMAIL_PATTERN = r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]++@(?:[A-Za-z0-9\-]++\.)+[A-Za-z]{2,}"
#: A phone number: optional ( and +, then 7-15 digits separated by at most two of
#: space . - ( ) between digits; not glued to letters, digits or a preceding @ (a handle
#: such as @115913 is not a phone); dates such as 2024-01-15 or 15.01.2024 and IPv4
#: addresses are not phones; nor is a longer digit run (an order number such as
#: 111-5014070-4118645). A heuristic: 7-15 digit order numbers are masked too (the safe side).
PHONE_PATTERN = (r"(?<![\w+(@])(?<!\d[.\-/])(?!\d{4}-\d{1,2}-\d{1,2}(?!\d))(?!\d{1,2}[./]\d{1,2}[./]\d{2,4}(?!\d))"
                 r"(?!\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d))\(?\+?\(?\d(?:[ .\-()]{0,2}\d){6,14}(?!\w|[.\-/]\d)")

def _trusted_patterns() -> frozenset:
    """The built-in contact-stage patterns (lookarounds RE2 lacks, written to run in linear time)."""
    return frozenset({EMAIL_STAGE_PATTERN, PHONE_STAGE_PATTERN, EMAIL_PATTERN, PHONE_PATTERN,
                      pii.EMAIL_RULE_PATTERN, pii.PHONE_RULE_PATTERN})


def regex_search(texts, pattern: str) -> np.ndarray:
    """Which of ``texts`` contain a match of the user-written ``pattern`` (case-insensitive), as a bool array.

    Rule regexes are written by users, so they run on RE2 (pyarrow's ``match_substring_regex``), whose time
    is linear in the text for any pattern: a catastrophic pattern such as ``(a+)+$`` cannot freeze the
    server. Missing texts never match. :class:`ConfigError` names a pattern RE2 cannot run and how to fix it.
    Chatlens' own contact patterns (:data:`EMAIL_STAGE_PATTERN`, :data:`PHONE_STAGE_PATTERN` and
    :mod:`metrics.io.pii`'s rule patterns) use lookarounds RE2 lacks; they are written to run in linear time on
    Python's ``re`` (checked by ``tests/metrics/io/test_regex_linear.py``) and run there.

    Examples
    --------
    >>> regex_search(["Price?", "no", None], r"\\bprice\\b").tolist()
    [True, False, False]
    >>> regex_search(["a" * 100_000 + "!"], r"(a+)+$").tolist()
    [False]
    >>> regex_search([""], r"(?<=x)y")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: invalid regex '(?<=x)y' ...
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = [t if isinstance(t, str) else None for t in texts]
    if pattern in _trusted_patterns():  # Chatlens' own contact patterns: Python re, linear (tests/test_regex_linear)
        rx = re.compile(pattern, re.IGNORECASE)
        return np.fromiter((t is not None and rx.search(t) is not None for t in values), dtype=bool,
                           count=len(values))
    try:
        found = pc.match_substring_regex(pa.array(values, type=pa.large_string()), pattern, ignore_case=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConfigError(f"invalid regex {pattern!r} ({str(exc).splitlines()[0]}); fix the pattern: escape "
                          "special characters such as ( [ + * ? with a backslash; lookarounds (?=, (?<=) and "
                          "backreferences (\\1) are not supported") from None
    return found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
#: Columns (plus the derived ISO ``week``) a funnel can be compared by.
SEGMENT_COLUMNS = ("channel", "segment", "utm_source", "utm_campaign", "week")
#: Label of conversations that never reached stage 0 (stage index -1).
NOT_ENTERED = "(not entered)"
_MISSING_SEGMENT = "(none)"
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """How a stage recognises a conversation; see the module docstring for the syntax.

    ``kind`` is one of :data:`RULE_KINDS`; ``name`` is the event / intent / field name;
    ``pattern`` the regex of ``user``/``bot`` rules; ``value`` the value of ``field`` rules.
    Invalid combinations raise :class:`ConfigError` repeating the rule.

    Examples
    --------
    >>> str(Rule("field", name="converted", value="true"))
    'field:converted=true'
    >>> Rule("user", pattern="@").kind
    'user'
    """

    kind: str
    name: str = ""
    pattern: str = ""
    value: str = ""

    def __post_init__(self):
        problem = _rule_problem(self.kind, self.name, self.pattern, self.value)
        if problem:
            raise ConfigError(f"rule {str(self)!r}: {problem}")

    def __str__(self) -> str:
        if self.kind in ("user", "bot"):
            return f"{self.kind}~{self.pattern}"
        if self.kind == "field":
            return f"field:{self.name}={self.value}"
        return f"{self.kind}:{self.name}"

    @property
    def text(self) -> str:
        """The rule in RULE syntax (what :func:`parse_rule` reads back)."""
        return str(self)


def _rule_problem(kind: str, name: str, pattern: str, value: str) -> str | None:
    """What is wrong with these rule parts and how to fix it, or None."""
    if kind not in RULE_KINDS:
        return f"unknown kind {kind!r}; {RULE_SYNTAX_HELP}"
    if kind in ("user", "bot"):
        if not pattern:
            return (f"empty regex; write {kind}~REGEX, e.g. {kind}~@ or "
                    f"{kind}~\\bprice\\b")
        try:
            regex_search([""], pattern)
        except ConfigError as exc:
            return str(exc)
        return None
    if not name.strip():
        example = "field:converted=true" if kind == "field" else f"{kind}:inquiry"
        return f"empty {kind} name; write e.g. {example}"
    if kind == "field" and not value.strip():
        return "empty value; write field:NAME=VALUE, e.g. field:converted=true"
    return None


def _make_rule(text: str, kind: str, name: str = "", pattern: str = "", value: str = "") -> Rule:
    """Build a rule, reporting a problem with the user's original ``text``."""
    problem = _rule_problem(kind, name, pattern, value)
    if problem:
        raise ConfigError(f"rule {text!r}: {problem}")
    return Rule(kind, name=name, pattern=pattern, value=value)


#: Contact stages match the raw value *or* the placeholder left by PII redaction at upload (metrics.io.pii).
EMAIL_STAGE_PATTERN = re.escape(pii.EMAIL_PLACEHOLDER) + "|" + EMAIL_PATTERN
PHONE_STAGE_PATTERN = re.escape(pii.PHONE_PLACEHOLDER) + "|" + PHONE_PATTERN
_PATTERN_LABELS = {EMAIL_PATTERN: "<e-mail address>", PHONE_PATTERN: "<phone number>",
                   EMAIL_STAGE_PATTERN: "<e-mail address>", PHONE_STAGE_PATTERN: "<phone number>"}


def rule_label(rule: Rule) -> str:
    """A short display form of a rule: RULE syntax, with the built-in e-mail and phone
    regexes shown as ``<e-mail address>`` / ``<phone number>`` (display only; not parseable).

    Examples
    --------
    >>> rule_label(DEFAULT_LEAD_FUNNEL[2].rule)
    'user~<e-mail address>'
    >>> rule_label(Rule("event", name="inquiry"))
    'event:inquiry'
    """
    if rule.kind in ("user", "bot") and rule.pattern in _PATTERN_LABELS:
        return f"{rule.kind}~{_PATTERN_LABELS[rule.pattern]}"
    return str(rule)


def parse_rule(text: str) -> Rule:
    """Parse RULE syntax (``event:NAME``, ``intent:NAME``, ``user~REGEX``, ``bot~REGEX``,
    ``field:NAME=VALUE``) into a :class:`Rule`.

    Surrounding whitespace is ignored; names and values are trimmed, regexes are kept as
    written (after the ``~``). Raises :class:`ConfigError` naming the rule and the fix for an
    unknown kind, an empty name or value, or an invalid regex.

    Examples
    --------
    >>> parse_rule("event:inquiry")
    Rule(kind='event', name='inquiry', pattern='', value='')
    >>> parse_rule("field: converted = true").value
    'true'
    >>> parse_rule("user~[a-z]+@").pattern
    '[a-z]+@'
    >>> parse_rule("mood:happy")
    Traceback (most recent call last):
    ...
    metrics.errors.ConfigError: rule 'mood:happy': unknown kind 'mood'; use one of event:NAME, intent:NAME, user~REGEX, bot~REGEX, field:NAME=VALUE (e.g. event:inquiry, user~@, field:converted=true)
    """
    if not isinstance(text, str):
        raise ConfigError(f"rule {text!r}: expected text; {RULE_SYNTAX_HELP}")
    raw = text.strip()
    if not raw:
        raise ConfigError(f"rule {text!r}: empty rule; {RULE_SYNTAX_HELP}")
    tilde, colon = raw.find("~"), raw.find(":")
    if tilde > 0 and (colon < 0 or tilde < colon):
        kind = raw[:tilde].strip().lower()
        if kind in ("user", "bot"):
            return _make_rule(text, kind, pattern=raw[tilde + 1:])
        raise ConfigError(f"rule {text!r}: unknown kind {raw[:tilde].strip()!r} before '~'; only "
                          f"user~REGEX and bot~REGEX use '~'; {RULE_SYNTAX_HELP}")
    if colon > 0:
        kind = raw[:colon].strip().lower()
        rest = raw[colon + 1:].strip()
        if kind in ("event", "intent"):
            return _make_rule(text, kind, name=rest)
        if kind == "field":
            if "=" not in rest:
                raise ConfigError(f"rule {text!r}: missing '='; write field:NAME=VALUE, e.g. "
                                  "field:converted=true")
            name, value = rest.split("=", 1)
            return _make_rule(text, "field", name=name.strip(), value=value.strip())
        if kind in ("user", "bot"):
            raise ConfigError(f"rule {text!r}: text rules use '~', not ':'; write "
                              f"{kind}~{rest or 'REGEX'}")
        raise ConfigError(f"rule {text!r}: unknown kind {raw[:colon].strip()!r}; {RULE_SYNTAX_HELP}")
    raise ConfigError(f"rule {text!r}: no kind given; {RULE_SYNTAX_HELP}")


@dataclass(frozen=True)
class Stage:
    """One funnel stage: a display ``name`` and a :class:`Rule` (or RULE text, parsed).

    Examples
    --------
    >>> Stage("Inquiry", "event:inquiry").rule.kind
    'event'
    >>> Stage("Inquiry", "event:inquiry").as_dict()
    {'name': 'Inquiry', 'rule': 'event:inquiry'}
    """

    name: str
    rule: Rule = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not name:
            raise ConfigError(f"stage name {self.name!r} is empty; give every stage a name, "
                              "e.g. 'email provided'")
        object.__setattr__(self, "name", name)
        rule = self.rule
        if isinstance(rule, str):
            try:
                rule = parse_rule(rule)
            except ConfigError as exc:
                raise ConfigError(f"stage {name!r}: {exc}") from None
        if not isinstance(rule, Rule):
            raise ConfigError(f"stage {name!r}: rule {rule!r} is not a rule; {RULE_SYNTAX_HELP}")
        object.__setattr__(self, "rule", rule)

    def as_dict(self) -> dict:
        """``{"name": ..., "rule": "<RULE syntax>"}`` (the stored form)."""
        return {"name": self.name, "rule": str(self.rule)}


def parse_stage(text: str) -> Stage:
    """Parse ``NAME=RULE`` (as given to ``--stage``) into a :class:`Stage`.

    The name ends at the first ``=``; the rest is the rule, so ``field:`` rules keep their
    own ``=``.

    Examples
    --------
    >>> parse_stage("paid=field:converted=true").as_dict()
    {'name': 'paid', 'rule': 'field:converted=true'}
    """
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"stage {text!r}: expected NAME=RULE, e.g. inquiry=event:inquiry")
    name, rule = text.split("=", 1)
    if not name.strip():
        raise ConfigError(f"stage {text!r}: empty name before '='; write NAME=RULE, e.g. "
                          "inquiry=event:inquiry")
    return Stage(name, rule)


def parse_stage_lines(text: str) -> list[Stage]:
    """Parse one ``NAME=RULE`` per line (blank lines and ``#`` comments skipped) into a
    validated funnel.

    Every bad line is reported at once in one :class:`ConfigError` (``line N: ...``, joined
    with `` | ``), followed by funnel-level problems (no stage, duplicate names).

    Examples
    --------
    >>> [s.name for s in parse_stage_lines("# lead funnel\\ninquiry=event:inquiry\\n\\npaid=field:converted=true")]
    ['inquiry', 'paid']
    >>> parse_stage_lines("a=event:x\\nb=mood:y")
    Traceback (most recent call last):
    ...
    metrics.errors.ConfigError: line 2: stage 'b': rule 'mood:y': unknown kind 'mood'; use one of event:NAME, intent:NAME, user~REGEX, bot~REGEX, field:NAME=VALUE (e.g. event:inquiry, user~@, field:converted=true)
    """
    stages, problems = [], []
    for number, line in enumerate(str(text or "").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            stages.append(parse_stage(line.strip()))
        except ConfigError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        raise ConfigError(" | ".join(problems))
    return _check_stages(stages)


def stages_to_lines(stages) -> str:
    """The inverse of :func:`parse_stage_lines`: one ``NAME=RULE`` per line.

    Examples
    --------
    >>> print(stages_to_lines([Stage("in", "event:inquiry"), Stage("paid", "field:converted=true")]))
    in=event:inquiry
    paid=field:converted=true
    """
    return "\n".join(f"{s.name}={s.rule}" for s in _check_stages(stages))


def stages_from_dicts(items: Iterable[dict]) -> list[Stage]:
    """``[{"name":..., "rule":...}, ...]`` -> stages (raises :class:`ConfigError` on a bad item).

    Examples
    --------
    >>> [s.name for s in stages_from_dicts([{"name": "a", "rule": "event:a"}])]
    ['a']
    """
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item or "rule" not in item:
            raise ConfigError(f"stage {i + 1} {item!r}: expected a dict with 'name' and 'rule'")
        out.append(Stage(str(item["name"]), str(item["rule"])))
    return out


def stages_to_dicts(stages: Sequence[Stage]) -> list[dict]:
    """Stages -> list of ``{"name", "rule"}`` dicts (JSON-ready)."""
    return [s.as_dict() for s in _check_stages(stages)]


#: The lead-generation funnel of the sample data (inquiry -> qualification -> email -> phone).
DEFAULT_LEAD_FUNNEL: tuple[Stage, ...] = (
    Stage("inquiry", Rule("event", name="inquiry")),
    Stage("qualification question answered", Rule("event", name="qualification")),
    Stage("email provided", Rule("user", pattern=EMAIL_STAGE_PATTERN)),
    Stage("phone provided", Rule("user", pattern=PHONE_STAGE_PATTERN)),
)


def _check_stages(stages) -> list[Stage]:
    if isinstance(stages, (str, Stage)):
        stages = [stages]
    try:
        stages = list(stages)
    except TypeError:
        raise ConfigError(f"stages {stages!r}: expected a list of Stage objects") from None
    out = []
    for s in stages:
        if isinstance(s, str):
            s = parse_stage(s)
        if not isinstance(s, Stage):
            raise ConfigError(f"stage {s!r}: expected a Stage (or 'NAME=RULE' text)")
        out.append(s)
    if not out:
        raise ConfigError("the funnel has no stages; add at least one, e.g. inquiry=event:inquiry")
    seen: dict[str, str] = {}
    for s in out:
        key = s.name.casefold()
        if key in seen:
            raise ConfigError(f"duplicate stage name {s.name!r}; stage names must be unique")
        seen[key] = s.name
    return out


# --------------------------------------------------------------------------- matching
# Speed (1M messages): the frame is never copied or re-sorted when it is already in
# (conversation, timestamp, row) order, as validated frames are; columns are read in input
# order and only small per-message arrays are permuted. Text columns are factorised so that
# normalising and regex matching run once per distinct value, not once per message.
@dataclass
class _Prepared:
    """The messages in (conversation, timestamp, row) order - the *position* order - plus
    per-message helpers. Only read, never copied: ``order`` maps a position to the input's
    row number (None when the input is already in position order)."""

    messages: pd.DataFrame       # the input, untouched
    order: np.ndarray | None     # position -> input row number; None = identity
    codes: np.ndarray            # conversation code per position (non-decreasing)
    conversation_ids: np.ndarray  # code -> id (sorted ids)
    start_pos: np.ndarray        # code -> first position
    timestamps: pd.Series        # timestamps by position, datetime64[ns, UTC] (all NaT without)
    _factorized: dict = field(default_factory=dict)  # column -> (codes by position, uniques)

    def column(self, name: str) -> pd.Series:
        """Column ``name`` by position (RangeIndex)."""
        col = self.messages[name]
        if self.order is not None:
            col = col.take(self.order)
        return col.reset_index(drop=True)

    def by_position(self, values: np.ndarray) -> np.ndarray:
        """A per-input-row array reordered by position."""
        return values if self.order is None else values[self.order]

    def input_rows(self, positions: np.ndarray) -> np.ndarray:
        """Input row numbers of these positions."""
        return positions if self.order is None else self.order[positions]

    def factorized(self, name: str) -> tuple[np.ndarray, pd.Index]:
        """``pd.factorize`` of a column (codes by position, -1 = missing), computed once per
        call of a public function (this object lives for one call)."""
        if name not in self._factorized:
            codes, uniques = pd.factorize(self.messages[name])
            self._factorized[name] = (self.by_position(np.asarray(codes, dtype=np.int64)),
                                      pd.Index(uniques))
        return self._factorized[name]

    def equals_normalised(self, name: str, value: str) -> np.ndarray:
        """Per position: the column, stripped and case-folded, equals ``value`` (same)."""
        codes, uniques = self.factorized(name)
        return _lookup(_norm(pd.Series(uniques, dtype=object)).eq(value.strip().casefold())
                       .fillna(False).to_numpy(dtype=bool), codes)


def _lookup(per_unique: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Map a per-unique boolean back to messages through factorize codes (-1 -> False)."""
    return np.append(per_unique.astype(bool), False)[codes]


def _prepare(messages: pd.DataFrame) -> _Prepared:
    for col in ("conversation_id", "speaker", "text"):
        if col not in messages.columns:
            raise InsufficientDataError(f"the messages have no {col!r} column; load them with "
                                        "metrics.io.loaders so they follow the Chatlens format")
    # the position order is computed once per messages frame (metrics.core.memo); this object lives for one call
    order, codes, ids, start, ts_ns = memo.cached("funnel.prepare",
                                                  (memo.only(messages, ("conversation_id", "timestamp", "row")),),
                                                  None, lambda: _positions(messages))
    stamps = pd.Series(np.asarray(ts_ns).view("datetime64[ns]")).dt.tz_localize("UTC")
    return _Prepared(messages, order, codes, ids, start, stamps)


def _positions(messages: pd.DataFrame) -> tuple:
    """(order, codes, conversation ids, start positions, timestamps as int64 ns) of :func:`_prepare`.

    The position order is the conversation order of :mod:`metrics.core.order` (conversation id, timestamp
    with NaT last, row, input order), built from its keys. One difference, kept from the funnel's first
    version: a message without a conversation id belongs to a conversation named ``"nan"`` (it is counted)
    instead of being left out. Loaded frames never lack an id (the loader refuses such rows).
    """
    codes, ids = conversation_codes(messages["conversation_id"].astype("str").fillna("nan"))
    if "timestamp" in messages.columns:  # parsed as in the funnel's reach times (naive means UTC)
        ts = pd.to_datetime(messages["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    else:
        ts = pd.Series(pd.NaT, index=messages.index, dtype="datetime64[ns, UTC]")
    ts_int = np.asarray(ts.array.asi8, dtype=np.int64)
    order = sort_positions((codes, time_key(ts), row_key(messages)))
    if order is not None:
        codes, ts_int = codes[order], ts_int[order]
    return order, codes, np.asarray(ids, dtype=object), group_starts(codes), ts_int


def _norm(series: pd.Series) -> pd.Series:
    return series.astype("str").str.strip().str.casefold()


def _norm_values(series: pd.Series) -> set:
    """The distinct normalised (stripped, case-folded) non-missing values of a column."""
    return set(_norm(pd.Series(pd.unique(series), dtype=object)).dropna())


def _column_equals(series: pd.Series, value: str) -> np.ndarray:
    """Per-message: ``series == value`` with type-aware parsing of ``value``."""
    v = value.strip()
    if pd.api.types.is_bool_dtype(series.dtype):
        low = v.casefold()
        if low not in _TRUE | _FALSE:
            return np.zeros(len(series), dtype=bool)
        return series.eq(low in _TRUE).fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        try:
            num = float(v)
        except ValueError:
            return np.zeros(len(series), dtype=bool)
        arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.isclose(arr, num, rtol=1e-9, atol=1e-12) & ~np.isnan(arr)
    codes, uniques = pd.factorize(series)   # text: normalise each distinct value once
    hit = _norm(pd.Series(uniques, dtype=object)).eq(v.casefold()).fillna(False).to_numpy(dtype=bool)
    return _lookup(hit, np.asarray(codes, dtype=np.int64))


def _message_match(prep: _Prepared, rule: Rule, candidates: np.ndarray) -> np.ndarray:
    """Boolean per position: the message is a candidate and matches ``rule`` (field rules:
    per message too). Non-candidates are never tested, so expensive regexes only see the
    messages that can still move a conversation along the funnel."""
    frame = prep.messages
    n = len(frame)
    if rule.kind == "event":
        if "event" not in frame.columns:
            return np.zeros(n, dtype=bool)
        return candidates & prep.equals_normalised("event", rule.name)
    if rule.kind == "intent":
        hit = np.zeros(n, dtype=bool)
        for col in ("intent", "true_intent"):
            if col in frame.columns:
                hit |= prep.equals_normalised(col, rule.name)
        return candidates & hit
    if rule.kind in ("user", "bot"):
        speaker = frame["speaker"].astype("str").eq(rule.kind).fillna(False).to_numpy(dtype=bool)
        pos = np.flatnonzero(candidates & prep.by_position(speaker))
        hit = np.zeros(n, dtype=bool)
        if len(pos):
            # one regex search per distinct text among the candidates
            text_codes, texts = pd.factorize(frame["text"].take(prep.input_rows(pos)))
            per_text = regex_search(texts.to_numpy(dtype=object), rule.pattern)
            hit[pos] = _lookup(per_text, np.asarray(text_codes, dtype=np.int64))
        return hit
    # field
    if rule.name not in frame.columns:
        return np.zeros(n, dtype=bool)
    return candidates & prep.by_position(_column_equals(frame[rule.name], rule.value))


@dataclass
class _Reach:
    prep: _Prepared
    stages: list[Stage]
    reached: np.ndarray   # (n_conversations, n_stages) bool
    at_pos: np.ndarray    # (n_conversations, n_stages) int, -1 = no own time (not reached / field)
    _gaps: dict = field(default_factory=dict)   # stage -> seconds from previous (per call)

    def times(self, k: int) -> pd.Series:
        """Reach time of stage ``k`` per conversation code (NaT when none)."""
        pos = self.at_pos[:, k]
        ts = self.prep.timestamps
        ok = pos >= 0
        values = ts.array.take(np.where(ok, pos, -1), allow_fill=True) if len(pos) else ts.array[:0]
        return pd.Series(values, index=range(len(pos)), dtype="datetime64[ns, UTC]")

    def gap_seconds(self, k: int) -> np.ndarray:
        """Per conversation code: reach time of stage k minus that of stage k-1, seconds."""
        if k not in self._gaps:
            self._gaps[k] = (self.times(k) - self.times(k - 1)).dt.total_seconds().to_numpy()
        return self._gaps[k]

    @property
    def highest(self) -> np.ndarray:
        return self.reached.sum(axis=1).astype(np.int64) - 1


def _first_position(codes: np.ndarray, hit: np.ndarray, n_conv: int) -> np.ndarray:
    """Per conversation code: the first position where ``hit`` is true, -1 when none.

    Positions are grouped by code in increasing order, so the first hit of a code is the
    hit whose code differs from the previous hit's code."""
    first = np.full(n_conv, -1, dtype=np.int64)
    pos = np.flatnonzero(hit)
    if len(pos):
        c = codes[pos]
        lead = np.r_[True, c[1:] != c[:-1]]
        first[c[lead]] = pos[lead]
    return first


def _reach(messages: pd.DataFrame, stages, *, strict: bool) -> _Reach:
    stages = _check_stages(stages)
    if not isinstance(strict, (bool, np.bool_)):
        raise ConfigError(f"strict={strict!r}: expected True or False")
    prep = _prepare(messages)
    # keyed on the columns the stages read (metrics.core.memo), so a scored copy of the messages shares it
    read = ("conversation_id", "timestamp", "row", "speaker", "text", "event", "intent", "true_intent") + tuple(
        s.rule.name for s in stages if s.rule.kind == "field")
    reached, at_pos = memo.cached("funnel.reach", (memo.only(messages, read),), (tuple(stages), bool(strict)),
                                  lambda: _reach_arrays(prep, stages, strict))
    return _Reach(prep, stages, reached, at_pos)


def _reach_arrays(prep: _Prepared, stages: list, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """(reached, at_pos) of :func:`_reach`: per conversation and stage, reached and its position."""
    n_conv, n_st = len(prep.conversation_ids), len(stages)
    reached = np.zeros((n_conv, n_st), dtype=bool)
    at_pos = np.full((n_conv, n_st), -1, dtype=np.int64)
    codes = prep.codes
    positions = np.arange(len(codes), dtype=np.int64)
    prev_reached = np.ones(n_conv, dtype=bool)
    chain_pos = prep.start_pos.copy()     # strict: position the next stage must not precede
    for k, stage in enumerate(stages):
        # only messages of conversations that reached stage k-1 (strict: at/after its
        # position) can count for stage k
        candidates = prev_reached[codes]
        if strict and stage.rule.kind != "field":
            candidates &= positions >= chain_pos[codes]
        match = _message_match(prep, stage.rule, candidates)
        if stage.rule.kind == "field":
            conv_match = np.zeros(n_conv, dtype=bool)
            conv_match[codes[match]] = True
            now = prev_reached & conv_match
            # no own time; strict chain continues from the previous stage's position
        else:
            first = _first_position(codes, match, n_conv)
            now = prev_reached & (first >= 0)
            at_pos[now, k] = first[now]
            chain_pos = np.where(now, first, chain_pos)
        reached[:, k] = now
        prev_reached = now
    return reached, at_pos


def _resolve_stage(stages: list[Stage], stage) -> int:
    if isinstance(stage, (int, np.integer)) and not isinstance(stage, bool):
        idx = int(stage)
        if idx < 0:
            idx += len(stages)
        if not 0 <= idx < len(stages):
            raise ConfigError(f"stage {stage!r}: no such stage index; the funnel has "
                              f"{len(stages)} stage(s) (0..{len(stages) - 1})")
        return idx
    if isinstance(stage, Stage):
        stage = stage.name
    if isinstance(stage, str):
        for i, s in enumerate(stages):
            if s.name.casefold() == stage.strip().casefold():
                return i
    names = ", ".join(repr(s.name) for s in stages)
    raise ConfigError(f"stage {stage!r}: not in the funnel; choose one of {names}")


# --------------------------------------------------------------------------- validation
def validate_funnel(stages, messages: pd.DataFrame) -> list[str]:
    """Warnings about a funnel definition against the data (empty list = nothing to say).

    Definition errors (no stage, duplicate names, bad rules) raise :class:`ConfigError`;
    this function reports what is *valid but suspicious*: an event / intent / field name or
    value never seen in the data, a regex that matches no message, a regex that matches the
    empty string (so every message of that speaker), the first stage no conversation reaches
    (strict order), missing timestamps. Empty messages give one warning saying so.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a"], "speaker": ["user"], "text": ["hi"],
    ...                   "event": ["inquiry"], "row": [1]})
    >>> validate_funnel([Stage("start", "event:inquery")], m)[0]
    "stage 'start': event 'inquery' never occurs in the data; known events: inquiry"
    """
    stages = _check_stages(stages)
    if len(messages) == 0:
        return ["there are no messages to check the funnel against"]

    def known(col: str) -> list[str]:
        vals = messages[col].dropna().astype("str").str.strip()
        return sorted(set(vals[vals != ""]))[:10]

    warnings = _rule_warnings(stages, set(messages.columns), known=known,
                              norm_values=lambda col: _norm_values(messages[col]),
                              column=lambda col: messages[col])
    reach = _reach(messages, stages, strict=True)
    return _reach_warnings(stages, warnings, reach.reached.sum(axis=0), has_timestamps(messages))


def _rule_warnings(stages: list[Stage], cols: set, *, known, norm_values, column) -> list[str]:
    """The warnings of :func:`validate_funnel` about each stage's rule against the data, which is
    read through ``known(col)`` (up to 10 sorted distinct stripped non-empty values),
    ``norm_values(col)`` (the distinct stripped, case-folded values) and ``column(name)`` (a
    field rule's column)."""
    warnings: list[str] = []
    for s in stages:
        r = s.rule
        label = f"stage {s.name!r}"
        if r.kind == "event":
            if "event" not in cols:
                warnings.append(f"{label}: the data has no 'event' column, so {r} matches nothing; "
                                "map your event column to 'event' when loading the file, or define the stage by intent or text")
            elif r.name.strip().casefold() not in norm_values("event"):
                ks = known("event")
                warnings.append(f"{label}: event {r.name!r} never occurs in the data; known events: "
                                + (", ".join(ks) if ks else "none"))
        elif r.kind == "intent":
            present = [c for c in ("intent", "true_intent") if c in cols]
            if not present:
                warnings.append(f"{label}: the data has no 'intent' or 'true_intent' column, so {r} "
                                "matches nothing")
            else:
                seen = set()
                for c in present:
                    seen |= norm_values(c)
                if r.name.strip().casefold() not in seen:
                    ks = sorted({v for c in present for v in known(c)})[:10]
                    warnings.append(f"{label}: intent {r.name!r} never occurs in the data; known "
                                    "intents: " + (", ".join(ks) if ks else "none"))
        elif r.kind == "field":
            if r.name not in cols:
                warnings.append(f"{label}: the data has no {r.name!r} column, so {r} matches nothing")
            else:
                col = column(r.name)
                is_bool = pd.api.types.is_bool_dtype(col.dtype)
                if is_bool and r.value.strip().casefold() not in _TRUE | _FALSE:
                    warnings.append(f"{label}: {r.value!r} is not a true/false value for the boolean "
                                    f"column {r.name!r}; write true or false")
                elif not is_bool and pd.api.types.is_numeric_dtype(col.dtype) and not _is_number(r.value):
                    warnings.append(f"{label}: {r.value!r} is not a number for the numeric column "
                                    f"{r.name!r}")
                elif not _column_equals(col, r.value).any():
                    warnings.append(f"{label}: no message has {r.name} = {r.value!r}")
        else:
            if regex_search([""], r.pattern)[0]:
                warnings.append(f"{label}: regex {r.pattern!r} matches the empty string, so every "
                                f"{r.kind} message matches it")
    return warnings


def _reach_warnings(stages: list[Stage], warnings: list[str], counts: np.ndarray, timestamped: bool) -> list[str]:
    """``warnings`` and those of :func:`validate_funnel` about the reach: the first stage no
    conversation reaches (``counts``: conversations per stage, strict order) and no timestamps."""
    warnings = list(warnings)
    for s, k in zip(stages, range(len(stages))):
        if counts[k] == 0 and not any(w.startswith(f"stage {s.name!r}:") for w in warnings):
            warnings.append(f"stage {s.name!r}: no conversation reaches it (strict order)")
            break
    if not timestamped:
        warnings.append("the data has no timestamps: strict order uses the source row order "
                        "and the stage timings are empty")
    return warnings


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- per conversation
def reached_stage(messages: pd.DataFrame, stages, *, strict: bool = True) -> pd.DataFrame:
    """One row per conversation: how far it got in the funnel and when.

    Columns: ``conversation_id``; ``highest_stage`` (int, index of the last stage reached,
    -1 when it never reached stage 0); ``highest_stage_name`` (str, :data:`NOT_ENTERED`
    when -1); ``reached_at_0`` .. ``reached_at_{n-1}`` (UTC time each stage was reached, NaT
    when not reached, for ``field:`` stages, or without timestamps). Sorted by
    ``conversation_id``; an empty input gives an empty frame with these columns.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user"] * 3,
    ...                   "text": ["hi", "me@x.org", "hi"], "event": ["inquiry", None, None],
    ...                   "row": [1, 2, 3]})
    >>> r = reached_stage(m, DEFAULT_LEAD_FUNNEL)
    >>> r[["conversation_id", "highest_stage"]].values.tolist()
    [['a', 0], ['b', -1]]
    """
    reach = _reach(messages, stages, strict=strict)
    return _reached_frame(reach)


def _reached_frame(reach: _Reach) -> pd.DataFrame:
    names = np.array([NOT_ENTERED] + [s.name for s in reach.stages], dtype=object)
    highest = reach.highest
    out = pd.DataFrame({
        "conversation_id": pd.Series(reach.prep.conversation_ids, dtype="str"),
        "highest_stage": pd.Series(highest, dtype="int64"),
        "highest_stage_name": pd.Series(names[highest + 1] if len(highest) else [], dtype="str"),
    })
    for k in range(len(reach.stages)):
        out[f"reached_at_{k}"] = reach.times(k).array
    return out


def _stage_rows(reach: _Reach, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The per-stage table for the conversations selected by the boolean ``rows``."""
    reached = reach.reached if rows is None else reach.reached[rows]
    records = _stage_records(reach.stages, len(reached), reached.sum(axis=0).astype(np.int64))
    for k, record in enumerate(records):
        record["median_seconds_from_previous"] = _median_gap(reach, k, rows)
    out = pd.DataFrame.from_records(records, columns=[
        "stage_index", "stage", "rule", "conversations", "rate_of_entry", "step_rate", "dropped",
        "median_seconds_from_previous"])
    return out.astype({"stage_index": "int64", "stage": "str", "rule": "str", "conversations": "int64",
                       "rate_of_entry": "float64", "step_rate": "float64", "dropped": "int64",
                       "median_seconds_from_previous": "float64"})


def _stage_records(stages: list[Stage], total: int, counts: np.ndarray) -> list[dict]:
    """Per stage (``counts``: conversations reaching it, of ``total``): ``stage_index``, ``stage``,
    ``rule``, ``conversations``, ``rate_of_entry``, ``step_rate`` and ``dropped``."""
    n = len(stages)
    entry = counts[0] if n else 0
    records = []
    for k, stage in enumerate(stages):
        prev = total if k == 0 else counts[k - 1]
        nxt = counts[k + 1] if k + 1 < n else counts[k]
        records.append({
            "stage_index": k,
            "stage": stage.name,
            "rule": str(stage.rule),
            "conversations": int(counts[k]),
            "rate_of_entry": _ratio(counts[k], entry),
            "step_rate": _ratio(counts[k], prev),
            "dropped": int(counts[k] - nxt),
        })
    return records


def _ratio(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def _median_gap(reach: _Reach, k: int, rows: np.ndarray | None) -> float:
    if k == 0 or reach.stages[k].rule.kind == "field" or reach.stages[k - 1].rule.kind == "field":
        return math.nan
    sel = reach.reached[:, k].copy()
    if rows is not None:
        sel &= rows
    if not sel.any():
        return math.nan
    gaps = reach.gap_seconds(k)[sel]
    gaps = gaps[~np.isnan(gaps)]
    return float(np.median(gaps)) if len(gaps) else math.nan


def funnel_table(messages: pd.DataFrame, stages, *, strict: bool = True) -> pd.DataFrame:
    """Per-stage funnel: reach, rates, drop-off and time from the previous stage.

    Columns: ``stage``, ``conversations``, ``rate_of_entry``, ``step_rate``, ``dropped``,
    ``median_seconds_from_previous`` (definitions in the module docstring) plus
    ``stage_index`` and ``rule``. One row per stage in funnel order; an empty input gives
    zero counts, NaN rates and NaN medians.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user"] * 3,
    ...                   "text": ["hi", "x", "hi"], "event": ["inquiry", "qualification", "inquiry"],
    ...                   "row": [1, 2, 3]})
    >>> t = funnel_table(m, ["in=event:inquiry", "qual=event:qualification"])
    >>> t[["stage", "conversations", "rate_of_entry", "dropped"]].values.tolist()
    [['in', 2, 1.0, 1], ['qual', 1, 0.5, 0]]
    """
    reach = _reach(messages, stages, strict=strict)
    return _stage_rows(reach)


def dropoff_conversations(messages: pd.DataFrame, stages, *, stage, strict: bool = True) -> pd.DataFrame:
    """Conversations that reached ``stage`` (name or index) and not the next stage.

    Columns: ``conversation_id``, ``stage``, ``reached_at`` (NaT without timestamps or for a
    ``field:`` stage), ``last_bot_message`` (masked with :func:`mask_contact_details`, NA when
    the conversation has no bot message), ``last_bot_at``. For the last stage the result is
    empty: finishing the funnel is not a drop-off. Sorted by ``conversation_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "bot"],
    ...                   "text": ["hi", "Your email, please?"], "event": ["inquiry", None],
    ...                   "row": [1, 2]})
    >>> d = dropoff_conversations(m, DEFAULT_LEAD_FUNNEL, stage="inquiry")
    >>> d[["conversation_id", "last_bot_message"]].values.tolist()
    [['a', 'Your email, please?']]
    """
    reach = _reach(messages, stages, strict=strict)
    k = _resolve_stage(reach.stages, stage)
    sel = reach.highest == k
    if k == len(reach.stages) - 1:
        sel[:] = False
    last = _last_bot(reach.prep)
    idx = np.flatnonzero(sel)
    out = pd.DataFrame({
        "conversation_id": pd.Series(reach.prep.conversation_ids[idx], dtype="str"),
        "stage": pd.Series([reach.stages[k].name] * len(idx), dtype="str"),
        "reached_at": pd.Series(reach.times(k).array.take(idx), dtype="datetime64[ns, UTC]"),
        "last_bot_message": pd.Series(last["text"].to_numpy(dtype=object)[idx] if len(idx) else [],
                                      dtype="str"),
        "last_bot_at": pd.Series(last["at"].array.take(idx), dtype="datetime64[ns, UTC]"),
    })
    return out


def _last_bot(prep: _Prepared) -> pd.DataFrame:
    """Per conversation code: the last bot message (masked) and its time."""
    n = len(prep.conversation_ids)
    text = np.full(n, None, dtype=object)
    at_pos = np.full(n, -1, dtype=np.int64)
    if n:
        is_bot = prep.by_position(prep.messages["speaker"].astype("str").eq("bot").fillna(False)
                                  .to_numpy(dtype=bool))
        pos = np.flatnonzero(is_bot)
        if len(pos):
            # positions are grouped by code in order, so a code's last bot message is the bot
            # message whose code differs from the next bot message's code
            c = prep.codes[pos]
            last = np.r_[c[1:] != c[:-1], True]
            at_pos[c[last]] = pos[last]
            has = at_pos >= 0
            # mask each distinct text once (bots repeat a few templates)
            codes, uniques = pd.factorize(prep.messages["text"].take(prep.input_rows(at_pos[has])))
            masked = np.array([mask_contact_details(t) if isinstance(t, str) else None
                               for t in uniques.to_numpy(dtype=object)] + [None], dtype=object)
            text[has] = masked[np.asarray(codes, dtype=np.int64)]
    at = pd.Series(prep.timestamps.array.take(at_pos, allow_fill=True) if n else prep.timestamps.array[:0],
                   dtype="datetime64[ns, UTC]")
    return pd.DataFrame({"text": text, "at": at})


def last_bot_message_before_dropoff(messages: pd.DataFrame, stages, *, strict: bool = True,
                                    top: int | None = 5) -> pd.DataFrame:
    """The bot's last words in conversations that stopped at each stage, most frequent first.

    For every stage except the last, the conversations that reached it and not the next
    stage (see :func:`dropoff_conversations`) are grouped by their *last bot message* (the
    conversation's final bot message in time/row order, contact details masked;
    ``"(no bot message)"`` when there is none). Columns: ``stage_index``, ``stage``,
    ``last_bot_message``, ``conversations`` (int), ``dropoff_rate`` (share of that stage's
    drop-offs, in [0, 1]). ``top`` keeps the N most frequent messages per stage (None = all).
    Empty input or no drop-off gives an empty frame with these columns.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"],
    ...                   "speaker": ["user", "bot", "user", "bot"],
    ...                   "text": ["hi", "Email?", "hi", "Email?"], "event": ["inquiry", None] * 2,
    ...                   "row": [1, 2, 3, 4]})
    >>> last_bot_message_before_dropoff(m, DEFAULT_LEAD_FUNNEL).values.tolist()
    [[0, 'inquiry', 'Email?', 2, 1.0]]
    """
    if top is not None and (not isinstance(top, (int, np.integer)) or isinstance(top, bool) or top < 1):
        raise ConfigError(f"top={top!r}: expected a positive integer or None")
    reach = _reach(messages, stages, strict=strict)
    last = _last_bot(reach.prep)["text"].fillna("(no bot message)").to_numpy(dtype=object)
    highest = reach.highest
    frames = []
    for k, stage in enumerate(reach.stages[:-1]):
        sel = highest == k
        if not sel.any():
            continue
        counts = pd.Series(last[sel]).value_counts()
        counts = counts.rename_axis("last_bot_message").reset_index(name="conversations")
        counts = counts.sort_values(["conversations", "last_bot_message"], ascending=[False, True],
                                    kind="stable")
        counts["dropoff_rate"] = counts["conversations"] / int(sel.sum())
        if top is not None:
            counts = counts.head(int(top))
        counts.insert(0, "stage", stage.name)
        counts.insert(0, "stage_index", k)
        frames.append(counts)
    cols = ["stage_index", "stage", "last_bot_message", "conversations", "dropoff_rate"]
    if not frames:
        return pd.DataFrame({"stage_index": pd.Series([], dtype="int64"),
                             "stage": pd.Series([], dtype="str"),
                             "last_bot_message": pd.Series([], dtype="str"),
                             "conversations": pd.Series([], dtype="int64"),
                             "dropoff_rate": pd.Series([], dtype="float64")})
    out = pd.concat(frames, ignore_index=True)[cols]
    return out.astype({"stage_index": "int64", "stage": "str", "last_bot_message": "str",
                       "conversations": "int64", "dropoff_rate": "float64"})


# --------------------------------------------------------------------------- segments
def _conversation_attribute(prep: _Prepared, by: str) -> np.ndarray:
    """Per conversation code: the segment label (first non-missing value; ISO week of start)."""
    n = len(prep.conversation_ids)
    if by not in SEGMENT_COLUMNS:
        raise ConfigError(f"by={by!r}: compare by one of {', '.join(SEGMENT_COLUMNS)}")
    frame = prep.messages
    labels = np.full(n, _MISSING_SEGMENT, dtype=object)
    if by == "week":
        if not has_timestamps(frame):
            raise InsufficientDataError("comparing by week needs timestamps; the data has none")
        timed = np.flatnonzero(prep.by_position(frame["timestamp"].notna().to_numpy(dtype=bool)))
        if len(timed):
            codes = prep.codes[timed]
            first = np.r_[True, codes[1:] != codes[:-1]]  # earliest timed message per code
            # ISO week (UTC, as the reach times) of those first messages only (one per conversation)
            labels[codes[first]] = period_label(prep.timestamps.take(timed[first]), "W").to_numpy(dtype=object)
        return labels
    if by not in frame.columns:
        raise InsufficientDataError(f"the data has no {by!r} column to compare by; map one with "
                                    f"the column mapping when loading the file, or choose another of {', '.join(SEGMENT_COLUMNS)}")
    # judge each distinct value once, then map back to messages through the factorize codes
    value_codes, values = pd.factorize(frame[by].astype("str"))
    values = pd.Series(values, dtype=object).astype("str")
    usable = (values.notna() & (values.fillna("").str.strip() != "")).to_numpy(dtype=bool)
    value_codes = prep.by_position(np.asarray(value_codes, dtype=np.int64))
    ok = _lookup(usable, value_codes)
    if ok.any():
        codes = prep.codes[ok]
        first = np.r_[True, codes[1:] != codes[:-1]]
        labels[codes[first]] = values.to_numpy(dtype=object)[value_codes[ok][first]]
    return labels


def funnel_by_segment(messages: pd.DataFrame, stages, *, by: str = "channel",
                      strict: bool = True) -> pd.DataFrame:
    """The funnel table computed separately for each segment, stacked (long format).

    ``by`` is one of :data:`SEGMENT_COLUMNS`: ``channel``, ``segment``, ``utm_source``,
    ``utm_campaign`` (first non-missing value in the conversation, ``"(none)"`` when
    missing) or ``week`` (ISO week ``YYYY-Www`` of the conversation's first timed message).
    Columns: ``segment`` then the :func:`funnel_table` columns; ``step_rate`` of stage 0 is
    the share of the segment's conversations that entered. Segments are sorted by label.
    Raises :class:`InsufficientDataError` when the column (or, for ``week``, every
    timestamp) is missing. Empty input gives an empty frame with these columns.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["hi"] * 2,
    ...                   "event": ["inquiry", None], "channel": ["web", "sms"], "row": [1, 2]})
    >>> t = funnel_by_segment(m, ["in=event:inquiry"], by="channel")
    >>> t[["segment", "conversations", "step_rate"]].values.tolist()
    [['sms', 0, 0.0], ['web', 1, 1.0]]
    """
    reach = _reach(messages, stages, strict=strict)
    labels = _conversation_attribute(reach.prep, by)
    frames = []
    for label in sorted(set(labels)):
        part = _stage_rows(reach, labels == label)
        part.insert(0, "segment", label)
        frames.append(part)
    if not frames:
        empty = _stage_rows(reach).iloc[0:0]
        empty.insert(0, "segment", pd.Series([], dtype="str"))
        return empty.reset_index(drop=True)
    out = pd.concat(frames, ignore_index=True)
    out["segment"] = out["segment"].astype("str")
    return out


def segment_columns(messages: pd.DataFrame) -> list[str]:
    """The :data:`SEGMENT_COLUMNS` this data can be compared by with :func:`funnel_by_segment`.

    A column counts when the messages have it with at least one non-missing value; ``week``
    counts when the messages have timestamps (:func:`metrics.io.schema.has_timestamps`). In the
    order of :data:`SEGMENT_COLUMNS`. Empty input: ``[]``.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a"], "speaker": ["user"], "text": ["hi"], "row": [1],
    ...                   "timestamp": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
    ...                   "channel": ["web"], "segment": [None]})
    >>> segment_columns(m)
    ['channel']
    """
    return [c for c in SEGMENT_COLUMNS
            if (c == "week" and has_timestamps(messages))
            or (c in messages.columns and messages[c].notna().any())]


# --------------------------------------------------------------------------- conversion
def _conversion_arrays(prep: _Prepared) -> tuple[np.ndarray, np.ndarray | None]:
    """Per conversation code: converted (bool, NA -> False) and value (float, NaN) or None."""
    frame = prep.messages
    if "converted" not in frame.columns:
        raise InsufficientDataError("downstream conversion needs a 'converted' column (true/false per "
                                    "conversation); map one to 'converted' when loading the file")
    n = len(prep.conversation_ids)
    conv = np.zeros(n, dtype=bool)
    hit = prep.by_position(frame["converted"].astype("boolean").fillna(False).to_numpy(dtype=bool))
    if hit.any():
        conv[np.unique(prep.codes[hit])] = True
    value = None
    if "conversion_value" in frame.columns:
        value = np.full(n, np.nan)
        v = prep.by_position(pd.to_numeric(frame["conversion_value"], errors="coerce")
                             .to_numpy(dtype=float, na_value=np.nan))
        ok = ~np.isnan(v)
        codes = prep.codes[ok]
        first = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.array([], dtype=bool)
        value[codes[first]] = v[ok][first]
    return conv, value


def _value_sum(conv: np.ndarray, value: np.ndarray | None, sel: np.ndarray) -> float:
    if value is None:
        return math.nan
    return float(np.nansum(np.where(conv & sel, value, 0.0)))


def conversion_by_stage(messages: pd.DataFrame, stages, *, strict: bool = True) -> pd.DataFrame:
    """Downstream conversion by the *highest* stage a conversation reached.

    One row per highest stage, from -1 (:data:`NOT_ENTERED`) to the last stage. Columns:
    ``stage_index``, ``stage``, ``conversations`` (that stopped there), ``converted_count``
    (with ``converted`` true; missing counts as not converted), ``conversion_rate``
    (``converted_count / conversations``, NaN when 0), ``total_value`` (sum of
    ``conversion_value`` over the converted ones; a missing value adds 0; NaN when the data
    has no ``conversion_value`` column) and ``value_per_conversation``. Raises
    :class:`InsufficientDataError` without a ``converted`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["hi"] * 2,
    ...                   "event": ["inquiry", None], "converted": pd.array([True, False], "boolean"),
    ...                   "row": [1, 2]})
    >>> conversion_by_stage(m, ["in=event:inquiry"])[["stage", "converted_count"]].values.tolist()
    [['(not entered)', 0], ['in', 1]]
    """
    reach = _reach(messages, stages, strict=strict)
    conv, value = _conversion_arrays(reach.prep)
    highest = reach.highest
    records = []
    for k in range(-1, len(reach.stages)):
        sel = highest == k
        n = int(sel.sum())
        total = _value_sum(conv, value, sel)
        records.append({
            "stage_index": k,
            "stage": NOT_ENTERED if k < 0 else reach.stages[k].name,
            "conversations": n,
            "converted_count": int((conv & sel).sum()),
            "conversion_rate": _ratio(int((conv & sel).sum()), n),
            "total_value": total,
            "value_per_conversation": _ratio(total, n) if not math.isnan(total) else math.nan,
        })
    out = pd.DataFrame.from_records(records)
    return out.astype({"stage_index": "int64", "stage": "str", "conversations": "int64",
                       "converted_count": "int64", "conversion_rate": "float64",
                       "total_value": "float64", "value_per_conversation": "float64"})


@dataclass(frozen=True)
class ConversionSummary:
    """Downstream outcome of the conversations that reached ``lead_stage`` (the *leads*).

    ``conversion_rate = converted_count / lead_count`` and ``revenue_per_lead =
    total_value / lead_count`` are NaN when there is no lead; ``total_value`` sums
    ``conversion_value`` over converted leads and is NaN when the data has no value column.
    """

    lead_stage: str
    lead_count: int
    converted_count: int
    conversion_rate: float
    total_value: float
    revenue_per_lead: float

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in self.__dict__.items()}


def conversion_summary(messages: pd.DataFrame, stages, *, lead_stage: int | str = 0,
                       strict: bool = True) -> ConversionSummary:
    """Leads (conversations reaching ``lead_stage``, default the first stage), how many
    converted, the conversion rate, total value and revenue per lead.

    Raises :class:`InsufficientDataError` without a ``converted`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["hi"] * 2,
    ...                   "event": ["inquiry"] * 2, "converted": pd.array([True, False], "boolean"),
    ...                   "conversion_value": [120.0, None], "row": [1, 2]})
    >>> s = conversion_summary(m, ["in=event:inquiry"])
    >>> (s.lead_count, s.converted_count, s.conversion_rate, s.total_value, s.revenue_per_lead)
    (2, 1, 0.5, 120.0, 60.0)
    """
    reach = _reach(messages, stages, strict=strict)
    k = _resolve_stage(reach.stages, lead_stage)
    conv, value = _conversion_arrays(reach.prep)
    leads = reach.reached[:, k]
    n = int(leads.sum())
    total = _value_sum(conv, value, leads)
    return ConversionSummary(
        lead_stage=reach.stages[k].name,
        lead_count=n,
        converted_count=int((conv & leads).sum()),
        conversion_rate=_ratio(int((conv & leads).sum()), n),
        total_value=total,
        revenue_per_lead=_ratio(total, n) if not math.isnan(total) else math.nan,
    )


def lead_quality(messages: pd.DataFrame, stages, *, by: str = "segment", lead_stage: int | str = 0,
                 strict: bool = True, tolerance: float = 0.1) -> pd.DataFrame:
    """Lead volume against lead quality per segment.

    A *lead* is a conversation reaching ``lead_stage``. Per segment (``by`` as in
    :func:`funnel_by_segment`): ``lead_count``, ``converted_count`` (leads that converted),
    ``conversion_rate`` (converted / leads), ``total_value``, ``revenue_per_lead``,
    ``share_of_leads`` and ``share_of_conversions`` (of all segments' leads / converted
    leads; NaN when 0), ``rate_vs_overall`` (segment conversion rate / overall conversion
    rate) and ``verdict``: ``"volume over quality"`` when the segment's share of leads exceeds
    its share of conversions (equivalently ``rate_vs_overall < 1``), ``"quality over volume"``
    when the reverse, and ``"balanced"`` when ``rate_vs_overall`` is within ``tolerance`` of 1
    (default 0.1, i.e. within 10% of the overall rate) or nothing converted at all.
    Segments without leads are left out. Sorted by ``lead_count`` descending, then segment.

    The guide's example: 500 leads of which 10 convert (2%) is *volume over quality*; 50
    leads of which 15 convert (30%) is *quality over volume*, although it has a tenth of the
    leads.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["user"] * 3,
    ...                   "text": ["hi"] * 3, "event": ["inquiry"] * 3, "segment": ["x", "x", "y"],
    ...                   "converted": pd.array([False, False, True], "boolean"), "row": [1, 2, 3]})
    >>> lead_quality(m, ["in=event:inquiry"])[["segment", "lead_count", "verdict"]].values.tolist()
    [['x', 2, 'volume over quality'], ['y', 1, 'quality over volume']]
    """
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance={tolerance!r}: expected a number in [0, 1)")
    reach = _reach(messages, stages, strict=strict)
    k = _resolve_stage(reach.stages, lead_stage)
    labels = _conversation_attribute(reach.prep, by)
    conv, value = _conversion_arrays(reach.prep)
    leads = reach.reached[:, k]
    all_leads = int(leads.sum())
    all_conv = int((conv & leads).sum())
    overall = _ratio(all_conv, all_leads)
    records = []
    for label in sorted(set(labels[leads])):
        sel = leads & (labels == label)
        n = int(sel.sum())
        c = int((conv & sel).sum())
        total = _value_sum(conv, value, sel)
        share_l, share_c = _ratio(n, all_leads), _ratio(c, all_conv)
        rate = _ratio(c, n)
        lift = rate / overall if overall and not math.isnan(overall) else math.nan
        if math.isnan(lift) or abs(lift - 1.0) <= tolerance:
            verdict = "balanced"
        else:
            verdict = "volume over quality" if lift < 1.0 else "quality over volume"
        records.append({
            "segment": label, "lead_count": n, "converted_count": c, "conversion_rate": rate,
            "total_value": total, "revenue_per_lead": _ratio(total, n) if not math.isnan(total) else math.nan,
            "share_of_leads": share_l, "share_of_conversions": share_c,
            "rate_vs_overall": lift,
            "verdict": verdict,
        })
    cols = {"segment": "str", "lead_count": "int64", "converted_count": "int64",
            "conversion_rate": "float64", "total_value": "float64", "revenue_per_lead": "float64",
            "share_of_leads": "float64", "share_of_conversions": "float64",
            "rate_vs_overall": "float64", "verdict": "str"}
    if not records:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    out = pd.DataFrame.from_records(records, columns=list(cols)).astype(cols)
    return out.sort_values(["lead_count", "segment"], ascending=[False, True],
                           kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- privacy
def mask_contact_details(text):
    """``text`` with its personal data masked: :func:`metrics.io.pii.redact_text`, the redaction of
    the loader (``<EMAIL>``, ``<PHONE>``, ``<CARD>``, ``<IBAN>``).

    Kept under this name for the funnel's callers. Idempotent; non-text input (None, NA, NaN) is
    returned unchanged.

    Examples
    --------
    >>> mask_contact_details("Mail jane.doe@example.co.uk or call +44 20 7946 0958.")
    'Mail <EMAIL> or call <PHONE>.'
    >>> mask_contact_details("Order 12345 on 2024-01-15")
    'Order 12345 on 2024-01-15'
    """
    return pii.redact_text(text)


def mask_messages(messages: pd.DataFrame, *, columns: Sequence[str] = ("text",)) -> pd.DataFrame:
    """A copy of ``messages`` with :func:`mask_contact_details` applied to ``columns`` (input
    unchanged; each column keeps its dtype).

    Examples
    --------
    >>> import pandas as pd
    >>> mask_messages(pd.DataFrame({"text": ["me@x.org"]}))["text"].tolist()
    ['<EMAIL>']
    """
    out = messages.copy()
    for col in columns:
        if col in out.columns:
            values = out[col]
            if isinstance(values.dtype, pd.StringDtype):  # each distinct text once (metrics.io.pii)
                out[col] = pii.redact_series(values)[0].astype(values.dtype)
            else:  # non-text values (numbers, None) stay as they are
                out[col] = pd.Series([pii.redact_text(v) for v in values.to_numpy(dtype=object)],
                                     index=out.index, dtype=object).astype(values.dtype)
    return out


_CONTACT_SAMPLES = ("jane.doe@example.com", "+44 20 7946 0958", "555-123-4567", "(555) 123 4567")
_CONTACT_WORDS = re.compile(r"e-?mail|phone|mobile|contact|\btel\b|whatsapp|address", re.IGNORECASE)


def contact_stage_warning(stages) -> bool:
    """True when a stage seems to capture contact details, so views must show a privacy note.

    A stage does when it is a ``user~``/``bot~`` rule whose regex matches a sample e-mail
    address or phone number, or when its name mentions e-mail, phone, mobile, contact,
    tel, WhatsApp or address.

    Examples
    --------
    >>> contact_stage_warning(DEFAULT_LEAD_FUNNEL)
    True
    >>> contact_stage_warning([Stage("inquiry", "event:inquiry")])
    False
    """
    for s in _check_stages(stages):
        if _CONTACT_WORDS.search(s.name):
            return True
        if s.rule.kind in ("user", "bot"):
            if not regex_search([""], s.rule.pattern)[0] and regex_search(_CONTACT_SAMPLES, s.rule.pattern).any():
                return True
    return False


# --------------------------------------------------------------------------- suggestions
#: Intents that say the bot did not understand or small talk: never suggested as funnel stages.
_NOT_A_STAGE = re.compile(r"(?i)fallback|out_of_scope|^none$|^nlu_|greet|goodbye|bye$|thank|affirm|deny|chitchat")


def suggest_stages(messages: pd.DataFrame, *, top: int = 3) -> tuple[Stage, ...]:
    """Stages to start a funnel from on data without events, built from the data itself.

    With predicted intents: the ``top`` intents found in the most conversations (fallback and small-talk
    intents left out), ordered by where they usually first occur in a conversation (median position among the
    conversation's intents; ties by name). Otherwise text rules: every conversation with a user message, those
    the bot answered (when the data has bot messages), and those where the user gave an e-mail address (when
    one does). Empty data gives the first text rule alone.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b", "c"], "speaker": ["user"] * 5,
    ...                   "text": ["hi", "price?", "hi", "buy", "price?"],
    ...                   "intent": ["ask_price", "buy", "ask_price", "buy", "ask_price"]})
    >>> [str(s.rule) for s in suggest_stages(m)]
    ['intent:ask_price', 'intent:buy']
    >>> [s.name for s in suggest_stages(m.drop(columns="intent"))]
    ['user wrote']
    """
    top = int(top)
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top!r}")
    speaker = messages["speaker"].astype("str") if "speaker" in messages.columns else \
        pd.Series("user", index=messages.index)
    user = speaker.eq("user").fillna(False).to_numpy(bool)
    if "intent" in messages.columns:
        keys = [c for c in ("conversation_id", "timestamp", "row") if c in messages.columns]
        frame = messages.loc[user, keys + ["intent"]]
        frame = frame[frame["intent"].notna()]
        frame = frame.assign(intent=frame["intent"].astype("str").str.strip())
        frame = frame[(frame["intent"] != "") & ~frame["intent"].str.contains(_NOT_A_STAGE)]
        if len(frame):
            frame = frame.sort_values(keys, kind="stable") if keys else frame
            first = frame.drop_duplicates(["conversation_id", "intent"])
            first = first.assign(position=first.groupby("conversation_id", sort=False).cumcount())
            stats = first.groupby("intent").agg(conversations=("conversation_id", "size"),
                                                position=("position", "median")).reset_index()
            chosen = stats.sort_values(["conversations", "intent"], ascending=[False, True]).head(top)
            chosen = chosen.sort_values(["position", "intent"], kind="stable")
            return tuple(Stage(name, Rule("intent", name=name)) for name in chosen["intent"])
    stages = [Stage("user wrote", Rule("user", pattern=r"\S"))]
    if bool(speaker.eq("bot").fillna(False).any()):
        stages.append(Stage("bot answered", Rule("bot", pattern=r"\S")))
    texts = messages.loc[user, "text"] if "text" in messages.columns else pd.Series([], dtype="str")
    for name, pattern in (("gave an e-mail address", EMAIL_STAGE_PATTERN), ("gave a phone number", PHONE_STAGE_PATTERN)):
        if len(texts) and regex_search(texts.astype("str"), pattern).any():
            stages.append(Stage(name, Rule("user", pattern=pattern)))
    return tuple(stages[:max(top, 1)])
