"""Charts and documents that say what they show (issue 19, item 6): colour follows meaning, missing values are
written in words, the tornado labels its baseline and bar ends, every chart carries its title (an exported PNG
shows it), a segment comparison stays a readable size, time axes skip stray dates."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from metrics import funnel, roi
from metrics.funnel import charts as funnel_charts
from metrics.outcomes import charts as outcome_charts
from metrics.roi import charts as roi_charts
from metrics.engagement import volume


def _vendor(rates: dict) -> pd.DataFrame:
    row = {"style": "Rasa style", "counted_count": 4, "resolved_count": 0, "escalated_count": 0,
           "abandoned_count": 4, "contained_count": 4, "definition": "..."}
    row.update({f"{k}_rate": v for k, v in rates.items()})
    return pd.DataFrame([row])


def test_outcome_heatmap_is_red_when_bad_and_never_prints_null():
    spec = outcome_charts.vendor_chart(_vendor({"resolution": float("nan"), "escalation": 0.0,
                                                "abandonment": 1.0, "containment": 1.0})).to_dict()
    rows = {r["metric"]: r for r in next(iter(spec["datasets"].values()))}
    # 100% abandonment is the bad end of the scale, 100% containment the good end, no data is grey and says so
    assert rows["abandonment"]["goodness"] == 0.0 and rows["containment"]["goodness"] == 1.0
    assert rows["escalation"]["goodness"] == 1.0
    assert rows["resolution"]["label"] == "no data" and rows["resolution"]["goodness"] is None
    empty, cells, text = spec["layer"]
    assert empty["mark"]["color"] == "#eeeeee" and "color" not in empty.get("encoding", {})
    colour = cells["encoding"]["color"]
    assert colour["condition"]["field"] == "goodness" and colour["condition"]["scale"]["scheme"] == "redyellowgreen"
    assert colour["value"] == "#eeeeee"
    assert text["encoding"]["text"]["field"] == "label"
    assert "null" not in json.dumps([r["label"] for r in rows.values()])


def test_tornado_labels_its_baseline_and_bar_ends():
    inputs = roi.RoiInputs()
    frame = roi.tornado(inputs, swing=0.2)
    spec = roi_charts.tornado_chart(frame, target="cost_per_outcome", swing=0.2).to_dict()
    base = roi.compute_roi(inputs).cost_per_outcome
    assert spec["title"]["text"] == "Cost per successful outcome: each input moved by ±20%"
    assert f"${base:,.2f}" in spec["title"]["subtitle"]
    marks = [layer["mark"] for layer in spec["layer"]]
    texts = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    # two layers of bar-end labels (left and right of their bars) and the labelled baseline
    assert len(texts) == 3 and {"rule"} <= {m["type"] for m in marks}
    ends = [t for t in texts if t["encoding"]["text"].get("field") == "end"]
    assert len(ends) == 2 and all(t["encoding"]["text"]["format"] == "$,.2f" for t in ends)
    label = [t for t in texts if t["encoding"]["text"].get("field") == "text"][0]
    label_rows = next(rows for name, rows in spec["datasets"].items() if rows and "text" in rows[0])
    assert label_rows[0]["text"] == f"base ${base:,.2f}"
    assert label["mark"]["fontWeight"] == "bold"
    assert spec["layer"][0]["encoding"]["x"]["axis"]["tickCount"] >= 5


def test_two_way_heatmap_is_red_where_costs_are_high():
    inputs = roi.RoiInputs()
    rates, volumes = roi.grid_around(inputs)
    for target, reverse in (("cost_per_outcome", True), ("net_roi", None), ("attributed_revenue", False)):
        table = roi.two_way_table(inputs, conversion_rates=rates, volumes=volumes, target=target)
        spec = roi_charts.two_way_heatmap(table, target=target).to_dict()
        scale = spec["layer"][0]["encoding"]["color"]["scale"]
        assert scale["scheme"] == "redyellowgreen" and scale.get("reverse") == reverse, target
        assert spec["title"]["text"].endswith("by lead conversion rate and monthly volume")


BUILDERS = {
    "outcome mix": lambda: outcome_charts.outcome_mix_chart(pd.DataFrame(
        {"period": ["2026-W01"], "period_start": [pd.Timestamp("2026-01-05")], "outcome": ["resolved"],
         "conversation_count": [1], "share_rate": [1.0]})),
    "reasons": lambda: outcome_charts.reasons_chart(pd.DataFrame(
        {"reason": ["x"], "reason_source": ["agent"], "conversation_count": [1], "share_rate": [1.0]})),
    "funnel": lambda: funnel_charts.funnel_chart(pd.DataFrame(
        {"stage_index": [0], "stage": ["a"], "rule": ["user~x"], "conversations": [3], "rate_of_entry": [1.0],
         "step_rate": [1.0], "dropped": [0], "median_seconds_from_previous": [np.nan]})),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_chart_carries_its_title(name):
    spec = BUILDERS[name]().to_dict()
    title = spec.get("title")
    assert isinstance(title, (str, dict)) and (title if isinstance(title, str) else title["text"]), name


def test_segment_comparison_keeps_the_largest_segments_only():
    rows = []
    for i in range(80):  # 80 brands (the Twitter export): one bar group each would be thousands of px tall
        for stage in range(2):
            rows.append({"segment": f"brand{i:02d}", "stage_index": stage, "stage": f"s{stage}",
                         "conversations": 100 - i, "rate_of_entry": 1.0, "step_rate": 1.0, "dropped": 0,
                         "median_seconds_from_previous": np.nan})
    frame = pd.DataFrame(rows)
    spec = funnel_charts.segment_comparison_chart(frame).to_dict()
    shown = {r["segment"] for r in next(iter(spec["datasets"].values()))}
    assert shown == {f"brand{i:02d}" for i in range(funnel_charts.MAX_SEGMENTS)}
    assert spec["height"] <= 22 * 2 * funnel_charts.MAX_SEGMENTS


def test_dense_span_names_the_stray_dates_and_keeps_ordinary_data_whole():
    days = ["2011-08-29", "2016-08-06"] + [f"2017-10-{d:02d}" for d in range(1, 31)] * 20
    rollup = pd.DataFrame({"conversation_id": [str(i) for i in range(len(days))],
                           "started_at": pd.to_datetime(days, utc=True)})
    span = volume.dense_span(rollup)
    assert span.trimmed and span.outlier_count == 2 and span.outlier_days == ("2011-08-29", "2016-08-06")
    kept = volume.within_dense_span(rollup, span)
    assert len(kept) == len(rollup) - 2 and kept["started_at"].min().year == 2017
    uniform = rollup.iloc[2:]
    assert not volume.dense_span(uniform).trimmed
    assert len(volume.within_dense_span(uniform, volume.dense_span(uniform))) == len(uniform)
    assert volume.dense_span(rollup.assign(started_at=pd.NaT)) == volume.DenseSpan(None, None)


def test_funnel_suggestion_comes_from_the_data():
    m = pd.DataFrame({"conversation_id": list("aabbccd"), "speaker": ["user"] * 7,
                      "text": ["x"] * 7,
                      "intent": ["greet", "buy", "ask_price", "buy", "ask_price", "nlu_fallback", "ask_price"]})
    stages = funnel.suggest_stages(m, top=2)
    # the two intents in the most conversations (small talk and fallback left out), first-asked first
    assert [str(s.rule) for s in stages] == ["intent:ask_price", "intent:buy"]
    text_only = m.drop(columns="intent").assign(text=["hi", "mail me: a@b.io", "x", "y", "z", "w", "v"])
    assert [s.name for s in funnel.suggest_stages(text_only)] == ["user wrote", "gave an e-mail address"]
    for stage in funnel.suggest_stages(text_only):  # every suggestion is valid funnel syntax
        assert funnel.parse_stage(f"{stage.name}={stage.rule}") == stage


def test_weekly_review_markdown_is_real_markdown():
    from metrics.improve.review import md_escape

    assert md_escape("Cost per outcome: $14.50 (was $15.83, -8.4%); 2026-W44") == \
        "Cost per outcome: $14.50 (was $15.83, -8.4%); 2026-W44"
    # only what would change the document is escaped
    assert md_escape("*bold* _it_ `code` [link](x) a|b <b>") == "\\*bold\\* \\_it\\_ \\`code\\` \\[link\\](x) a\\|b \\<b>"
    assert md_escape("# not a heading") == "\\# not a heading" and md_escape("lead_rate") == "lead_rate"
    assert math.isnan(float("nan")) and md_escape(float("nan")) == ""
