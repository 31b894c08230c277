"""Gap topics as training data: CSV and Rasa NLU YAML (parsed back), intent names, nearest and overlapping
intents."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.errors import ConfigError
from metrics.topics import (examples_csv, intent_examples, intent_name, nearest_intents, overlapping_intents,
                            rasa_nlu_yaml, training_examples)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is usually there (streamlit brings it)
    yaml = None

HOSTILE = ["it's \"quoted\"", "colon: here # not a comment", "- starts like a list", "[x](entity) and [y]{\"a\": 1}",
           "tab\there", "line\nbreak", "carriage\r\nreturn", "nel\x85sep", "ls\u2028ps\u2029end", "ctrl\x00\x07chars",
           "| pipe > gt", "&anchor *alias !tag %percent @at `tick`", "émoji 🙂 and ümlaut", "   padded   ",
           "key: value: more", "'single'", "---", "...", "{a: b}", "null", "true", "1.5", "=SUM(A1)", "\ufeffbom"]


def strict_parse(text: str) -> dict:
    """A strict parser of exactly the Rasa 3.1 NLU layout ``rasa_nlu_yaml`` writes (no other YAML)."""
    lines = text.split("\n")
    assert lines[0] == 'version: "3.1"' and lines[-1] == ""
    if lines[1] == "nlu: []":
        return {"version": "3.1", "nlu": []}
    assert lines[1] == "nlu:"
    out, i = [], 2
    while i < len(lines) - 1:
        m = re.fullmatch(r"- intent: ([A-Za-z0-9][A-Za-z0-9_.\-]*)", lines[i])
        assert m, lines[i]
        assert lines[i + 1] == "  examples: |"
        examples, i = [], i + 2
        while i < len(lines) - 1 and lines[i].startswith("    - "):
            examples.append(lines[i][6:])
            i += 1
        out.append({"intent": m.group(1), "examples": "".join(f"- {e}\n" for e in examples)})
    return {"version": "3.1", "nlu": out}


def parse(text: str) -> dict:
    strict = strict_parse(text)
    if yaml is not None:
        assert yaml.safe_load(text) == strict
    return strict


def test_rasa_yaml_round_trips_hostile_texts():
    examples = training_examples(HOSTILE, intent="gap_hostile")
    doc = parse(rasa_nlu_yaml(examples))
    assert doc["version"] == "3.1"
    [block] = doc["nlu"]
    assert block["intent"] == "gap_hostile"
    back = [line[2:] for line in block["examples"].splitlines()]
    assert back == examples["text"].tolist()
    assert "line break" in back and "carriage return" in back and "ls ps end" in back
    assert "[x] (entity) and [y] {\"a\": 1}" in back  # not read as entity annotations by Rasa
    assert all("\n" not in t and "\x00" not in t and t == t.strip() for t in back)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8))
def test_rasa_yaml_parses_for_any_text(texts):
    examples = training_examples(texts, intent="gap_any")
    doc = parse(rasa_nlu_yaml(examples))
    got = [line[2:] for block in doc["nlu"] for line in block["examples"].splitlines()]
    assert got == examples["text"].tolist()


def test_several_intents_and_empty():
    frame = pd.concat([training_examples(["a b", "c"], intent="gap_one"),
                       training_examples(["d"], intent="gap_two")], ignore_index=True)
    doc = parse(rasa_nlu_yaml(frame))
    assert [b["intent"] for b in doc["nlu"]] == ["gap_one", "gap_two"]
    assert parse(rasa_nlu_yaml(frame.iloc[:0])) == {"version": "3.1", "nlu": []}
    with pytest.raises(ConfigError):
        rasa_nlu_yaml(pd.DataFrame({"intent": ["bad name: x"], "text": ["t"]}))
    with pytest.raises(ConfigError):
        training_examples(["t"], intent="two\nlines")


def test_training_examples_drop_empty_and_repeats():
    out = training_examples(["Refund please", "refund   PLEASE", " ", "\n", "refund 12", "refund 99"], intent="x")
    assert out["text"].tolist() == ["Refund please", "refund 12"]
    assert training_examples(["a", "b", "c"], intent="x", limit=2)["text"].tolist() == ["a", "b"]


def test_csv_export_escapes_formulas_and_round_trips():
    frame = training_examples(HOSTILE, intent="gap_hostile")
    data = examples_csv(frame)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows[0] == ["intent", "text"]
    texts = [r[1] for r in rows[1:]]
    assert "'=SUM(A1)" in texts and "'- starts like a list" in texts
    assert [t.removeprefix("'") if t.startswith("'=") or t.startswith("'-") else t for t in texts] == \
        frame["text"].tolist()


@pytest.mark.parametrize("label, name", [("cancel subscription, refund", "gap_cancel_subscription_refund"),
                                         ('"hi nova"', "gap_hi_nova"), ("", "gap_topic"),
                                         ("Ünïcödé — stuff", "gap_unicode_stuff"), ("x" * 200, "gap_" + "x" * 56)])
def test_intent_names(label, name):
    assert intent_name(label) == name
    assert re.fullmatch(r"[a-z0-9_]{1,60}", intent_name(label))


def test_nearest_and_overlapping_intents():
    messages = pd.DataFrame({
        "speaker": "user",
        "text": ["refund my order", "I want a refund", "refund please", "return my order", "return this item",
                 "return my order please", "hello", "hi there", "good morning", "blorp"],
        "intent": ["refund", "refund", "return", "return", "return", "refund", "greet", "greet", "greet",
                   "nlu_fallback"],
        "true_intent": ["refund", "refund", "refund", "return", "return", "return", "greet", "greet", "greet", None],
        "confidence": [0.9] * 9 + [0.1]})
    examples = intent_examples(messages)
    assert "nlu_fallback" not in set(examples["intent"])
    gaps = pd.DataFrame({"topic": [7, 7, 9], "text": ["refund status", "where is the refund", "good evening hi"]})
    near = nearest_intents(gaps, examples)
    assert near["nearest_intent"].tolist() == ["refund", "greet"]
    assert near["similarity"].between(0, 1).all()
    pairs = overlapping_intents(messages)
    assert ("refund", "return") in set(zip(pairs["intent_a"], pairs["intent_b"]))
    row = pairs.set_index(["intent_a", "intent_b"]).loc[("refund", "return")]
    assert row["confusion_count"] == 2 and row["confusion_rate"] == pytest.approx(2 / 6)
    assert ("greet", "refund") not in set(zip(pairs["intent_a"], pairs["intent_b"]))
    assert nearest_intents(gaps, examples.iloc[:0])["nearest_intent"].isna().all()


def test_characters_yaml_cannot_hold_are_replaced():
    texts = ["a\ufffeb", "c\uffffd", "e\ud800f", "g\x7fh", "i\x9fj"]
    doc = parse(rasa_nlu_yaml(training_examples(texts, intent="gap_odd")))
    assert [line[2:] for line in doc["nlu"][0]["examples"].splitlines()] == ["a b", "c d", "e f", "g h", "i j"]
