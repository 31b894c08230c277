"""Alert rules: syntax, JSON/TOML rules files, evaluation on the latest complete week, CLI exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, messages_frame
from metrics import cli
from metrics.improve import alerts
from metrics.improve import store as goals_store
from metrics.improve.alerts import AlertRule, evaluate_rules, parse_rule, parse_rules
from metrics.errors import ChatlensError, ConfigError, InsufficientDataError
from metrics.kpis import kpi_series, latest_complete_period
from metrics.core.rollup import conversation_rollup

SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"
# The real entry point (`python -m metrics alerts ...`), with the subcommand registered in metrics.cli.SUBCOMMANDS.
RUN_CLI = "import sys, metrics.cli as c; sys.exit(c.main(sys.argv[1:]))"


# --------------------------------------------------------------------------- syntax

@pytest.mark.parametrize("text, metric, op, threshold", [
    ("intent_accuracy < 0.80", "intent_accuracy", "<", 0.80),
    ("intent accuracy < 80%", "intent_accuracy", "<", 0.80),
    ("Escalation_Rate>=30 %", "escalation_rate", ">=", 0.30),
    ("csat <= 3.2", "csat", "<=", 3.2),
    ("cost_per_outcome > 15", "cost_per_outcome", ">", 15.0),
])
def test_parse_rule(text, metric, op, threshold):
    rule = parse_rule(text)
    assert (rule.metric, rule.op, rule.threshold) == (metric, op, pytest.approx(threshold))


def test_volume_spike_rule():
    assert parse_rule("volume spike") == AlertRule("volume_spike")
    assert parse_rule("volume_spike").text == "volume_spike"


@pytest.mark.parametrize("text, message", [
    ("accuracy is bad", "rule 'accuracy is bad': write METRIC OP THRESHOLD"),
    ("speed > 3", "rule 'speed > 3': unknown metric 'speed'"),
    ("escalation_rate > 130%", "rule 'escalation_rate > 130%': the threshold of a rate must be between 0 and 1"),
    ("escalation_rate > 30", "rule 'escalation_rate > 30': the threshold of a rate must be between 0 and 1"),
    ("csat < 80%", "rule 'csat < 80%': a percentage threshold only fits a rate"),
    ("", "non-empty"),
])
def test_bad_rules_repeat_the_rule(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(text)


def test_rules_file_json_and_toml():
    js = json.dumps({"rules": ["intent_accuracy < 80%", {"name": "Handoffs", "rule": "escalation_rate > 0.3"},
                               {"metric": "csat", "op": "<", "threshold": 3.5, "min_count": 10}, "volume_spike"]})
    toml = ('[[rules]]\nrule = "intent_accuracy < 80%"\n\n[[rules]]\nname = "Handoffs"\nmetric = "escalation_rate"\n'
            'op = ">"\nthreshold = 0.3\n\n[[rules]]\nmetric = "csat"\nop = "<"\nthreshold = "3.5"\nmin_count = 10\n\n'
            '[[rules]]\nrule = "volume_spike"\n')
    for rules in (parse_rules(js, fmt="json"), parse_rules(toml, fmt="toml")):
        assert [r.text for r in rules] == ["intent_accuracy < 0.8", "escalation_rate > 0.3", "csat < 3.5",
                                           "volume_spike"]
        assert rules[1].label == "Handoffs" and rules[2].min_count == 10
    assert [r.text for r in parse_rules('["escalation_rate > 25%"]', fmt="json")] == ["escalation_rate > 0.25"]


@pytest.mark.parametrize("text, fmt, message", [
    ('{"rules": [', "json", "not valid JSON"),
    ("[[rules]\n", "toml", "not valid TOML"),
    ('{"alerts": []}', "json", "must hold a 'rules' list"),
    ('{"rules": []}', "json", "holds no rule"),
    ('{"rules": ["escalation_rate > 0.3", "intent_accuracy < 80"]}', "json",
     "rule #2: rule 'intent_accuracy < 80'"),
    ('{"rules": [{"metric": "escalation_rate", "op": "=>", "threshold": 0.3}]}', "json",
     'rule #1 {"metric": "escalation_rate", "op": "=>", "threshold": 0.3}: rule \'escalation_rate => 0.3\': '
     "the operator must be one of"),
    ('{"rules": [{"rule": "volume_spike", "when": "daily"}]}', "json", "unknown key(s) ['when']"),
    ('[[rules]]\nmetric = "escalation_rate"\n', "toml", "the operator must be one of"),
])
def test_bad_rules_files_name_the_rule(text, fmt, message):
    with pytest.raises(ConfigError) as err:
        parse_rules(text, fmt=fmt)
    assert message in str(err.value)


def test_rules_file_suffix_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match=".json or .toml"):
        alerts.load_rules_file(tmp_path / "rules.yaml")
    with pytest.raises(ConfigError, match="cannot read the rules file"):
        alerts.load_rules_file(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- evaluation

def _week(start="2026-08-03", days=7, per_day=2, agent_every=0, mislabelled_days=()):
    """``days`` days of ``per_day`` conversations from ``start``; every ``agent_every``-th is escalated and the
    first conversation of each day in ``mislabelled_days`` has a wrong predicted intent."""
    rows = []
    for d in range(days):
        for k in range(per_day):
            cid = f"{start}-d{d}k{k}"
            ts = (pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=d, hours=9 + k)).isoformat()
            wrong = d in mislabelled_days and k == 0
            rows.append({"conversation_id": cid, "speaker": "user", "text": "refund", "timestamp": ts,
                         "intent": "refund", "true_intent": "billing" if wrong else "refund"})
            if agent_every and (d * per_day + k) % agent_every == 0:
                rows.append({"conversation_id": cid, "speaker": "agent", "text": "hi", "timestamp": ts})
    return messages_frame(rows)


def test_rules_are_evaluated_on_the_latest_complete_week():
    # Two weeks (Mon 2026-08-03 .. Sun 2026-08-16) plus a Wednesday of a third, incomplete week.
    m = pd.concat([_week(), _week("2026-08-10", agent_every=2), _week("2026-08-19", days=1, agent_every=1)])
    m = messages_frame(m.drop(columns=["row"]).to_dict("records"))
    results = evaluate_rules(m, conversation_rollup(m), [parse_rule("escalation_rate > 30%"),
                                                         parse_rule("escalation_rate > 60%")])
    # W33 (Aug 10-16): 14 conversations, every second one escalated -> 7/14 = 50%; W34 is incomplete.
    assert [(r.week, r.value, r.n, r.breached) for r in results] == [("2026-W33", 0.5, 14, True),
                                                                     ("2026-W33", 0.5, 14, False)]


def test_not_evaluated_when_data_or_units_are_missing():
    m = _week(per_day=1, mislabelled_days=(0,))                   # day 0 message misread: 6/7 correct
    r = conversation_rollup(m)
    results = evaluate_rules(m, r, [parse_rule("csat < 3"), parse_rule("intent_accuracy < 90%", min_count=8),
                                    parse_rule("intent_accuracy < 90%")])
    assert [(x.evaluated, x.breached) for x in results] == [(False, False), (False, False), (True, True)]
    assert "rating" in results[0].reason
    assert "only 7 unit(s)" in results[1].reason
    assert results[2].value == pytest.approx(6 / 7)
    with pytest.raises(InsufficientDataError, match="complete ISO week"):
        evaluate_rules(_week(days=3), conversation_rollup(_week(days=3)), alerts.default_rules())


_RULES = [parse_rule(t) for t in ("escalation_rate > 30%", "resolution_rate < 50%", "csat < 3",
                                   "cost_per_outcome > 100", "intent_accuracy < 90%", "lead_count < 2")]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.sampled_from([None, "resolved", "escalated"]),
                          st.sampled_from([None, 1.0, 5.0])), min_size=1, max_size=15))
def test_property_rules_read_the_same_values_as_each_kpi_series(items):
    # evaluate_rules shares one set of family results across its rules; the reference reads each rule's
    # week from its own kpi_series call (fresh results per metric).
    rows = []
    for i, (day, agent, outcome, rating) in enumerate(items):
        ts = (pd.Timestamp("2026-08-03T09:00Z") + pd.Timedelta(days=day)).isoformat()
        rows.append({"conversation_id": f"c{i}", "speaker": "user", "text": "hi", "timestamp": ts,
                     "outcome": outcome, "rating": rating})
        if agent:
            rows.append({"conversation_id": f"c{i}", "speaker": "agent", "text": "hello", "timestamp": ts,
                         "outcome": outcome, "rating": rating})
    m = messages_frame(rows)
    r = conversation_rollup(m)
    weeks = kpi_series(m, r, metric="total_conversations")
    i = latest_complete_period(weeks)
    if i is None:
        with pytest.raises(InsufficientDataError):
            evaluate_rules(m, r, _RULES)
        return
    week = weeks["period"].iloc[i]
    for rule, result in zip(_RULES, evaluate_rules(m, r, _RULES)):
        assert result.week == week
        try:
            series = kpi_series(m, r, metric=rule.metric)
        except ChatlensError as exc:
            assert (result.evaluated, result.reason) == (False, str(exc))
            continue
        row = series[series["period"].eq(week).to_numpy(bool)].iloc[0]
        assert result.n == row["n"]
        assert (math.isnan(result.value) and math.isnan(row["value"])) or result.value == row["value"]


def test_volume_spike_rule_flags_a_spike_in_the_week():
    # 21 quiet days (2 a day) then a week whose Wednesday has 30 conversations.
    m = pd.concat([_week("2026-08-03"), _week("2026-08-10"), _week("2026-08-17"), _week("2026-08-24"),
                   _week("2026-08-26", days=1, per_day=30)])
    m = messages_frame(m.drop(columns=["row"]).assign(conversation_id=[f"c{i}" for i in range(len(m))])
                       .to_dict("records"))
    [res] = evaluate_rules(m, conversation_rollup(m), [parse_rule("volume_spike")])
    assert res.week == "2026-W35" and res.breached and "2026-08-26" in res.reason


def test_saved_rules_round_trip(memory_db):
    rules = alerts.default_rules() + [parse_rule("csat < 3.5", name="Unhappy", min_count=20)]
    goals_store.save_alert_rules(memory_db, rules, enabled=[True, True, False, True])
    stored = goals_store.list_alert_rules(memory_db)
    assert stored["rule"].tolist() == ["intent_accuracy < 0.8", "escalation_rate > 0.3", "volume_spike", "csat < 3.5"]
    assert stored["parsed"].tolist() == rules
    assert goals_store.list_alert_rules(memory_db, enabled_only=True)["rule"].tolist()[-1] == "csat < 3.5"


# --------------------------------------------------------------------------- CLI

def _csv(tmp_path, agents: int) -> str:
    """Two complete weeks of 10 conversations a day; ``agents`` of the second week's are escalated."""
    lines = ["conversation_id,timestamp,speaker,text"]
    n = 0
    for day in range(14):
        for k in range(10):
            ts = (pd.Timestamp("2026-08-03T09:00Z") + pd.Timedelta(days=day, minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(f"c{n},{ts},user,hello")
            if day >= 7 and n % 10 < agents:
                lines.append(f"c{n},{ts},agent,hi there")
            n += 1
    path = tmp_path / f"export_{agents}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-c", RUN_CLI, "alerts", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=180)


def test_cli_exit_codes(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "Too many handoffs"\nrule = "escalation_rate > 30%"\n', encoding="utf-8")
    quiet = _run(_csv(tmp_path, agents=2), "--rules", rules)      # 20% escalated in the latest week
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["breached"] == []
    loud = _run(_csv(tmp_path, agents=4), "--rules", rules)       # 40% escalated
    assert loud.returncode == 1, loud.stderr
    report = json.loads(loud.stdout)
    assert report["week"] == "2026-W33"
    assert report["breached"] == [{"rule": "escalation_rate > 0.3", "name": "Too many handoffs",
                                   "metric": "escalation_rate", "op": ">", "threshold": 0.3, "value": 0.4, "n": 70,
                                   "week": "2026-W33", "detail": None}]
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": ["escalation_rate >> 0.3"]}', encoding="utf-8")
    broken = _run(_csv(tmp_path, agents=4), "--rules", bad)
    assert broken.returncode == 2
    assert "escalation_rate >> 0.3" in broken.stderr and "Traceback" not in broken.stderr
    missing = _run(tmp_path / "nope.csv")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_cli_default_rules_on_the_sample_exit_zero():
    done = _run(SAMPLE)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # W44: intent accuracy 94.2% (>= 80%), escalation 20.5% (<= 30%), no spike day -> nothing breached.
    assert report == {"week": "2026-W44", "breached": [], "not_evaluated": [], "evaluated_count": 3}


def test_cli_in_process_and_text_format(tmp_path, monkeypatch, capsys):
    assert "metrics.improve.cli_alerts" in cli.SUBCOMMANDS  # registered in metrics/cli.py
    assert cli.main(["alerts", _csv(tmp_path, agents=5), "--format", "text"]) == 1
    out = capsys.readouterr().out
    assert "BREACHED  Escalation rate: 50.0% in 2026-W33 (> 30.0%, breached)" in out


def test_summary_kpis_section(tmp_path):
    from metrics.improve.cli_alerts import section_provider
    from metrics.io.loaders import load_path

    frame = load_path(_csv(tmp_path, agents=4)).frame
    section = section_provider(frame, conversation_rollup(frame))
    by_name = {k["name"]: k for k in section["kpis"]}
    assert set(by_name["escalation_rate"]) == {"name", "value", "wow_delta", "mom_delta", "status"}
    # W33 40% vs W32 0% escalated -> +0.4; no complete month -> MoM null; no suggested band -> none.
    assert by_name["escalation_rate"]["value"] == pytest.approx(0.4)
    assert by_name["escalation_rate"]["wow_delta"] == pytest.approx(0.4)
    assert by_name["escalation_rate"]["mom_delta"] is None
    assert by_name["escalation_rate"]["status"] == "none"
    assert by_name["csat"]["value"] is None                       # no rating column
    assert {k["status"] for k in section["kpis"]} <= {"green", "amber", "red", "none"}
    assert by_name["resolution_rate"]["status"] in {"green", "amber", "red", "none"}


def test_summary_gains_kpis_when_registered(tmp_path, monkeypatch):
    from metrics import summary
    from metrics.io.loaders import load_path

    monkeypatch.setattr(summary, "SECTION_PROVIDERS", [*summary.SECTION_PROVIDERS,
                                                       "metrics.improve.cli_alerts:section_provider"])
    report = summary.build_summary(load_path(_csv(tmp_path, agents=3)))
    json.dumps(report)                                             # JSON-ready: NaN became null
    kpis = {k["name"]: k for k in report["kpis"]}
    assert kpis["escalation_rate"]["value"] == pytest.approx(0.3) and kpis["total_conversations"]["value"] == 70
