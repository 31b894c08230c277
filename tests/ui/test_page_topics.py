"""The Topics page (pages/10_Topics.py) under AppTest: the sample, the URL state, a chart click, renaming and
merging (stored, seen by a fresh session), the gaps view with its exports, hostile text shown literally."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from ui.fmt import literal

PAGE = str(ROOT / "pages" / "10_Topics.py")


def _page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def _table(at, column):
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with a {column!r} column")


def _rows():
    texts = {"refund": ["I want a refund", "refund my order please", "where is my refund", "refund not received",
                        "how do I get a refund", "refund for a broken item"],
             "password": ["I forgot my password", "reset my password", "password reset link broken",
                          "cannot log in, forgot my password", "change my password please", "new password please"],
             "package": ["where is my package", "track my package", "package delivery is late",
                         "when will my package arrive", "my package has not arrived", "package delivery status"]}
    rows = []
    for name, items in texts.items():
        for i, text in enumerate(items * 2):
            cid = f"{name}-{i}"
            day = f"2026-08-{3 + i:02d}T10:00:00Z"
            fallback = i % 4 == 0
            rows += [{"conversation_id": cid, "timestamp": day, "speaker": "user", "text": text,
                      "intent": "nlu_fallback" if fallback else name, "confidence": 0.2 if fallback else 0.9},
                     {"conversation_id": cid, "timestamp": day.replace("10:00:00", "10:00:05"), "speaker": "bot",
                      "text": "Sorry, I did not get that." if fallback else "Done. Anything else?"}]
    rows += [{"conversation_id": "hostile", "timestamp": "2026-08-20T10:00:00Z", "speaker": "user",
              "text": "**boom** [click](http://evil.example) :material/home: <b>x</b> $1$ refund", "intent": "refund",
              "confidence": 0.9}]
    return rows


@pytest.fixture
def seeded(db_path):
    from metrics import store

    db = store.connect(str(db_path))
    store.save_messages(db, messages_frame(_rows()), dataset_name="topics test", source_format="csv",
                        file_name="topics.csv")
    db.close()
    return db_path


def test_the_sample(db_path):
    at = _page()  # a fresh store: the app seeds the sample
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Topics", "Messages clustered", "Growing", "New"]
    assert int(at.metric[0].value) >= 5
    assert len(at.get("vega_lite_chart")) >= 2  # topic bars and the weekly trend
    table = _table(at, "escalation_rate")
    assert {"name", "message_count", "resolution_rate", "csat_rate", "wow_change", "growing", "new"} <= \
        set(table.columns)
    assert "Topic 1:" in _texts(at.markdown)
    assert at.query_params["view"] == "Topics" and at.query_params["unit"] == "messages"
    at.segmented_control(key="topics_view").set_value("Knowledge gaps")
    _rerun(at)
    assert [m.label for m in at.metric][:3] == ["Gap messages", "Share of user messages", "Gap topics"]
    gaps = _table(at, "score")
    assert gaps["rank"].tolist() == list(range(1, len(gaps) + 1)) and gaps["nearest_intent"].notna().all()
    assert "Export as training data" in _texts(at.markdown)
    assert [b.label for b in at.get("download_button")][-2:] == ["Download examples (CSV)",
                                                                 "Download Rasa NLU (YAML)"]


def test_url_state_and_bad_values(seeded):
    at = _page({"unit": "first", "k": "3", "view": "Topics"})
    assert at.radio(key="topics_unit").value == "first"
    assert at.metric[0].value == "3"
    bad = _page({"unit": "everything", "k": "500"})
    warnings = _texts(bad.warning)
    assert "unit 'everything'" in warnings and "500 topics" in warnings
    assert bad.radio(key="topics_unit").value == "messages"


def test_chart_click_selects_the_topic(seeded):
    at = _page({"k": "3"})
    ids = at.selectbox(key="topics_pick_1_1_messages").options  # keyed by dataset 1, version 1, unit
    at.session_state["topics_chart_1_messages"] = {"selection": {"topic_pick": [{"topic": 3}]}}
    _rerun(at)
    assert "Topic 3:" in _texts(at.markdown) and len(ids) == 3
    assert at.query_params["topic"] == "3"


def test_rename_pin_merge_are_stored(seeded):
    at = _page({"k": "3"})
    at.text_input(key="topics_new_name").set_value("Money back")
    at.button(key="topics_rename").click()
    _rerun(at)
    assert "is now 'Money back'" in _texts(at.success)
    names = _table(at, "escalation_rate")["name"].tolist()
    assert "Money back" in names
    fresh = _page({"k": "3"})  # a new session on the same store sees the name
    assert "Money back" in _table(fresh, "escalation_rate")["name"].tolist()
    fresh.multiselect(key="topics_merge_pick").set_value([fresh.multiselect(key="topics_merge_pick").options[0]])
    _rerun(fresh)
    fresh.button(key="topics_merge").click()
    _rerun(fresh)
    assert "Merged 1 topic(s)" in _texts(fresh.success)
    assert fresh.metric[0].value == "2"
    fresh.button(key="topics_unmerge").click()
    _rerun(fresh)
    assert fresh.metric[0].value == "3"


def test_gaps_view_and_hostile_text(seeded):
    at = _page({"view": "Knowledge gaps"})
    assert int(at.metric[0].value) >= 9  # the fallback messages (and the ones before "did not get that")
    assert "Closest existing intent" in _texts(at.caption)
    at.segmented_control(key="topics_view").set_value("Topics")
    _rerun(at)
    rendered = " ".join(str(e.value) for e in list(at.markdown) + list(at.caption))
    assert "**boom**" not in rendered and "](http" not in rendered and ":material/home:" not in rendered
    hostile = "**boom** [x](http://evil.example) :material/home:"
    at.text_input(key="topics_new_name").set_value(hostile)
    at.button(key="topics_rename").click()
    _rerun(at)
    heading = [str(m.value) for m in at.markdown if str(m.value).startswith("**Topic ")][0]
    topic = at.selectbox(key="topics_pick_1_1_messages").value
    assert heading == f"**Topic {topic}: {literal(hostile)}**"  # through the one escape helper
