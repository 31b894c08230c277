"""Rasa tracker store exports.

Three shapes are read, also mixed, gzipped or zipped:

* tracker JSON: ``{"sender_id": ..., "events": [...]}`` one per line (JSONL), as an array, or a
  single object (the ``GET /conversations/{id}/tracker`` answer);
* the SQL tracker store's ``events`` table exported as CSV:
  ``id, sender_id, type_name, timestamp, intent_name, action_name, data`` (``data`` holds the
  event as JSON);
* ``rasa export``-style JSONL: one event per line, each carrying its ``sender_id``.

Conversations are the sessions of a sender: a ``session_started`` event opens a new one once the
current session has messages; the conversation id is ``<sender_id>:<n>`` (n = 1, 2, ... per
sender) and ``user_id`` is the sender id, so returning users show up as repeat users.
"""

from __future__ import annotations

import json
import re

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import (
    as_dict, as_list, build_table, csv_header, iso_from_epoch, looks_like_json, names_option, parse_json_records,
    peek_text, problem, read_csv_records, text_of, unwrap,
)
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert", "DEFAULT_HANDOFF_NAMES"]

NAME = "rasa"
LABEL = "Rasa tracker store"
#: Action or intent names that mean "hand the user to a human".
DEFAULT_HANDOFF_NAMES = ("human_handoff", "action_handoff", "handoff")
_EVENT = re.compile(r'"event"\s*:\s*"(?:user|bot|action|session_started|slot|restart|user_featurization|'
                    r'active_loop|followup|action_execution_rejected)"')
_CSV_COLUMNS = {"sender_id", "type_name", "data"}


def detect(data: bytes, file_name: str) -> bool:
    """A CSV with ``sender_id, type_name, data`` columns, or JSON with ``sender_id`` and Rasa events."""
    for _, text in peek_text(data, file_name):
        if _CSV_COLUMNS <= set(csv_header(text)):
            return True
        if re.search(r'"sender_id"\s*:', text) and _EVENT.search(text):
            return True
    return False


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    handoff = {n.lower() for n in names_option(options, "handoff_names", DEFAULT_HANDOFF_NAMES)}
    problems, senders = [], {}
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    label_file = parts[0][0] if len(parts) == 1 else file_name
    for name, content in parts:
        if looks_like_json(content):
            events = _json_events(content, name, problems)
        else:
            events = _csv_events(content, name, problems)
        for sender, record, event in events:
            senders.setdefault(sender, []).append((record, event))
    rows, records, notices = [], [], []
    ranking = 0
    for sender, events in senders.items():
        ranking += _sender_rows(sender, events, handoff, rows, records)
    notices.append(f"{LABEL}: {len(senders)} sender(s), {len({r['conversation_id'] for r in rows})} session(s) "
                   "(a session_started event starts a new conversation).")
    if ranking:
        notices.append(f"{LABEL}: {ranking} user message(s) carry an intent_ranking (runner-up intents); "
                       "Chatlens keeps the top intent and its confidence.")
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems, extra=("__intent_ranking",))


def _csv_events(content: bytes, name: str, problems: list) -> list:
    header, records, _ = read_csv_records(content, name, LABEL, required=("sender_id", "type_name"))
    col = {h: i for i, h in enumerate(header)}
    out = []
    for number, fields in records:
        if len(fields) != len(header):
            problems.append(problem(LABEL, name, f"record {number} has {len(fields)} fields but the header has "
                                    f"{len(header)}", "export the events table again (quote the data column)",
                                    row=number))
            continue
        value = {h: fields[i] for h, i in col.items()}
        sender = value["sender_id"].strip()
        if not sender:
            problems.append(problem(LABEL, name, f"record {number} has no sender_id", "export the events table "
                                    "again", row=number, column="sender_id"))
            continue
        raw = value.get("data", "")
        if raw.strip():
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):
                last = " (it is the last record: the file looks truncated)" if number == records[-1][0] else ""
                problems.append(problem(LABEL, name, f"record {number}: the data column is not valid JSON{last}",
                                        "export the events table again; the record may be cut", row=number,
                                        column="data", value=raw[:80]))
                continue
            if not isinstance(event, dict):
                problems.append(problem(LABEL, name, f"record {number}: the data column is not a JSON object",
                                        "export the events table again", row=number, column="data",
                                        value=raw[:80]))
                continue
        else:
            event = {"timestamp": value.get("timestamp") or None, "name": value.get("action_name") or None,
                     "parse_data": {"intent": {"name": value.get("intent_name") or None}}}
        event.setdefault("event", value["type_name"].strip())
        if event.get("timestamp") is None and value.get("timestamp"):
            event["timestamp"] = value["timestamp"]
        out.append((sender, number, event, _number(value.get("id"))))
    if all(item[3] is not None for item in out):  # the table's id orders the events
        out.sort(key=lambda item: item[3])
    return [item[:3] for item in out]


def _number(value) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if result == result else None


