"""The improve family's facts (metrics/improve/facts.py): the KPI units as shard facts, and the ``kpis`` section
rebuilt from the combined facts equal to the one computed from the messages."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, messages_frame
from metrics.core import facts as F
from metrics.core.rollup import conversation_rollup
from metrics.engagement import facts as engagement_facts
from metrics.improve import facts as improve_facts
from metrics.improve.cli_alerts import kpis_section
from metrics.kpis import KPI_NAMES, _kpi_table, kpi_table


def _family_facts(frame: pd.DataFrame, ctx: F.Context) -> dict[str, dict[str, pd.DataFrame]]:
    """The combined facts of the two families the section reads (engagement: the rollup; improve)."""
    return {"engagement": engagement_facts.shard_facts(frame, ctx), "improve": improve_facts.shard_facts(frame, ctx)}


def _combine(parts: list[dict]) -> dict:
    out = {"engagement": {}, "improve": {}}
    for fam, module in (("engagement", engagement_facts), ("improve", improve_facts)):
        for name, spec in module.TABLES.items():
            out[fam][name] = F.combine_table([p[fam][name] for p in parts], spec)
    return out


def _facts(frame: pd.DataFrame, buckets: int = 1) -> tuple[dict, F.Context]:
    ctx = F.context_of(frame)
    shards = [frame] if buckets == 1 else F.split_shards(frame, buckets)
    return _combine([_family_facts(s, ctx) for s in shards]), ctx


def _close(x, y, where=""):
    if isinstance(x, dict):
        assert isinstance(y, dict) and list(x) == list(y), (where, x, y)
        for k in x:
            _close(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), (where, x, y)
        for i, (a, b) in enumerate(zip(x, y)):
            _close(a, b, f"{where}[{i}]")
    elif isinstance(x, float) and not isinstance(y, bool) and isinstance(y, (int, float)):
        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (where, x, y)
    else:
        assert x == y and type(x) is type(y), (where, x, y)


# --------------------------------------------------------------------------- the shard contract

_SPEAKERS = st.sampled_from(["user", "user", "bot", "agent"])
_TEXTS = st.sampled_from(["I love this, thanks!", "this is terrible", "order 12345", "can you help?", "ok", "bye"])
_EVENTS = st.sampled_from([None, None, None, "handoff", "inquiry", "qualification", "email"])
_INTENTS = st.sampled_from(["greet", "refund", "nlu_fallback", "order_status"])


@st.composite
def _frames(draw):
    n_conv = draw(st.integers(0, 8))
    timed = draw(st.sampled_from([True, True, True, False]))
    with_compound = draw(st.booleans())
    rows = []
    for c in range(n_conv):
        day = draw(st.integers(0, 60))
        converted = draw(st.sampled_from([None, True, False]))
        for t in range(draw(st.integers(1, 5))):
            intent = draw(_INTENTS)
            row = {
                "conversation_id": f"c{c}",
                "speaker": draw(_SPEAKERS),
                "text": draw(_TEXTS),
                "user_id": draw(st.sampled_from(["u1", "u2", None])),
                "event": draw(_EVENTS),
                "intent": intent,
                "true_intent": draw(st.sampled_from([intent, "refund", None])),
                "outcome": draw(st.sampled_from([None, None, "resolved", "escalated", "abandoned"])),
                "goal_achieved": draw(st.sampled_from([None, True, False])),
                "rating": draw(st.sampled_from([None, None, 1.0, 4.0, 5.0])),
                "thumbs": draw(st.sampled_from([None, "up", "down"])),
                "converted": converted,
                "conversion_value": draw(st.sampled_from([None, 0.0, 120.5, 999.0])),
            }
            if timed:
                ts = pd.Timestamp("2026-07-01") + pd.Timedelta(days=day, minutes=7 * t + draw(st.integers(0, 5)))
                row["timestamp"] = ts.isoformat()
            if with_compound:
                row["compound"] = draw(st.sampled_from([None, -0.7, -0.05, 0.0, 0.3]))
            rows.append(row)
    if not rows:
        return messages_frame([{"conversation_id": "c0", "speaker": "user", "text": "hi",
                                "timestamp": "2026-08-01 10:00"}]).iloc[0:0].reset_index(drop=True)
    frame = messages_frame(rows)
    if "compound" in frame.columns:
        frame["compound"] = pd.to_numeric(frame["compound"]).astype("float64")
    return frame


def _assert_same(left: dict, right: dict) -> None:
    for name in improve_facts.TABLES:
        pd.testing.assert_frame_equal(left["improve"][name], right["improve"][name], check_exact=False, rtol=1e-9,
                                      obj=f"improve.{name}")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(), seed=st.integers(0, 2**31 - 1), parts=st.integers(1, 4))
def test_kpi_facts_of_shards_equal_the_facts_of_the_whole(frame, seed, parts):
    ctx = F.context_of(frame)
    whole = _combine([_family_facts(frame, ctx)])
    rng = np.random.default_rng(seed)
    ids = frame["conversation_id"].unique()
    assign = dict(zip(ids, rng.integers(0, parts, len(ids))))
    which = frame["conversation_id"].map(assign).to_numpy() if len(frame) else np.zeros(0, int)
    shards = [frame[which == p].reset_index(drop=True) for p in range(parts)]
    combined = _combine([_family_facts(s, ctx) for s in shards])
    _assert_same(combined, whole)
    # and the section from the facts is the section of the messages
    got = improve_facts.sections(combined, ctx, {})
    if len(frame) == 0:
        assert got == {}
    else:
        _close(kpis_section(frame, conversation_rollup(frame)), got["kpis"])


def test_every_table_is_returned_with_the_same_columns_and_dtypes_for_an_empty_shard():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "hi", "timestamp": "2026-08-01 10:00",
                         "event": "email", "intent": "greet", "true_intent": "greet", "rating": 4.0,
                         "converted": True, "conversion_value": 10.0, "outcome": "resolved"}])
    ctx = F.context_of(m)
    full = improve_facts.shard_facts(m, ctx)
    empty = improve_facts.shard_facts(m.iloc[0:0].reset_index(drop=True), ctx)
    assert set(full) == set(empty) == set(improve_facts.TABLES)
    for name in improve_facts.TABLES:
        assert list(full[name].columns) == list(empty[name].columns), name
        assert full[name].dtypes.tolist() == empty[name].dtypes.tolist(), name
    assert len(full["units"]) and len(full["roi"]) == 1 and len(empty["units"]) == len(empty["roi"]) == 0


def test_shard_facts_ignore_the_row_order_and_do_not_modify_the_shard():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "x", "intent": "greet", "true_intent": "greet",
         "timestamp": "2026-08-03 10:00"},
        {"conversation_id": "a", "speaker": "user", "text": "y", "intent": "refund", "true_intent": "greet",
         "timestamp": "2026-08-03 10:01"},
        {"conversation_id": "b", "speaker": "agent", "text": "z", "timestamp": "2026-08-04 10:00"},
    ])
    ctx = F.context_of(m)
    before = m.copy()
    first = _combine([_family_facts(m, ctx)])
    pd.testing.assert_frame_equal(m, before)
    shuffled = _combine([_family_facts(m.iloc[::-1].reset_index(drop=True), ctx)])
    _assert_same(shuffled, first)


# --------------------------------------------------------------------------- the section equals the summary's


def _fixture() -> pd.DataFrame:
    rows = []
    for i in range(40):  # about six weeks over two months, every conversation a few messages
        day = pd.Timestamp("2026-07-27") + pd.Timedelta(hours=25 * i)
        cid = f"c{i:02d}"
        rows.append({"conversation_id": cid, "speaker": "user", "text": "hello, can you help?", "timestamp": day,
                     "intent": "refund", "true_intent": "refund" if i % 3 else "greet", "event": "inquiry",
                     "rating": float(1 + i % 5) if i % 2 else None})
        rows.append({"conversation_id": cid, "speaker": "bot", "text": "Sure, what is your e-mail?",
                     "timestamp": day + pd.Timedelta(minutes=1), "event": "qualification" if i % 2 else None})
        if i % 4 == 0:
            rows.append({"conversation_id": cid, "speaker": "agent", "text": "a human here",
                         "timestamp": day + pd.Timedelta(minutes=3)})
        if i % 3 == 1:
            rows.append({"conversation_id": cid, "speaker": "user", "text": "me@example.com", "event": "email",
                         "timestamp": day + pd.Timedelta(minutes=2), "converted": i % 2 == 1,
                         "conversion_value": 250.0 + i, "outcome": "resolved" if i % 5 else None})
    for r in rows:
        r["timestamp"] = r["timestamp"].isoformat()
    return messages_frame(rows)


@pytest.mark.parametrize("buckets", [1, 5])
def test_the_kpis_section_from_facts_equals_the_one_from_the_messages(buckets):
    m = _fixture()
    facts, ctx = _facts(m, buckets)
    want = kpis_section(m, conversation_rollup(m))
    got = improve_facts.sections(facts, ctx, {})["kpis"]
    _close(want, got)
    assert [k["name"] for k in got] == list(KPI_NAMES)
    assert sum(k["value"] is not None for k in got) >= 12 and any(k["wow_delta"] is not None for k in got)


def test_the_whole_kpi_table_from_facts_equals_kpi_table_including_reasons_and_sparklines():
    m = _fixture()
    facts, ctx = _facts(m, 3)
    want = kpi_table(m, conversation_rollup(m))
    got = _kpi_table(improve_facts.kpi_data(facts), list(KPI_NAMES), bands=None, spark_periods=12, alpha=0.05)
    pd.testing.assert_frame_equal(want.drop(columns=["sparkline"]), got.drop(columns=["sparkline"]),
                                  check_exact=False, rtol=1e-9)
    for a, b in zip(want["sparkline"], got["sparkline"]):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_without_timestamps_the_section_covers_all_the_data():
    m = _fixture().assign(timestamp=pd.Series(pd.NaT, dtype="datetime64[ns, UTC]"))
    facts, ctx = _facts(m, 4)
    _close(kpis_section(m, conversation_rollup(m)), improve_facts.sections(facts, ctx, {})["kpis"])


def test_negative_sentiment_from_compound_scores_when_the_messages_have_them():
    m = _fixture()
    m["compound"] = np.where(np.arange(len(m)) % 3 == 0, -0.6, 0.2)
    facts, ctx = _facts(m, 4)
    got = improve_facts.sections(facts, ctx, {})["kpis"]
    _close(kpis_section(m, conversation_rollup(m)), got)
    assert next(k for k in got if k["name"] == "negative_sentiment_rate")["value"] is not None


def test_no_conversations_no_section():
    m = _fixture().iloc[0:0].reset_index(drop=True)
    facts, ctx = _facts(m, 1)
    assert improve_facts.sections(facts, ctx, {}) == {}


def test_the_sample_kpis_section_from_facts_equals_the_summarys():
    from metrics.io.loaders import load_path

    m = load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame
    want = kpis_section(m, conversation_rollup(m))
    for buckets in (1, 7):
        facts, ctx = _facts(m, buckets)
        _close(want, improve_facts.sections(facts, ctx, {})["kpis"], f"buckets={buckets}")
