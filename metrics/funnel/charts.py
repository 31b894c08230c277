"""Altair chart builders for funnels (no streamlit here).

Each builder takes a result of :mod:`metrics.funnel` and returns an ``altair`` chart. The
funnel chart carries a point selection named :data:`STAGE_PARAM` on the field ``stage``,
so a click on a bar yields ``{"selection": {"stage": [{"stage": "email provided"}]}}`` in
Streamlit's ``on_select`` event; :func:`selected_stage` reads it back.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from metrics.errors import ConfigError

__all__ = [
    "STAGE_PARAM",
    "funnel_labels",
    "funnel_chart",
    "segment_comparison_chart",
    "largest_segments",
    "MAX_SEGMENTS",
    "conversion_by_stage_chart",
    "lead_quality_chart",
    "selected_stage",
]

#: Name of the funnel chart's point selection (the key under ``event["selection"]``).
STAGE_PARAM = "stage"
_TABLE_COLUMNS = ("stage", "conversations", "rate_of_entry", "step_rate", "dropped")


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{what} needs the columns {missing!r}; pass the frame returned by "
                          f"metrics.funnel")


def funnel_labels(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a :func:`~metrics.funnel.funnel_table` result with a ``label`` column:
    ``"<n> · <x>% of entry · <d> stopped here"`` (the last stage says ``finished``).

    Examples
    --------
    >>> t = pd.DataFrame({"stage": ["a", "b"], "conversations": [10, 4], "rate_of_entry": [1.0, 0.4],
    ...                   "step_rate": [1.0, 0.4], "dropped": [6, 0]})
    >>> funnel_labels(t)["label"].tolist()
    ['10 · 100% of entry · 6 stopped here', '4 · 40% of entry · finished']
    """
    _require(table, _TABLE_COLUMNS, "the funnel chart")
    out = table.copy()
    labels = []
    last = len(out) - 1
    for i, row in enumerate(out.itertuples(index=False)):
        rate = "–" if pd.isna(row.rate_of_entry) else f"{row.rate_of_entry:.0%}"
        tail = "finished" if i == last else f"{int(row.dropped):,} stopped here"
        labels.append(f"{int(row.conversations):,} · {rate} of entry · {tail}")
    out["label"] = pd.Series(labels, index=out.index, dtype="str")
    return out


def funnel_chart(table: pd.DataFrame) -> alt.LayerChart:
    """Horizontal funnel bars (one per stage, in funnel order) labelled with the reach, the
    share of entry and the drop-off. Clicking a bar selects its stage (:data:`STAGE_PARAM`).

    Examples
    --------
    >>> t = pd.DataFrame({"stage": ["a", "b"], "conversations": [10, 4], "rate_of_entry": [1.0, 0.4],
    ...                   "step_rate": [1.0, 0.4], "dropped": [6, 0]})
    >>> spec = funnel_chart(t).to_dict()
    >>> [p["name"] for p in spec["params"]]
    ['stage']
    """
    data = funnel_labels(table)
    order = data["stage"].tolist()
    pick = alt.selection_point(name=STAGE_PARAM, fields=["stage"], on="click", clear="dblclick")
    base = alt.Chart(data).encode(y=alt.Y("stage:N", sort=order, title=None,
                                          axis=alt.Axis(labelLimit=240)))
    # leave room right of the widest bar for its label
    top = float(max(1, data["conversations"].max() if len(data) else 1))
    x = alt.X("conversations:Q", title="Conversations reaching the stage",
              scale=alt.Scale(domain=[0, top * 1.6], nice=False))
    bars = base.mark_bar(cornerRadiusEnd=3).encode(
        x=x,
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=[alt.Tooltip("stage:N"), alt.Tooltip("conversations:Q", format=","),
                 alt.Tooltip("rate_of_entry:Q", title="% of entry", format=".1%"),
                 alt.Tooltip("step_rate:Q", title="step conversion", format=".1%"),
                 alt.Tooltip("dropped:Q", title="stopped here", format=",")],
    ).add_params(pick)
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(x=x, text=alt.Text("label:N"))
    return (bars + text).properties(title="Conversations reaching each stage", height=max(160, 48 * len(order)))


#: Segments drawn side by side at most: a brand per segment (hundreds) would make a chart thousands of pixels tall.
MAX_SEGMENTS = 12


def largest_segments(by_segment: pd.DataFrame, *, top: int = MAX_SEGMENTS) -> pd.DataFrame:
    """The rows of the ``top`` segments with the most conversations at the first stage (ties by name).

    Examples
    --------
    >>> t = pd.DataFrame({"segment": ["x", "y", "z"], "stage_index": [0, 0, 0], "conversations": [3, 5, 1]})
    >>> largest_segments(t, top=2)["segment"].tolist()
    ['x', 'y']
    """
    first = by_segment[by_segment["stage_index"] == by_segment["stage_index"].min()]
    sizes = first.groupby("segment")["conversations"].sum().reset_index()
    keep = sizes.sort_values(["conversations", "segment"], ascending=[False, True]).head(top)["segment"]
    return by_segment[by_segment["segment"].isin(set(keep))]


