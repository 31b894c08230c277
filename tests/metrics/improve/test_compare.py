"""metrics.improve.compare: two periods, two datasets and two NLU models side by side, with hand-computed values."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from conftest import ROOT, messages_frame
from metrics import kpis
from metrics.improve import compare
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.rollup import conversation_rollup

WEEK_A = ("2026-08-10", "2026-08-16")  # Mon..Sun, ISO 2026-W33
WEEK_B = ("2026-08-03", "2026-08-09")  # ISO 2026-W32


def _conversations(day: str, count: int, escalated: int, *, prefix: str, ratings=()) -> list[dict]:
    rows = []
    for i in range(count):
        cid = f"{prefix}{i}"
        extra = {"rating": ratings[i]} if i < len(ratings) else {}
        rows.append({"conversation_id": cid, "speaker": "user", "text": "help", "timestamp": f"{day} 10:0{i % 10}",
                     **extra})
        rows.append({"conversation_id": cid, "speaker": "agent" if i < escalated else "bot", "text": "ok",
                     "timestamp": f"{day} 10:0{i % 10}:30", **extra})
    return rows


@pytest.fixture(scope="module")
def two_weeks():
    """W32: 10 conversations, 2 escalated, ratings 1 and 2; W33: 10 conversations, 6 escalated, ratings 3, 4, 5.
    The data runs Mon 2026-08-03 to Sun 2026-08-16, so both weeks are complete."""
    rows = (_conversations("2026-08-03", 5, 1, prefix="b", ratings=(1.0, 2.0))
            + _conversations("2026-08-09", 5, 1, prefix="bb")
            + _conversations("2026-08-10", 5, 3, prefix="a", ratings=(3.0, 4.0, 5.0))
            + _conversations("2026-08-16", 5, 3, prefix="aa"))
    m = messages_frame(rows)
    return m, conversation_rollup(m)


# --------------------------------------------------------------------------- periods

def test_parse_period_forms(two_weeks):
    _, r = two_weeks
    week = compare.parse_period("last-week", r)
    assert (week.current.label, week.previous.label, week.kind) == ("2026-W33", "2026-W32", "week")
    assert week.current.start == pd.Timestamp("2026-08-10", tz="UTC") and week.current.days == 7.0
    rng = compare.parse_period("2026-08-10..2026-08-16", r)
    # TO is a date, so it is included: 7 days, compared with the 7 days before.
    assert (rng.current.label, rng.previous.label, rng.current.days) == (
        "2026-08-10..2026-08-16", "2026-08-03..2026-08-09", 7.0)
    with pytest.raises(InsufficientDataError, match="complete calendar month"):
        compare.parse_period("last-month", r)
    for bad in ("yesterday", "2026-08-16..2026-08-10", "x..y"):
        with pytest.raises(ConfigError):
            compare.parse_period(bad, r)


def test_two_proportion_case_by_hand(two_weeks):
    m, r = two_weeks
    t = compare.compare_periods(m, r, compare.parse_period("last-week", r),
                                metrics=["escalation_rate", "csat", "total_conversations"]).set_index("name")
    esc = t.loc["escalation_rate"]
    # By hand: W33 6/10 = 0.6, W32 2/10 = 0.2; pooled p = 8/20 = 0.4; se = sqrt(0.4 * 0.6 * (1/10 + 1/10))
    # = sqrt(0.048) = 0.219089; z = 0.4 / 0.219089 = 1.825742; two-sided p = 2 * (1 - Phi(1.825742)) = 0.067889.
    assert (esc["value_a"], esc["n_a"], esc["value_b"], esc["n_b"]) == (0.6, 10, 0.2, 10)
    assert esc["delta"] == pytest.approx(0.4) and esc["relative_delta"] == pytest.approx(2.0)
    assert esc["p_value"] == pytest.approx(0.067889, abs=1e-6)
    assert esc["test"] == kpis.Z_TEST and not esc["significant"]
    assert esc["better"] is False  # escalation is lower-is-better and it rose


def test_mann_whitney_for_csat_by_hand(two_weeks):
    m, r = two_weeks
    t = compare.compare_periods(m, r, compare.parse_period("last-week", r), metrics=["csat"])
    row = t.iloc[0]
    # W33 ratings 3, 4, 5 (mean 4) vs W32 1, 2 (mean 1.5): every W33 rating beats every W32 one, U = 6 of 6;
    # exact two-sided p = 2 * P(U = 6) = 2 * 1 / C(5, 2) = 0.2.
    assert (row["value_a"], row["value_b"], row["delta"]) == (4.0, 1.5, 2.5)
    assert row["p_value"] == pytest.approx(0.2)
    assert row["test"] == compare.MANN_WHITNEY


def test_poisson_count_test_by_hand():
    rows = _conversations("2026-08-04", 8, 0, prefix="a") + _conversations("2026-08-12", 2, 0, prefix="b")
    m = messages_frame(rows)
    r = conversation_rollup(m)
    pair = compare.parse_period("2026-08-03..2026-08-09", r)
    row = compare.compare_periods(m, r, pair, metrics=["total_conversations"]).iloc[0]
    # 8 conversations in the week, none in the 7 days before it (2026-07-27..08-02): binomial(8, 1/2) at 8,
    # p = 2 * (1/2)^8 = 0.0078125.
    assert (row["value_a"], row["value_b"]) == (8.0, 0.0)
    assert row["p_value"] == pytest.approx(0.0078125)
    later = compare.PeriodPair(compare.parse_period("2026-08-10..2026-08-16", r).current, pair.current, "range")
    row = compare.compare_periods(m, r, later, metrics=["total_conversations"]).iloc[0]
    # 2 vs 8 conversations over equal 7-day windows: binomial(10, 1/2), two-sided p = 2 * P(X <= 2)
    # = 2 * (1 + 10 + 45) / 1024 = 0.109375.
    assert (row["value_a"], row["value_b"], row["delta"]) == (2.0, 8.0, -6.0)
    assert row["p_value"] == pytest.approx(0.109375)
    assert row["test"] == compare.POISSON_TEST


def test_every_kpi_listed_and_unavailable_ones_say_why(two_weeks):
    m, r = two_weeks
    t = compare.compare_periods(m, r, compare.parse_period("last-week", r))
    assert t["name"].tolist() == list(kpis.KPI_NAMES)
    assert list(t.columns) == compare.COMPARISON_COLUMNS
    intent = t.set_index("name").loc["intent_accuracy"]
    assert not intent["available"] and "intent" in intent["reason"]
    money = t.set_index("name").loc["cost_per_outcome"]
    assert money["test"] == kpis.NOT_TESTED and math.isnan(money["p_value"])


@pytest.fixture(scope="module")
def sample():
    from metrics.io.loaders import load_path

    messages = load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame
    return messages, conversation_rollup(messages)


def test_same_numbers_as_the_dashboard_on_the_sample(sample):
    """The last complete week and month of compare_periods equal kpi_table's value, WoW and MoM deltas and
    the rates' p-values: the same label means the same computation."""
    m, r = sample
    table = kpis.kpi_table(m, r, spark_periods=0).set_index("name")
    week = compare.compare_periods(m, r, compare.parse_period("last-week", r)).set_index("name")
    month = compare.compare_periods(m, r, compare.parse_period("last-month", r)).set_index("name")
    for name in kpis.KPI_NAMES:
        if not table.loc[name, "available"]:
            assert not week.loc[name, "available"]
            continue
        assert week.loc[name, "value_a"] == pytest.approx(table.loc[name, "value"], rel=1e-12), name
        assert week.loc[name, "delta"] == pytest.approx(table.loc[name, "wow_delta"], rel=1e-9), name
        assert month.loc[name, "delta"] == pytest.approx(table.loc[name, "mom_delta"], rel=1e-9), name
        if kpis.CATALOGUE[name].kind == "rate":
            assert week.loc[name, "p_value"] == pytest.approx(table.loc[name, "wow_p_value"], rel=1e-9), name
            assert month.loc[name, "p_value"] == pytest.approx(table.loc[name, "mom_p_value"], rel=1e-9), name
    # 2026-W44 has 239 conversations, 2026-W43 218 (test_kpis counts them by hand).
    assert (week.loc["total_conversations", "value_a"], week.loc["total_conversations", "value_b"]) == (239, 218)


