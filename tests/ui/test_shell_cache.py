"""ui.shell.cached / derive / chart: results computed once per data slice and arguments, never confused."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from ui import shell


def _ctx(*, version=1, filters=None, dataset_id=1, messages=None):
    messages = messages if messages is not None else pd.DataFrame({"conversation_id": ["a", "b"], "x": [1, 2]})
    rollup = pd.DataFrame({"conversation_id": ["a", "b"]})
    return shell.PageContext(db=None, dataset_id=dataset_id, dataset_name="t", all_messages=messages,
                             messages=messages, rollup=rollup, filters=filters or {}, version=version)


CALLS: list[tuple] = []


def count_rows(frame: pd.DataFrame, *, plus: int = 0) -> int:
    CALLS.append(("count_rows", len(frame), plus))
    return len(frame) + plus


def frame_sum(frame: pd.DataFrame) -> int:
    CALLS.append(("frame_sum",))
    return int(frame["x"].sum())


@dataclasses.dataclass(frozen=True)
class Holder:
    table: pd.DataFrame
    label: str


def holder_sum(holder: Holder) -> int:
    CALLS.append(("holder_sum",))
    return int(holder.table["x"].sum())


@pytest.fixture(autouse=True)
def _fresh():
    shell._memo.clear()
    shell._derived.clear()
    CALLS.clear()


def test_same_slice_and_arguments_compute_once():
    ctx = _ctx()
    assert shell.cached(ctx, count_rows, ctx.messages, plus=1) == 3
    assert shell.cached(ctx, count_rows, ctx.messages, plus=1) == 3
    assert CALLS == [("count_rows", 2, 1)]                    # the second call was served from the cache
    assert shell.cached(ctx, count_rows, ctx.messages, plus=2) == 4   # another option: computed
    assert len(CALLS) == 2


def test_new_version_or_filters_recompute():
    shell.cached(_ctx(version=1), count_rows, _ctx().messages)
    ctx2 = _ctx(version=2)
    shell.cached(ctx2, count_rows, ctx2.messages)
    ctx3 = _ctx(version=2, filters={"channel": ["web"]})
    shell.cached(ctx3, count_rows, ctx3.messages)
    assert len(CALLS) == 3


def test_other_frames_are_keyed_by_content():
    ctx = _ctx()
    small = pd.DataFrame({"x": [1, 2, 3]})
    assert shell.cached(ctx, frame_sum, small) == 6
    assert shell.cached(ctx, frame_sum, small.copy()) == 6      # equal content: same key
    assert len(CALLS) == 1
    assert shell.cached(ctx, frame_sum, pd.DataFrame({"x": [1, 2, 4]})) == 7   # other content: recomputed
    assert len(CALLS) == 2


def test_dataclass_arguments_are_keyed_by_the_frames_they_hold():
    ctx = _ctx()
    # Two frames whose reprs are identical once pandas truncates them, but whose contents differ.
    a = pd.DataFrame({"x": [1] * 500 + [0] * 500})
    b = pd.DataFrame({"x": [1] * 499 + [2] + [0] * 500})
    assert repr(Holder(a, "t")) == repr(Holder(b, "t"))
    assert shell.cached(ctx, holder_sum, Holder(a, "t")) == 500
    assert shell.cached(ctx, holder_sum, Holder(b, "t")) == 501
    assert len(CALLS) == 2


def test_a_lambda_is_refused():
    ctx = _ctx()
    with pytest.raises(TypeError, match="named function"):
        shell.cached(ctx, lambda frame: 1, ctx.messages)


def head_rows(frame: pd.DataFrame, *, n: int) -> pd.DataFrame:
    return frame.head(n)


def test_derive_from_other_arguments_is_another_frame_for_cached():
    """The same derive name with other arguments (a 4- vs 12-week window) must not share cached results."""
    ctx = _ctx(messages=pd.DataFrame({"conversation_id": list("abcd"), "x": [1, 2, 3, 4]}))
    one = shell.derive(ctx, "window", head_rows, ctx.messages, n=1)
    assert shell.cached(ctx, frame_sum, one) == 1
    three = shell.derive(ctx, "window", head_rows, ctx.messages, n=3)
    assert ctx.frame_token(one) != ctx.frame_token(three)
    assert shell.cached(ctx, frame_sum, three) == 6
    assert shell.cached(ctx, frame_sum, one) == 1


def test_derive_registers_the_frame_for_cached():
    ctx = _ctx()
    first = shell.derive(ctx, "doubled", pd.concat, [ctx.messages, ctx.messages], ignore_index=True)
    assert ctx.frame_token(first).startswith("doubled#")
    assert shell.cached(ctx, count_rows, first) == 4
    again = _ctx()   # a new run of the page: same slice, same derived object, same cache entry
    assert shell.derive(again, "doubled", pd.concat, [again.messages, again.messages], ignore_index=True) is first
    assert shell.cached(again, count_rows, first) == 4
    assert CALLS == [("count_rows", 4, 0)]


def test_chart_is_a_validated_spec_and_reused():
    from metrics.engagement.charts import count_bar_chart

    ctx = _ctx()
    frame = pd.DataFrame({"user_turns": [0, 1, 2], "conversation_count": [5, 3, 1], "share_rate": [.6, .3, .1]})
    spec = shell.chart(ctx, count_bar_chart, frame, x="user_turns", chart="turns", x_title="User turns")
    assert isinstance(spec, dict) and "$schema" in spec
    assert shell.chart(ctx, count_bar_chart, frame, x="user_turns", chart="turns", x_title="User turns") == spec
