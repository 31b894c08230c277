"""``python -m metrics ingest`` and the upload patterns that used to drop or merge messages.

Every case states the exact stored message and conversation counts, worked out by hand from the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from metrics import store
from metrics.cli import main

ROOT = Path(__file__).resolve().parents[2]


def ingest(tmp_path, name: str, content: bytes | str, *extra: str, dataset: str = "d", capsys=None) -> dict:
    """Write ``content`` to ``tmp_path/name`` and ingest it into ``tmp_path/store.db``; the printed JSON."""
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    assert main(["ingest", str(path), "--db", str(tmp_path / "store.db"), "--dataset", dataset,
                 "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def stored(tmp_path, dataset: str = "d") -> pd.DataFrame:
    db = store.connect(tmp_path / "store.db")
    try:
        return store.load_messages(db, store.find_dataset(db, dataset).id)
    finally:
        db.close()


def counts(report: dict) -> tuple:
    return report["new"], report["duplicates"], report["messages"], report["conversations"]


# --------------------------------------------------------------------------- repeats within one upload

def test_a_user_saying_yes_twice_without_timestamps_keeps_both(tmp_path, capsys):
    data = ("conversation_id,speaker,text\n"
            "c1,user,yes\nc1,bot,Shall I book it?\nc1,user,yes\n"
            "c2,user,yes\nc2,bot,Sure?\nc2,user,yes\n")
    report = ingest(tmp_path, "yes.csv", data, capsys=capsys)
    assert counts(report) == (6, 0, 6, 2)  # the old store kept 4: one "yes" per conversation
    assert stored(tmp_path)["text"].tolist().count("yes") == 4
    again = ingest(tmp_path, "yes.csv", data, capsys=capsys)  # the same export again: all duplicates
    assert counts(again) == (0, 6, 6, 2)


def test_ok_twice_in_the_same_second_keeps_both(tmp_path, capsys):
    data = ("conversation_id,timestamp,speaker,text\n"
            "c1,2024-05-01T10:00:00Z,user,ok\nc1,2024-05-01T10:00:00Z,user,ok\n"
            "c1,2024-05-01T10:00:01Z,bot,Done.\n")
    assert counts(ingest(tmp_path, "ok.csv", data, capsys=capsys)) == (3, 0, 3, 1)


# --------------------------------------------------------------------------- ids made up per file

def test_nlu_weeks_without_conversation_ids_never_merge(tmp_path, capsys):
    week1 = "text,intent\nwhere is my order,order_status\nhi,greet\ncancel it,cancel\n"
    week2 = "text,intent\nhi,greet\nrefund please,refund\nthanks,thanks\n"  # "hi" again, another person
    assert counts(ingest(tmp_path, "week1.csv", week1, capsys=capsys)) == (3, 0, 3, 3)
    assert counts(ingest(tmp_path, "week2.csv", week2, capsys=capsys)) == (3, 0, 6, 6)  # was 3 conversations
    assert counts(ingest(tmp_path, "week1-again.csv", week1, capsys=capsys)) == (0, 3, 6, 6)  # same content
    ids = stored(tmp_path)["conversation_id"]
    assert ids.str.fullmatch(r"[0-9a-f]{8}:row-\d").all() and ids.str[:8].nunique() == 2


def test_nested_json_without_ids_from_two_files_stays_apart(tmp_path, capsys):
    def export(texts):
        return json.dumps([{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "ok"}]}
                           for t in texts])

    assert counts(ingest(tmp_path, "a.json", export(["one", "two"]), capsys=capsys)) == (4, 0, 4, 2)
    assert counts(ingest(tmp_path, "b.json", export(["three", "four"]), capsys=capsys)) == (4, 0, 8, 4)


def _event(kind, t, text=None):
    event = {"event": kind, "timestamp": t}
    if text is not None:
        event["text"] = text
    if kind == "user":
        event["parse_data"] = {"intent": {"name": "greet", "confidence": 0.9}}
    return event


def test_overlapping_rasa_exports_give_six_messages_in_three_conversations(tmp_path, capsys):
    sessions = {"A": 1_700_000_000, "B": 1_700_010_000, "C": 1_700_020_000}

    def session(name):
        t = sessions[name]
        return [_event("session_started", t), _event("user", t + 1, f"hello {name}"), _event("bot", t + 2, "Hi!")]

    def export(*names):
        return json.dumps({"sender_id": "s1", "events": [e for n in names for e in session(n)]}) + "\n"

    assert counts(ingest(tmp_path, "export1.jsonl", export("A", "B"), capsys=capsys)) == (4, 0, 4, 2)
    # the second export starts at session B: numbered by position it was "s1:1" and merged into A
    assert counts(ingest(tmp_path, "export2.jsonl", export("B", "C"), capsys=capsys)) == (2, 2, 6, 3)
    frame = stored(tmp_path)
    assert frame.groupby("conversation_id")["text"].apply(list).tolist() == [
        ["hello A", "Hi!"], ["hello B", "Hi!"], ["hello C", "Hi!"]]


# --------------------------------------------------------------------------- the same data twice, differently

ROWS = [("c1", "2024-05-01T10:00:00Z", "user", "hi"), ("c1", "2024-05-01T10:00:02Z", "bot", "Hello!"),
        ("c1", "2024-05-01T10:00:05Z", "user", "yes"), ("c1", "2024-05-01T10:00:06Z", "user", "yes"),
        ("c2", "2024-05-02T09:00:00Z", "user", "refund"), ("c2", "2024-05-02T09:00:03Z", "bot", "Sure.")]


def _csv(rows, ids=False) -> str:
    head = "conversation_id,timestamp,speaker,text" + (",message_id" if ids else "")
    return "\n".join([head] + [",".join(r) + (f",m{i}" if ids else "") for i, r in enumerate(rows)]) + "\n"


def test_csv_then_the_same_data_as_json_adds_nothing(tmp_path, capsys):
    assert counts(ingest(tmp_path, "x.csv", _csv(ROWS), capsys=capsys)) == (6, 0, 6, 2)
    as_json = json.dumps([dict(zip(("conversation_id", "timestamp", "speaker", "text"), r)) for r in ROWS])
    assert counts(ingest(tmp_path, "x.json", as_json, capsys=capsys)) == (0, 6, 6, 2)


def test_half_then_all_adds_the_other_half(tmp_path, capsys):
    assert counts(ingest(tmp_path, "half.csv", _csv(ROWS[:3]), capsys=capsys)) == (3, 0, 3, 1)
    # the second "yes" of c1 is new, the first is not: repeats are numbered per upload
    assert counts(ingest(tmp_path, "all.csv", _csv(ROWS), capsys=capsys)) == (3, 3, 6, 2)
    assert stored(tmp_path)["text"].tolist() == ["hi", "Hello!", "yes", "yes", "refund", "Sure."]


def test_half_then_all_without_timestamps_numbers_repeats_per_upload(tmp_path, capsys):
    def csv(rows):
        return "conversation_id,speaker,text\n" + "".join(f"{c},{s},{t}\n" for c, _, s, t in rows)

    assert counts(ingest(tmp_path, "half.csv", csv(ROWS[:3]), capsys=capsys)) == (3, 0, 3, 1)
    # c1's second "yes" is the first upload's "yes" repeated: new, because the first upload had one
    assert counts(ingest(tmp_path, "all.csv", csv(ROWS), capsys=capsys)) == (3, 3, 6, 2)
    assert counts(ingest(tmp_path, "all-again.csv", csv(ROWS), capsys=capsys)) == (0, 6, 6, 2)


@pytest.mark.parametrize("first_ids, second_ids", [(False, True), (True, False)])
def test_an_export_that_gains_or_loses_message_ids_is_not_doubled(tmp_path, capsys, first_ids, second_ids):
    assert counts(ingest(tmp_path, "a.csv", _csv(ROWS, ids=first_ids), capsys=capsys)) == (6, 0, 6, 2)
    assert counts(ingest(tmp_path, "b.csv", _csv(ROWS, ids=second_ids), capsys=capsys)) == (0, 6, 6, 2)
    # a really new message still counts, with or without an id
    more = ROWS + [("c3", "2024-05-03T08:00:00Z", "user", "new one")]
    assert counts(ingest(tmp_path, "c.csv", _csv(more, ids=second_ids), capsys=capsys)) == (1, 6, 7, 3)


# --------------------------------------------------------------------------- the command itself

def test_skipped_rows_are_counted_and_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    data = "conversation_id,timestamp,speaker,text\nc1,2024-05-01T10:00:00Z,user,hi\nc1,not a time,user,x\n"
    report = ingest(tmp_path, "bad.csv", data, "--skip-bad-rows", capsys=capsys)
    assert (report["new"], report["skipped"], report["messages"]) == (1, 1, 1)
    path = tmp_path / "bad.csv"
    assert main(["ingest", str(path), "--db", str(tmp_path / "store.db"), "--dataset", "d"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.csv" in err and "row 2" in err and "Fix" in err
    assert stored(tmp_path)["text"].tolist() == ["hi"]  # the refused file saved nothing


def test_ingest_runs_as_a_command_and_summary_and_export_read_the_store(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(_csv(ROWS))
    db = str(tmp_path / "cmd.db")
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "metrics", *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)

    done = run("ingest", str(path), "--db", db, "--dataset", "weekly", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert counts(json.loads(done.stdout)) == (6, 0, 6, 2)
    text = run("ingest", str(path), "--db", db, "--dataset", "weekly")
    assert text.returncode == 0 and "duplicates: 6" in text.stdout and "Traceback" not in text.stderr
    exported = run("export", "--db", db, "--dataset", "weekly", "--what", "conversations", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(r["conversation_id"], r["message_count"], r["user_turns"]) for r in lines] == [("c1", 4, 3), ("c2", 2, 1)]
    out = tmp_path / "messages.csv"
    assert run("export", "--db", db, "--dataset", "weekly", "--out", str(out)).returncode == 0
    assert pd.read_csv(out)["text"].tolist() == [r[3] for r in ROWS]
    from_store = json.loads(run("summary", "--db", db, "--dataset", "weekly", "--format", "json").stdout)
    from_file = json.loads(run("summary", str(path), "--format", "json").stdout)
    assert (from_store["dataset"]["messages"], from_store["dataset"]["conversations"]) == (6, 2)
    del from_store["dataset"], from_file["dataset"]
    assert from_store == from_file  # every metric section is the same computed from the store or the file
    missing = run("export", "--db", db, "--dataset", "nope")
    assert missing.returncode == 2 and "no dataset named 'nope'" in missing.stderr and "weekly" in missing.stderr


def test_personal_data_inside_ids_gets_one_pseudonym_per_store_across_uploads(tmp_path, capsys):
    week1 = ("conversation_id,user_id,speaker,text,escalation_reason\n"
             "whatsapp:+14155550132,alice@example.com,user,hi,\n"
             "whatsapp:+14155550132,alice@example.com,bot,Hello!,\n")
    week2 = ("conversation_id,user_id,speaker,text,escalation_reason\n"
             "whatsapp:+14155550199,alice@example.com,user,call +44 20 7946 0958,wants bob@example.com\n")
    assert counts(ingest(tmp_path, "w1.csv", week1, capsys=capsys)) == (2, 0, 2, 1)
    assert counts(ingest(tmp_path, "w2.csv", week2, capsys=capsys)) == (1, 0, 3, 2)
    assert counts(ingest(tmp_path, "w1-again.csv", week1, capsys=capsys)) == (0, 2, 3, 2)  # same pseudonyms
    frame = stored(tmp_path)
    assert not frame.astype(str).apply(lambda c: c.str.contains("4155550|alice@|bob@|7946", regex=True)).any().any()
    assert frame["user_id"].nunique() == 1  # alice is one (repeat) user
    assert frame["conversation_id"].str.fullmatch(r"whatsapp:<PHONE:[0-9a-f]{16}>").all()
    assert frame["conversation_id"].nunique() == 2  # two numbers never merge
    assert frame["escalation_reason"].dropna().tolist() == ["wants <EMAIL>"]
    assert sorted(frame["text"]) == ["Hello!", "call <PHONE>", "hi"]


def test_ids_without_personal_data_are_left_alone_and_not_counted(tmp_path, capsys):
    data = "conversation_id,user_id,speaker,text\nc1,u1,user,hi\nc1,,bot,Hello!\n"  # the bot row has no user id
    report = ingest(tmp_path, "plain.csv", data, capsys=capsys)
    assert not [n for n in report["notices"] if "Pseudonymised" in n]
    assert stored(tmp_path)["user_id"].fillna("(none)").tolist() == ["u1", "(none)"]