def test_compare_datasets_by_hand():
    def ds(escalated: int, total: int, prefix: str):
        m = messages_frame(_conversations("2026-08-04", total, escalated, prefix=prefix))
        return m, conversation_rollup(m)

    t = compare.compare_datasets(ds(9, 10, "a"), ds(1, 10, "b"), metrics=["escalation_rate", "total_conversations"])
    esc, total = t.iloc[0], t.iloc[1]
    # 9/10 vs 1/10: pooled 0.5, se = sqrt(0.25 * 0.2) = 0.223607, z = 0.8 / 0.223607 = 3.577709, p = 0.000347.
    assert (esc["value_a"], esc["value_b"]) == (0.9, 0.1)
    assert esc["p_value"] == pytest.approx(0.000347, abs=1e-6) and esc["significant"]
    # Equal counts over the same single day: binomial(20, 1/2) at 10, p = 1.
    assert (total["value_a"], total["value_b"], total["p_value"]) == (10.0, 10.0, 1.0)


# --------------------------------------------------------------------------- intents (McNemar)

def _predictions(truth: list[str], predicted: list[str], *, prefix: str = "u", ids: bool = False) -> pd.DataFrame:
    rows = []
    for i, (t, p) in enumerate(zip(truth, predicted)):
        row = {"conversation_id": f"{prefix}{i}", "speaker": "user", "text": f"utterance {i}", "true_intent": t,
               "intent": p, "timestamp": "2026-08-04 10:00"}
        if ids:
            row["message_id"] = f"m{i}"
        rows.append(row)
    return messages_frame(rows)