def _json_events(content: bytes, name: str, problems: list) -> list:
    records, _ = parse_json_records(content, name, LABEL, list_keys=("trackers", "conversations"))
    out = []
    for number, record in records:
        if not isinstance(record, dict):
            problems.append(problem(LABEL, name, f"record {number} is a {type(record).__name__}, not an object",
                                    "each record must be a tracker or an event object", row=number))
            continue
        sender = text_of(record.get("sender_id"))
        if sender is None or not sender.strip() or isinstance(record.get("sender_id"), (dict, list)):
            problems.append(problem(LABEL, name, f"record {number} has no sender_id",
                                    "export trackers with their sender_id", row=number, column="sender_id"))
            continue
        sender = sender.strip()
        if "events" in record:
            events = record["events"]
            if not isinstance(events, list):
                problems.append(problem(LABEL, name, f"record {number}: 'events' is not a list",
                                        "export the tracker again", row=number, column="events"))
                continue
            bad = sum(1 for e in events if not isinstance(e, dict))
            if bad:
                problems.append(problem(LABEL, name, f"record {number}: {bad} event(s) are not objects",
                                        "export the tracker again", row=number, column="events"))
                continue
            out.extend((sender, number, e) for e in events)
        elif "event" in record:
            out.append((sender, number, record))
        else:
            problems.append(problem(LABEL, name, f"record {number} has neither 'events' nor 'event'",
                                    "export trackers ({sender_id, events}) or events ({sender_id, event, ...})",
                                    row=number))
    stamps = [_number(e.get("timestamp")) for _, _, e in out]
    if all(t is not None for t in stamps):  # events in time order (stable: ties keep the file's order)
        out = [item for _, item in sorted(zip(stamps, out), key=lambda pair: pair[0])]
    return out


def _sender_rows(sender: str, events: list, handoff: set, rows: list, records: list) -> int:
    """Append the message rows of one sender; returns how many user messages had an intent ranking."""
    session, ranking, has_rows = 1, 0, False
    start = len(rows)
    last_user = None
    anchor = None  # the session's start time: its session_started event, else its first event
    for record, event in events:
        kind = text_of(event.get("event"))
        if kind == "session_started":
            if has_rows:
                session, has_rows, last_user, anchor = session + 1, False, None, None
            anchor = _session_anchor(event) or anchor  # the last session start before the session's rows
            continue
        anchor = anchor or _session_anchor(event)
        # anchored to the session's start time, so the same session in two overlapping exports gets the same id
        # (a position in the file would not); the session number only when the events have no timestamps
        conv = f"{sender}:{anchor or session}"
        metadata = as_dict(event.get("metadata"))
        base = {"conversation_id": conv, "timestamp": iso_from_epoch(event.get("timestamp")),
                "user_id": sender, "model_version": text_of(metadata.get("model_id"))}
        if kind == "user":
            parse = as_dict(event.get("parse_data"))
            intent = as_dict(parse.get("intent"))
            name = text_of(intent.get("name"))
            row = dict(base, speaker="user", text=text_of(event.get("text")) or "",
                       message_id=text_of(event.get("message_id") or parse.get("message_id")),
                       channel=text_of(event.get("input_channel")), intent=name,
                       confidence=text_of(intent.get("confidence")))
            ranks = as_list(parse.get("intent_ranking"))
            if ranks:
                row["__intent_ranking"] = json.dumps(ranks, ensure_ascii=False, default=str)
                ranking += 1
            if name and name.lower() in handoff:
                row["event"] = "handoff"
                row["escalation_reason"] = f"intent {name}"
            rows.append(row)
            records.append(record)
            last_user, has_rows = len(rows) - 1, True
        elif kind == "bot":
            text = text_of(event.get("text"))
            if text is None:
                payload = as_dict(event.get("data"))
                shown = [k for k in ("buttons", "quick_replies", "image", "attachment", "elements", "custom")
                         if payload.get(k)]
                text = f"[{', '.join(shown)}]" if shown else ""
            rows.append(dict(base, speaker="bot", text=text, user_id=None))
            records.append(record)
            has_rows = True
        elif kind == "action":
            name = text_of(event.get("name"))
            if name and name.lower() in handoff:
                if last_user is not None and rows[last_user]["conversation_id"] == conv:
                    rows[last_user]["event"] = "handoff"
                    rows[last_user].setdefault("escalation_reason", f"action {name}")
                else:
                    rows.append(dict(base, speaker="system", text="", user_id=None, event="handoff",
                                     escalation_reason=f"action {name}"))
                    records.append(record)
                    has_rows = True
    _spread_conversation_field(rows[start:], "escalation_reason")
    return ranking


def _session_anchor(event: dict) -> str | None:
    """The event's time as ISO 8601 UTC (a session id's anchor), or None without a usable timestamp."""
    stamp = event.get("timestamp")
    if _number(stamp) is None:
        return None
    iso = iso_from_epoch(stamp)
    return iso if iso and iso[:1].isdigit() else None


def _spread_conversation_field(rows: list, key: str) -> None:
    first = {}
    for r in rows:
        if r.get(key) is not None:
            first.setdefault(r["conversation_id"], r[key])
    for r in rows:
        if r["conversation_id"] in first:
            r[key] = first[r["conversation_id"]]


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="Tracker JSON/JSONL ({sender_id, events}), the SQL tracker store's events table as CSV, "
                "or `rasa export` event JSONL.",
    source_fields={
        "conversation_id": "sender_id + ':' + the session's start time (ISO 8601 UTC; a session_started event "
                           "starts a new session; the session number when events have no timestamps)",
        "timestamp": "event timestamp (epoch seconds)",
        "speaker": "event type: user -> user, bot -> bot; a handoff with no user message -> system",
        "text": "user/bot event text (bot events without text show their [buttons]/[custom] payload kinds)",
        "message_id": "user event message_id",
        "user_id": "sender_id",
        "channel": "user event input_channel",
        "intent, confidence": "user event parse_data.intent.name / .confidence (intent_ranking is counted "
                              "in a notice, kept in the adapter's __intent_ranking column)",
        "event": "'handoff' on the user message whose intent, or the action that follows it, is a handoff "
                 "name",
        "escalation_reason": "'intent <name>' or 'action <name>' of the first handoff",
        "model_version": "event metadata.model_id",
    },
    options={"handoff_names": "action/intent names that hand over to a human (default: "
                              + ", ".join(DEFAULT_HANDOFF_NAMES) + "; case-insensitive)"},
)
