"""metrics/audit/store.py, metrics/audit/labels.py and metrics/audit/cli.py: rounds, the atomic
idempotent review save with history, labels for the Intents page, progress, export with formula
escaping, durability across a restart and two processes saving at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, messages_frame
from metrics import cli, store
from metrics.audit import store as audit_store
from metrics.audit import CRITERIA, assign_reviewers
from metrics.errors import ConfigError, StoreError

FOUR = {c: 4 for c in CRITERIA}


def _dataset(db, n: int = 4, name: str = "audit") -> int:
    rows = []
    for i in range(n):
        rows += [{"conversation_id": f"c{i}", "speaker": "user", "text": f"my bill {i} is wrong", "intent": "billing",
                  "confidence": 0.6, "timestamp": f"2026-08-0{i % 9 + 1}T10:00:00Z", "message_id": f"m{i}u"},
                 {"conversation_id": f"c{i}", "speaker": "bot", "text": "Let me check", "message_id": f"m{i}b",
                  "timestamp": f"2026-08-0{i % 9 + 1}T10:00:03Z"}]
    return store.save_messages(db, messages_frame(rows), dataset_name=name).dataset_id


def _round(db, dataset_id: int, ids, reviewers=("ann", "ben"), overlap=1.0, name="week 32") -> int:
    sample = pd.DataFrame({"position": range(1, len(ids) + 1), "conversation_id": list(ids),
                           "reason": ["random"] * len(ids)})
    return audit_store.create_round(db, name=name, dataset_id=dataset_id, strategy="random", seed=1, sample=sample,
                                    assignments=assign_reviewers(list(ids), list(reviewers), overlap_rate=overlap),
                                    params={"n": len(ids)}, created_by=reviewers[0])


@pytest.fixture
def setup(memory_db):
    ds = _dataset(memory_db)
    rid = _round(memory_db, ds, ["c0", "c1", "c2", "c3"])
    return memory_db, ds, rid


# --------------------------------------------------------------------------- reviewers and rounds

def test_reviewers_are_kept_sorted_and_blank_names_refused(memory_db):
    assert audit_store.list_reviewers(memory_db) == []
    audit_store.add_reviewer(memory_db, "ben")
    audit_store.add_reviewer(memory_db, " Ann ")
    audit_store.add_reviewer(memory_db, "ben")
    assert audit_store.list_reviewers(memory_db) == ["Ann", "ben"]
    with pytest.raises(ConfigError, match="''"):
        audit_store.add_reviewer(memory_db, "")


def test_round_is_stored_with_its_sample_and_a_double_create_returns_the_same_id(setup):
    db, ds, rid = setup
    info = audit_store.get_round(db, "week 32")
    assert (info["id"], info["dataset_id"], info["strategy"], info["seed"], info["params"]) == \
        (rid, ds, "random", 1, {"n": 4})
    assert info["conversation_count"] == 4 and info["reviewer_count"] == 2
    assert _round(db, ds, ["c0", "c1", "c2", "c3"]) == rid  # same round again (double click)
    with pytest.raises(ConfigError, match="'week 32' already exists"):
        _round(db, ds, ["c0", "c1"])
    with pytest.raises(ConfigError, match="no audit round 'nope'"):
        audit_store.get_round(db, "nope")
    a = audit_store.round_assignments(db, rid)
    assert len(a) == 8 and a["position"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert set(audit_store.list_reviewers(db)) == {"ann", "ben"}


# --------------------------------------------------------------------------- saving

def test_form_round_trip(setup):
    db, ds, rid = setup
    scores = {"understood_intent": 2, "accurate_helpful": 3, "tone": 5, "edge_cases": 1, "overall": 2}
    saved = audit_store.save_score(db, round_id=rid, conversation_id="c1", reviewer="ann", scores=scores,
                                   flags=["designed_limitation", "bad_example"], note="loops on refunds",
                                   labels=[{"message_key": "m1u", "verdict": "no", "true_intent": "refund",
                                            "predicted_intent": "billing"}])
    assert (saved.revision, saved.changed) == (1, True)
    got = audit_store.get_score(db, rid, "c1", "ann")
    assert {c: got[c] for c in CRITERIA} == scores
    assert got["flags"] == ("bad_example", "designed_limitation") and got["note"] == "loops on refunds"
    assert got["revision"] == 1 and got["saved_at"] == saved.saved_at
    loaded = audit_store.load_scores(db, rid)
    assert loaded[["conversation_id", "reviewer", "overall", "flags"]].values.tolist() == \
        [["c1", "ann", 2, "bad_example;designed_limitation"]]
    assert audit_store.reviewer_labels(db, ds, "ann", ["m1u", "m2u"]) == \
        {"m1u": {"verdict": "no", "true_intent": "refund"}}
    assert audit_store.get_score(db, rid, "c1", "ben") is None


def test_editing_updates_and_keeps_the_history(setup):
    db, ds, rid = setup
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR, note="first")
    second = audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann",
                                    scores={**FOUR, "tone": 2}, note="second look")
    assert (second.revision, second.changed) == (2, True)
    assert audit_store.get_score(db, rid, "c0", "ann")["tone"] == 2
    history = audit_store.score_history(db, rid, "c0", "ann")
    assert history[["revision", "tone", "note"]].values.tolist() == [[1, 4, "first"], [2, 2, "second look"]]
    assert len(audit_store.load_scores(db, rid)) == 1  # one current row, the history holds the versions


def test_double_submit_creates_no_duplicate(setup):
    db, ds, rid = setup
    label = [{"message_key": "m2u", "verdict": "yes", "predicted_intent": "billing"}]
    first = audit_store.save_score(db, round_id=rid, conversation_id="c2", reviewer="ben", scores=FOUR,
                                   flags=["good_example"], labels=label)
    again = audit_store.save_score(db, round_id=rid, conversation_id="c2", reviewer="ben", scores=dict(FOUR),
                                   flags=("good_example",), labels=label)
    assert (again.revision, again.changed, again.saved_at) == (1, False, first.saved_at)
    assert len(audit_store.score_history(db, rid, "c2", "ben")) == 1
    assert db.conn.execute("SELECT count(*) FROM audit_labels").fetchone()[0] == 1
    # a changed label alone is a change
    relabel = audit_store.save_score(db, round_id=rid, conversation_id="c2", reviewer="ben", scores=FOUR,
                                     flags=["good_example"],
                                     labels=[{"message_key": "m2u", "verdict": "no", "true_intent": "refund"}])
    assert (relabel.revision, relabel.changed) == (2, True)
    assert db.conn.execute("SELECT count(*) FROM audit_labels").fetchone()[0] == 1


def test_a_failed_save_saves_nothing_and_raises_a_store_error(setup):
    db, ds, rid = setup
    with pytest.raises(StoreError, match="'zed' is not assigned"):
        audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="zed", scores=FOUR)
    with pytest.raises(StoreError, match="no audit round with id 99"):
        audit_store.save_score(db, round_id=99, conversation_id="c0", reviewer="ann", scores=FOUR)
    with pytest.raises(ConfigError, match="missing"):
        audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores={"tone": 3})
    # SQLite failing half-way (the history insert) rolls the score and the labels back
    db.conn.execute("CREATE TRIGGER fail_history BEFORE INSERT ON audit_score_history "
                    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    with pytest.raises(StoreError, match="disk on fire.*Nothing was saved"):
        audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR,
                               labels=[{"message_key": "m0u", "verdict": "yes", "predicted_intent": "billing"}])
    assert audit_store.get_score(db, rid, "c0", "ann") is None
    assert db.conn.execute("SELECT count(*) FROM audit_labels").fetchone()[0] == 0
    assert not db.conn.in_transaction


# --------------------------------------------------------------------------- progress and queue

def test_progress_and_next_unreviewed(setup):
    db, ds, rid = setup
    assert audit_store.next_unreviewed(db, rid, "ann") == "c0"
    for cid in ("c0", "c2"):
        audit_store.save_score(db, round_id=rid, conversation_id=cid, reviewer="ann", scores=FOUR)
    audit_store.save_score(db, round_id=rid, conversation_id="c2", reviewer="ben", scores=FOUR)
    p = audit_store.reviewer_progress(db, rid).set_index("reviewer")
    assert p.loc["ann"].tolist() == [4, 2, 2] and p.loc["ben"].tolist() == [4, 1, 3]
    r = audit_store.round_progress(db, rid)
    # c0 (ann), c2 (ann, ben) reviewed; only c2 by both of its reviewers; 3 of 8 assignments
    assert (r.conversation_count, r.reviewed_conversation_count, r.fully_reviewed_count, r.assignment_count,
            r.reviewed_assignment_count) == (4, 2, 1, 8, 3)
    assert audit_store.next_unreviewed(db, rid, "ann") == "c1"
    assert audit_store.next_unreviewed(db, rid, "ann", after="c1") == "c3"
    assert audit_store.next_unreviewed(db, rid, "ann", after="c3") == "c1"  # wraps around
    q = audit_store.reviewer_queue(db, rid, "ann")
    assert q["reviewed"].tolist() == [True, False, True, False] and q["revision"].tolist() == [1, 0, 1, 0]
    for cid in ("c1", "c3"):
        audit_store.save_score(db, round_id=rid, conversation_id=cid, reviewer="ann", scores=FOUR)
    assert audit_store.next_unreviewed(db, rid, "ann") is None


# --------------------------------------------------------------------------- labels for the Intents page

def test_intent_labels_follow_the_documented_rule(setup):
    db, ds, rid = setup
    t0 = pd.Timestamp("2026-08-10T10:00:00Z").to_pydatetime()
    t1 = pd.Timestamp("2026-08-10T11:00:00Z").to_pydatetime()
    # m0u: ann says yes, ben later says no -> refund (a typed "no" wins)
    # m1u: ann "no" -> cancel at t0, ben "no" -> refund at t1 -> latest: refund
    # m2u: ann "unsure" -> no label; m3u: ben "no" without an intent, ann "yes" -> billing (the prediction)
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR, now=t0,
                           labels=[{"message_key": "m0u", "verdict": "yes", "predicted_intent": "billing"}])
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ben", scores=FOUR, now=t1,
                           labels=[{"message_key": "m0u", "verdict": "no", "true_intent": "refund"}])
    audit_store.save_score(db, round_id=rid, conversation_id="c1", reviewer="ann", scores=FOUR, now=t0,
                           labels=[{"message_key": "m1u", "verdict": "no", "true_intent": "cancel"}])
    audit_store.save_score(db, round_id=rid, conversation_id="c1", reviewer="ben", scores=FOUR, now=t1,
                           labels=[{"message_key": "m1u", "verdict": "no", "true_intent": "refund"}])
    audit_store.save_score(db, round_id=rid, conversation_id="c2", reviewer="ann", scores=FOUR,
                           labels=[{"message_key": "m2u", "verdict": "unsure"}])
    audit_store.save_score(db, round_id=rid, conversation_id="c3", reviewer="ben", scores=FOUR, now=t1,
                           labels=[{"message_key": "m3u", "verdict": "no"}])
    audit_store.save_score(db, round_id=rid, conversation_id="c3", reviewer="ann", scores=FOUR, now=t0,
                           labels=[{"message_key": "m3u", "verdict": "yes", "predicted_intent": "billing"}])
    labels = audit_store.intent_labels(db, ds)
    assert labels.values.tolist() == [["m0u", "refund"], ["m1u", "refund"], ["m3u", "billing"]]
    assert list(labels.dtypes.astype(str)) == ["str", "str"]
    # an other dataset sees none of them; an empty store has no table and still answers
    assert audit_store.intent_labels(db, ds + 1).empty
    assert audit_store.intent_labels(store.connect(":memory:"), 1).columns.tolist() == ["message_key", "true_intent"]


def test_labels_match_the_message_keys_the_intents_page_uses(setup):
    from metrics import intents

    db, ds, rid = setup
    messages = store.load_messages(db, ds)
    keys = store.message_keys(messages)
    user0 = messages.index[(messages["conversation_id"] == "c0") & (messages["speaker"] == "user")][0]
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR,
                           labels=[{"message_key": keys[user0], "verdict": "no", "true_intent": "refund"}])
    applied = intents.apply_labels(messages, audit_store.intent_labels(db, ds), keys=keys)
    assert applied.loc[user0, "true_intent"] == "refund"
    assert applied["true_intent"].notna().sum() == 1


def test_deleting_the_dataset_removes_its_audit_rows(setup):
    db, ds, rid = setup
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR,
                           labels=[{"message_key": "m0u", "verdict": "yes", "predicted_intent": "billing"}])
    removed = store.delete_dataset(db, ds)
    for table in ("audit_rounds", "audit_assignments", "audit_scores", "audit_score_history", "audit_labels"):
        assert removed[table] >= 1, table
        assert db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert audit_store.list_reviewers(db) == ["ann", "ben"]  # people are not a dataset's data


# --------------------------------------------------------------------------- export

def test_export_escapes_formulas(setup):
    db, ds, rid = setup
    audit_store.add_reviewer(db, "@mallory")
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR,
                           note="=HYPERLINK(\"http://x\")")
    audit_store.save_score(db, round_id=rid, conversation_id="c1", reviewer="ben", scores=FOUR, note="+1 -2 ok")
    frame = audit_store.export_scores(db)
    assert tuple(frame.columns) == audit_store.EXPORT_COLUMNS
    text = audit_store.export_scores_csv(db, round_name="week 32").decode("utf-8")
    rows = pd.read_csv(pd.io.common.StringIO(text), dtype=str, keep_default_na=False)
    assert rows["note"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1 -2 ok"]
    assert rows["overall"].tolist() == ["4", "4"] and rows["round"].tolist() == ["week 32", "week 32"]
    assert "\n=" not in text and ",=" not in text


def test_cli_audit_export_csv_json_and_errors(tmp_path, capsys):
    path = tmp_path / "s.db"
    db = store.connect(path)
    ds = _dataset(db)
    rid = _round(db, ds, ["c0", "c1"])
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR,
                           flags=["good_example"], note="-SUM(A1)")
    db.close()
    if "metrics.audit.cli" not in cli.SUBCOMMANDS:  # the lead registers it; register for this test only
        cli.SUBCOMMANDS.append("metrics.audit.cli")
        registered = True
    else:
        registered = False
    try:
        assert cli.main(["audit-export", "--db", str(path), "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data == [{"round": "week 32", "conversation_id": "c0", "reviewer": "ann", **FOUR,
                         "flags": ["good_example"], "note": "-SUM(A1)", "saved_at": data[0]["saved_at"],
                         "revision": 1, "dataset_id": ds}]
        assert cli.main(["audit-export", "--db", str(path), "--round", "week 32", "--format", "csv"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].startswith("round,conversation_id,reviewer,understood_intent,")
        assert "'-SUM(A1)" in out
        assert cli.main(["audit-export", "--db", str(path), "--round", "nope", "--format", "csv"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: no audit round 'nope'") and err.count("\n") == 1
        assert cli.main(["audit-export", "--db", str(tmp_path / "missing.db"), "--format", "csv"]) == 2
        assert "no store at" in capsys.readouterr().err
    finally:
        if registered:
            cli.SUBCOMMANDS.remove("metrics.audit.cli")


# --------------------------------------------------------------------------- durability

def test_a_restart_loses_nothing(tmp_path):
    path = tmp_path / "restart.db"
    db = store.connect(path)
    ds = _dataset(db)
    rid = _round(db, ds, ["c0", "c1", "c2"])
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores=FOUR, note="v1")
    audit_store.save_score(db, round_id=rid, conversation_id="c0", reviewer="ann", scores={**FOUR, "overall": 1})
    audit_store.save_score(db, round_id=rid, conversation_id="c1", reviewer="ben", scores=FOUR,
                           labels=[{"message_key": "m1u", "verdict": "no", "true_intent": "refund"}])
    before = audit_store.export_scores(db)
    db.close()
    again = store.connect(path)  # a new process would open the file the same way
    pd.testing.assert_frame_equal(audit_store.export_scores(again), before)
    assert len(audit_store.score_history(again, rid, "c0", "ann")) == 2
    assert audit_store.intent_labels(again, ds).values.tolist() == [["m1u", "refund"]]
    assert audit_store.get_round(again, "week 32")["conversation_count"] == 3
    again.close()


_WRITER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[5])
from metrics import store
from metrics.audit import store as audit_store
from metrics.audit import CRITERIA
path, reviewer, writes, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
db = store.connect(path, timeout_seconds=30)
Path(go + ".ready" + reviewer).touch()
deadline = time.monotonic() + 60
while not Path(go).exists():
    if time.monotonic() > deadline:
        raise SystemExit("no go signal")
    time.sleep(0.002)
done = 0
for i in range(writes):
    scores = {c: (i + k) % 5 + 1 for k, c in enumerate(CRITERIA)}
    saved = audit_store.save_score(db, round_id=1, conversation_id=f"c{i}", reviewer=reviewer, scores=scores,
                                   note=f"{reviewer}-{i}",
                                   labels=[{"message_key": f"m{i}u", "verdict": "no", "true_intent": reviewer}])
    done += saved.changed
    time.sleep(0.0003)  # like a person: lets the other writer in between transactions
db.close()
print(done)
"""