def _paired_case():
    """20 utterances: 10 'billing', 10 'refund'. Model A right on 17, model B on 11.
    billing: both right 6, only A 3, only B 0, neither 1; refund: both right 4, only A 4, only B 1, neither 1."""
    truth = ["billing"] * 10 + ["refund"] * 10
    a_ok = [1] * 6 + [1] * 3 + [0] * 0 + [0] * 1 + [1] * 4 + [1] * 4 + [0] * 1 + [0] * 1
    b_ok = [1] * 6 + [0] * 3 + [1] * 0 + [0] * 1 + [1] * 4 + [0] * 4 + [1] * 1 + [0] * 1
    wrong = {"billing": "refund", "refund": "billing"}
    a = [t if ok else wrong[t] for t, ok in zip(truth, a_ok)]
    b = [t if ok else "nlu_fallback" for t, ok in zip(truth, b_ok)]
    return _predictions(truth, a, ids=True), _predictions(truth, b, ids=True)


def test_mcnemar_paired_exact_by_hand_and_against_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = _paired_case()
    c = compare.compare_intents(a, b)
    assert c.paired_on == "message_id" and c.paired_count == 20 and c.label_conflicts == 0
    t = c.table.set_index("intent")
    overall = t.loc[compare.ALL_INTENTS]
    # All intents: both right 10, only A 7, only B 1, neither 2. Exact McNemar: 8 discordant pairs,
    # p = 2 * P(X <= 1 | Bin(8, 1/2)) = 2 * (1 + 8) / 256 = 0.0703125.
    assert (overall["both_correct"], overall["only_a_correct"], overall["only_b_correct"],
            overall["neither_correct"]) == (10, 7, 1, 2)
    assert (overall["recall_a"], overall["recall_b"]) == (0.85, 0.55)
    assert overall["p_value"] == pytest.approx(18 / 256)
    assert overall["test"] == compare.MCNEMAR_EXACT
    assert overall["p_value"] == pytest.approx(mcnemar([[10, 7], [1, 2]], exact=True).pvalue)
    billing, refund = t.loc["billing"], t.loc["refund"]
    # billing: 3 vs 0 discordant, p = 2 * (1/2)^3 = 0.25; refund: 4 vs 1, p = 2 * (1 + 5) / 32 = 0.375.
    assert billing["p_value"] == pytest.approx(0.25) and refund["p_value"] == pytest.approx(0.375)
    # Holm over the two intents: sorted 0.25, 0.375 -> 2 * 0.25 = 0.5, max(0.5, 1 * 0.375) = 0.5.
    assert billing["p_holm"] == pytest.approx(0.5) and refund["p_holm"] == pytest.approx(0.5)
    assert not overall["significant"]