def segment_comparison_chart(by_segment: pd.DataFrame, *, value: str = "rate_of_entry") -> alt.Chart:
    """Side-by-side bars per stage, one colour per segment, from
    :func:`~metrics.funnel.funnel_by_segment`. ``value`` is ``rate_of_entry``,
    ``step_rate`` or ``conversations``.

    Examples
    --------
    >>> t = pd.DataFrame({"segment": ["x", "y"], "stage_index": [0, 0], "stage": ["a", "a"],
    ...                   "conversations": [3, 5], "rate_of_entry": [1.0, 1.0], "step_rate": [0.5, 1.0],
    ...                   "dropped": [0, 0]})
    >>> segment_comparison_chart(t).to_dict()["encoding"]["yOffset"]["field"]
    'segment'
    """
    if value not in ("rate_of_entry", "step_rate", "conversations"):
        raise ConfigError(f"value={value!r}: choose rate_of_entry, step_rate or conversations")
    _require(by_segment, ("segment", "stage_index", *_TABLE_COLUMNS), "the segment comparison")
    order = (by_segment.sort_values("stage_index")["stage"].drop_duplicates().tolist())
    by_segment = largest_segments(by_segment)
    fmt = "," if value == "conversations" else ".0%"
    titles = {"rate_of_entry": "% of entry", "step_rate": "Step conversion", "conversations": "Conversations"}
    return alt.Chart(by_segment).mark_bar().encode(
        y=alt.Y("stage:N", sort=order, title=None, axis=alt.Axis(labelLimit=240)),
        yOffset=alt.YOffset("segment:N"),
        x=alt.X(f"{value}:Q", title=titles[value], axis=alt.Axis(format=fmt)),
        color=alt.Color("segment:N", title="Segment"),
        tooltip=[alt.Tooltip("segment:N"), alt.Tooltip("stage:N"),
                 alt.Tooltip("conversations:Q", format=","),
                 alt.Tooltip("rate_of_entry:Q", title="% of entry", format=".1%"),
                 alt.Tooltip("step_rate:Q", title="step conversion", format=".1%")],
    ).properties(title="Funnel stages by segment", height=max(180, 22 * len(order) * max(1, by_segment["segment"].nunique())))


def conversion_by_stage_chart(by_stage: pd.DataFrame) -> alt.Chart:
    """Conversion rate by the highest stage reached (from
    :func:`~metrics.funnel.conversion_by_stage`), labelled with ``converted / conversations``.

    Examples
    --------
    >>> t = pd.DataFrame({"stage_index": [-1, 0], "stage": ["(not entered)", "a"], "conversations": [2, 2],
    ...                   "converted_count": [0, 1], "conversion_rate": [0.0, 0.5]})
    >>> conversion_by_stage_chart(t).to_dict()["layer"][0]["mark"]["type"]
    'bar'
    """
    _require(by_stage, ("stage_index", "stage", "conversations", "converted_count", "conversion_rate"),
             "the conversion chart")
    data = by_stage.copy()
    data["label"] = [f"{int(c):,} / {int(n):,}" for c, n in zip(data["converted_count"], data["conversations"])]
    order = data.sort_values("stage_index")["stage"].tolist()
    base = alt.Chart(data).encode(y=alt.Y("stage:N", sort=order, title="Highest stage reached",
                                          axis=alt.Axis(labelLimit=240)))
    bars = base.mark_bar().encode(
        x=alt.X("conversion_rate:Q", title="Converted", axis=alt.Axis(format=".0%")),
        tooltip=[alt.Tooltip("stage:N"), alt.Tooltip("conversations:Q", format=","),
                 alt.Tooltip("converted_count:Q", title="converted", format=","),
                 alt.Tooltip("conversion_rate:Q", title="conversion rate", format=".1%")])
    text = base.mark_text(align="left", dx=4).encode(x="conversion_rate:Q", text="label:N")
    return (bars + text).properties(title="Conversion by the last stage reached", height=max(140, 40 * len(order)))


def lead_quality_chart(quality: pd.DataFrame) -> alt.Chart:
    """Volume against quality (from :func:`~metrics.funnel.lead_quality`): x = leads,
    y = conversion rate, one labelled point per segment, colour = verdict.

    Examples
    --------
    >>> q = pd.DataFrame({"segment": ["A", "B"], "lead_count": [500, 50], "converted_count": [10, 15],
    ...                   "conversion_rate": [0.02, 0.3], "verdict": ["volume over quality", "quality over volume"]})
    >>> lead_quality_chart(q).to_dict()["layer"][0]["encoding"]["x"]["field"]
    'lead_count'
    """
    _require(quality, ("segment", "lead_count", "converted_count", "conversion_rate", "verdict"),
             "the lead quality chart")
    base = alt.Chart(quality).encode(
        x=alt.X("lead_count:Q", title="Leads (volume)"),
        y=alt.Y("conversion_rate:Q", title="Leads that converted (quality)", axis=alt.Axis(format=".0%")))
    points = base.mark_circle(size=160).encode(
        color=alt.Color("verdict:N", title=None),
        tooltip=[alt.Tooltip("segment:N"), alt.Tooltip("lead_count:Q", title="leads", format=","),
                 alt.Tooltip("converted_count:Q", title="converted", format=","),
                 alt.Tooltip("conversion_rate:Q", title="conversion rate", format=".1%"),
                 alt.Tooltip("verdict:N")])
    labels = base.mark_text(align="left", dx=9).encode(text="segment:N")
    return (points + labels).properties(title="Lead quality against lead volume", height=280)


def selected_stage(event) -> str | None:
    """The stage name clicked in :func:`funnel_chart`, from Streamlit's selection event.

    Examples
    --------
    >>> selected_stage({"selection": {"stage": [{"stage": "email provided"}]}})
    'email provided'
    >>> selected_stage({"selection": {"stage": []}}) is None
    True
    """
    if not event:
        return None
    try:
        picked = event["selection"][STAGE_PARAM]
    except (KeyError, TypeError):
        return None
    if isinstance(picked, dict):  # some versions report {"stage": [...]} for point selections
        values = picked.get("stage")
        if isinstance(values, (list, tuple)):
            return str(values[0]) if values else None
        return None if values is None else str(values)
    if isinstance(picked, (list, tuple)) and picked:
        first = picked[0]
        if isinstance(first, dict) and first.get("stage") is not None:
            return str(first["stage"])
    return None
