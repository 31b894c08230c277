"""ConvAI-style JSON dialogs (the ConvAI2 "wild evaluation" exports).

A JSON array (or JSONL) of dialogs: ``{"dialog": [{"id", "sender", "text", "sender_class"}, ...],
"eval_score", "profile_match", "start_time", "end_time", "participant1_id": {"class", "user_id"},
"participant2_id": {...}, "dialog_id"}``.

* ``sender_class`` Human -> user, Bot -> bot. Messages without it take the class of their sender
  from ``participant1_id`` / ``participant2_id`` (User/Human -> user, Bot -> bot), else from the
  ``participant_roles`` option (e.g. ``{"participant1": "user", "participant2": "bot"}``); a
  dialog that still cannot be told apart is reported as a problem.
* ``eval_score`` (the human's 1-5 score of the dialog) -> rating.
* The dialogs carry only a start and an end time: every message is dated at ``start_time`` and
  the last one at ``end_time``, so durations are right but response times inside a dialog are not
  measured (they show as 0). Exports without times load without timestamps.
* The human's ``user_id`` -> user_id; the bot's ``user_id`` (e.g. "Bot 004") -> model_version,
  so bots can be compared.
"""

from __future__ import annotations

import re
from collections import Counter

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import (
    upload_tag,
    as_dict, build_table, iso_from_text, json_keys_in, parse_json_records, peek_text, problem, text_of, unwrap,
)
from metrics.errors import ConfigError
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert"]

NAME = "convai"
LABEL = "ConvAI dialogs (JSON)"
_CLASSES = {"human": "user", "user": "user", "bot": "bot"}
_ROLES_FIX = ("pass the platform option participant_roles, e.g. {'participant1': 'user', 'participant2': 'bot'}, "
              "if every dialog of the file uses the same roles")


def detect(data: bytes, file_name: str) -> bool:
    """JSON dialogs: a ``dialog`` key whose messages have ``sender_class`` or a ``participant1/2`` sender."""
    for _, text in peek_text(data, file_name):
        if text.lstrip().startswith(("{", "[")) and json_keys_in(text, "dialog") and (
                json_keys_in(text, "sender_class")
                or re.search(r'"sender"\s*:\s*"participant[12]"', text)):
            return True
    return False


def _roles_option(options: dict) -> dict[str, str]:
    value = options.get("participant_roles", {})
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.lower() in ("user", "bot") for k, v in value.items()):
        raise ConfigError("option 'participant_roles' must map sender names to 'user' or 'bot', e.g. "
                          f"{{'participant1': 'user', 'participant2': 'bot'}}; got {value!r}")
    return {k: v.lower() for k, v in value.items()}


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    roles = _roles_option(options)
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    rows, records, problems, stats = [], [], [], Counter()
    for name, content in parts:
        recs, _ = parse_json_records(content, name, LABEL, list_keys=("dialogs", "data"))
        # dialogs without a dialog_id are numbered in the file: the content tag keeps two files' numbers apart
        stem = (name.rsplit(":", 1)[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0] or "dialog") + "@" + upload_tag(content)
        before, counted = len(problems), Counter(stats)
        for number, dialog in recs:
            _dialog(dialog, number, name, stem, roles, rows, records, problems, stats)
        failed = stats["unknown_sender"] - counted["unknown_sender"]
        spoken = (stats["dialogs"] - counted["dialogs"]) - (stats["empty"] - counted["empty"])
        if failed and failed == spoken:  # no dialog of this file tells the roles: one file-level problem
            problems[before:] = [p for p in problems[before:] if p.column != "sender_class"]
            problems.append(problem(LABEL, name, f"none of the {failed} dialog(s) says who is the human and who "
                                    "the bot (no sender_class, no participant1_id/participant2_id class)",
                                    _ROLES_FIX, column="sender_class"))
    notices = [f"{LABEL}: {stats['dialogs']} dialog(s); {stats['rated']} with an eval_score (the rating)."]
    if stats["empty"]:
        notices.append(f"{LABEL}: {stats['empty']} dialog(s) have no messages.")
    if stats["timed"]:
        notices.append(f"{LABEL}: dialogs give only start_time and end_time; messages are dated at the start "
                       "and the last one at the end, so response times inside a dialog are not measured.")
    label_file = parts[0][0] if len(parts) == 1 else file_name
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems)


def _dialog(dialog, number: int, name: str, stem: str, roles: dict, rows: list, records: list, problems: list,
            stats: Counter) -> None:
    if not isinstance(dialog, dict) or not isinstance(dialog.get("dialog"), list):
        problems.append(problem(LABEL, name, f"record {number} has no 'dialog' list", "export dialogs as "
                                "{\"dialog\": [...], ...} objects", row=number))
        return
    stats["dialogs"] += 1
    messages = [m for m in dialog["dialog"] if isinstance(m, dict)]
    if not messages:
        stats["empty"] += 1
        return
    participants = {}
    for key in ("participant1", "participant2"):
        info = as_dict(dialog.get(f"{key}_id"))
        participants[key] = (_CLASSES.get((text_of(info.get("class")) or "").lower()), text_of(info.get("user_id")))
    conv = text_of(dialog.get("dialog_id")) or f"{stem}:{number}"
    start = iso_from_text(dialog.get("start_time"))
    end = iso_from_text(dialog.get("end_time")) or start
    stats["timed"] += start is not None
    score = dialog.get("eval_score")
    stats["rated"] += score is not None
    out = []
    for i, message in enumerate(messages):
        sender = text_of(message.get("sender")) or ""
        speaker = _CLASSES.get((text_of(message.get("sender_class")) or "").lower()) \
            or participants.get(sender, (None, None))[0] or roles.get(sender)
        if speaker is None:
            stats["unknown_sender"] += 1
            problems.append(problem(LABEL, name, f"dialog {conv}: message {i + 1} (sender {sender or 'missing'!r}) "
                                    "has no sender_class and the dialog names no participant classes",
                                    _ROLES_FIX, row=number, column="sender_class"))
            return
        ident = participants.get(sender, (None, None))[1]
        out.append({"conversation_id": conv, "timestamp": end if i == len(messages) - 1 else start,
                    "speaker": speaker, "text": text_of(message.get("text")) or "",
                    "user_id": ident if speaker == "user" else None, "rating": text_of(score)})
    bot_id = next((pid for cls, pid in participants.values() if cls == "bot" and pid), None)
    for row in out:
        row["model_version"] = bot_id
    rows.extend(out)
    records.extend([number] * len(out))


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="ConvAI2-style JSON dialogs (an array or JSONL of {dialog: [...], eval_score, ...}).",
    source_fields={
        "conversation_id": "dialog_id (else <file>:<record number>)",
        "timestamp": "start_time for every message, end_time for the last (naive times are read in the chosen "
                     "time zone)",
        "speaker": "sender_class Human -> user, Bot -> bot; else the class of participant1_id/participant2_id; "
                   "else the participant_roles option",
        "text": "dialog[].text",
        "user_id": "user_id of the human participant",
        "model_version": "user_id of the bot participant (e.g. 'Bot 004')",
        "rating": "eval_score (1-5)",
    },
    options={"participant_roles": "sender -> 'user' or 'bot', for dialogs without sender_class or participant "
                                  "classes (e.g. {'participant1': 'user', 'participant2': 'bot'})"},
)
