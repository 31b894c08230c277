"""Microsoft Copilot Studio transcripts: the Dataverse ``conversationtranscript`` table.

Read as a JSON array, an OData answer ``{"value": [...]}``, JSONL or CSV, each record holding
``content``: a JSON string ``{"activities": [...]}`` of Bot Framework activities (``from.role``
0 = bot, 1 = user; epoch-second timestamps). A bare content object ``{"activities": [...]}`` is
read as one conversation. One transcript record = one conversation.

* ``message`` activities become messages; ``trace`` activities carry analytics:
  ``SessionInfo`` gives the outcome (Resolved / Escalated / Abandoned; ``None`` = an unengaged
  session, left without outcome), ``turnCount`` and ``impliedSuccess``; an ``UnknownIntent``
  trace marks the user message before it as a fallback (intent ``nlu_fallback``).
* The first ``DialogTracing`` topic after a user message is its intent (``...topic.Greeting`` ->
  ``Greeting``); with generative orchestration, the first step of the ``DynamicPlanReceived`` plan
  (``...component.AddAccountRow`` -> ``AddAccountRow``). An Escalate topic, a transfer action or a ``handoff.initiate`` event marks the
  user message before it with ``event = handoff``.
"""

from __future__ import annotations

import re
from collections import Counter

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import (
    FALLBACK_INTENT, as_dict, as_list, bool_option, build_table, csv_header, iso_from_text, json_keys_in,
    looks_like_json, parse_json_records, peek_text, problem, read_csv_records, text_of, unwrap,
)
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert", "OUTCOMES"]

NAME = "copilot_studio"
LABEL = "Microsoft Copilot Studio transcripts"
#: SessionInfo.outcome -> Chatlens outcome ("None" = unengaged: no outcome).
OUTCOMES = {"resolved": "resolved", "escalated": "escalated", "abandoned": "abandoned", "none": None}
_ROLES = {0: "bot", 1: "user", "0": "bot", "1": "user", "bot": "bot", "user": "user"}
_TRANSFER_ACTIONS = {"transferconversation", "transferconversationv2", "handoff"}
_HANDOFF_EVENTS = {"handoff.initiate", "handoff"}


def detect(data: bytes, file_name: str) -> bool:
    """JSON or CSV naming ``conversationtranscriptid`` with a ``content`` field, or a bare
    ``{"activities": [...]}`` of Bot Framework activities with numeric ``from.role``."""
    for _, text in peek_text(data, file_name):
        header = set(csv_header(text))
        if {"conversationtranscriptid", "content"} <= header:
            return True
        if json_keys_in(text, "conversationtranscriptid", "content"):
            return True
        if json_keys_in(text, "activities", "from", "role") and re.search(r'"role"\s*:\s*[01]\b', text) \
                and re.search(r'"type"\s*:\s*"(?:message|trace|event)"', text):
            return True
    return False


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    design_is_test = bool_option(options, "design_mode_is_test", False)
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    rows, records, problems = [], [], []
    stats = Counter()
    for name, content in parts:
        for number, record in _records(content, name, problems):
            _transcript(record, number, name, rows, records, problems, stats, design_is_test)
    # the platform writes "None" for an unengaged session: shown as words, never as the literal "None"
    outcomes = [f"{'unengaged' if k == 'outcome None' else k.removeprefix('outcome ')} {v}"
                for k, v in sorted(stats.items()) if k.startswith("outcome ")]
    notices = [f"{LABEL}: {stats['transcripts']} transcript(s); session outcomes given by the platform: "
               + (", ".join(outcomes) or "none") + "."]
    if stats["unengaged"]:
        notices.append(f"{LABEL}: {stats['unengaged']} session(s) are Unengaged (the platform gives them no "
                       "outcome); they have no outcome here either.")
    if stats["design"]:
        notices.append(f"{LABEL}: {stats['design']} transcript(s) come from the test canvas (isDesignMode)"
                       + ("; excluded as test traffic." if design_is_test
                          else "; they are kept as real traffic. Choose to exclude test-canvas transcripts when "
                               "loading the file if they are only the makers' tests."))
    if stats["empty"]:
        notices.append(f"{LABEL}: {stats['empty']} transcript(s) hold no messages.")
    label_file = parts[0][0] if len(parts) == 1 else file_name
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems, extra=("__turn_count", "__implied_success", "__session_type"))


