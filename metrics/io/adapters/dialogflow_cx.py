"""Dialogflow CX interaction logs exported to BigQuery (one row per conversational turn).

Columns (Google's documented table): ``project_id, agent_id, conversation_name, turn_position,
request_time, language_code, request, response, partial_responses, derived_data,
conversation_signals, bot_answer_feedback``; the JSON columns may be JSON text (CSV exports) or
objects (JSON/JSONL exports). Each turn gives the user's message (``request.queryInput.text.text``,
else ``response.queryResult.text`` / ``.transcript``) and one bot message per text response
(``response.queryResult.responseMessages[].text.text``, else ``derived_data.agentUtterances``).

* intent/confidence: ``queryResult.match.intent.displayName`` / ``match.confidence`` (else
  ``queryResult.intent.displayName`` / ``intentDetectionConfidence``); a ``NO_MATCH`` match or the
  ``noMatch`` turn signal gives ``nlu_fallback``.
* ``conversation_signals.turnSignals``: ``userEscalated`` / ``agentEscalated`` (or a
  ``liveAgentHandoff`` response) -> ``event = handoff`` and outcome ``escalated``;
  ``triggeredAbandonmentEvent`` -> outcome ``abandoned``; ``sentimentScore`` is kept in the
  adapter's ``__sentiment_score`` column only.
* ``bot_answer_feedback.rating`` THUMBS_UP / THUMBS_DOWN -> ``thumbs`` (the last one of the session).
"""

from __future__ import annotations

from collections import Counter

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import (
    FALLBACK_INTENT, as_dict, as_list, build_table, csv_header, iso_from_text, json_keys_in, looks_like_json,
    parse_json_records, peek_text, problem, read_csv_records, text_of, unwrap,
)
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert"]

NAME = "dialogflow_cx"
LABEL = "Dialogflow CX interaction logs (BigQuery)"
_REQUIRED = ("conversation_name", "turn_position")
_THUMBS = {"THUMBS_UP": "up", "THUMBS_DOWN": "down"}


def detect(data: bytes, file_name: str) -> bool:
    """A CSV header or JSON keys with ``conversation_name`` and ``turn_position``."""
    for _, text in peek_text(data, file_name):
        if set(_REQUIRED) <= set(csv_header(text)) or json_keys_in(text, *_REQUIRED):
            return True
    return False


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    turns, problems = [], []
    for name, content in parts:
        turns.extend(_turns(content, name, problems))
    turns.sort(key=lambda t: (t[2], t[3], t[0]))
    rows, records, stats = [], [], Counter()
    for number, name, conv, position, turn in turns:
        _turn_rows(turn, number, conv, position, rows, records, stats)
    _conversation_fields(rows)
    notices = [f"{LABEL}: {len(turns)} turn(s) in {len({t[2] for t in turns})} session(s); "
               f"{stats['no_match']} no-match turn(s), {stats['handoff']} escalation signal(s)."]
    if stats["sentiment"]:
        notices.append(f"{LABEL}: {stats['sentiment']} turn(s) carry Dialogflow's sentimentScore; Chatlens "
                       "computes its own sentiment from the text.")
    label_file = parts[0][0] if len(parts) == 1 else file_name
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems, extra=("__sentiment_score",))


def _turns(content: bytes, name: str, problems: list) -> list:
    if not looks_like_json(content):
        header, recs, _ = read_csv_records(content, name, LABEL, required=_REQUIRED)
        raw = []
        for number, fields in recs:
            if len(fields) != len(header):
                problems.append(problem(LABEL, name, f"record {number} has {len(fields)} fields but the header "
                                        f"has {len(header)}", "export the table again (the JSON columns must be "
                                        "quoted)", row=number))
                continue
            raw.append((number, dict(zip(header, fields))))
    else:
        raw, _ = parse_json_records(content, name, LABEL, list_keys=("rows", "data", "records"))
    out = []
    for number, record in raw:
        if not isinstance(record, dict):
            problems.append(problem(LABEL, name, f"record {number} is a {type(record).__name__}, not an object",
                                    "export one JSON object per turn", row=number))
            continue
        conv = text_of(record.get("conversation_name"))
        if not conv or not conv.strip() or isinstance(record.get("conversation_name"), (dict, list)):
            problems.append(problem(LABEL, name, f"record {number} has no conversation_name",
                                    "export the interaction-log table with all its columns", row=number,
                                    column="conversation_name"))
            continue
        conv = conv.strip().rstrip("/").rsplit("/sessions/", 1)[-1]
        try:
            position = float(text_of(record.get("turn_position")) or "nan")
        except (ValueError, OverflowError):
            position = float("nan")
        if position != position:
            problems.append(problem(LABEL, name, f"record {number}: turn_position is not a number",
                                    "export the interaction-log table again", row=number, column="turn_position",
                                    value=text_of(record.get("turn_position"))))
            continue
        for column in ("request", "response"):
            raw_value = record.get(column)
            if isinstance(raw_value, str) and raw_value.strip() and not as_dict(raw_value):
                problems.append(problem(LABEL, name, f"record {number}: the {column} column is not valid JSON "
                                        "(it may be cut)", "export the interaction-log table again",
                                        row=number, column=column, value=raw_value[:80]))
        out.append((number, name, conv, position, record))
    return out


