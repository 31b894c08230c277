"""The ``topics`` subcommand, through its module's parser and ``run`` (registered in metrics.cli.SUBCOMMANDS as
``metrics.topics.cli``)."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, ROOT
from metrics import cli as main_cli
from metrics import store
from metrics.topics import cli, persist

SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"
THREE = FIXTURES / "topics" / "support_three_topics.csv"
GAPS = FIXTURES / "topics" / "gaps_conversations.csv"


def _run(capsys, *argv):
    args = cli.build_parser().parse_args(["topics", *map(str, argv)])
    code = cli.run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_from_a_file(capsys):
    code, out, err = _run(capsys, THREE, "--format", "json")
    assert code == 0 and "topics: clustering" in err  # a progress line on standard error
    report = json.loads(out)
    assert set(report) >= {"dataset", "method", "topics", "assignments", "k_scores"}
    assert "gaps" not in report
    assert [t["label"] for t in report["topics"]] == ["package, delivery, arrive", "password, reset, forgot",
                                                      "refund, broken item, order"]
    first = report["topics"][0]
    assert set(first) >= {"id", "label", "name", "size", "terms", "examples", "resolution_rate", "escalation_rate",
                          "abandonment_rate", "wow_change", "growing", "new"}
    assert first["size"] == 8 and first["examples"] and first["terms"][0] == "package"
    assert len(report["assignments"]) == sum(t["size"] for t in report["topics"]) == 21
    assert set(report["assignments"][0]) == {"conversation_id", "row", "text", "topic"}


def test_fixed_topics_and_gaps_text(capsys, tmp_path):
    out_yaml = tmp_path / "gaps.yml"
    code, out, _ = _run(capsys, GAPS, "--topics", "2", "--gaps", "--format", "text", "--rasa-out", out_yaml)
    assert code == 0
    assert "topic(s) over the messages" in out and "knowledge gaps:" in out and "template (4x" in out
    text = out_yaml.read_text(encoding="utf-8")
    assert text.startswith('version: "3.1"\nnlu:\n- intent: gap_')
    code, out, _ = _run(capsys, GAPS, "--gaps", "--format", "json")
    gaps = json.loads(out)["gaps"]
    assert gaps["fallback_intent"] == "nlu_fallback" and gaps["messages"] == 6
    assert [t["rank"] for t in gaps["topics"]] == list(range(1, len(gaps["topics"]) + 1))
    assert {"nearest_intent", "score", "impact", "signals", "examples"} <= set(gaps["topics"][0])
    assert gaps["templates"][0]["bot_text"] == "Sorry, I didn't get that. Could you rephrase?"


def test_stored_dataset_keeps_names(capsys, tmp_path):
    db_path = tmp_path / "t.db"
    assert main_cli.main(["ingest", str(SAMPLE), "--db", str(db_path), "--dataset", "Sample",
                          "--format", "json"]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, "--db", db_path, "--dataset", "Sample", "--unit", "first", "--format", "json")
    assert code == 0
    report = json.loads(out)
    topic = report["topics"][1]["id"]
    db = store.connect(str(db_path))
    info = store.find_dataset(db, "Sample")
    persist.rename_topic(db, info.id, "first", topic, "Logins")
    db.close()
    code, out, _ = _run(capsys, "--db", db_path, "--dataset", "Sample", "--unit", "first", "--format", "json")
    again = {t["id"]: t for t in json.loads(out)["topics"]}
    assert again[topic]["name"] == "Logins" and again[topic]["matched"]


@pytest.mark.parametrize("argv, message", [
    ((), "give a transcript file"),
    ((THREE, "--dataset", "x"), "not both"),
    ((THREE, "--rasa-out", "x.yml"), "--rasa-out needs --gaps"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_unknown_dataset_and_bad_file(capsys, tmp_path):
    code, _, err = _run(capsys, "--db", tmp_path / "empty.db", "--dataset", "nope")
    assert code == 2 and err.startswith("error: no dataset named 'nope'")
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    code, _, err = _run(capsys, bad)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["topics", str(THREE), "--topics", "0"])


def test_subcommand_line_for_the_lead():
    # The line metrics/cli.py needs (SUBCOMMANDS) names this module, which has add_parser and run.
    import importlib

    module = importlib.import_module("metrics.topics.cli")
    assert callable(module.add_parser) and callable(module.run)
