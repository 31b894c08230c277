"""KPI catalogue, weekly/monthly series, WoW/MoM deltas with significance, RAG status."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, messages_frame
from metrics import kpis
from metrics.errors import ConfigError, InsufficientDataError
from metrics.io.loaders import load_path
from metrics.core.rollup import conversation_rollup


@pytest.fixture(scope="module")
def sample():
    messages = load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame
    return messages, conversation_rollup(messages)


# --------------------------------------------------------------------------- golden values on the sample

def _escalations_by_hand(messages: pd.DataFrame) -> pd.DataFrame:
    """Independent re-count: a conversation is escalated when it has an agent message, a 'handoff'
    event or an explicit outcome 'escalated'; it belongs to the ISO week / month of its first message."""
    m = messages
    esc = (m["speaker"].eq("agent") | m["event"].astype("str").str.lower().eq("handoff").fillna(False)
           | m["outcome"].astype("str").str.lower().eq("escalated").fillna(False))
    per = pd.DataFrame({"esc": esc.to_numpy(bool), "start": m["timestamp"]}).groupby(m["conversation_id"]).agg(
        esc=("esc", "any"), start=("start", "min"))
    day = per["start"].dt.floor("D")
    per["week"] = (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
    per["month"] = per["start"].dt.strftime("%Y-%m")
    return per


def test_weekly_conversation_counts_and_wow_delta_golden(sample):
    messages, rollup = sample
    # The sample runs from Mon 2026-08-03 07:24 to Sun 2026-11-01 23:53 UTC: 13 ISO weeks, W32..W44, all complete
    # (the data reaches the first day of W32 and the last day, Sunday, of W44).
    series = kpis.kpi_series(messages, rollup, metric="total_conversations")
    assert series["period"].tolist() == [f"2026-W{w}" for w in range(32, 45)]
    assert series["complete"].all()
    counts = dict(zip(series["period"], series["n"]))
    # Counted by hand (conversations whose first message falls in the week, test traffic excluded at load):
    # W43 (Oct 19-25) 218, W44 (Oct 26 - Nov 1) 239, and W40 (Sep 28 - Oct 4) is the spike week of the app bug: 511.
    by_hand = _escalations_by_hand(messages)["week"].value_counts()
    assert (counts["2026-W43"], counts["2026-W44"], counts["2026-W40"]) == (218, 239, 511)
    assert by_hand["2026-10-19"] == 218 and by_hand["2026-10-26"] == 239 and by_hand["2026-09-28"] == 511
    d = kpis.period_delta(series)
    # WoW = 239 - 218 = +21 conversations; relative 21 / 218 = 0.09633; a count is not tested.
    assert (d.current_period, d.previous_period, d.delta) == ("2026-W44", "2026-W43", 21.0)
    assert d.relative_delta == pytest.approx(21 / 218)
    assert d.test == kpis.NOT_TESTED and math.isnan(d.p_value) and not d.significant


def test_escalation_rate_wow_and_mom_golden_with_significance(sample):
    messages, rollup = sample
    hand = _escalations_by_hand(messages)
    w44, w43 = hand[hand["week"] == "2026-10-26"], hand[hand["week"] == "2026-10-19"]
    oct_, sep = hand[hand["month"] == "2026-10"], hand[hand["month"] == "2026-09"]
    # Counted by hand: W44 49 of 239 escalated, W43 52 of 218; October 202 of 1133, September 199 of 1008.
    assert (int(w44["esc"].sum()), len(w44), int(w43["esc"].sum()), len(w43)) == (49, 239, 52, 218)
    assert (int(oct_["esc"].sum()), len(oct_), int(sep["esc"].sum()), len(sep)) == (202, 1133, 199, 1008)

    wow = kpis.kpi_delta(messages, rollup, metric="escalation_rate", freq="W")
    # p1 = 49/239 = 0.205021, p0 = 52/218 = 0.238532, delta = -0.033511 (-3.4 percentage points).
    # pooled p = 101/457 = 0.221007; se = sqrt(0.221007 * 0.778993 * (1/239 + 1/218)) = 0.038860;
    # z = -0.033511 / 0.038860 = -0.8624; two-sided p = erfc(0.8624 / sqrt 2) = 0.3885 -> not significant.
    assert wow.current == pytest.approx(49 / 239) and wow.previous == pytest.approx(52 / 218)
    assert wow.delta == pytest.approx(-0.033511, abs=1e-6)
    assert wow.p_value == pytest.approx(0.38849, abs=1e-5)
    assert wow.test == kpis.Z_TEST and not wow.significant

    mom = kpis.kpi_delta(messages, rollup, metric="escalation_rate", freq="M")
    # Latest complete month is October (the data reaches its last day); November holds one day, August starts
    # on the 3rd (incomplete). delta = 202/1133 - 199/1008 = 0.178288 - 0.197421 = -0.019133;
    # pooled 401/2141 = 0.187296, se = 0.016892, z = -1.1326, p = 0.2574.
    assert (mom.current_period, mom.previous_period) == ("2026-10", "2026-09")
    assert mom.delta == pytest.approx(-0.019133, abs=1e-6)
    assert mom.p_value == pytest.approx(0.25737, abs=1e-5)


def test_significance_matches_scipy_chi_square(sample):
    from scipy.stats import chi2_contingency

    messages, rollup = sample
    wow = kpis.kpi_delta(messages, rollup, metric="escalation_rate")
    # The pooled two-proportion z-test is the uncorrected 2x2 chi-square test (z^2 = chi^2).
    expected = chi2_contingency([[49, 239 - 49], [52, 218 - 52]], correction=False).pvalue
    assert wow.p_value == pytest.approx(expected, rel=1e-9)


def test_kpis_agree_with_their_families(sample):
    from metrics.intents import intent_report
    from metrics.outcomes import outcome_rates

    messages, rollup = sample
    rates = outcome_rates(messages, rollup)
    assert kpis.kpi_value(messages, rollup, metric="resolution_rate").value == pytest.approx(rates.resolution_rate)
    assert kpis.kpi_value(messages, rollup, metric="containment_rate").value == pytest.approx(rates.containment_rate)
    assert kpis.kpi_value(messages, rollup, metric="abandonment_rate").value == pytest.approx(rates.abandonment_rate)
    report = intent_report(messages)
    acc = kpis.kpi_value(messages, rollup, metric="intent_accuracy")
    assert (acc.value, acc.successes, acc.n) == (pytest.approx(report.accuracy), report.correct_count,
                                                 report.labelled_count)


def test_kpi_table_rows_status_and_sparkline(sample):
    messages, rollup = sample
    table = kpis.kpi_table(messages, rollup, metrics=["resolution_rate", "escalation_rate", "negative_sentiment_rate"],
                           bands={"resolution_rate": (0.60, 0.75), "escalation_rate": (0.30, 0.20)})
    rows = table.set_index("name")
    assert rows.loc["escalation_rate", "period"] == "2026-W44"
    # 20.5% escalations: lower is better, green <= 20%, red > 30% -> amber.
    assert rows.loc["escalation_rate", "status"] == "amber"
    assert rows.loc["resolution_rate", "status"] == "red"          # 55.1% < 60%
    assert len(rows.loc["escalation_rate", "sparkline"]) == 12
    assert rows.loc["escalation_rate", "sparkline"][-1] == pytest.approx(49 / 239)
    # Not scored: unavailable with the reason, never an exception.
    assert not rows.loc["negative_sentiment_rate", "available"]
    assert "compound" in rows.loc["negative_sentiment_rate", "reason"]


# --------------------------------------------------------------------------- small hand-built cases

def _frame(rows):
    return messages_frame(rows)


def _conversations(starts, agent=()):
    rows = []
    for i, ts in enumerate(starts):
        rows.append({"conversation_id": f"c{i}", "speaker": "agent" if i in agent else "user", "text": "x",
                     "timestamp": ts})
    return _frame(rows)


def test_complete_periods_follow_the_data_span():
    # Wed 2026-08-05 .. Sat 2026-08-22: W32 starts before the data (incomplete), W33 complete,
    # W34 ends on Sunday the 23rd which the data never reaches (incomplete).
    m = _conversations(["2026-08-05T10:00Z", "2026-08-12T10:00Z", "2026-08-22T10:00Z"])
    s = kpis.kpi_series(m, conversation_rollup(m), metric="total_conversations")
    assert s[["period", "complete", "n"]].values.tolist() == [["2026-W32", False, 1], ["2026-W33", True, 1],
                                                              ["2026-W34", False, 1]]
    d = kpis.period_delta(s)
    assert d.current_period == "2026-W33" and math.isnan(d.delta) and "no complete week before" in d.reason


def test_empty_weeks_are_present_with_nan_rates():
    m = _conversations(["2026-08-03T10:00Z", "2026-08-17T10:00Z"], agent={1})
    s = kpis.kpi_series(m, conversation_rollup(m), metric="escalation_rate")
    assert s["period"].tolist() == ["2026-W32", "2026-W33", "2026-W34"]
    assert s["n"].tolist() == [1, 0, 1] and math.isnan(s["value"].iloc[1])


def test_no_timestamps_and_missing_columns_raise_insufficient_data():
    m = _frame([{"conversation_id": "a", "speaker": "user", "text": "x"}])
    r = conversation_rollup(m)
    with pytest.raises(InsufficientDataError, match="timestamps"):
        kpis.kpi_series(m, r, metric="escalation_rate")
    table = kpis.kpi_table(m, r, metrics=["escalation_rate", "csat"])
    assert table.set_index("name").loc["escalation_rate", "period"] == "all"
    assert not table.set_index("name").loc["csat", "available"]
    with pytest.raises(InsufficientDataError, match="rating"):
        kpis.kpi_value(m, r, metric="csat")


def test_bad_options_raise_config_error():
    m = _conversations(["2026-08-03T10:00Z"])
    r = conversation_rollup(m)
    with pytest.raises(ConfigError, match="unknown metric 'speed'"):
        kpis.kpi_series(m, r, metric="speed")
    with pytest.raises(ConfigError, match="'D'"):
        kpis.kpi_series(m, r, metric="escalation_rate", freq="D")
    with pytest.raises(ConfigError, match="alpha"):
        kpis.period_delta(kpis.kpi_series(m, r, metric="escalation_rate"), alpha=1.5)


def test_cost_per_outcome_week_is_the_roi_model_scaled_to_a_month():
    # One complete week, 7 conversations, all resolved (explicit outcome), no escalation, no ratings.
    # ROI defaults: $5,000 platform cost, nothing else -> total monthly cost $5,000.
    # Successful outcomes per month = 7 per week x 30.4375 / 7 = 30.4375 -> $5,000 / 30.4375 = $164.27.
    starts = [f"2026-08-0{d}T10:00Z" for d in range(3, 10)]
    m = _frame([{"conversation_id": f"c{i}", "speaker": "user", "text": "thanks", "timestamp": ts,
                 "outcome": "resolved"} for i, ts in enumerate(starts)])
    s = kpis.kpi_series(m, conversation_rollup(m), metric="cost_per_outcome")
    assert s["value"].iloc[0] == pytest.approx(5000 / 30.4375, rel=1e-6)
    w = kpis.kpi_window(m, conversation_rollup(m), metric="cost_per_outcome", start="2026-08-03", end="2026-08-10")
    assert w.value == pytest.approx(5000 / 30.4375, rel=1e-6)


def test_rag_status_bands_and_boundaries():
    assert kpis.rag_status(0.75, red=0.6, green=0.75) == "green"        # at the green line
    assert kpis.rag_status(0.60, red=0.6, green=0.75) == "amber"        # at the red line: not below it
    assert kpis.rag_status(0.599, red=0.6, green=0.75) == "red"
    assert kpis.rag_status(2.0, red=15, green=2, direction="lower") == "green"
    assert kpis.rag_status(15.0, red=15, green=2, direction="lower") == "amber"
    assert kpis.rag_status(15.01, red=15, green=2, direction="lower") == "red"
    assert kpis.rag_status(None, red=1, green=2) == "none"
    with pytest.raises(ConfigError, match="red"):
        kpis.rag_status(0.5, red=0.8, green=0.6)
    with pytest.raises(ConfigError, match="direction"):
        kpis.rag_status(0.5, red=0.8, green=0.6, direction="up")


def test_catalogue_is_consistent():
    for name, kpi in kpis.CATALOGUE.items():
        assert kpi.name == name and kpi.kind in kpis.KINDS and kpi.direction in kpis.DIRECTIONS
    assert [k.name for k in kpis.CATALOGUE.values() if k.vanity] == ["total_conversations"]
    assert {"cost_per_outcome", "automation_savings", "attributed_revenue", "revenue"} == \
        {k.name for k in kpis.CATALOGUE.values() if k.business}


def test_formatting():
    assert kpis.format_value(0.5512, "rate") == "55.1%"
    assert kpis.format_value(-12.5, "money") == "-$12.50"
    assert kpis.format_delta(-0.0335, "rate") == "-3.4 pp"
    assert kpis.format_delta(float("nan"), "rate") == "—"


# --------------------------------------------------------------------------- properties

_starts = st.lists(st.tuples(st.integers(0, 27), st.booleans()), min_size=1, max_size=25)


@settings(max_examples=60)
@given(_starts, st.randoms(use_true_random=False))
def test_row_order_does_not_matter_and_input_is_not_mutated(items, rnd):
    base = pd.Timestamp("2026-08-03T09:00Z")
    rows = []
    for i, (day, agent) in enumerate(items):
        ts = (base + pd.Timedelta(days=day)).isoformat()
        rows.append({"conversation_id": f"c{i}", "speaker": "user", "text": "hi", "timestamp": ts})
        if agent:
            rows.append({"conversation_id": f"c{i}", "speaker": "agent", "text": "hello", "timestamp": ts})
    m = _frame(rows)
    r = conversation_rollup(m)
    before_m, before_r = m.copy(), r.copy()
    s1 = kpis.kpi_series(m, r, metric="escalation_rate")
    pd.testing.assert_frame_equal(m, before_m)
    pd.testing.assert_frame_equal(r, before_r)
    order = list(range(len(m)))
    rnd.shuffle(order)
    shuffled = m.iloc[order].reset_index(drop=True)
    s2 = kpis.kpi_series(shuffled, conversation_rollup(shuffled), metric="escalation_rate")
    pd.testing.assert_frame_equal(s1, s2)
    # The series' units add up to every conversation, and the escalated ones to the agent conversations.
    assert s1["n"].sum() == len(items)
    assert s1["successes"].sum() == sum(1 for _, a in items if a)


def test_empty_input_gives_empty_series():
    m = _frame([{"conversation_id": "a", "speaker": "user", "text": "x", "timestamp": "2026-08-03T10:00Z"}]).iloc[0:0]
    s = kpis.kpi_series(m, conversation_rollup(m), metric="escalation_rate")
    assert len(s) == 0 and list(s.columns) == ["metric", "period", "period_start", "period_end", "complete", "value",
                                               "successes", "n"]
    assert np.isnan(kpis.kpi_value(m, conversation_rollup(m), metric="escalation_rate").value)


_conv = st.fixed_dictionaries({
    "day": st.integers(0, 45), "speakers": st.lists(st.sampled_from(["user", "bot", "agent"]), min_size=1, max_size=4),
    "event": st.sampled_from([None, "email", "handoff"]), "outcome": st.sampled_from([None, "resolved", "Transferred"]),
    "goal": st.sampled_from([None, True, False]), "converted": st.sampled_from([None, True, False]),
    "rating": st.sampled_from([None, 1.0, 5.0]),
    "compound": st.lists(st.sampled_from([-0.5, -0.05, -0.0499, 0.0, 0.05, 0.7, float("nan")]), min_size=4,
                         max_size=4)})


@settings(max_examples=60, deadline=None)
@given(st.lists(_conv, min_size=1, max_size=10))
def test_property_roi_series_and_units_match_a_per_period_reference(convs):
    # The ROI KPIs of each period are counted from facts classified once for all the data; the
    # reference is kpi_window over the period, which runs the ROI model on that period's own messages
    # and rollup. Negative sentiment labels each distinct score once; the reference labels every message.
    from metrics.sentiment import sentiment_labels

    rows = []
    for i, c in enumerate(convs):
        start = pd.Timestamp("2026-08-03T09:00Z") + pd.Timedelta(days=c["day"])
        for k, speaker in enumerate(c["speakers"]):
            rows.append({"conversation_id": f"c{i}", "speaker": speaker, "text": "hi",
                         "timestamp": (start + pd.Timedelta(minutes=k)).isoformat(), "event": c["event"] if k else None,
                         "outcome": c["outcome"], "goal_achieved": c["goal"], "converted": c["converted"],
                         "rating": c["rating"], "compound": c["compound"][k]})
    m = _frame(rows)
    r = conversation_rollup(m)
    for metric in ("cost_per_outcome", "automation_savings", "attributed_revenue"):
        for freq in ("W", "M"):
            s = kpis.kpi_series(m, r, metric=metric, freq=freq)
            for row in s.itertuples(index=False):
                w = kpis.kpi_window(m, r, metric=metric, start=row.period_start, end=row.period_end)
                assert row.n == w.n
                assert (math.isnan(row.value) and math.isnan(w.value)) or row.value == w.value
    units = kpis.kpi_units(m, r, metric="negative_sentiment_rate")
    users = m[m["speaker"].eq("user").to_numpy(bool) & m["compound"].notna().to_numpy(bool)]
    expected = sentiment_labels(users["compound"]).eq("negative").astype(float).tolist()
    assert units["conversation_id"].tolist() == users["conversation_id"].tolist()
    assert units["value"].tolist() == expected


# --------------------------------------------------------------------------- KpiData (shared by the alert rules)

def test_kpi_data_series_equals_kpi_series_and_shares_family_results(sample, monkeypatch):
    messages, rollup = sample
    import metrics.outcomes as outcomes

    calls = []
    real = outcomes.outcome_table
    monkeypatch.setattr(outcomes, "outcome_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    data = kpis.KpiData(messages, rollup)
    for metric in ("containment_rate", "escalation_rate", "abandonment_rate"):
        pd.testing.assert_frame_equal(data.series(metric), kpis.kpi_series(messages, rollup, metric=metric))
    # kpi_series builds its own KpiData each call (3 tables); the shared one classified once
    assert len(calls) == 3 + 1


def test_kpi_data_periods_restrict_the_roi_model_only(sample):
    messages, rollup = sample
    data = kpis.KpiData(messages, rollup)
    weeks = data.series("total_conversations")
    last = weeks["period_start"].iloc[-2]
    roi = data.series("cost_per_outcome", periods={last})
    assert roi["value"].notna().tolist() == (roi["period_start"] == last).tolist()
    assert data.series("total_conversations", periods={last})["value"].notna().all()


def test_kpi_data_validates_metric_freq_and_options(sample):
    messages, rollup = sample
    with pytest.raises(ConfigError, match="'no_such_kpi'"):
        kpis.KpiData(messages, rollup).series("no_such_kpi")
    with pytest.raises(ConfigError, match="'D'"):
        kpis.KpiData(messages, rollup).series("escalation_rate", freq="D")
    with pytest.raises(ConfigError, match="KpiOptions"):
        kpis.KpiData(messages, rollup, options={"fallback_intent": "x"})


def test_readme_definitions_are_the_registry():
    """README's "Definitions: every KPI" table is generated from the registry; regenerate it with
    ``metrics.kpis.definitions_markdown()`` when a KPI changes."""
    from metrics.kpis import definitions_markdown
    from ui.kpi_pages import KPI_PAGES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- definitions:start -->\n", "<!-- definitions:end -->"
    assert start in readme and end in readme
    shown = readme[readme.index(start) + len(start):readme.index(end)]
    assert shown == definitions_markdown(pages=KPI_PAGES)


def test_every_kpi_has_a_page_code_and_tests():
    """A newcomer finds any metric from the README: the UI's map names an existing page for every KPI and
    backlog view, and every family's golden-test file exists and names the family's KPIs."""
    from metrics.kpis import CATALOGUE, FAMILY_TESTS, KPI_TESTS
    from ui.kpi_pages import KPI_PAGES, VIEW_PAGES

    assert set(KPI_PAGES) == set(CATALOGUE)
    for path in list(KPI_PAGES.values()) + list(VIEW_PAGES.values()):
        assert (ROOT / path).is_file(), path
    kpi_tests = (ROOT / KPI_TESTS).read_text(encoding="utf-8")
    for k in CATALOGUE.values():
        assert (ROOT / FAMILY_TESTS[k.family]).is_file(), (k.name, FAMILY_TESTS[k.family])
        assert k.name in kpi_tests, f"{k.name} has no golden test in {KPI_TESTS}"


def test_every_registry_entry_is_complete():
    """Each KPI states its numerator, population, provenance and how it is computed; the units functions and the
    ROI metrics are the only two ways; every rate names its denominator."""
    from metrics.kpis import AGGREGATES, CATALOGUE, PROVENANCES

    for k in CATALOGUE.values():
        assert k.numerator and k.population and k.definition, k.name
        assert k.provenance in PROVENANCES and k.aggregate in AGGREGATES, k.name
        assert (k.units is None) == (k.aggregate == "roi"), k.name
        if k.kind in ("rate", "score"):
            assert k.denominator, k.name
        if k.aggregate == "roi":
            assert k.provenance == "mixed", k.name  # the ROI model always mixes data and assumed costs


# --------------------------------------------------------------------------- goldens for every data KPI of the
# registry (the ROI ones: test_cost_per_outcome_week_is_the_roi_model_scaled_to_a_month and tests/metrics/roi), on a fixture small enough to count by hand

def _hand_fixture() -> pd.DataFrame:
    """Four conversations in ISO week 2026-W32, with explicit outcomes, lead-funnel events, ratings, conversions,
    human intent labels and sentiment scores set by hand (not VADER), so every expected value below is counted from this table."""
    c = [  # conversation, speaker, text, event, intent, true_intent, compound
        ("c1", "user", "I need a quote", "inquiry", "quote", "quote", 0.0),
        ("c1", "bot", "Sure, how many seats?", None, None, None, -0.9),   # a bot message: never in user KPIs
        ("c1", "user", "50 seats", "qualification", "seats", "seats", 0.0),
        ("c1", "user", "mail me at ann@example.org", None, "email", "email", 0.0),
        ("c2", "user", "price?", "inquiry", "quote", "quote", 0.0),
        ("c2", "user", "10 seats", "qualification", "seats", "seats", 0.0),
        ("c2", "user", "contact me: bo@example.org", None, "email", "email", 0.0),
        ("c2", "user", "this is terrible", None, "complaint", "billing", -0.7),
        ("c3", "user", "hello", None, None, "greet", 0.3),            # no prediction: counts as the fallback
        ("c4", "user", "hi", "inquiry", "greet", "greet", 0.0),
        ("c4", "user", "x@y.org", None, "email", "email", -0.05),    # at the cut-off: negative
    ]
    per_conversation = {"c1": (5, True, 100.0, "resolved"), "c2": (2, False, None, "escalated"),
                        "c3": (None, None, None, "abandoned"), "c4": (4, None, None, "resolved")}
    rows = []
    for i, (cid, speaker, text, event, intent, true_intent, compound) in enumerate(c):
        rating, converted, value, outcome = per_conversation[cid]
        rows.append({"conversation_id": cid, "speaker": speaker, "text": text, "event": event, "intent": intent,
                     "true_intent": true_intent, "timestamp": f"2026-08-0{3 + int(cid[1])}T10:{i:02d}:00Z",
                     "rating": rating, "converted": converted, "conversion_value": value, "outcome": outcome})
    m = messages_frame(rows)
    m["compound"] = pd.Series([row[6] for row in c], dtype="float64")
    return m


_HAND_GOLDENS = [
    # outcomes, from the explicit outcome column: c1 and c4 resolved, c2 escalated, c3 abandoned (all 4 decided)
    ("resolution_rate", 2 / 4),
    ("escalation_rate", 1 / 4),
    ("abandonment_rate", 1 / 4),
    ("containment_rate", 3 / 4),         # decided without an escalation signal: c1, c3, c4
    # funnel (strict order inquiry -> qualification -> e-mail): c1, c2 and c4 entered; c1 and c2 reached the
    # e-mail stage (c4 gave an e-mail without the qualification stage, so it stays at "inquiry")
    ("lead_conversion_rate", 2 / 3),
    ("lead_count", 2.0),
    ("conversion_rate", 1 / 2),          # of the 2 leads, c1 converted
    ("revenue", 100.0),                  # c1's conversion_value; c2 did not convert
    ("csat", (5 + 2 + 4) / 3),           # c3 is not rated
    # 10 labelled user messages; wrong: c2 "complaint" for billing, c3 no prediction (fallback) for greet
    ("intent_accuracy", 8 / 10),
    # 10 scored user messages; negative: -0.7 and -0.05 (the cut-off is <= -0.05); the bot's -0.9 is not counted
    ("negative_sentiment_rate", 2 / 10),
    ("total_conversations", 4.0),
]


def test_every_data_kpi_has_a_hand_counted_golden():
    from metrics.kpis import CATALOGUE

    assert {name for name, _ in _HAND_GOLDENS} == {k.name for k in CATALOGUE.values() if k.aggregate != "roi"}


@pytest.mark.parametrize("metric,expected", _HAND_GOLDENS)
def test_registry_goldens_counted_by_hand(metric, expected):
    m = _hand_fixture()
    series = kpis.kpi_series(m, conversation_rollup(m), metric=metric)
    assert series["period"].tolist() == ["2026-W32"]
    assert series["value"].iloc[0] == pytest.approx(expected)
