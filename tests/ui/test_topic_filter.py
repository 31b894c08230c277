"""A (re)named topic is a filter everywhere: the Topics page stores which conversations are in which topic,
the sidebar's "Topic" filter (every page, kept in the URL as ``?topics=``) keeps exactly those conversations,
a rename shows at once, and the Conversations page lists them. Plus the shared URL state: dataset and filters
in the link, bad values falling back with a notice, the active-filters badge and the reset button."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from test_page_topics import _rows

TOPICS = str(ROOT / "pages" / "10_Topics.py")
CONVERSATIONS = str(ROOT / "pages" / "11_Conversations.py")
OUTCOMES = str(ROOT / "pages" / "3_Outcomes.py")


def _values(at: AppTest, name: str) -> list:
    """A URL parameter's values (AppTest keeps one value as a string, several as a list)."""
    value = at.query_params.get(name)
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def seeded(db_path):
    from metrics import store

    db = store.connect(str(db_path))
    saved = store.save_messages(db, messages_frame(_rows()), dataset_name="topics test", source_format="csv",
                                file_name="topics.csv")
    db.close()
    return db_path, saved.dataset_id


def _stored_pairs(db_path, dataset_id):
    from metrics import store
    from metrics.topics import persist

    db = store.connect(str(db_path))
    try:
        return persist.conversation_topics(db, dataset_id, "messages")
    finally:
        db.close()


def _topics_page(dataset_id: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["dataset"] = str(dataset_id)
    _run(at)
    at.switch_page("pages/10_Topics.py")
    at.query_params["k"] = "3"
    return _run(at)


def test_the_topic_run_stores_its_conversations(seeded):
    db_path, dataset_id = seeded
    _topics_page(dataset_id)
    pairs = _stored_pairs(db_path, dataset_id)
    # three clear topics over 36 conversations (the hostile one joins the refund topic)
    assert pairs["topic"].nunique() == 3
    assert pairs["conversation_id"].nunique() == 37
    by_topic = pairs.groupby("topic")["conversation_id"].apply(lambda c: {x.split("-")[0] for x in c})
    assert sorted(sorted(v) for v in by_topic) == [["hostile", "refund"], ["package"], ["password"]]


def test_filter_every_page_by_a_renamed_topic(seeded):
    db_path, dataset_id = seeded
    at = _topics_page(dataset_id)
    pairs = _stored_pairs(db_path, dataset_id)
    package = int(pairs.loc[pairs["conversation_id"] == "package-0", "topic"].iloc[0])
    at.selectbox(key=f"topics_pick_{dataset_id}_1_messages").set_value(package)
    _run(at)
    at.text_input(key="topics_new_name").set_value("Parcel tracking")
    at.button(key="topics_rename").click()
    _run(at)
    at.button(key="topics_filter_all").click()
    _run(at)
    assert _values(at, "topics") == [str(package)]
    # the sidebar shows the new name, one active filter and a reset button
    picked = at.multiselect(key="shell_topic_Topics")
    assert picked.value == [package]
    assert "Parcel tracking" in picked.format_func(package)
    assert any("badge[" in m.value and "1 filter active" in m.value for m in at.sidebar.markdown)

    # another page: the slice holds exactly the topic's conversations
    at.switch_page("pages/3_Outcomes.py")
    _run(at)
    assert at.multiselect(key="shell_topic_Outcomes & escalations").value == [package]
    link = dict(at.query_params)
    fresh = AppTest.from_file(OUTCOMES, default_timeout=300)
    fresh.query_params.update(link)
    _run(fresh)
    assert fresh.multiselect(key="shell_topic_Outcomes & escalations").value == [package]  # a copied link keeps the filter

    # the Topics page opens the topic's conversations on the Conversations page (?found=<id>)
    at.switch_page("pages/10_Topics.py")
    _run(at)
    at.button(key="topics_open_convs").click()
    _run(at)
    assert _values(at, "found") == [str(package)]
    expected = set(pairs.loc[pairs["topic"] == package, "conversation_id"])
    listed = set(at.dataframe[0].value["conversation_id"])
    assert listed == expected and all(c.startswith("package-") for c in listed)
    assert f"{len(expected)} of 37 conversation(s) match" in " ".join(c.value for c in at.caption)
    assert "Parcel tracking" in at.selectbox(key="conv_1_1_found").format_func(str(package))

    # reset clears it everywhere
    at.switch_page("pages/3_Outcomes.py")
    _run(at)
    at.button(key="shell_reset_Outcomes & escalations").click()
    _run(at)
    assert "topics" not in at.query_params
    assert at.session_state["filters"] == {}


def test_apply_filters_keeps_exactly_the_topic_conversations(seeded):
    import pandas as pd

    from metrics import store
    from metrics.core.rollup import conversation_rollup
    from ui.shell import apply_filters

    db_path, dataset_id = seeded
    _topics_page(dataset_id)
    pairs = _stored_pairs(db_path, dataset_id)
    db = store.connect(str(db_path))
    messages = store.load_messages(db, dataset_id)
    db.close()
    rollup = conversation_rollup(messages)
    for topic in sorted(pairs["topic"].unique()):
        m, r = apply_filters(messages, rollup, {"topic": [int(topic)]}, pairs)
        expected = set(pairs.loc[pairs["topic"] == topic, "conversation_id"])
        assert set(r["conversation_id"]) == expected
        assert set(m["conversation_id"]) == expected
        assert len(m) == int(messages["conversation_id"].isin(expected).sum())
    both = sorted(pairs["topic"].unique())[:2]
    _, r = apply_filters(messages, rollup, {"topic": both}, pairs)
    assert set(r["conversation_id"]) == set(pairs.loc[pairs["topic"].isin(both), "conversation_id"])
    assert isinstance(r, pd.DataFrame)


def test_a_link_with_bad_filters_falls_back_with_a_notice(seeded):
    _, dataset_id = seeded
    at = AppTest.from_file(OUTCOMES, default_timeout=300)
    at.query_params.update({"dataset": "999", "period": "yesterday", "topics": ["x"]})
    _run(at)
    notices = " ".join(w.value for w in at.warning)
    assert "dataset '999'" in notices and "period 'yesterday'" in notices and "topics" in notices
    assert at.query_params["dataset"] == str(at.session_state["active_dataset_id"])
    assert "period" not in at.query_params and "topics" not in at.query_params


def test_a_link_with_a_period_filters_and_survives_page_changes(seeded):
    _, dataset_id = seeded
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update({"dataset": str(dataset_id), "period": "2026-08-03..2026-08-05"})
    _run(at)
    assert at.session_state["filters"]["dates"][0].isoformat() == "2026-08-03"
    assert at.date_input(key="shell_dates_Overview").value[1].isoformat() == "2026-08-05"
    at.switch_page("pages/2_Engagement.py")
    at.query_params.clear()  # a sidebar link carries no parameters
    _run(at)  # the session's filters stay and are written back
    assert at.date_input(key="shell_dates_Engagement").value[0].isoformat() == "2026-08-03"
    assert at.query_params["period"] == "2026-08-03..2026-08-05"
    assert at.query_params["dataset"] == str(dataset_id)
