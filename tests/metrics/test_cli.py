"""CLI: python -m metrics summary; exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FIXTURES, ROOT


def run(*args):
    return subprocess.run([sys.executable, "-m", "metrics", *args], cwd=ROOT, capture_output=True, text=True)


def test_summary_json_dataset_section(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("session_id,role,message,created_at,user_id\n"
                    "s1,user,hi,2024-01-01T10:00:00Z,alice\ns1,bot,hello,2024-01-01T10:00:02Z,alice\n"
                    "s2,user,yo,2024-01-03T09:00:00+01:00,bob\ns3,user,test,2024-01-03T09:00:00Z,test-1\n")
    out = run("summary", str(path), "--format", "json", "--test-users", "test-*")
    assert out.returncode == 0, out.stderr
    ds = json.loads(out.stdout)["dataset"]
    assert ds["messages"] == 3 and ds["conversations"] == 2 and ds["users"] == 2
    assert ds["first_timestamp"] == "2024-01-01T10:00:00+00:00"
    assert ds["last_timestamp"] == "2024-01-03T08:00:00+00:00"
    assert ds["excluded_conversations"] == 1
    assert isinstance(ds["warnings"], list)


def test_map_option(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("a,b,c\n1,user,hi\n")
    out = run("summary", str(path), "--map", "conversation_id=a", "--map", "speaker=b", "--map", "text=c",
              "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["dataset"]["mapping"] == {"conversation_id": "a", "speaker": "b", "text": "c"}


def test_bad_input_exits_2_with_one_line_and_no_traceback():
    out = run("summary", str(FIXTURES / "bad" / "unknown_speaker.csv"), "--format", "json")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "row 2" in lines[0] and "'speaker'" in lines[0] and "unknown speaker" in lines[0]


def test_missing_file_and_bad_map_exit_2():
    assert run("summary", "/nonexistent/file.csv").returncode == 2
    out = run("summary", str(FIXTURES / "good" / "tabs.tsv"), "--map", "oops")
    assert out.returncode == 2 and "canonical=source" in out.stderr


def test_text_format(tmp_path):
    out = run("summary", str(FIXTURES / "good" / "nested.json"))
    assert out.returncode == 0
    assert "conversations: 2" in out.stdout