def test_two_processes_saving_1000_reviews_each_lose_nothing(tmp_path):
    path = tmp_path / "shared.db"
    writes = 1000
    db = store.connect(path)
    ds = _dataset(db, n=2)
    ids = [f"c{i}" for i in range(writes)]
    rid = _round(db, ds, ids, overlap=1.0)  # both reviewers are assigned every conversation: same rows contended
    assert rid == 1
    db.close()
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who, str(writes), str(go), str(ROOT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in ("ann", "ben")]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.ready{who}").exists() for who in ("ann", "ben")):
        assert time.monotonic() < deadline, [p.stderr.read() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert [int(out) for out, _ in outs] == [writes, writes]
    db = store.connect(path)
    scores = audit_store.load_scores(db, rid)
    assert len(scores) == 2 * writes
    for reviewer in ("ann", "ben"):
        mine = scores[scores["reviewer"] == reviewer].set_index("conversation_id")
        assert set(mine.index) == set(ids)
        for i in (0, 1, 499, 999):
            expected = [(i + k) % 5 + 1 for k in range(len(CRITERIA))]
            assert mine.loc[f"c{i}", list(CRITERIA)].tolist() == expected
            assert mine.loc[f"c{i}", "note"] == f"{reviewer}-{i}"
        assert mine["note"].tolist() == [f"{reviewer}-{c[1:]}" for c in mine.index]
    assert db.conn.execute("SELECT count(*) FROM audit_score_history").fetchone()[0] == 2 * writes
    assert db.conn.execute("SELECT count(*) FROM audit_labels").fetchone()[0] == 2 * writes
    progress = audit_store.reviewer_progress(db, rid)
    assert progress["reviewed_count"].tolist() == [writes, writes]
    db.close()
