"""AppTests of the Overview and Data pages on the embedded sample and on uploads."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import FIXTURES, ROOT


def app(path: str) -> AppTest:
    """Start at the home page like a browser does, then switch to ``path``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    if path != "app.py":
        at.switch_page(path).run()
        assert not at.exception, at.exception
    return at


def upload_and_save(at: AppTest, file_name: str, csv: bytes, dataset_name: str) -> int:
    """Upload ``csv`` on the Data page, save it as a new dataset; returns the active (saved) dataset id."""
    at.file_uploader(key="data_upload").set_value((file_name, csv, "text/csv")).run()
    at.text_input(key="data_name").set_value(dataset_name).run()
    at.button(key="data_save").click().run()
    assert not at.exception, at.exception
    return at.session_state["active_dataset_id"]


def test_overview_opens_on_the_generated_sample(db_path):
    at = app("app.py")
    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    # 3,000 generated conversations minus the 45 test conversations excluded at load
    assert metrics["Conversations"] == "2,955"
    assert "Sample" in " ".join(c.value for c in at.caption)


def test_sidebar_navigation_uses_readable_labels(db_path):
    at = app("app.py")
    labels = [link.label for link in at.sidebar.get("page_link")]
    assert labels[:2] == ["Overview", "Data"]
    assert "app" not in labels


def test_data_page_lists_the_dataset_and_browses_a_conversation(db_path):
    at = app("pages/1_Data.py")
    assert at.title[0].value == "Data"
    frames = at.dataframe
    assert any("conversation_count" in f.value.columns for f in frames)
    select = at.selectbox(key="data_browse_select")
    assert select.value == "conv-00001"
    # chat bubbles: one per message of the first conversation
    assert len(at.chat_message) >= 2


def test_upload_validates_and_saves_counting_new_and_duplicate_rows(db_path):
    at = app("pages/1_Data.py")
    csv = (b"session_id,role,message,created_at,msg_id\n"
           b"s1,customer,Where is my parcel?,2024-05-01T10:00:00Z,m1\n"
           b"s1,assistant,It ships today.,2024-05-01T10:00:03Z,m2\n")
    at.file_uploader(key="data_upload").set_value(("week1.csv", csv, "text/csv")).run()
    assert not at.exception
    assert any("Validation report" in m.value for m in at.markdown)
    at.text_input(key="data_name").set_value("Weekly export").run()
    at.button(key="data_save").click().run()
    assert not at.exception
    assert "2 new message(s), 0 already present" in at.success[0].value
    # the overlapping second week: m2 again plus one new message
    csv2 = csv.splitlines()[0] + b"\n" + csv.splitlines()[2] + b"\ns1,customer,thanks!,2024-05-01T10:01:00Z,m3\n"
    at.file_uploader(key="data_upload").set_value(("week2.csv", csv2, "text/csv")).run()
    at.selectbox(key="data_target").set_value("Weekly export").run()
    at.button(key="data_save").click().run()
    assert "1 new message(s), 1 already present" in at.success[0].value


def test_a_fresh_save_is_shown_without_reading_the_store_back(db_path, monkeypatch):
    from metrics import store

    reads = []
    real = store.load_messages
    monkeypatch.setattr(store, "load_messages", lambda db, dataset_id: reads.append(int(dataset_id))
                        or real(db, dataset_id))
    at = app("pages/1_Data.py")
    assert reads == []  # the sample was just saved into the empty store: its kept frame is shown
    csv = (b"session_id,role,message,created_at,msg_id\n"
           b"s9,customer,Where is my parcel?,2024-05-01T10:00:00Z,m1\n"
           b"s9,assistant,It ships today.,2024-05-01T10:00:03Z,m2\n")
    fresh = upload_and_save(at, "fresh.csv", csv, "Fresh")
    assert at.selectbox(key="data_browse_select").value == "s9"
    assert [m.text[1].value for m in at.chat_message] == ["Where is my parcel?", "It ships today."]
    assert fresh not in reads
    # adding to a dataset that holds messages: the new version is read back from the store
    more = csv.splitlines()[0] + b"\ns9,customer,thanks!,2024-05-01T10:01:00Z,m3\n"
    at.file_uploader(key="data_upload").set_value(("more.csv", more, "text/csv")).run()
    at.selectbox(key="data_target").set_value("Fresh").run()
    at.button(key="data_save").click().run()
    assert not at.exception, at.exception
    assert reads == [fresh]
    assert len(at.chat_message) == 3