def test_mcnemar_chi_square_when_many_discordant_pairs():
    from statsmodels.stats.contingency_tables import mcnemar

    # 40 utterances: only A right on 20, only B right on 8, both on 10, neither on 2 -> 28 discordant (>= 25):
    # chi2 = (|20 - 8| - 1)^2 / 28 = 121 / 28 = 4.321429, p = 0.037635.
    n = 40
    truth = ["greet"] * n
    a_ok = [1] * 20 + [0] * 8 + [1] * 10 + [0] * 2
    b_ok = [0] * 20 + [1] * 8 + [1] * 10 + [0] * 2
    a = _predictions(truth, ["greet" if ok else "bye" for ok in a_ok])
    b = _predictions(truth, ["greet" if ok else "bye" for ok in b_ok])
    c = compare.compare_intents(a, b)
    assert c.paired_on == "conversation"
    row = c.table.iloc[0]
    assert row["test"] == compare.MCNEMAR_CHI2
    assert row["statistic"] == pytest.approx(121 / 28)
    assert row["p_value"] == pytest.approx(0.037635, abs=1e-6)
    assert row["p_value"] == pytest.approx(mcnemar([[10, 20], [8, 2]], exact=False, correction=True).pvalue)
    assert row["significant"]


def test_intents_unpaired_use_the_z_test_and_conflicts_are_left_out():
    a = _predictions(["x"] * 10, ["x"] * 9 + ["y"], prefix="a")
    b = _predictions(["x"] * 10, ["x"] * 5 + ["y"] * 5, prefix="b")
    c = compare.compare_intents(a, b, key="message_id")  # no message ids: nothing pairs
    assert c.paired_on is None and c.notes
    row = c.table.iloc[0]
    # 9/10 vs 5/10: pooled 0.7, se = sqrt(0.21 * 0.2) = 0.204939, z = 1.951800, p = 0.050962.
    assert row["test"] == kpis.Z_TEST and row["p_value"] == pytest.approx(0.050962, abs=1e-6)
    truth_b = ["x"] * 9 + ["z"]  # the last utterance is labelled differently in B
    c = compare.compare_intents(_predictions(["x"] * 10, ["x"] * 10), _predictions(truth_b, truth_b))
    assert c.label_conflicts == 1 and c.paired_count == 10
    assert c.table.iloc[0]["n_a"] == 9


# --------------------------------------------------------------------------- CLI

def _cli(argv):
    from metrics import cli

    if "metrics.cli_report" not in cli.SUBCOMMANDS:  # until the lead registers it in metrics/cli.py
        cli.SUBCOMMANDS.append("metrics.cli_report")
    return cli.main(argv)


def test_cli_compare_two_files_with_intents(tmp_path, capsys):
    a, b = _paired_case()
    for frame, name in ((a, "vendor_a.csv"), (b, "vendor_b.csv")):
        frame.drop(columns=["row"]).to_csv(tmp_path / name, index=False)
    code = _cli(["compare", str(tmp_path / "vendor_a.csv"), str(tmp_path / "vendor_b.csv"), "--intents",
                 "--format", "json", "--metrics", "intent_accuracy"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["mode"] == "datasets"
    assert out["kpis"][0]["value_a"] == 0.85 and out["kpis"][0]["value_b"] == 0.55
    assert out["intents"]["paired_on"] == "message_id"
    assert out["intents"]["rows"][0]["p_value"] == pytest.approx(18 / 256)


def test_cli_compare_one_file_periods_text(tmp_path, capsys, two_weeks):
    m, _ = two_weeks
    m.drop(columns=["row"]).to_csv(tmp_path / "bot.csv", index=False)
    code = _cli(["compare", str(tmp_path / "bot.csv"), "--metrics", "escalation_rate,csat"])
    out = capsys.readouterr().out
    assert code == 0
    assert "A = 2026-W33   B = 2026-W32" in out
    assert "two-proportion z-test" in out and "Mann-Whitney U" in out and "0.0679" in out
    assert _cli(["compare", str(tmp_path / "bot.csv"), "--intents"]) == 2
