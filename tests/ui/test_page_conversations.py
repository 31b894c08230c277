"""AppTest of the Conversations page on the built-in sample: search, URL filters, transcript, back, export."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from metrics.io.loaders import load_path

PAGE = "pages/11_Conversations.py"


@pytest.fixture(scope="module")
def sample():
    return load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("conversations") / "chatlens.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATLENS_DB", str(path))
        yield path


def _page(**params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page(PAGE)
    at.query_params.update(params)
    return _run(at)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _key(at: AppTest, suffix: str, kind: str = "selectbox") -> str:
    keys = [w.key for w in getattr(at, kind) if (w.key or "").endswith(suffix)]
    assert len(keys) == 1, keys
    return keys[0]


def _count(at: AppTest) -> int:
    found = [int(m.group(1).replace(",", "")) for c in at.caption
             if (m := re.match(r"([\d,]+) of [\d,]+ conversation\(s\) match", c.value))]
    assert found, [c.value for c in at.caption]
    return found[0]


def _all_ids(at: AppTest) -> list[str]:
    """Every conversation of the result list, page by page."""
    ids = list(at.dataframe[0].value["conversation_id"])
    pages = -(-_count(at) // 50)
    key = _key(at, "_page", "number_input")
    for page in range(2, pages + 1):
        at.number_input(key=key).set_value(page)
        _run(at)
        ids += list(at.dataframe[0].value["conversation_id"])
    return ids


def _containing(sample: pd.DataFrame, word: str) -> set[str]:
    hits = sample["text"].fillna("").str.contains(rf"\b{word}\b", case=False, regex=True)
    return set(sample.loc[hits, "conversation_id"])


def test_search_box_lists_exactly_the_matching_conversations(store_path, sample):
    at = _page()
    assert _count(at) == sample["conversation_id"].nunique()
    assert len(at.dataframe[0].value) == 50
    assert {"conversation_id", "started_at", "message_count", "outcome", "preview"} <= set(at.dataframe[0].value)
    at.text_input(key=_key(at, "_q", "text_input")).set_value("broken")
    _run(at)
    want = _containing(sample, "broken")
    assert _count(at) == len(want) and at.query_params["q"] == "broken"
    ids = _all_ids(at)
    assert len(ids) == len(set(ids)) and set(ids) == want
    # the preview is the first user message
    first = sample[sample["speaker"] == "user"].drop_duplicates("conversation_id").set_index("conversation_id")
    row = at.dataframe[0].value.iloc[0]
    assert row["preview"] == first.loc[row["conversation_id"], "text"][:160]


def test_a_filter_from_the_url_applies_and_a_bad_value_falls_back(store_path, sample):
    at = _page(intent="billing", channel="web")
    intents = set(sample.loc[sample["intent"] == "billing", "conversation_id"])
    web = set(sample.loc[sample["channel"] == "web", "conversation_id"])
    assert _count(at) == len(intents & web)
    assert at.selectbox(key=_key(at, "_intent")).value == "billing"
    assert set(_all_ids(at)) == intents & web

    bad = _page(channel="<script>", rating="11", outcome="resolved", definition="Rasa style")
    assert any("invalid link value for rating, channel:" in c.value for c in bad.caption)
    assert bad.selectbox(key=_key(bad, "_channel")).value == "(any)"
    rasa = bad.selectbox(key=_key(bad, "_outcome"))
    assert rasa.value == "resolved"
    assert _count(bad) < sample["conversation_id"].nunique()


def test_open_a_conversation_then_back_to_the_list(store_path, sample):
    at = _page(q="refund order", channel="web")
    count = _count(at)
    cid = at.dataframe[0].value.iloc[0]["conversation_id"]
    at.selectbox(key=_key(at, "_pick_0")).select(cid)
    _run(at)
    assert at.query_params["cid"] == cid and at.query_params["q"] == "refund order"
    assert [s.value for s in at.subheader] == [f"Conversation {cid}"]
    convo = sample[sample["conversation_id"] == cid]
    assert len(at.chat_message) == len(convo)
    texts = [t.value for t in at.text]
    assert all(t in texts for t in convo["text"].fillna(""))
    meta = [t for t in texts if t.startswith("user · ")]
    assert meta and all("sentiment" in t for t in meta) and any("intent " in t for t in meta)
    outcomes = [d.value for d in at.dataframe if "definition" in d.value.columns]
    assert outcomes and len(outcomes[0]) == 5
    at.button(key=_key(at, "_back", "button")).click()
    _run(at)
    assert "cid" not in at.query_params and _count(at) == count
    assert at.text_input(key=_key(at, "_q", "text_input")).value == "refund order"
    assert at.selectbox(key=_key(at, "_channel")).value == "web"


def test_a_link_opens_the_conversation_and_the_export_is_offered(store_path):
    at = _page(cid="conv-00002")
    assert [s.value for s in at.subheader] == ["Conversation conv-00002"]
    lst = _page(topic="inquiry")
    assert any(b.proto.label.startswith("Download the result list") for b in lst.get("download_button"))


def test_a_drill_down_opens_this_page_with_its_filter_in_the_url(store_path, sample):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/3_Outcomes.py")
    _run(at)
    reason = "Customer requested agent"
    at.session_state["outcomes_reasons"] = {"selection": {"reason_pick": [{"reason": reason}]}}
    _run(at)
    at.button(key="outcomes_reasons_search").click()
    _run(at)
    assert at.query_params["reason"] == reason
    assert at.selectbox(key=_key(at, "_reason")).value == reason
    from metrics.core.rollup import conversation_rollup

    rollup = conversation_rollup(sample)
    assert _count(at) == int((rollup["escalation_reason"] == reason).sum())


def test_open_conversation_from_a_drill_down_list_shows_its_transcript(store_path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/3_Outcomes.py")
    _run(at)
    at.session_state["outcomes_reasons"] = {"selection": {"reason_pick": [{"reason": "Customer requested agent"}]}}
    _run(at)
    listed = [d for d in at.dataframe if "conversation_id" in d.value.columns and d.key == "outcomes_reasons_list"]
    assert listed
    cid = listed[0].value.iloc[0]["conversation_id"]
    at.session_state["outcomes_reasons_list"] = {"selection": {"rows": [0], "columns": []}}
    _run(at)
    at.button(key="outcomes_reasons_list_open").click()
    _run(at)
    assert at.query_params["cid"] == cid
    assert [s.value for s in at.subheader] == [f"Conversation {cid}"]


def test_date_range_and_outcome_from_the_url(store_path, sample):
    from metrics import outcomes
    from metrics.core.rollup import conversation_rollup

    rollup = conversation_rollup(sample)
    day = rollup["started_at"].min().date() + pd.Timedelta(days=7)
    at = _page(**{"from": day.isoformat(), "to": day.isoformat(), "outcome": "escalated"})
    started = rollup.set_index("conversation_id")["started_at"].dt.date
    escalated = outcomes.outcome_table(sample, rollup).set_index("conversation_id")["outcome"] == "escalated"
    want = {cid for cid, d in started.items() if d == day and escalated[cid]}
    assert want and set(_all_ids(at)) == want
    bad = _page(**{"from": "2026-13-45", "to": "1999-01-01"})
    assert any("invalid link value for from, to:" in c.value for c in bad.caption)
    assert _count(bad) == sample["conversation_id"].nunique()


def test_a_dataset_without_timestamps_or_channels_lists_no_empty_columns(db_path):
    """HINT3-like data (user lines only, no time, no channel): the list has no column of empty cells and no
    "None" anywhere; a missing preview shows as a dash."""
    from conftest import messages_frame
    from metrics import store

    db = store.connect(str(db_path))
    rows = [{"conversation_id": f"c{i}", "speaker": "user", "text": f"question number {i}"} for i in range(5)]
    rows.append({"conversation_id": "bot-only", "speaker": "bot", "text": "hello"})
    saved = store.save_messages(db, messages_frame(rows), dataset_name="untimed")
    db.close()
    at = _page(dataset=str(saved.dataset_id))
    table = at.dataframe[0].value
    assert list(table.columns) == ["conversation_id", "message_count", "outcome", "preview"]
    assert table.set_index("conversation_id").loc["bot-only", "preview"] == "—"
    assert not table.isna().any().any()
