"""Langfuse traces, observations and scores exports.

Read: the UI table export and the public API (camelCase: ``sessionId``, ``userId``, ``traceId``,
``dataType``), the blob-storage export (snake_case: ``session_id``, ``user_id``, ``trace_id``,
``data_type``; naive ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC times) as CSV, JSON or JSONL, a single
trace download (``{..., "observations": [...], "scores": [...]}``), a session download
(``{"traces": [...]}``), and a zip holding several of these files (``traces``, ``observations``
and ``scores`` side by side).

Each trace is one turn: its ``input`` is the user's message and its ``output`` the bot's reply
(chat-format inputs give the last user message; outputs the assistant's content). Traces of a
session form a conversation (``sessionId``; a trace without session is its own conversation).
Without traces, the root observations (no ``parentObservationId``) stand in for them.

Scores attach to their trace's conversation (or ``sessionId``): a score named like a rating
(rating, csat, stars, satisfaction; or listed in ``rating_scores``) with a value in 1-5 is the
``rating``; a BOOLEAN score or one named like feedback / thumbs (or listed in ``thumbs_scores``)
gives ``thumbs`` (value > 0 or up/true = up). The latest such score of a conversation wins. Other
numeric scores (LLM-as-a-judge, annotation queues: audit-style scores) are summarised in a notice.
"""

from __future__ import annotations

import re
from collections import defaultdict

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import (
    as_dict, as_list, build_table, csv_header, iso_from_text, loads_or_none, looks_like_json, names_option,
    parse_json_records, peek_text, problem, read_csv_records, text_of, unwrap,
)
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert", "message_text"]

NAME = "langfuse"
LABEL = "Langfuse traces/scores export"
_TRACE_MARKERS = {"htmlpath", "html_path", "projectid", "project_id", "bookmarked", "latency", "totalcost",
                  "total_cost", "environment", "observations", "scores"}
_RATING_NAME = re.compile(r"rating|csat|stars?\b|satisfaction", re.I)
_THUMBS_NAME = re.compile(r"feedback|thumb|\blikes?\b", re.I)
_UP = {"up", "thumbs_up", "thumbsup", "true", "yes", "positive", "good", "👍", "1"}
_DOWN = {"down", "thumbs_down", "thumbsdown", "false", "no", "negative", "bad", "👎", "0", "-1"}


def _get(record: dict, *keys):
    """The first present value among camelCase / snake_case spellings."""
    for key in keys:
        value = record.get(key)
        if value is not None and value != "":
            return value
    return None


def _kind(keys: set) -> str | None:
    """What a record is, from its keys: 'trace', 'observation', 'score', 'session' or None."""
    low = {k.lower() for k in keys}
    has_trace_ref = bool({"traceid", "trace_id"} & low)
    if "traces" in low:
        return "session"
    if has_trace_ref and "name" in low and ({"value", "stringvalue", "string_value"} & low) \
            and ({"datatype", "data_type", "source"} & low) and not ({"input", "output"} & low):
        return "score"
    if has_trace_ref and "type" in low and ({"starttime", "start_time"} & low):
        return "observation"
    if "id" in low and "timestamp" in low and ({"input", "output"} & low) and not has_trace_ref:
        return "trace"
    return None


def detect(data: bytes, file_name: str) -> bool:
    """Langfuse's trace fields (id, timestamp, input/output, sessionId/userId and a Langfuse-only field
    such as htmlPath, projectId, latency, environment), or a scores/observations table."""
    for _, text in peek_text(data, file_name):
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            keys = set(re.findall(r'"([A-Za-z_]+)"\s*:', text[:8192]))
        else:
            keys = set(csv_header(text))
        low = {k.lower() for k in keys}
        kind = _kind(keys)
        if kind in ("score", "observation", "session") and ({"projectid", "project_id", "environment",
                                                              "traces", "datatype", "data_type",
                                                              "parentobservationid", "parent_observation_id"} & low):
            return True
        if kind == "trace" and ({"sessionid", "session_id", "userid", "user_id"} & low) and (_TRACE_MARKERS & low):
            return True
    return False


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    rating_names = {n.lower() for n in names_option(options, "rating_scores", ())}
    thumbs_names = {n.lower() for n in names_option(options, "thumbs_scores", ())}
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    problems = []
    found = {"trace": [], "observation": [], "score": []}
    for name, content in parts:
        for number, record in _records(content, name, problems):
            _classify(record, number, name, found, problems)
    notices = []
    turns = found["trace"]
    if not turns and found["observation"]:
        turns = [t for t in found["observation"] if not _get(t[2], "parentObservationId", "parent_observation_id")]
        notices.append(f"{LABEL}: no traces in the file; {len(turns)} root observation(s) of "
                       f"{len(found['observation'])} are read as turns.")
    elif found["observation"]:
        notices.append(f"{LABEL}: {len(found['observation'])} observation(s) are not messages (traces are).")
    rows, records, conv_of_trace = [], [], {}
    for number, name, record in turns:
        _turn_rows(record, number, rows, records, conv_of_trace)
    _apply_scores(found["score"], rows, conv_of_trace, rating_names, thumbs_names, notices)
    notices.insert(0, f"{LABEL}: {len(turns)} trace(s) in {len({r['conversation_id'] for r in rows})} "
                      "conversation(s) (traces of one sessionId form a conversation).")
    label_file = parts[0][0] if len(parts) == 1 else file_name
    if not rows and found["score"] and not problems:
        problems.append(problem(LABEL, label_file, "the file holds scores but no traces", "export the traces too "
                                "(the traces table, or a zip with traces and scores)"))
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems)