def test_bad_upload_shows_an_error_not_a_traceback(db_path):
    at = app("pages/1_Data.py")
    data = (FIXTURES / "bad" / "unknown_speaker.csv").read_bytes()
    at.file_uploader(key="data_upload").set_value(("unknown_speaker.csv", data, "text/csv")).run()
    assert not at.exception
    assert "row 2" in at.error[0].value and "unknown speaker" in at.error[0].value
    # switching to "skip" loads the good row and lists the skipped one
    at.radio(key="data_on_error").set_value("skip").run()
    assert not at.exception
    assert any("1 row(s) were skipped" in w.value for w in at.warning)


def test_deep_link_to_the_data_page_works_without_the_home_page(db_path):
    # The page file run on its own, as a deep link on a fresh server does (app.py never ran):
    # the shared set-up still loads the sample and the active dataset.
    at = AppTest.from_file(str(ROOT / "pages" / "1_Data.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Data"
    assert at.sidebar.selectbox[0].value is not None
    assert at.selectbox(key="data_browse_select").value == "conv-00001"


def test_upload_names_the_detected_platform_and_allows_override(db_path):
    from conftest import shared_path

    path = shared_path("rasa_tracker_customer_support", "events_table.csv")
    at = app("pages/1_Data.py")
    at.file_uploader(key="data_upload").set_value(("events_table.csv", path.read_bytes(), "text/csv")).run()
    assert not at.exception
    report = " ".join(m.value for m in at.markdown)
    assert "read as: **Rasa" in report
    at.selectbox(key="data_platform").set_value("generic").run()
    assert not at.exception
    # read as a generic table the Rasa events table has no text column: a clear error, not a traceback
    assert "no message text column" in at.error[0].value


def test_a_large_save_scores_sentiment_in_the_background_for_the_first_page(db_path, monkeypatch):
    """ui.shell.save_dataset starts metrics.sentiment.prefetch_scores (here from 1 distinct text on); the first
    page that needs the scores takes them (once) instead of scoring again, and shows the same numbers."""
    from metrics import sentiment
    from ui import shell

    monkeypatch.setattr(sentiment, "PREFETCH_MIN_TEXTS", 1)
    looked_up = []
    real = sentiment.PendingScores.lookup
    monkeypatch.setattr(sentiment.PendingScores, "lookup",
                        lambda self, texts: looked_up.append(list(texts)) or real(self, texts))
    at = app("pages/1_Data.py")
    csv = (b"session_id,role,message,created_at,msg_id\n"
           b"s7,customer,this is useless and slow,2024-05-01T10:00:00Z,m1\n"
           b"s7,assistant,Sorry about that.,2024-05-01T10:00:03Z,m2\n"
           b"s7,customer,\"great, thanks a lot!\",2024-05-01T10:01:00Z,m3\n")
    fresh = upload_and_save(at, "bg.csv", csv, "Background")
    keys = [k for k in shell._PENDING if k[1] == fresh]
    assert len(keys) == 1  # the save left the background scoring for the first page
    at.switch_page("pages/5_Sentiment.py").run()
    assert not at.exception, at.exception
    assert shell._PENDING == {}  # taken once
    assert sorted(looked_up[-1]) == sorted(["this is useless and slow", "Sorry about that.", "great, thanks a lot!"])
    # the page shows the scores VADER gives these texts
    expected = sentiment.score_messages(pd.DataFrame({"text": ["this is useless and slow", "great, thanks a lot!"]}))
    assert expected.lt(0).sum() == 1 and expected.gt(0).sum() == 1
    shown = " ".join(str(m.value) for m in at.metric)
    assert shown, "the Sentiment page shows its headline metrics"


def test_a_score_cache_that_cannot_open_does_not_stop_the_save(db_path, monkeypatch):
    from metrics import sentiment
    from metrics.errors import StoreError
    from ui import shell

    monkeypatch.setattr(sentiment, "PREFETCH_MIN_TEXTS", 1)

    def locked(path):
        raise StoreError("the store is busy")

    monkeypatch.setattr(shell, "_score_cache", locked)
    at = app("pages/1_Data.py")
    csv = b"session_id,role,message\ns8,customer,hello there\ns8,assistant,hi!\n"
    fresh = upload_and_save(at, "busy.csv", csv, "Busy")
    assert "2 new message(s)" in at.success[0].value
    assert not [k for k in shell._PENDING if k[1] == fresh]  # no background scoring: the page will score
