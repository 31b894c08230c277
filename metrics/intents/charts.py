"""Altair chart builders for the intent metrics (no streamlit here).

Each builder takes a typed result from :mod:`metrics.intents` and returns an
``altair`` chart; the page decides where to render it. The confusion heatmap carries a
point selection named :data:`CELL_PARAM` on the fields ``true_intent`` / ``intent``, so a
click yields ``{"selection": {"cell": [{"true_intent": ..., "intent": ...}]}}`` in
Streamlit's ``on_select`` event.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from metrics.intents import Confusion, IntentDrift, Reliability

__all__ = [
    "CELL_PARAM",
    "confusion_heatmap",
    "confidence_histogram_chart",
    "reliability_chart",
    "threshold_chart",
    "weekly_accuracy_chart",
    "intent_mix_chart",
    "model_comparison_chart",
    "THRESHOLD_MEASURES",
]

#: Name of the heatmap's point selection (the key under ``event["selection"]``).
CELL_PARAM = "cell"
#: Threshold-table columns drawn by :func:`threshold_chart`, with their legend labels.
THRESHOLD_MEASURES = {
    "coverage": "Coverage (answered)",
    "accuracy": "Accuracy",
    "in_scope_accuracy": "In-scope accuracy",
    "out_of_scope_recall": "Out-of-scope recall",
    "escalation_rate": "Escalation rate (conversations)",
}


def confusion_heatmap(result: Confusion, *, value: str = "count") -> alt.Chart:
    """Heatmap of a :class:`~metrics.intents.Confusion`: rows true intent, columns predicted.

    ``value`` is ``"count"`` or ``"row_rate"`` (colour). Clicking a cell selects it
    (selection parameter :data:`CELL_PARAM`, fields ``true_intent`` and ``intent``).

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.intents import confusion
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "row": [1, 2], "speaker": ["user"] * 2,
    ...                   "text": ["x", "y"], "intent": ["a", "b"], "true_intent": ["a", "a"]})
    >>> chart = confusion_heatmap(confusion(m))
    >>> chart.to_dict()["params"][0]["name"]
    'cell'
    """
    if value not in ("count", "row_rate"):
        from metrics.errors import ConfigError

        raise ConfigError(f"value must be 'count' or 'row_rate', got {value!r}")
    data = result.long()
    order = list(result.labels)
    cell = alt.selection_point(name=CELL_PARAM, fields=["true_intent", "intent"], on="click",
                               clear="dblclick")
    base = alt.Chart(data).encode(
        x=alt.X("intent:N", sort=order, title="Predicted intent"),
        y=alt.Y("true_intent:N", sort=order, title="True intent"),
    )
    rect = base.mark_rect(stroke="white").encode(
        color=alt.Color(f"{value}:Q", title="messages" if value == "count" else "share of true",
                        scale=alt.Scale(scheme="blues")),
        opacity=alt.condition(cell, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("true_intent:N", title="true"), alt.Tooltip("intent:N", title="predicted"),
                 alt.Tooltip("count:Q", title="messages"),
                 alt.Tooltip("row_rate:Q", title="share of true", format=".1%")],
    ).add_params(cell)
    labels = base.mark_text(fontSize=10).encode(
        text=alt.condition("datum.count > 0", alt.Text("count:Q"), alt.value("")),
    )
    return (rect + labels).properties(title="Confusion matrix: true intent (rows) against predicted intent", height=alt.Step(24))


def confidence_histogram_chart(histogram: pd.DataFrame) -> alt.Chart:
    """Stacked bars of :func:`~metrics.intents.confidence_histogram`: correct vs incorrect per bin.

    Examples
    --------
    >>> h = pd.DataFrame({"bin_left": [0.0, 0.0], "bin_right": [1.0, 1.0],
    ...                   "outcome": ["correct", "incorrect"], "message_count": [3, 1]})
    >>> confidence_histogram_chart(h).to_dict()["mark"]["type"]
    'bar'
    """
    return alt.Chart(histogram).mark_bar().encode(
        x=alt.X("bin_left:Q", bin="binned", title="Confidence", scale=alt.Scale(domain=[0, 1])),
        x2="bin_right:Q",
        y=alt.Y("message_count:Q", stack=True, title="Labelled messages"),
        color=alt.Color("outcome:N", scale=alt.Scale(domain=["correct", "incorrect"],
                                                     range=["#4c78a8", "#e45756"]), title=None),
        tooltip=["bin_left:Q", "bin_right:Q", "outcome:N", "message_count:Q"],
    ).properties(title="Confidence of the predicted intents", height=260)


def reliability_chart(result: Reliability) -> alt.LayerChart:
    """Reliability curve: mean confidence (x) vs accuracy (y) per bin, with the diagonal.

    Points under the diagonal are over-confident bins.

    Examples
    --------
    >>> t = pd.DataFrame({"bin_left": [0.0], "bin_right": [1.0], "message_count": [2],
    ...                   "mean_confidence": [0.8], "accuracy": [0.5], "gap": [-0.3]})
    >>> from metrics.intents import Reliability
    >>> len(reliability_chart(Reliability(t, 0.3, 2)).to_dict()["layer"])
    2
    """
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    data = result.table.dropna(subset=["accuracy"])
    curve = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("mean_confidence:Q", title="Mean confidence", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1])),
        tooltip=["bin_left:Q", "bin_right:Q", "message_count:Q",
                 alt.Tooltip("mean_confidence:Q", format=".3f"), alt.Tooltip("accuracy:Q", format=".3f")],
    )
    return alt.layer(diagonal, curve).properties(title="Reliability: confidence against accuracy", height=260)


def threshold_chart(table: pd.DataFrame, *, threshold: float,
                    measures: tuple[str, ...] = tuple(THRESHOLD_MEASURES)) -> alt.LayerChart:
    """Curves of :func:`~metrics.intents.threshold_table` columns vs threshold, with a rule at ``threshold``.

    Examples
    --------
    >>> t = pd.DataFrame({"threshold": [0.0, 1.0], "coverage": [1.0, 0.0], "accuracy": [0.5, 0.2],
    ...                   "in_scope_accuracy": [0.9, 0.0], "out_of_scope_recall": [0.0, 1.0],
    ...                   "escalation_rate": [0.0, 1.0]})
    >>> spec = threshold_chart(t, threshold=0.6).to_dict()
    >>> [layer["mark"]["type"] for layer in spec["layer"]]
    ['line', 'rule']
    """
    present = [m for m in measures if m in table.columns]
    long = table.melt(id_vars=["threshold"], value_vars=present, var_name="measure", value_name="value")
    long["measure"] = long["measure"].map(lambda m: THRESHOLD_MEASURES.get(m, m))
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("threshold:Q", title="Confidence threshold", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("value:Q", title="Rate", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("measure:N", title=None),
        tooltip=["measure:N", alt.Tooltip("threshold:Q", format=".2f"), alt.Tooltip("value:Q", format=".3f")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [float(threshold)]})).mark_rule(
        color="black", strokeDash=[6, 3]).encode(x="threshold:Q")
    return alt.layer(lines, rule).properties(title="Accuracy and coverage by confidence threshold", height=300)


def weekly_accuracy_chart(drift: IntentDrift) -> alt.Chart:
    """Accuracy per ISO week (points sized by labelled messages).

    Examples
    --------
    >>> w = pd.DataFrame({"week": ["2024-W01"], "week_start": pd.to_datetime(["2024-01-01"], utc=True),
    ...                   "message_count": [5], "labelled_count": [2], "correct_count": [1], "accuracy": [0.5]})
    >>> from metrics.intents import IntentDrift
    >>> weekly_accuracy_chart(IntentDrift(w, pd.DataFrame(), pd.DataFrame())).to_dict()["mark"]["type"]
    'line'
    """
    data = drift.weekly.dropna(subset=["accuracy"])
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("week_start:T", title="Week (Monday, UTC)"),
        y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1])),
        tooltip=["week:N", "labelled_count:Q", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(title="Intent accuracy per week", height=240)


def intent_mix_chart(drift: IntentDrift, *, top_n: int = 8, other_label: str = "other") -> alt.Chart:
    """Stacked weekly share of the ``top_n`` most frequent predicted intents (rest as ``other_label``).

    Examples
    --------
    >>> mix = pd.DataFrame({"week": ["2024-W01", "2024-W01"], "intent": ["a", "b"],
    ...                     "message_count": [3, 1], "share": [0.75, 0.25]})
    >>> from metrics.intents import IntentDrift
    >>> intent_mix_chart(IntentDrift(pd.DataFrame(), mix, pd.DataFrame()), top_n=1).data["intent"].tolist()
    ['a', 'other']
    """
    mix = drift.mix
    top = mix.groupby("intent")["message_count"].sum().sort_values(ascending=False, kind="stable")
    keep = set(sorted(top.index, key=lambda i: (-int(top[i]), i))[:top_n])
    data = mix.assign(intent=mix["intent"].where(mix["intent"].isin(keep), other_label))
    data = data.groupby(["week", "intent"], as_index=False)[["message_count", "share"]].sum()
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("week:N", title="ISO week"),
        y=alt.Y("share:Q", stack="normalize", title="Share of user messages"),
        color=alt.Color("intent:N", title="Predicted intent"),
        tooltip=["week:N", "intent:N", "message_count:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(title="Intent mix per week", height=260)


def model_comparison_chart(per_intent: pd.DataFrame) -> alt.Chart:
    """Accuracy difference (model - baseline) per intent; hollow bars are too small to judge.

    Examples
    --------
    >>> p = pd.DataFrame({"intent": ["a"], "model": ["v2"], "difference": [0.1], "p_value": [0.5],
    ...                   "too_small": [True], "baseline_support": [3], "model_support": [4]})
    >>> model_comparison_chart(p).to_dict()["mark"]["type"]
    'bar'
    """
    data = per_intent.dropna(subset=["difference"]).assign(
        judged=lambda f: f["too_small"].map({True: "too small to judge", False: "enough data"}))
    return alt.Chart(data).mark_bar().encode(
        y=alt.Y("intent:N", sort="-x", title="True intent"),
        x=alt.X("difference:Q", title="Accuracy difference (model - baseline)"),
        color=alt.Color("model:N", title="Model"),
        opacity=alt.Opacity("judged:N", scale=alt.Scale(domain=["enough data", "too small to judge"],
                                                        range=[1.0, 0.3]), title=None),
        tooltip=["intent:N", "model:N", alt.Tooltip("difference:Q", format="+.1%"),
                 alt.Tooltip("p_value:Q", format=".3f"), "baseline_support:Q", "model_support:Q", "judged:N"],
    ).properties(title="F1 per intent by model version", height=max(160, 18 * data["intent"].nunique()))
