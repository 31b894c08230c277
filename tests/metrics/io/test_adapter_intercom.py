"""Intercom adapter (metrics.io.adapters.intercom) on hand-built conversations in the REST API's shape.

tests/fixtures/platforms/intercom_conversations.json holds four conversation objects as
GET /conversations/{id} returns them (source, conversation_parts.conversation_parts with part_type, HTML body,
author {type, id, from_ai_agent, is_ai_answer}, conversation_rating {rating, remark}, ai_agent {resolution_state,
rating, rating_remark}, topics, state):
215471 Fin answers and the user confirms (confirmed_resolution, rated 5 "super fast"); 215472 Fin fails, the
conversation is assigned to a team and Sam answers, with an internal note (routed_to_team, rated 4); 215473 a
custom bot and a lead, still open; 215474 an email whose HTML holds a script and escaped markup, Fin answers as
an admin with from_ai_agent (abandoned).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, FUZZ_EXAMPLES, ROOT, fuzz_json, only_chatlens_errors
from metrics.io.adapters import read
from metrics.io.adapters.intercom import html_to_text
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "Intercom conversations (API JSON)"
PATH = FIXTURES / "platforms" / "intercom_conversations.json"


def _conversations():
    return json.loads(PATH.read_text())


def _first(frame, column):
    values = frame.groupby("conversation_id")[column].first()
    return values.astype(object).where(values.notna(), None).to_dict()


def test_fixture_golden_counts():
    result = load_path(PATH)
    assert result.format == "intercom"
    frame = result.frame
    # Independent count: the opening message plus every part with a body that is not an internal note.
    convs = _conversations()
    expected = {c["id"]: 1 + sum(1 for p in c["conversation_parts"]["conversation_parts"]
                                 if p["body"] and p["part_type"] != "note") for c in convs}
    # by hand: 215471 source + 3 comments; 215472 source + Fin + user + Sam + user (note, assignment, close
    # skipped); 215473 bot source + quick reply + bot; 215474 source + Fin
    assert expected == {"215471": 4, "215472": 5, "215473": 3, "215474": 2}
    assert frame.groupby("conversation_id").size().to_dict() == expected
    assert result.conversations == 4 and len(frame) == 14
    assert frame["speaker"].value_counts().to_dict() == {"user": 7, "bot": 6, "agent": 1}
    assert frame.loc[frame["speaker"] == "agent", "text"].tolist() == ["Hi, Sam here.\nI've refunded the duplicate "
                                                                        "charge."]
    assert _first(frame, "outcome") == {"215471": "resolved", "215472": "escalated", "215473": "in_progress",
                                        "215474": "abandoned"}
    assert _first(frame, "rating") == {"215471": 5.0, "215472": 4.0, "215473": None, "215474": None}
    assert _first(frame, "topic") == {"215471": "Account access", "215472": "Billing", "215473": None,
                                      "215474": None}
    assert _first(frame, "channel") == {"215471": "conversation", "215472": "conversation",
                                        "215473": "conversation", "215474": "email"}
    assert frame.loc[frame["event"] == "handoff", "text"].tolist() == ["That didn't help, I want a human"]
    assert sorted(frame["user_id"].dropna().unique()) == ["6601", "6602", "6603", "6604"]
    assert "internal" not in " ".join(frame["text"]) and "refund ticket" not in " ".join(frame["text"])
    assert any("1 internal note(s) and 3 part(s) without text" in n for n in result.notices)


def test_html_bodies_become_plain_text_without_markup():
    frame = load_path(PATH).frame.set_index("message_id")
    assert frame.loc["1001", "text"] == "You can reset it under Settings > Security.\nDid that help?"
    assert frame.loc["1003", "text"] == "Glad I could help 🙂"  # &#128578; unescaped
    assert frame.loc["1011", "text"] == "Duplicate charges are usually reversed within 3 days."  # &nbsp;
    # the script's code is dropped; &lt;b&gt; was text the user typed, so it stays as text
    assert frame.loc["9004", "text"] == "Can I use <b>bold</b> in templates?"
    assert "alert" not in " ".join(frame["text"]) and "href" not in " ".join(frame["text"])
    assert not any(re.search(r"</?(p|a|div|br|script)\b", t) for t in frame["text"])


def test_html_to_text_edge_cases():
    assert html_to_text("") == ""
    assert html_to_text("plain &amp; simple") == "plain & simple"
    assert html_to_text("<p>a</p><p></p><p>b</p>") == "a\nb"
    assert html_to_text("<style>p {color: red}</style><ul><li>one</li><li>two</li></ul>") == "one\ntwo"
    assert html_to_text("cut here <a href='x") == "cut here"  # an unfinished tag is dropped, never shown
    assert html_to_text("<![CDATA[x]]>ok<!-- note -->") == "ok"
    assert html_to_text("<p>a<script>alert(1)") == "a"  # an unclosed script hides the rest
    assert html_to_text("x < y and y > z") == "x < y and y > z"  # bare comparison signs are text


_TAGS = st.sampled_from(["p", "b", "i", "a href='https://x.example'", "div", "span", "br", "script", "style",
                         "img src=x onerror=alert(1)", "ul", "li", "h1", "table", "td"])
_PLAIN = st.text(alphabet=st.characters(blacklist_characters="<>&", blacklist_categories=("Cs",)), max_size=20)


@st.composite
def _html(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        if depth < 3 and draw(st.booleans()):
            tag = draw(_TAGS)
            parts.append(f"<{tag}>{draw(_html(depth + 1))}</{tag.split()[0]}>")
        else:
            parts.append(draw(_PLAIN))
    return "".join(parts)


@settings(max_examples=FUZZ_EXAMPLES)
@given(_html())
def test_property_no_markup_survives(html):
    text = html_to_text(html)
    assert "<" not in text and ">" not in text  # the plain parts held neither, so any would be markup
    assert "onerror" not in text and "href" not in text


def test_single_object_jsonl_and_wrapped_forms():
    convs = _conversations()
    one = load_bytes(json.dumps(convs[1]).encode(), "conversation.json").frame
    assert one["conversation_id"].unique().tolist() == ["215472"] and len(one) == 5
    lines = "\n".join(json.dumps(c) for c in convs).encode()
    assert len(load_bytes(lines, "conversations.jsonl").frame) == 14
    wrapped = json.dumps({"type": "conversation.list", "conversations": convs}).encode()
    assert len(load_bytes(wrapped, "page.json").frame) == 14


def test_list_endpoint_conversations_without_parts_say_so():
    conv = _conversations()[0]
    del conv["conversation_parts"]
    result = load_bytes(json.dumps([conv]).encode(), "list.json")
    assert len(result.frame) == 1 and any("GET /conversations/{id}" in n for n in result.notices)


def test_unknown_author_types_are_reported():
    conv = _conversations()[0]
    conv["conversation_parts"]["conversation_parts"][0]["author"]["type"] = "robot"
    with pytest.raises(ValidationError, match="author type 'robot'"):
        load_bytes(json.dumps([conv]).encode(), "c.json")


def test_truncated_export_is_refused_naming_the_platform():
    raw = PATH.read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[: len(raw) // 2], "intercom_conversations.json")
    message = info.value.problems[0].message
    assert message.startswith(f"{LABEL}: invalid JSON") and "truncated" in message


def test_a_conversation_without_id_is_a_problem_row():
    convs = _conversations()
    del convs[2]["id"]
    data = json.dumps(convs).encode()
    with pytest.raises(ValidationError, match=re.escape(f"{LABEL}: record 3 has no conversation id")):
        load_bytes(data, "c.json")
    assert load_bytes(data, "c.json", on_error="skip").conversations == 3


def test_cli_summary_names_the_platform():
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(PATH), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "intercom"
    assert (dataset["conversations"], dataset["messages"]) == (4, 14)


# --------------------------------------------------------------------------- fuzz

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["comment", "note", "assignment", "admin", "bot", "user", "<p>x &amp; y</p>",
                                      "<![if x]>", "routed_to_team", "\ud800"]))
_KEYS = st.one_of(st.sampled_from(["id", "type", "source", "body", "author", "from_ai_agent", "conversation_parts",
                                   "part_type", "created_at", "assigned_to", "conversation_rating", "rating",
                                   "remark", "ai_agent", "resolution_state", "state", "topics"]),
                  st.text(max_size=4))
_JSON = fuzz_json(_SCALARS, _KEYS)


@settings(max_examples=FUZZ_EXAMPLES)
@given(_JSON, st.lists(st.tuples(st.sampled_from(["source", "conversation_parts", "conversation_rating",
                                                  "ai_agent", "created_at", "state", "topics", "id"]), _JSON),
                       max_size=3))
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payload, replacements):
    convs = _conversations()
    for i, (key, value) in enumerate(replacements):
        convs[i % len(convs)][key] = value
    raw = json.dumps(convs + [payload]).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "c.json", platform="intercom", on_error="skip"))
    only_chatlens_errors(lambda: read(json.dumps(payload).encode("utf-8", "surrogatepass"), "c.json",
                                      platform="intercom"))
