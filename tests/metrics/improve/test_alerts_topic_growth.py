"""The ``topic_growth`` alert rule: breached when a topic of the user messages is growing or new in the evaluated
week, naming it (by its stored name for a stored dataset); the topics' growth table it reads; rule syntax."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, messages_frame
from metrics import store
from metrics.improve import alerts
from metrics.improve import store as goals_store
from metrics.improve.alerts import evaluate_rules, parse_rule, parse_rules
from metrics.errors import ConfigError
from metrics.core.rollup import conversation_rollup
from metrics.topics import TopicOptions, discover_topics, persist, topic_growth

RUN_CLI = "import sys, metrics.cli as c; sys.exit(c.main(sys.argv[1:]))"
STEADY = {"refund": ["I want a refund of my money", "refund the money please", "money back refund now",
                     "refund money to my card", "is my refund money sent", "refund money for the order"],
          "package": ["track the parcel delivery", "parcel delivery tracking number", "parcel delivery is late",
                      "when does the parcel delivery come", "where is the parcel delivery",
                      "parcel delivery address change"]}
NEW = ["forgot password login", "password login reset", "login password expired", "new password login"]


def _frame(*, surge: bool) -> pd.DataFrame:
    """Three complete ISO weeks (Mon 2026-08-03 .. Sun 2026-08-23) and one Monday after: refund and package
    questions, 12 a week each; with ``surge`` a password topic appears in the third week (12 messages)."""
    rows, n = [], 0
    for week in range(3):
        monday = pd.Timestamp("2026-08-03T09:00Z") + pd.Timedelta(weeks=week)
        texts = [t for items in STEADY.values() for t in items * 2]
        if surge and week == 2:
            texts += NEW * 3
        for i, text in enumerate(texts):
            ts = monday + pd.Timedelta(hours=i * 2)
            rows += [{"conversation_id": f"c{n}", "timestamp": ts.isoformat(), "speaker": "user", "text": text},
                     {"conversation_id": f"c{n}", "timestamp": (ts + pd.Timedelta(seconds=5)).isoformat(),
                      "speaker": "bot", "text": "Done. Anything else?"}]
            n += 1
    rows.append({"conversation_id": "late", "timestamp": "2026-08-24T09:00:00Z", "speaker": "user",
                 "text": "hello"})
    return messages_frame(rows)


def test_the_rule_parses_as_an_event_rule():
    assert parse_rule("topic growth").text == "topic_growth"
    assert parse_rules('{"rules": ["topic_growth", {"metric": "topic_growth", "name": "New asks"}]}',
                       fmt="json")[1].label == "New asks"
    with pytest.raises(ConfigError, match="topic_growth takes no operator or threshold"):
        alerts.AlertRule("topic_growth", ">", 0.5)


def test_a_new_topic_breaches_the_rule_and_is_named():
    m = _frame(surge=True)
    model = discover_topics(m, options=TopicOptions(n_topics=3))
    [res] = evaluate_rules(m, conversation_rollup(m), [parse_rule("topic_growth")], topic_model=model)
    assert res.week == "2026-W34" and res.evaluated and res.breached
    password = int(model.assignments.loc[model.assignments["text"] == NEW[0], "topic"].iloc[0])
    label = model.topics.set_index("topic").loc[password, "label"]
    assert res.n == 1 and f"'{label}' (new, 12 message(s) in the last 7 days)" in res.reason
    assert "Topic growth: growing or new topic(s)" in res.sentence()
    report = alerts.alerts_report([res])
    assert report["breached"][0]["detail"] == res.reason

    names = pd.DataFrame({"topic": [password], "name": ["Password resets"], "source": ["renamed"]})
    [named] = evaluate_rules(m, conversation_rollup(m), [parse_rule("topic_growth")], topic_model=model,
                             topic_names=names)
    assert "'Password resets' (new" in named.reason


def test_steady_topics_do_not_breach_it_and_the_topics_are_found_when_not_given():
    m = _frame(surge=False)
    [res] = evaluate_rules(m, conversation_rollup(m), [parse_rule("topic_growth")])
    assert res.evaluated and not res.breached and res.n == 0
    assert res.sentence() == "Topic growth: no growing or new topic in 2026-W34"


def test_the_week_evaluated_bounds_the_windows():
    """A surge after the evaluated week does not count: the windows end with the week."""
    m = _frame(surge=False)
    extra = [{"conversation_id": f"x{i}", "timestamp": f"2026-08-24T1{i % 10}:00:00Z", "speaker": "user",
              "text": NEW[i % 4]} for i in range(12)]
    m = messages_frame(m.to_dict("records") + extra)
    model = discover_topics(m, options=TopicOptions(n_topics=3))
    [res] = evaluate_rules(m, conversation_rollup(m), [parse_rule("topic_growth")], topic_model=model)
    assert res.week == "2026-W34" and not res.breached
    whole = topic_growth(model)  # on the whole data the password topic is new
    assert whole["new"].sum() == 1


def test_growth_table_matches_topic_outcomes():
    from metrics.topics import topic_outcomes

    m = _frame(surge=True)
    model = discover_topics(m, options=TopicOptions(n_topics=3))
    g = topic_growth(model)
    o = topic_outcomes(model, m)
    cols = ["topic", "recent_count", "prior_count", "wow_change", "growing", "new"]
    pd.testing.assert_frame_equal(g[cols], o[cols])
    assert g["message_count"].sum() == len(model.assignments)


def test_cli_on_a_stored_dataset_uses_the_stored_names(tmp_path):
    db_path = tmp_path / "alerts.db"
    db = store.connect(str(db_path))
    info = store.save_messages(db, _frame(surge=True), dataset_name="bot")
    messages = store.load_messages(db, info.dataset_id)
    model = discover_topics(messages)
    persist.save_snapshot(db, info.dataset_id, "messages", model.snapshot, version=info.version,
                          assignments=model.assignments)
    password = int(model.assignments.loc[model.assignments["text"] == NEW[0], "topic"].iloc[0])
    persist.rename_topic(db, info.dataset_id, "messages", password, "Password resets")
    goals_store.save_alert_rules(db, [parse_rule("topic_growth", name="New questions")])
    db.close()
    done = subprocess.run([sys.executable, "-c", RUN_CLI, "alerts", "--db", str(db_path), "--dataset", "bot"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    [breached] = report["breached"]
    assert breached["metric"] == "topic_growth" and breached["name"] == "New questions"
    assert "'Password resets' (" in breached["detail"]
