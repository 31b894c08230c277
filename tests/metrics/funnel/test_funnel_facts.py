"""The funnel family's facts (metrics/funnel/facts.py): the shard contract, a hand-counted golden
and equality with today's ``funnel`` section (metrics.funnel.cli.section_provider)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics.core import facts as F
from metrics.funnel import cli as funnel_cli
from metrics.funnel import facts as funnel_facts


def family_facts(shards: list[pd.DataFrame], ctx: F.Context) -> dict:
    """The combined funnel tables of the shards (only this family: the others are not needed)."""
    parts = [funnel_facts.shard_facts(s, ctx) for s in shards]
    return {name: F.combine_table([p[name] for p in parts], spec) for name, spec in funnel_facts.TABLES.items()}


def sections_of(messages: pd.DataFrame, shards: list[pd.DataFrame] | None = None) -> dict:
    ctx = F.context_of(messages)
    facts = {"funnel": family_facts(shards if shards is not None else [messages], ctx)}
    return funnel_facts.sections(facts, ctx, {})


def assert_same(a, b):
    """Equal JSON objects, floats to 1e-9 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (a, b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (a, b)
    else:
        assert a == b and type(a) is type(b), (a, b)


def split(frame: pd.DataFrame, shard_of: dict, shards: int = 4) -> list[pd.DataFrame]:
    bucket = frame["conversation_id"].map(shard_of)
    return [frame[bucket == b].reset_index(drop=True) for b in range(shards)]  # some shards may be empty


# --------------------------------------------------------------------------- random frames

_EVENTS = ["inquiry", " Inquiry ", "qualification", "QUALIFICATION", "other", "", None, None]
_TEXTS = ["hi", "mail me: jane@example.com", "call +44 20 7946 0958", "555-123-4567 or a@b.org", "ok", "2024-01-02"]


@st.composite
def funnel_frames(draw):
    n_conv = draw(st.integers(1, 7))
    timed = draw(st.booleans())
    columns = draw(st.sets(st.sampled_from(["converted", "conversion_value", "event"])))
    rows = []
    for c in range(n_conv):
        for i in range(draw(st.integers(1, 6))):
            row = {"conversation_id": f"c{c}", "speaker": draw(st.sampled_from(["user", "user", "bot"])),
                   "text": draw(st.sampled_from(_TEXTS))}
            if timed:
                row["timestamp"] = f"2026-03-0{1 + c % 9} 10:{draw(st.integers(0, 59)):02d}"
            if "event" in columns:
                row["event"] = draw(st.sampled_from(_EVENTS))
            if "converted" in columns:
                row["converted"] = draw(st.sampled_from([True, False, None]))
            if "conversion_value" in columns:
                row["conversion_value"] = draw(st.sampled_from([None, 10.0, 0.1, 250.5]))
            rows.append(row)
    frame = messages_frame(rows)
    shard_of = {f"c{c}": draw(st.integers(0, 3)) for c in range(n_conv)}
    return frame, shard_of


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(funnel_frames())
def test_combined_facts_of_shards_equal_the_facts_of_the_whole(case):
    frame, shard_of = case
    ctx = F.context_of(frame)
    whole = family_facts([frame], ctx)
    parts = family_facts(split(frame, shard_of), ctx)
    for name in funnel_facts.TABLES:
        pd.testing.assert_frame_equal(parts[name], whole[name], check_exact=False, rtol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(funnel_frames())
def test_the_section_from_facts_equals_todays_section_on_random_frames(case):
    frame, shard_of = case
    today = funnel_cli.section_provider(frame)
    assert_same(sections_of(frame, split(frame, shard_of)), {} if today is None else today)


def test_an_empty_shard_gives_every_table_with_the_columns_and_dtypes_of_a_full_one():
    frame, _ = _golden()
    ctx = F.context_of(frame)
    full = funnel_facts.shard_facts(frame, ctx)
    empty = funnel_facts.shard_facts(frame.iloc[0:0], ctx)
    bare = funnel_facts.shard_facts(frame.drop(columns=["event", "converted", "conversion_value"]).iloc[0:0], ctx)
    assert set(full) == set(empty) == set(bare) == set(funnel_facts.TABLES)
    for name in funnel_facts.TABLES:
        assert dict(empty[name].dtypes) == dict(full[name].dtypes) == dict(bare[name].dtypes)
    assert len(empty["conversations"]) == 0 and len(empty["events"]) == 0
    assert empty["dataset"].values.tolist() == [[0, 0]]


def test_no_inquiry_event_means_no_section():
    frame, _ = _golden()
    assert sections_of(frame.drop(columns=["event"])) == {}
    other = frame.assign(event=frame["event"].where(frame["event"].str.strip().str.casefold() != "inquiry"))
    assert sections_of(other) == {} and funnel_cli.section_provider(other) is None


# --------------------------------------------------------------------------- golden, counted by hand


def _golden():
    rows = [
        # c1: every stage in order; converted, worth 100
        {"conversation_id": "c1", "speaker": "user", "text": "hi", "event": "inquiry"},
        {"conversation_id": "c1", "speaker": "bot", "text": "budget?", "event": "qualification"},
        {"conversation_id": "c1", "speaker": "user", "text": "jane@example.com"},
        {"conversation_id": "c1", "speaker": "user", "text": "call +44 20 7946 0958", "converted": True,
         "conversion_value": 100.0},
        # c2: the e-mail comes before the qualification, so strict order stops at qualification
        {"conversation_id": "c2", "speaker": "user", "text": "bob@example.org", "event": " Inquiry "},
        {"conversation_id": "c2", "speaker": "bot", "text": "budget?", "event": "qualification",
         "converted": False},
        # c3: converted but never entered the funnel (not a lead)
        {"conversation_id": "c3", "speaker": "user", "text": "just browsing", "converted": True,
         "conversion_value": 50.0},
        # c4: a qualification without an inquiry
        {"conversation_id": "c4", "speaker": "bot", "text": "budget?", "event": "qualification"},
        # c5: a lead that converted without a value (adds 0)
        {"conversation_id": "c5", "speaker": "user", "text": "price?", "event": "inquiry", "converted": True},
    ]
    for i, row in enumerate(rows):
        row["timestamp"] = f"2026-03-02 10:{i:02d}"
    return messages_frame(rows), {"c1": 0, "c2": 1, "c3": 2, "c4": 1, "c5": 0}


def test_golden_section_counted_by_hand():
    frame, shard_of = _golden()
    got = sections_of(frame, split(frame, shard_of, 3))["funnel"]
    assert got["strict"] is True and got["conversations"] == 5
    stages = [(s["name"], s["conversations"], s["dropped"]) for s in got["stages"]]
    assert stages == [("inquiry", 3, 1), ("qualification question answered", 2, 1), ("email provided", 1, 0),
                      ("phone provided", 1, 0)]
    assert [s["rate_of_entry"] for s in got["stages"]] == pytest.approx([1.0, 2 / 3, 1 / 3, 1 / 3])
    assert [s["step_rate"] for s in got["stages"]] == pytest.approx([3 / 5, 2 / 3, 1 / 2, 1.0])
    assert got["converted"] == 2 and got["conversion_value"] == 100.0  # c1 and c5; c3 is no lead
    assert got["warnings"] == []


def test_golden_warnings_and_missing_columns():
    frame, _ = _golden()
    no_qual = frame.assign(event=frame["event"].replace({"qualification": "budget asked"}),
                           timestamp=pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"))
    got = sections_of(no_qual)["funnel"]
    assert got["warnings"] == [
        "stage 'qualification question answered': event 'qualification' never occurs in the data; known events: "
        "Inquiry, budget asked, inquiry",
        # the first stage no conversation reaches without a warning of its own
        "stage 'email provided': no conversation reaches it (strict order)",
        "the data has no timestamps: strict order uses the source row order and the stage timings are empty"]
    assert got["stages"][1]["conversations"] == 0
    assert_same(got, funnel_cli.section_provider(no_qual)["funnel"])
    bare = frame.drop(columns=["converted", "conversion_value"])
    assert sections_of(bare)["funnel"]["converted"] is None and sections_of(bare)["funnel"]["conversion_value"] is None
    no_value = frame.drop(columns=["conversion_value"])
    assert sections_of(no_value)["funnel"]["converted"] == 2
    assert sections_of(no_value)["funnel"]["conversion_value"] is None


def test_golden_section_equals_todays_section():
    frame, shard_of = _golden()
    today = funnel_cli.section_provider(frame)
    for shards in ([frame], split(frame, shard_of, 3), F.split_shards(frame, 5)):
        assert_same(sections_of(frame, shards), today)