def _records(content: bytes, name: str, problems: list) -> list:
    if not looks_like_json(content):
        header, recs, _ = read_csv_records(content, name, LABEL, required=("content",))
        out = []
        for number, fields in recs:
            if len(fields) != len(header):
                problems.append(problem(LABEL, name, f"record {number} has {len(fields)} fields but the header "
                                        f"has {len(header)}", "export the table again", row=number))
                continue
            out.append((number, dict(zip(header, fields))))
        return out
    recs, _ = parse_json_records(content, name, LABEL, list_keys=("value", "conversationtranscripts", "records",
                                                                 "data", "transcripts"))
    return recs


def _transcript(record, number: int, name: str, rows: list, records: list, problems: list, stats: Counter,
                design_is_test: bool) -> None:
    if not isinstance(record, dict):
        problems.append(problem(LABEL, name, f"record {number} is a {type(record).__name__}, not an object",
                                "export transcript records as JSON objects", row=number))
        return
    if "activities" in record and "content" not in record:
        content = record
    else:
        raw = record.get("content")
        content = as_dict(raw)
        if not content:
            problems.append(problem(LABEL, name, f"record {number}: 'content' is missing or not valid JSON "
                                    "(it may be cut)", "export the conversationtranscript table again",
                                    row=number, column="content",
                                    value=(text_of(raw) or "")[:80] or None))
            return
    activities = content.get("activities")
    if not isinstance(activities, list):
        problems.append(problem(LABEL, name, f"record {number}: content has no 'activities' list",
                                "export the conversationtranscript table again", row=number, column="content"))
        return
    stats["transcripts"] += 1
    stem = name.rsplit(":", 1)[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0] or "transcript"
    conv = text_of(record.get("conversationtranscriptid")) or text_of(record.get("name")) \
        or (stem if number == 1 else f"{stem}-{number}")
    bot = text_of(as_dict(record.get("metadata")).get("BotName"))
    start = len(rows)
    conv_fields = {}
    last_user = None
    awaiting_topic = False
    for activity in activities:
        if not isinstance(activity, dict):
            continue
        kind = activity.get("type")
        value = activity.get("value")
        value_type = activity.get("valueType")
        if kind == "message":
            sender = as_dict(activity.get("from"))
            role = sender.get("role")
            speaker = None if isinstance(role, (bool, dict, list)) else _ROLES.get(role)
            if speaker is None:
                problems.append(problem(LABEL, name, f"record {number}: a message has from.role "
                                        f"{sender.get('role')!r} (expected 0 = bot or 1 = user)",
                                        "export the transcript again", row=number, column="content",
                                        value=text_of(sender.get("role"))))
                continue
            rows.append({"conversation_id": conv, "timestamp": iso_from_text(activity.get("timestamp")),
                         "speaker": speaker, "text": _text(activity), "message_id": text_of(activity.get("id")),
                         "user_id": text_of(sender.get("id")) if speaker == "user" else None,
                         "channel": text_of(activity.get("channelId")), "model_version": bot})
            records.append(number)
            if speaker == "user":
                last_user, awaiting_topic = len(rows) - 1, True
        elif kind == "trace" and value_type == "UnknownIntent":
            if last_user is not None and rows[last_user].get("intent") is None:
                rows[last_user]["intent"] = FALLBACK_INTENT
            awaiting_topic = False
        elif kind == "trace" and value_type == "ConversationInfo":
            if as_dict(value).get("isDesignMode") is True:
                conv_fields["design"] = True
        elif kind == "trace" and value_type == "SessionInfo":
            info = as_dict(value)
            outcome = text_of(info.get("outcome"))
            stats[f"outcome {outcome}"] += 1
            if text_of(info.get("type")) == "Unengaged":
                stats["unengaged"] += 1
            conv_fields.update({"outcome": OUTCOMES.get((outcome or "none").lower(), (outcome or "").lower() or None),
                                "escalation_reason": text_of(info.get("outcomeReason")),
                                "__turn_count": text_of(info.get("turnCount")),
                                "__implied_success": text_of(info.get("impliedSuccess")),
                                "__session_type": text_of(info.get("type"))})
        elif kind == "event" and activity.get("name") == "DialogTracing":
            actions = [a for a in as_list(as_dict(value).get("actions")) if isinstance(a, dict)]
            if awaiting_topic and actions and last_user is not None:
                topic = text_of(actions[0].get("topicId")) or ""
                if topic and rows[last_user].get("intent") is None:
                    rows[last_user]["intent"] = topic.rsplit(".topic.", 1)[-1]
                awaiting_topic = False
            if any(_is_transfer(a) for a in actions):
                _mark_handoff(rows, last_user, start)
        elif kind == "event" and activity.get("name") == "DynamicPlanReceived":  # generative orchestration
            steps = [text_of(x) for x in as_list(as_dict(value).get("steps")) if text_of(x)]
            if awaiting_topic and steps and last_user is not None and rows[last_user].get("intent") is None:
                rows[last_user]["intent"] = steps[0].rsplit(".", 1)[-1]
            awaiting_topic = False
        elif kind == "event" and text_of(activity.get("name")) in _HANDOFF_EVENTS:
            _mark_handoff(rows, last_user, start)
    if len(rows) == start:
        stats["empty"] += 1
        return
    if conv_fields.pop("design", False):
        stats["design"] += 1
        if design_is_test:
            conv_fields["is_test"] = "true"
    for row in rows[start:]:
        row.update({k: v for k, v in conv_fields.items() if v is not None})


