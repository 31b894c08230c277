"""The Audit page (pages/8_Audit.py) under AppTest: pick/add a reviewer, create a round, fill the
rubric form, save, see progress, resubmit, edit, a failed save that keeps the form, results,
and the labels reaching the Intents page."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from metrics import store
from metrics.audit import store as audit_store
from metrics.audit import CRITERIA, assign_reviewers
from metrics.errors import StoreError

PAGE = str(ROOT / "pages" / "8_Audit.py")


def _rows(n: int = 6) -> list[dict]:
    rows = []
    for i in range(n):
        intent = ("billing", "refund", "order_status")[i % 3]
        rows += [
            {"conversation_id": f"c{i}", "speaker": "user", "text": f"question {i} about my {intent}",
             "intent": intent, "confidence": 0.3 + 0.1 * i, "timestamp": f"2026-08-0{i + 1}T10:00:00Z",
             "topic": "billing" if i % 2 else "orders", "channel": "web"},
            {"conversation_id": f"c{i}", "speaker": "bot", "text": f"<b>answer</b> {i}",
             "timestamp": f"2026-08-0{i + 1}T10:00:04Z"},
        ]
    return rows


def _seed(db_path, n: int = 6) -> int:
    db = store.connect(str(db_path))
    ds = store.save_messages(db, messages_frame(_rows(n)), dataset_name="audit test").dataset_id
    db.close()
    return ds


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _app() -> AppTest:
    return _run(AppTest.from_file(PAGE, default_timeout=60))


def _button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}: {[b.label for b in at.button]}"
    return found[0]


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _add_reviewer(at: AppTest, name: str) -> None:
    at.text_input(key="audit_new_reviewer").set_value(name)
    _button(at, "Add reviewer").click()
    _run(at)


def _pick(at: AppTest, name: str) -> None:
    at.selectbox(key="audit_reviewer").set_value(name)
    _run(at)


def _add_and_pick(at: AppTest, name: str) -> None:
    _add_reviewer(at, name)
    _pick(at, name)


def _create_round(at: AppTest, *, n=4, reviewers=("Ann", "Ben"), overlap=1.0, seed=7) -> None:
    at.text_input(key="audit_round_name").set_value("week 32")
    at.number_input(key="audit_n").set_value(n)
    at.number_input(key="audit_seed").set_value(seed)
    at.multiselect(key="audit_round_reviewers").set_value(list(reviewers))
    at.slider(key="audit_overlap").set_value(overlap)
    _button(at, "Create round").click()
    _run(at)


def _fill(at: AppTest, scores: dict, *, verdict=None, true_intent=None, good=False, note=None) -> None:
    for radio in at.radio:
        if radio.key.startswith("audit_score_"):
            criterion = next(c for c in CRITERIA if radio.key.startswith(f"audit_score_{c}_"))
            if criterion in scores:
                radio.set_value(scores[criterion])
        if verdict and radio.key.startswith("audit_verdict_"):
            radio.set_value(verdict)
    if true_intent:
        for box in at.selectbox:
            if box.key.startswith("audit_true_intent_"):
                box.set_value(true_intent)
    if good:
        next(c for c in at.checkbox if c.key.startswith("audit_flag_good_example_")).check()
    if note is not None:
        next(t for t in at.text_area if t.key.startswith("audit_note_")).set_value(note)


def _save(at: AppTest) -> AppTest:
    _button(at, "Save review").click()
    return _run(at)


def _score_value(at: AppTest, criterion: str):
    return next(r for r in at.radio if r.key.startswith(f"audit_score_{criterion}_")).value


def test_pick_reviewer_create_round_review_resubmit_edit(db_path):
    ds = _seed(db_path)
    at = _app()
    assert "Pick your name above" in _texts(at.info)
    _add_reviewer(at, "Ben")
    _add_reviewer(at, "Ann")
    assert at.selectbox(key="audit_reviewer").value is None  # adding a reviewer does not pick them
    assert at.selectbox(key="audit_reviewer").options == ["Ann", "Ben"]
    _pick(at, "Ann")
    assert at.query_params["reviewer"] == "Ann"  # the choice is in the link: a reload keeps it
    assert "No audit round for this dataset yet" in _texts(at.info)
    _create_round(at)
    assert "Round 'week 32' created" in _texts(at.success)
    assert "**Ann: 0 of 4 reviewed**" in _texts(at.markdown)

    db = store.connect(str(db_path))
    info = audit_store.get_round(db, "week 32")
    queue = audit_store.reviewer_queue(db, int(info["id"]), "Ann")
    first = queue["conversation_id"].iloc[0]
    assert at.selectbox(key="audit_current").value == first
    # the transcript is shown as chat bubbles, literally (no HTML)
    assert any(e.value == "<b>answer</b> " + first[1:] for e in at.get("text"))

    scores = {"understood_intent": 2, "accurate_helpful": 3, "tone": 4, "edge_cases": 3, "overall": 2}
    _fill(at, scores, verdict="no", true_intent="refund", good=True, note="=HYPERLINK(1)")
    _save(at)
    assert f"Saved {first} (revision 1)" in _texts(at.success)
    assert "**Ann: 1 of 4 reviewed**" in _texts(at.markdown)
    got = audit_store.get_score(db, int(info["id"]), first, "Ann")
    assert {c: got[c] for c in CRITERIA} == scores and got["flags"] == ("good_example",)
    assert got["note"] == "=HYPERLINK(1)"
    # the "intent correct? no -> refund" answer is a true_intent label the Intents page reads
    labels = audit_store.intent_labels(db, ds)
    assert labels["true_intent"].tolist() == ["refund"]
    messages = store.load_messages(db, ds)
    user_row = messages[(messages["conversation_id"] == first) & (messages["speaker"] == "user")]
    assert labels["message_key"].tolist() == store.message_keys(user_row).tolist()

    # resubmitting the same values: nothing new
    _save(at)
    assert "Already saved: nothing changed (revision 1)" in _texts(at.info)
    assert len(audit_store.score_history(db, int(info["id"]), first, "Ann")) == 1
    # the form shows the saved values; edit one and save again
    assert _score_value(at, "tone") == 4
    _fill(at, {"tone": 1})
    _save(at)
    assert f"Saved {first} (revision 2)" in _texts(at.success)
    history = audit_store.score_history(db, int(info["id"]), first, "Ann")
    assert history["tone"].tolist() == [4, 1]
    assert "**Ann: 1 of 4 reviewed**" in _texts(at.markdown)

    _button(at, "Next unreviewed").click()
    _run(at)
    assert at.selectbox(key="audit_current").value == queue["conversation_id"].iloc[1]
    db.close()


def test_labels_are_applied_on_the_intents_page(db_path):
    ds = _seed(db_path)
    db = store.connect(str(db_path))
    rid = audit_store.create_round(db, name="r", dataset_id=ds, strategy="random", seed=1,
                                   sample=pd.DataFrame({"position": [1], "conversation_id": ["c0"]}),
                                   assignments=assign_reviewers(["c0"], ["ann"]))
    db.close()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_reviewer_name"] = "ann"
    _run(at)
    _fill(at, {c: 3 for c in CRITERIA}, verdict="no", true_intent="order_status")
    _save(at)
    assert "Saved c0 (revision 1)" in _texts(at.success)
    # through app.py: the Intents page links to this page, which only resolves from the entrypoint
    intents_page = _run(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60))
    intents_page.switch_page("pages/4_Intents.py")
    _run(intents_page)
    assert "1 reviewer label(s) from the Audit page are applied" in _texts(intents_page.caption)
    assert rid == 1


def test_a_failed_save_says_so_and_keeps_the_values(db_path, monkeypatch):
    _seed(db_path)
    at = _app()
    _add_and_pick(at, "Ann")
    _create_round(at, reviewers=("Ann",), overlap=0.0)

    def broken(*args, **kwargs):
        raise StoreError("the store is busy: could not get the write lock (database is locked)")

    original = audit_store.save_score
    monkeypatch.setattr(audit_store, "save_score", broken)
    scores = {"understood_intent": 5, "accurate_helpful": 4, "tone": 3, "edge_cases": 2, "overall": 1}
    _fill(at, scores, note="keep me")
    _save(at)
    assert "Not saved: the store is busy" in _texts(at.error)
    assert "Your answers are still in the form" in _texts(at.error)
    assert {c: _score_value(at, c) for c in CRITERIA} == scores
    assert next(t for t in at.text_area if t.key.startswith("audit_note_")).value == "keep me"
    assert "**Ann: 0 of 4 reviewed**" in _texts(at.markdown)
    # the store answers again: the same form saves (not monkeypatch.undo(): it would also drop CHATLENS_DB)
    monkeypatch.setattr(audit_store, "save_score", original)
    _save(at)
    assert "(revision 1)" in _texts(at.success)
    assert "**Ann: 1 of 4 reviewed**" in _texts(at.markdown)


def test_every_criterion_is_required(db_path):
    _seed(db_path)
    at = _app()
    _add_and_pick(at, "Ann")
    _create_round(at, reviewers=("Ann",), overlap=0.0, n=2)
    _fill(at, {"understood_intent": 4, "accurate_helpful": 4, "edge_cases": 4, "overall": 4})
    _save(at)
    assert "missing: Tone" in _texts(at.error)
    assert "**Ann: 0 of 2 reviewed**" in _texts(at.markdown)


def test_results_tab_shows_means_patterns_agreement_bias_and_examples(db_path):
    ds = _seed(db_path)
    db = store.connect(str(db_path))
    ids = [f"c{i}" for i in range(6)]
    rid = audit_store.create_round(db, name="results", dataset_id=ds, strategy="random", seed=1,
                                   sample=pd.DataFrame({"position": range(1, 7), "conversation_id": ids}),
                                   assignments=assign_reviewers(ids, ["ann", "ben"], overlap_rate=1.0))
    # billing conversations are c0 and c3: both scored 1-2 on understood_intent by both reviewers
    for i, cid in enumerate(ids):
        low = cid in ("c0", "c3")
        for reviewer, shift in (("ann", 0), ("ben", 1)):
            value = (1 if low else 4) + shift
            audit_store.save_score(db, round_id=rid, conversation_id=cid, reviewer=reviewer,
                                   scores={c: value for c in CRITERIA},
                                   flags=["bad_example"] if low and reviewer == "ann" else [])
    db.close()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_reviewer_name"] = "ann"
    _run(at)
    texts = _texts(at.get("text"))
    assert "2 of 2 billing conversations show the bot is confused (understood intent scored 2 or lower)." in texts
    frames = [d.value for d in at.dataframe]
    agreement = next(f for f in frames if "kappa" in f.columns)
    assert set(agreement["criterion"]) == set(CRITERIA) and agreement["pair_count"].iloc[0] == 6
    bias = next(f for f in frames if "bias" in f.columns)
    # ann scores one point lower than ben on every conversation: bias -0.5 and +0.5
    assert bias.set_index("reviewer")["bias"].round(6).to_dict() == {"ann": -0.5, "ben": 0.5}
    examples = next(f for f in frames if "example" in f.columns)
    assert sorted(examples["conversation_id"]) == ["c0", "c3"]
    assert any(m.label == "Outcome disagrees with reviewers" for m in at.metric)
    labels = [b.label for b in at.get("download_button")]
    assert "Export all scores (CSV, 12 rows)" in labels and "Download examples with transcripts (JSONL)" in labels


def test_the_reviewer_is_remembered_across_pages(db_path):
    _seed(db_path)
    at = _run(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60))
    at.switch_page("pages/8_Audit.py")
    _run(at)
    _add_and_pick(at, "Ann")
    at.switch_page("pages/4_Intents.py")
    _run(at)
    at.switch_page("pages/8_Audit.py")
    _run(at)
    assert at.selectbox(key="audit_reviewer").value == "Ann"


@pytest.mark.parametrize("name", ["", "   "])
def test_a_blank_reviewer_name_is_refused(db_path, name):
    _seed(db_path)
    at = _app()
    _add_reviewer(at, name)
    assert "Reviewer not added" in _texts(at.error)
    assert at.selectbox(key="audit_reviewer").options == []


def test_prioritised_round_offers_queued_conversations_first_and_takes_them_off_the_queue(db_path):
    from metrics.audit import queue as audit_queue

    ds = _seed(db_path)
    db = store.connect(str(db_path))
    audit_queue.queue_conversations(db, ds, ["c4"], reason="most negative")
    db.close()
    at = _app()
    _add_and_pick(at, "Ann")
    assert "1 conversation(s) queued for review from the Sentiment page" in _texts(at.caption)
    at.selectbox(key="audit_strategy").set_value("prioritised")
    _create_round(at, reviewers=("Ann",), overlap=0.0, n=3)
    db = store.connect(str(db_path))
    queue = audit_store.reviewer_queue(db, 1, "Ann")
    assert queue["conversation_id"].iloc[0] == "c4" and queue["reason"].iloc[0] == "queued for review"
    # c0 (0.3) and c1 (0.4) are below the 0.5 confidence cut; c0, the least confident, comes next;
    # round(3 * 0.2) = 1 slot stays random
    assert queue["conversation_id"].iloc[1] == "c0" and queue["reason"].iloc[2] == "random share"
    assert audit_queue.queued_conversations(db, ds).empty
    db.close()


def test_a_topic_link_from_the_overview_lists_that_topics_audited_conversations(db_path):
    ds = _seed(db_path)
    db = store.connect(str(db_path))
    ids = [f"c{i}" for i in range(6)]
    rid = audit_store.create_round(db, name="linked", dataset_id=ds, strategy="random", seed=1,
                                   sample=pd.DataFrame({"position": range(1, 7), "conversation_id": ids}),
                                   assignments=assign_reviewers(ids, ["ann"], overlap_rate=0.0))
    for cid in ids:
        audit_store.save_score(db, round_id=rid, conversation_id=cid, reviewer="ann",
                               scores={c: 3 for c in CRITERIA}, flags=[])
    topics = store.load_messages(db, ds).groupby("conversation_id")["topic"].first() if "topic" in \
        store.load_messages(db, ds).columns else None
    db.close()
    if topics is None:
        pytest.skip("the seeded dataset has no topic column")
    topic = topics.dropna().iloc[0]
    expected = int((topics == topic).sum())
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_reviewer_name"] = "ann"
    at.query_params["topic"] = topic
    _run(at)
    assert any(f"Audited conversations about {topic}: {expected}" in m.value for m in at.markdown)


def _rounds_with_scores(db_path, reviewers=("ann", "ben")):
    """A round of c0-c2 shared by ``reviewers`` (no score yet); returns (dataset id, round id)."""
    ds = _seed(db_path)
    db = store.connect(str(db_path))
    ids = ["c0", "c1", "c2"]
    for name in reviewers:
        audit_store.add_reviewer(db, name)
    rid = audit_store.create_round(db, name="shared", dataset_id=ds, strategy="random", seed=1,
                                   sample=pd.DataFrame({"position": range(1, 4), "conversation_id": ids}),
                                   assignments=assign_reviewers(ids, list(reviewers), overlap_rate=1.0))
    db.close()
    return ds, rid


def test_adding_a_reviewer_keeps_the_current_one(db_path):
    _, rid = _rounds_with_scores(db_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_reviewer_name"] = "ann"
    _run(at)
    assert at.selectbox(key="audit_reviewer").value == "ann"
    _add_reviewer(at, "cat")
    assert at.selectbox(key="audit_reviewer").value == "ann"  # still ann, not the name just added
    assert at.selectbox(key="audit_reviewer").options == ["ann", "ben", "cat"]
    assert at.query_params["reviewer"] == "ann"
    assert "Reviewer 'cat' added" in _texts(at.success)
    assert "**ann: 0 of 3 reviewed**" in _texts(at.markdown)
    # a round created now is recorded as created by ann
    _create_round(at, n=2, reviewers=("ann", "cat"), overlap=0.0)
    db = store.connect(str(db_path))
    assert audit_store.get_round(db, "week 32")["created_by"] == "ann"
    db.close()


def test_the_reviewer_in_the_link_survives_a_reload(db_path):
    _rounds_with_scores(db_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["reviewer"] = "ben"
    _run(at)
    assert at.selectbox(key="audit_reviewer").value == "ben"
    assert "**ben: 0 of 3 reviewed**" in _texts(at.markdown)
    assert not at.warning
    _pick(at, "ann")  # picking another name rewrites the link
    assert at.query_params["reviewer"] == "ann"


def test_an_unknown_reviewer_in_the_link_falls_back_with_a_notice(db_path):
    _rounds_with_scores(db_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_reviewer_name"] = "ann"
    at.query_params["reviewer"] = "**zed**"
    _run(at)
    assert at.selectbox(key="audit_reviewer").value == "ann"
    assert len(at.warning) == 1 and "'reviewer' = '\\*\\*zed\\*\\*' is not a stored reviewer" in at.warning[0].value
    assert at.query_params["reviewer"] == "ann"  # the link now names the reviewer shown
    _run(at)
    assert not at.warning


def test_results_show_a_score_saved_by_another_connection_on_the_next_rerun(db_path):
    _, rid = _rounds_with_scores(db_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_reviewer_name"] = "ann"
    _run(at)
    assert "No review saved in this round yet." in _texts(at.info)
    assert "Export all scores (CSV, 0 rows)" in [b.label for b in at.get("download_button")]
    other = store.connect(str(db_path))  # another reviewer's session, on its own connection
    audit_store.save_score(other, round_id=rid, conversation_id="c1", reviewer="ben",
                           scores={c: 4 for c in CRITERIA}, flags=[])
    other.close()
    _run(at)
    assert "No review saved in this round yet." not in _texts(at.info)
    means = next(d.value for d in at.dataframe if "mean_score" in d.value.columns)
    assert means["mean_score"].round(6).tolist() == [4.0] * len(CRITERIA)
    labels = [b.label for b in at.get("download_button")]
    assert "Export all scores (CSV, 1 rows)" in labels and "Export this round's scores (CSV, 1 rows)" in labels


def test_a_half_filled_review_is_kept_as_a_draft(db_path):
    """Leaving a half-filled review (another conversation, another page) keeps it as a draft, says so, and a
    save turns it into a review; nothing is stored before the save."""
    _seed(db_path)
    at = _app()
    _add_and_pick(at, "Ann")
    _create_round(at, reviewers=("Ann",), overlap=0.0)
    first = at.selectbox(key="audit_current").value
    _fill(at, {"understood_intent": 2, "tone": 5}, note="half way")
    _run(at)
    assert "Draft: your answers below are not saved yet" in _texts(at.warning)

    at.button(key="audit_next").click()  # leave it for the next conversation
    _run(at)
    assert at.selectbox(key="audit_current").value != first
    assert f"Unsaved draft(s) for 1 other conversation(s): #1 {first}" in _texts(at.warning)
    at.switch_page("2_Engagement.py")  # and leave the page (paths beside the Audit page, its main script)
    _run(at)
    at.switch_page("8_Audit.py")
    _run(at)
    at.selectbox(key="audit_current").set_value(first)
    _run(at)
    assert _score_value(at, "understood_intent") == 2 and _score_value(at, "tone") == 5
    assert _score_value(at, "overall") is None
    assert next(t for t in at.text_area if t.key.startswith("audit_note_")).value == "half way"
    db = store.connect(str(db_path))
    round_id = int(audit_store.get_round(db, "week 32")["id"])
    assert audit_store.get_score(db, round_id, first, "Ann") is None  # a draft is not a saved review

    _fill(at, {"accurate_helpful": 3, "edge_cases": 3, "overall": 2})
    _save(at)
    assert f"Saved {first} (revision 1)" in _texts(at.success)
    assert "Draft:" not in _texts(at.warning) and "Unsaved draft" not in _texts(at.warning)
    saved = audit_store.get_score(db, round_id, first, "Ann")
    assert saved["understood_intent"] == 2 and saved["tone"] == 5 and saved["note"] == "half way"
    db.close()