def _records(content: bytes, name: str, problems: list) -> list:
    if looks_like_json(content):
        recs, _ = parse_json_records(content, name, LABEL, list_keys=("data",))
        out = []
        for number, record in recs:
            out.append((number, record))
        return out
    header, recs, _ = read_csv_records(content, name, LABEL)
    out = []
    for number, fields in recs:
        if len(fields) != len(header):
            problems.append(problem(LABEL, name, f"record {number} has {len(fields)} fields but the header has "
                                    f"{len(header)}", "export the table again (quote the input/output columns)",
                                    row=number))
            continue
        out.append((number, {h: (f if f != "" else None) for h, f in zip(header, fields)}))
    return out


def _classify(record, number: int, name: str, found: dict, problems: list) -> None:
    if not isinstance(record, dict):
        problems.append(problem(LABEL, name, f"record {number} is a {type(record).__name__}, not an object",
                                "export one JSON object per trace or score", row=number))
        return
    kind = _kind(set(record))
    if kind == "session":
        for trace in as_list(record.get("traces")):
            if isinstance(trace, dict):
                trace = dict(trace)
                trace.setdefault("sessionId", _get(record, "id", "sessionId", "session_id"))
                _classify(trace, number, name, found, problems)
        return
    if kind is None:
        problems.append(problem(LABEL, name, f"record {number} is neither a trace (id, timestamp, input/output), "
                                "an observation nor a score", "export the traces or scores table of Langfuse",
                                row=number))
        return
    found[kind].append((number, name, record))
    if kind == "trace":  # a single-trace download nests its observations and scores
        for nested, nested_kind in (("observations", "observation"), ("scores", "score")):
            for item in as_list(record.get(nested)):
                if isinstance(item, dict):
                    found[nested_kind].append((number, name, item))


def _turn_rows(record: dict, number: int, rows: list, records: list, conv_of_trace: dict) -> None:
    trace_id = text_of(_get(record, "traceId", "trace_id", "id")) or f"trace-{number}"
    session = text_of(_get(record, "sessionId", "session_id"))
    conv = session or trace_id
    conv_of_trace[trace_id] = conv
    start = iso_from_text(_get(record, "timestamp", "startTime", "start_time"), naive_is_utc=True)
    end = iso_from_text(_get(record, "endTime", "end_time"), naive_is_utc=True)
    if end is None:
        end = _plus_seconds(start, _get(record, "latency"))
    base = {"conversation_id": conv, "user_id": text_of(_get(record, "userId", "user_id")),
            "model_version": text_of(_get(record, "release", "version"))}
    user_text = message_text(record.get("input"), "user")
    bot_text = message_text(record.get("output"), "assistant")
    if user_text is not None:
        rows.append(dict(base, timestamp=start, speaker="user", text=user_text, message_id=f"{trace_id}:input"))
        records.append(number)
    if bot_text is not None:
        rows.append(dict(base, timestamp=end or start, speaker="bot", text=bot_text, user_id=None,
                         message_id=f"{trace_id}:output"))
        records.append(number)


def _plus_seconds(start: str | None, latency) -> str | None:
    if start is None or latency is None:
        return None
    try:
        import pandas as pd

        seconds = float(latency)
        stamp = pd.Timestamp(start)
        if seconds != seconds or seconds < 0 or stamp.tzinfo is None:
            return None
        return (stamp + pd.Timedelta(seconds=seconds)).isoformat()
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        return None


def message_text(value, role: str) -> str | None:
    """The message in a Langfuse input/output value (any JSON).

    A string is the message (a JSON-encoded string is decoded first); a chat transcript (a list of
    ``{role, content}``, or ``{"messages": [...]}``) gives the last message of ``role``; an object
    gives its first text-like field; anything else is shown as compact JSON.

    Examples
    --------
    >>> message_text('{"messages": [{"role": "system", "content": "Be nice"}, '
    ...              '{"role": "user", "content": "hi"}]}', "user")
    'hi'
    >>> message_text({"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]}, "assistant")
    'Hello!'
    >>> message_text(None, "user") is None
    True
    """
    return _text(value, role, 0)