def _text(activity: dict) -> str:
    text = text_of(activity.get("text"))
    if text:
        return text
    kinds = [text_of(as_dict(a).get("contentType")) or "attachment" for a in as_list(activity.get("attachments"))]
    return f"[{', '.join(kinds)}]" if kinds else ""


def _is_transfer(action: dict) -> bool:
    topic = (text_of(action.get("topicId")) or "").lower()
    kind = (text_of(action.get("actionType")) or "").lower()
    return topic.endswith(".escalate") or kind in _TRANSFER_ACTIONS


def _mark_handoff(rows: list, last_user, start: int) -> None:
    if last_user is not None and last_user >= start and rows[last_user].get("event") is None:
        rows[last_user]["event"] = "handoff"


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="The Dataverse conversationtranscript table (JSON array, OData {value: [...]}, JSONL or CSV) "
                "whose content holds Bot Framework activities.",
    source_fields={
        "conversation_id": "conversationtranscriptid (else name)",
        "timestamp": "activity timestamp (epoch seconds)",
        "speaker": "message activity from.role: 0 -> bot, 1 -> user",
        "text": "message activity text (attachments-only messages show their content types)",
        "message_id": "activity id",
        "user_id": "from.id of user messages",
        "channel": "activity channelId",
        "model_version": "metadata.BotName (which copilot answered)",
        "intent": "first DialogTracing topicId after a user message (short name), or the first step of a "
                  "generative-orchestration plan (DynamicPlanReceived); nlu_fallback after an UnknownIntent trace",
        "event": "'handoff' on the user message before an Escalate topic, a transfer action or a "
                 "handoff.initiate event",
        "outcome": "SessionInfo.outcome: Resolved/Escalated/Abandoned -> resolved/escalated/abandoned; None "
                   "(unengaged) -> missing",
        "escalation_reason": "SessionInfo.outcomeReason when present",
        "is_test": "ConversationInfo.isDesignMode, only with design_mode_is_test=True",
    },
    options={"design_mode_is_test": "treat test-canvas transcripts (isDesignMode) as test traffic and exclude "
                                     "them (default False)"},
)
