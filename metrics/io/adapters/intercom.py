"""Intercom conversations, as the REST API returns them (``GET /conversations/{id}``).

One conversation object, an array of them, ``{"conversations": [...]}`` or JSONL. The opening
message is ``source`` (its ``body``, ``author`` and the conversation's ``created_at``), followed by
``conversation_parts.conversation_parts``.

* ``body`` is HTML: it is turned into plain text with the standard library's ``html.parser``
  (tags dropped, entities unescaped, ``<br>``/``<p>`` as line breaks; script/style content
  dropped). Markup is never kept.
* ``author.type``: user / lead / contact -> user; bot -> bot; admin -> agent, except parts with
  ``author.from_ai_agent`` (or ``is_ai_answer``) true -> bot (Fin); team -> agent.
* Internal notes (``part_type`` note) and parts without text (assignments, open/close without
  a message) are not messages; a part assigning the conversation to a teammate or team after the
  bot spoke marks the user's last message with ``event = handoff``.
* ``conversation_rating.rating`` (1-5) -> rating (else ``ai_agent.rating``);
  ``ai_agent.resolution_state`` -> outcome: assumed/confirmed_resolution -> resolved,
  routed_to_team / escalated / procedure_handoff -> escalated, abandoned -> abandoned,
  negative_feedback -> unresolved; without it an open or snoozed conversation is in_progress.
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import (
    as_dict, as_list, build_table, iso_from_text, json_keys_in, parse_json_records, peek_text, problem, text_of,
    unwrap,
)
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert", "html_to_text", "RESOLUTION_STATES"]

NAME = "intercom"
LABEL = "Intercom conversations (API JSON)"
RESOLUTION_STATES = {"assumed_resolution": "resolved", "confirmed_resolution": "resolved",
                     "routed_to_team": "escalated", "escalated": "escalated", "procedure_handoff": "escalated",
                     "abandoned": "abandoned", "negative_feedback": "unresolved"}
_SPEAKERS = {"user": "user", "lead": "user", "contact": "user", "bot": "bot", "admin": "agent", "team": "agent"}
_ASSIGNMENTS = {"assignment", "default_assignment", "assign_and_reopen", "assign_and_unsnooze",
                "away_mode_assignment"}


def detect(data: bytes, file_name: str) -> bool:
    """JSON with ``conversation_parts``, or an object of ``"type": "conversation"`` with a ``source``."""
    for _, text in peek_text(data, file_name):
        if text.lstrip().startswith(("{", "[")) and (
                json_keys_in(text, "conversation_parts")
                or (re.search(r'"type"\s*:\s*"conversation"', text) and json_keys_in(text, "source"))):
            return True
    return False


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    rows, records, problems, stats = [], [], [], Counter()
    for name, content in parts:
        recs, _ = parse_json_records(content, name, LABEL, list_keys=("conversations", "data", "items"))
        for number, record in recs:
            _conversation(record, number, name, rows, records, problems, stats)
    notices = [f"{LABEL}: {stats['conversations']} conversation(s); {stats['notes']} internal note(s) and "
               f"{stats['silent']} part(s) without text (assignments, state changes) are not messages."]
    if stats["without_parts"]:
        notices.append(f"{LABEL}: {stats['without_parts']} conversation(s) have no conversation_parts (the list "
                       "endpoint omits them): only their opening message is loaded. Export each conversation "
                       "with GET /conversations/{id}.")
    if stats["remarks"]:
        notices.append(f"{LABEL}: {stats['remarks']} rating remark(s) are kept in the adapter's __rating_remark "
                       "column only.")
    label_file = parts[0][0] if len(parts) == 1 else file_name
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems, extra=("__rating_remark",))


def _conversation(conv: object, number: int, name: str, rows: list, records: list, problems: list,
                  stats: Counter) -> None:
    if not isinstance(conv, dict):
        problems.append(problem(LABEL, name, f"record {number} is a {type(conv).__name__}, not an object",
                                "export conversations as JSON objects", row=number))
        return
    cid = text_of(conv.get("id"))
    if not cid or isinstance(conv.get("id"), (dict, list)):
        problems.append(problem(LABEL, name, f"record {number} has no conversation id", "export conversations "
                                "with their id", row=number, column="id"))
        return
    stats["conversations"] += 1
    container = conv.get("conversation_parts")
    parts = as_list(as_dict(container).get("conversation_parts")) if isinstance(container, dict) \
        else as_list(container)
    if container is None:
        stats["without_parts"] += 1
    source = as_dict(conv.get("source"))
    items = []
    if source:
        items.append(dict(source, created_at=conv.get("created_at"), part_type="source"))
    items.extend(p for p in parts if isinstance(p, dict))
    start = len(rows)
    bot_spoke, handed_off, last_user = False, False, None
    for part in items:
        part_type = text_of(part.get("part_type")) or ""
        author = as_dict(part.get("author"))
        if part_type == "note":
            stats["notes"] += 1
            continue
        if part_type in _ASSIGNMENTS and bot_spoke and not handed_off and part.get("assigned_to"):
            if last_user is not None:
                rows[last_user]["event"] = "handoff"
            handed_off = True
        text = html_to_text(text_of(part.get("body")) or "")
        if not text:
            if part_type != "source":
                stats["silent"] += 1
            continue
        kind = (text_of(author.get("type")) or "").lower()
        speaker = _SPEAKERS.get(kind)
        if speaker == "agent" and kind == "admin" and (author.get("from_ai_agent") is True
                                                       or author.get("is_ai_answer") is True):
            speaker = "bot"
        if speaker is None:
            problems.append(problem(LABEL, name, f"conversation {cid}: part {text_of(part.get('id'))} has author "
                                    f"type {kind or 'missing'!r} (expected user, lead, contact, bot, admin or team)",
                                    "export the conversation again", row=number, column="author.type",
                                    value=kind or None))
            continue
        rows.append({"conversation_id": cid, "timestamp": iso_from_text(part.get("created_at")),
                     "speaker": speaker, "text": text, "message_id": text_of(part.get("id")),
                     "user_id": text_of(author.get("id")) if speaker == "user" else None})
        records.append(number)
        if speaker == "user":
            last_user = len(rows) - 1
        elif speaker == "bot":
            bot_spoke = True
    if len(rows) == start:
        return
    fields = _conversation_fields(conv, stats)
    for row in rows[start:]:
        row.update(fields)


def _conversation_fields(conv: dict, stats: Counter) -> dict:
    rating = as_dict(conv.get("conversation_rating"))
    agent = as_dict(conv.get("ai_agent"))
    score = rating.get("rating") if rating.get("rating") is not None else agent.get("rating")
    remark = text_of(rating.get("remark")) or text_of(agent.get("rating_remark"))
    stats["remarks"] += bool(remark)
    state = (text_of(agent.get("resolution_state")) or "").lower()
    outcome = RESOLUTION_STATES.get(state, state or None)
    if outcome is None and text_of(conv.get("state")) in ("open", "snoozed"):
        outcome = "in_progress"
    topics = [text_of(as_dict(t).get("name")) for t in as_list(as_dict(conv.get("topics")).get("topics"))]
    return {"rating": text_of(score), "__rating_remark": remark, "outcome": outcome,
            "channel": text_of(as_dict(conv.get("source")).get("type")),
            "topic": next((t for t in topics if t), None)}


class _Text(HTMLParser):
    _BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
    _SKIP = {"script", "style", "template"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities unescaped, blocks on their own lines.

    Examples
    --------
    >>> html_to_text("<p>Hi <b>Jane</b> &amp; co,</p><p>it&#39;s <script>x()</script>done<br>ok</p>")
    "Hi Jane & co,\\nit's done\\nok"
    >>> html_to_text("a < b <img src=x onerror=alert(1)>")
    'a < b'
    """
    if "<" not in html and "&" not in html:
        return _tidy(html)
    parser = _Text()
    try:
        parser.feed(html)
        tail = parser.rawdata  # an unfinished tag at the end is dropped, never shown
        if tail and not tail.lstrip().startswith("<"):
            parser.handle_data(tail)
    except (AssertionError, ValueError):  # html.parser gives up on some broken declarations
        return _tidy(re.sub(r"<[^>]*>?", " ", html))
    return _tidy("".join(parser.parts))


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{2,}", "\n", "\n".join(lines)).strip()


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="Conversation objects from the Intercom REST API (one, an array, {conversations: [...]} or "
                "JSONL) with their conversation_parts.",
    source_fields={
        "conversation_id": "id",
        "timestamp": "created_at of the conversation (opening message) and of each part (epoch seconds)",
        "speaker": "author.type: user/lead/contact -> user, bot -> bot, admin -> agent (bot when "
                   "author.from_ai_agent or is_ai_answer), team -> agent",
        "text": "source.body and conversation_parts[].body, HTML turned into plain text",
        "message_id": "source.id / part id",
        "user_id": "author.id of user messages",
        "channel": "source.type",
        "topic": "topics.topics[0].name",
        "event": "'handoff' on the user's last message before the first assignment after the bot spoke",
        "rating": "conversation_rating.rating, else ai_agent.rating (remarks counted in a notice)",
        "outcome": "ai_agent.resolution_state (assumed/confirmed_resolution -> resolved, routed_to_team/"
                   "escalated/procedure_handoff -> escalated, abandoned, negative_feedback -> unresolved); "
                   "else state open/snoozed -> in_progress",
    },
)