def _text(value, role: str, depth: int) -> str | None:
    if value is None or depth > 6:
        return None if value is None else text_of(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[", '"'):
            decoded = loads_or_none(stripped)
            if decoded is None:
                return value
            if not isinstance(decoded, (int, float)) or isinstance(decoded, bool):
                return _text(decoded, role, depth + 1)
        return value
    if isinstance(value, list):
        chat = [m for m in value if isinstance(m, dict) and "content" in m]
        if chat and len(chat) == len(value):
            mine = [m for m in chat if m.get("role") == role] or chat
            return _text(mine[-1].get("content"), role, depth + 1)
        texts = [t for t in (_part_text(p) for p in value) if t]
        if texts and all(isinstance(p, dict) and "text" in p for p in value):
            return "\n".join(texts)
        return text_of(value)
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            return _text(value["messages"], role, depth + 1)
        if isinstance(value.get("choices"), list) and value["choices"]:
            return _text(as_dict(value["choices"][0]).get("message"), role, depth + 1)
        for key in ("content", "text", "query", "question", "input", "message", "output", "answer", "response",
                    "completion"):
            if key in value and value[key] is not None:
                return _text(value[key], role, depth + 1)
        return text_of(value)
    return text_of(value)


def _part_text(part) -> str | None:
    return text_of(part.get("text")) if isinstance(part, dict) else None


def _apply_scores(scores: list, rows: list, conv_of_trace: dict, rating_names: set, thumbs_names: set,
                  notices: list) -> None:
    latest = defaultdict(dict)  # conversation -> field -> (time, value)
    audit = defaultdict(list)
    orphans = 0
    known = set(conv_of_trace.values())
    for _, _, score in scores:
        trace = text_of(_get(score, "traceId", "trace_id"))
        conv = conv_of_trace.get(trace) if trace else None
        conv = conv or text_of(_get(score, "sessionId", "session_id"))
        name = text_of(score.get("name")) or ""
        field, value = _score_field(score, name, rating_names, thumbs_names)
        if field is None:
            number = _number(score.get("value"))
            if number is not None:
                audit[name].append(number)
            continue
        if conv not in known:
            orphans += 1
            continue
        when = (iso_from_text(_get(score, "timestamp", "createdAt", "created_at"), naive_is_utc=True) or "")
        when = when.replace(" ", "T")
        if when >= latest[conv].get(field, ("", None))[0]:
            latest[conv][field] = (when, value)
    for row in rows:
        for field, (_, value) in latest.get(row["conversation_id"], {}).items():
            row[field] = value
    if audit:
        shown = "; ".join(f"{n or '(unnamed)'}: {len(v)} score(s), mean {sum(v) / len(v):.3g}"
                          for n, v in sorted(audit.items()))
        notices.append(f"{LABEL}: audit-style numeric scores are not ratings and are not loaded: {shown}.")
    if orphans:
        notices.append(f"{LABEL}: {orphans} rating/feedback score(s) belong to traces not in the file and were "
                       "ignored.")


def _score_field(score: dict, name: str, rating_names: set, thumbs_names: set) -> tuple[str | None, str | None]:
    low = name.lower()
    data_type = (text_of(_get(score, "dataType", "data_type")) or "").upper()
    number = _number(score.get("value"))
    label = (text_of(_get(score, "stringValue", "string_value")) or "").strip().lower()
    if low in rating_names:
        kind = "rating"
    elif low in thumbs_names or data_type == "BOOLEAN":
        kind = "thumbs"
    elif not rating_names and _RATING_NAME.search(name):
        kind = "rating"
    elif not thumbs_names and _THUMBS_NAME.search(name):
        kind = "thumbs"
    else:
        return None, None
    if kind == "rating":
        return ("rating", text_of(number)) if number is not None and 1 <= number <= 5 else (None, None)
    if label in _UP or label in _DOWN:
        return "thumbs", "up" if label in _UP else "down"
    if number is not None:
        return "thumbs", "up" if number > 0 else "down"
    return None, None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="Traces (UI/API export in camelCase or blob-storage export in snake_case; CSV, JSON, JSONL), "
                "single-trace or session downloads, root observations, and scores, also zipped together.",
    source_fields={
        "conversation_id": "sessionId / session_id (a trace without session is its own conversation)",
        "timestamp": "trace timestamp for the input; timestamp + latency (or the observation endTime) for the "
                     "output",
        "speaker": "input -> user, output -> bot",
        "text": "input / output (a string, or the last user/assistant message of a chat-format value)",
        "message_id": "<trace id>:input / <trace id>:output",
        "user_id": "userId / user_id",
        "model_version": "release, else version",
        "rating": "the latest 1-5 score named like rating/csat/stars/satisfaction (or in rating_scores)",
        "thumbs": "the latest BOOLEAN score or score named like feedback/thumbs (or in thumbs_scores): > 0 / "
                  "up / true -> up",
    },
    options={"rating_scores": "score names that are 1-5 user ratings (default: names containing rating, csat, "
                              "stars, satisfaction)",
             "thumbs_scores": "score names that are thumbs up/down feedback (default: BOOLEAN scores and names "
                              "containing feedback, thumb, like)"},
)