def _turn_rows(turn: dict, number: int, conv: str, position: float, rows: list, records: list,
               stats: Counter) -> None:
    request, response = as_dict(turn.get("request")), as_dict(turn.get("response"))
    result = as_dict(response.get("queryResult"))
    signals = as_dict(as_dict(turn.get("conversation_signals")).get("turnSignals"))
    derived = as_dict(turn.get("derived_data"))
    query = as_dict(request.get("queryInput"))
    when = iso_from_text(turn.get("request_time"))
    turn_id = f"{conv}:{text_of(position)}"
    channel = text_of(as_dict(request.get("queryParams")).get("channel"))
    user_text = text_of(as_dict(query.get("text")).get("text")) or text_of(result.get("text")) \
        or text_of(result.get("transcript"))
    match = as_dict(result.get("match"))
    intent = text_of(as_dict(match.get("intent")).get("displayName")) \
        or text_of(as_dict(result.get("intent")).get("displayName"))
    confidence = match.get("confidence", result.get("intentDetectionConfidence"))
    no_match = text_of(match.get("matchType")) == "NO_MATCH" or signals.get("noMatch") is True
    messages = [m for m in as_list(result.get("responseMessages")) if isinstance(m, dict)]
    live_handoff = any("liveAgentHandoff" in m for m in messages)
    escalated = signals.get("userEscalated") is True or signals.get("agentEscalated") is True or live_handoff
    conv_fields = {"__abandoned": "true" if signals.get("triggeredAbandonmentEvent") is True else None,
                   "__thumbs": _THUMBS.get(text_of(as_dict(turn.get("bot_answer_feedback")).get("rating")) or "")}
    if escalated:
        stats["handoff"] += 1
        conv_fields["escalation_reason"] = ("user asked for a live agent" if signals.get("userEscalated") is True
                                            else "live agent handoff")
    if signals.get("sentimentScore") is not None:
        stats["sentiment"] += 1
    if user_text:
        stats["no_match"] += no_match
        rows.append({"conversation_id": conv, "timestamp": when, "speaker": "user", "text": user_text,
                     "message_id": f"{turn_id}:user", "channel": channel,
                     "intent": FALLBACK_INTENT if no_match else intent,
                     "confidence": None if no_match and intent is None else text_of(confidence),
                     "event": "handoff" if escalated else None,
                     "__sentiment_score": text_of(signals.get("sentimentScore")), **conv_fields})
        records.append(number)
    texts = [t for m in messages for t in as_list(as_dict(m.get("text")).get("text")) if text_of(t)]
    if not texts and text_of(derived.get("agentUtterances")):
        texts = [text_of(derived.get("agentUtterances"))]
    for i, text in enumerate(texts):
        rows.append({"conversation_id": conv, "timestamp": when, "speaker": "bot", "text": text_of(text),
                     "message_id": f"{turn_id}:bot{i + 1}", "channel": channel,
                     "event": "handoff" if escalated and not user_text and i == 0 else None, **conv_fields})
        records.append(number)


def _conversation_fields(rows: list) -> None:
    """Outcome escalated > abandoned from the turn signals; thumbs and escalation reason per session."""
    per = {}
    for r in rows:
        p = per.setdefault(r["conversation_id"], {})
        if r.get("escalation_reason"):
            p.setdefault("escalation_reason", r["escalation_reason"])
            p["outcome"] = "escalated"
        if r.get("__abandoned") and p.get("outcome") != "escalated":
            p["outcome"] = "abandoned"
        if r.get("__thumbs"):
            p["thumbs"] = r["__thumbs"]  # the last feedback of the session wins
    for r in rows:
        r.pop("__abandoned", None)
        r.pop("__thumbs", None)
        r.pop("escalation_reason", None)
        r.update(per[r["conversation_id"]])


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="The BigQuery interaction-log export (CSV, JSON or JSONL), one row per turn.",
    source_fields={
        "conversation_id": "conversation_name (the session id after /sessions/)",
        "timestamp": "request_time (both the user message and the bot replies of the turn)",
        "speaker": "user for the request, bot for each text response",
        "text": "user: request.queryInput.text.text (else response.queryResult.text/transcript); bot: "
                "response.queryResult.responseMessages[].text.text (else derived_data.agentUtterances)",
        "message_id": "<session>:<turn_position>:user|bot<n>",
        "channel": "request.queryParams.channel",
        "intent, confidence": "response.queryResult.match.intent.displayName / match.confidence (else "
                              "queryResult.intent.displayName / intentDetectionConfidence); NO_MATCH or the "
                              "noMatch signal -> nlu_fallback",
        "event": "'handoff' on a turn with conversation_signals.turnSignals.userEscalated/agentEscalated or a "
                 "liveAgentHandoff response",
        "outcome": "escalated (an escalation signal) > abandoned (triggeredAbandonmentEvent); else missing",
        "escalation_reason": "'user asked for a live agent' (userEscalated) or 'live agent handoff'",
        "thumbs": "bot_answer_feedback.rating THUMBS_UP/THUMBS_DOWN (the session's last)",
    },
)
