"""The Intents page's body: how well the bot recognises what users want (confusion, per-intent quality,
confidence calibration, threshold what-if, weekly drift, model A/B). Definitions live in metrics/intents/__init__.py.
"""

from __future__ import annotations

import importlib

import pandas as pd
import streamlit as st

from metrics.intents import charts
from metrics import intents
from metrics.errors import ChatlensError, InsufficientDataError
from ui import drill, shell, timeaxis, urlstate
from ui.fmt import literal, num, pct

#: Labels tried, in order, for the intents folded out of the matrix (the first no intent uses).
OTHER_LABELS = ("other", "(other)", "(other intents)", "(rest)")


def _score(value) -> str:
    return num(value, "{:.3f}")


def render(ctx: shell.PageContext) -> None:
    st.caption("Intent recognition (NLU) quality on user messages. Accuracy needs human labels (`true_intent`); "
               "the threshold what-if and escalation effect work from confidences alone.")
    messages = ctx.messages
    reviewer_labels = _reviewer_labels(ctx)
    if reviewer_labels is not None and len(messages):
        messages = shell.derive(ctx, "intents_reviewer_labels", _with_reviewer_labels, messages, reviewer_labels)
        st.caption(f"{len(reviewer_labels):,} reviewer label(s) from the Audit page are applied "
                   "(they replace the export's label of the same message).")
    with st.expander("Add labels from a file (message_id, true_intent)"):
        upload = st.file_uploader("Labels file (CSV, JSON, ...)", key="intents_labels_upload")
        if upload is not None:
            from metrics.io.labels import apply_label_file, read_labels

            try:
                labels = read_labels(upload.getvalue(), upload.name)
            except ChatlensError as exc:
                shell.show_error(exc)
            else:
                messages, matched = shell.derive(ctx, "intents_label_file", apply_label_file, messages, labels)
                st.caption(f"{len(labels):,} label(s) read, {matched:,} matched a message id of this dataset.")
    if ctx.dataset_id is None or len(messages) == 0:
        st.info("No messages to analyse. Load a dataset on the **Data** page (or widen the filters).")
        return
    if "intent" not in messages.columns:
        st.info("This dataset has no predicted intents. Map the column holding the bot's predicted intent to "
                "`intent` (and its score to `confidence`) on the **Data** page.")
        return
    settings = _settings(ctx, messages)
    if settings is None:
        return
    fallback, threshold, top_n = settings

    has_labels = shell.cached(ctx, intents.has_intent_labels, messages)
    report = shell.cached(ctx, intents.intent_report, messages, fallback_intent=fallback) if has_labels else None
    labelled = report.labelled_count if report else 0
    if labelled < intents.MIN_LABELLED_MESSAGES:
        st.warning(
            f"Only {labelled:,} labelled message(s) (fewer than {intents.MIN_LABELLED_MESSAGES}): the accuracy shown "
            "is unreliable. Don't assume high accuracy without human review: reviewers can label more messages "
            "on the **Audit** page.", icon=":material/warning:")
        if (shell.ROOT / "pages" / "8_Audit.py").exists():
            shell.page_link("pages/8_Audit.py", label="Label messages on the Audit page",
                            icon=":material/rate_review:")

    if report is not None and labelled > 0:
        _headline(report, labelled)
        _confusion(ctx, messages, fallback, top_n)
        _per_intent(ctx, messages, fallback, threshold)
        _confidence(ctx, messages, fallback)
    elif not has_labels:
        st.info("No `true_intent` column: accuracy, the confusion matrix and per-intent quality need human labels. "
                "The threshold what-if below still shows coverage and escalations.")
    _thresholds(ctx, messages, fallback, threshold)
    _drift(messages, fallback, ctx)
    if has_labels and "model_version" in messages.columns and shell.cached(ctx, _model_count, messages) >= 2:
        _model_ab(ctx, messages, fallback)


def _with_reviewer_labels(messages: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    from metrics.store import message_keys

    return intents.apply_labels(messages, labels, keys=message_keys(messages))


def _model_count(messages: pd.DataFrame) -> int:
    return int(messages["model_version"].nunique())


def _known_labels(messages: pd.DataFrame) -> frozenset:
    return frozenset(messages["intent"].dropna()) | frozenset(messages["true_intent"].dropna())


def _reviewer_labels(ctx: shell.PageContext):
    """Labels saved by reviewers on the Audit page: ``metrics.audit.store.intent_labels(db, dataset_id)``
    returning ``message_key, true_intent`` (None until that reader exists or when it has none)."""
    try:
        reader = getattr(importlib.import_module("metrics.audit.store"), "intent_labels", None)
    except ModuleNotFoundError:
        return None
    if reader is None or ctx.dataset_id is None:
        return None
    try:
        labels = reader(ctx.db, ctx.dataset_id)
    except ChatlensError as exc:
        shell.show_error(exc)
        return None
    return labels if labels is not None and len(labels) else None


#: The page's choices kept in the URL: ``?threshold=``, ``?top=`` (intents in the matrix), ``?colour=``.
URL_CHOICES = (urlstate.Choice("threshold", "intents_threshold", default=intents.DEFAULT_THRESHOLD, lo=0.0, hi=1.0,
                               cast=float, label="confidence threshold"),
               urlstate.Choice("top", "intents_top_n", default=12, lo=2, hi=60, cast=int, label="matrix size"),
               urlstate.Choice("colour", "intents_confusion_value", ("count", "row_rate"), label="matrix colour"))


def _settings(ctx: shell.PageContext, messages: pd.DataFrame) -> tuple[str, float, int] | None:
    """The fallback intent, the confidence threshold and the matrix size (None when no fallback is typed)."""
    urlstate.bind("intents", URL_CHOICES[:2])
    with st.container(border=True):
        c1, c2, c3 = st.columns([2, 3, 1])
        fallback = c1.text_input(
            "Fallback / out-of-scope intent", value=shell.cached(ctx, intents.suggest_fallback_intent, messages),
            key="intents_fallback",
            help="The intent that means 'not understood', e.g. nlu_fallback, NO_NODES_DETECTED or oos.").strip()
        threshold = c2.slider(
            "Confidence threshold", min_value=0.0, max_value=1.0, step=0.05,
            key="intents_threshold",
            help="Predictions below this confidence are treated as the fallback intent (and escalated).")
        top_n = c3.number_input("Intents in the matrix", min_value=2, max_value=60, step=1,
                                key="intents_top_n", help="The rest are folded into 'other'.")
    urlstate.sync("intents", URL_CHOICES[:2])
    threshold = round(float(threshold), 4)  # a browser slider step can give 0.6500000000000001
    if not fallback:
        st.error("Type the name of the fallback intent (for example `nlu_fallback`).")
        return None
    return fallback, threshold, top_n


def _headline(report, labelled: int) -> None:
    cols = st.columns(5)
    cols[0].metric("Labelled messages", f"{labelled:,}")
    cols[1].metric("Accuracy as predicted", pct(report.accuracy),
                   help="Share of labelled user messages whose predicted intent equals the human label (predictions "
                        "as recorded, no threshold).")
    cols[2].metric("Macro F1", _score(report.macro_f1), help="Unweighted mean of per-intent F1.")
    cols[3].metric("Weighted F1", _score(report.weighted_f1), help="Per-intent F1 weighted by support.")
    cols[4].metric("MCC", _score(report.mcc), help="Matthews correlation: 0 = chance, 1 = perfect.")
    st.caption(f"Accuracy 95% Wilson interval: {pct(report.accuracy_low)} – {pct(report.accuracy_high)} "
               f"({report.correct_count:,} of {labelled:,} correct, predictions as recorded, no threshold).")


def _confusion(ctx: shell.PageContext, messages: pd.DataFrame, fallback: str, top_n) -> None:
    st.subheader("Confusion matrix")
    urlstate.bind("intents", URL_CHOICES[2:])
    value = st.radio("Colour by", ["count", "row_rate"], horizontal=True, key="intents_confusion_value",
                     format_func=lambda v: "Message count" if v == "count" else "Share of the true intent")
    urlstate.sync("intents", URL_CHOICES[2:])
    known = shell.cached(ctx, _known_labels, messages)
    other_label = next(o for o in OTHER_LABELS if o not in known)
    conf = shell.cached(ctx, intents.confusion, messages, fallback_intent=fallback, top_n=int(top_n),
                        other_label=other_label)
    event = shell.show_chart(ctx, charts.confusion_heatmap, conf, value=value, on_select="rerun",
                             key="intents_confusion")
    st.caption("Rows are the true intent, columns the prediction: look for dark cells off the diagonal. "
               "Click a cell to list its messages.")
    shell.download_csv(conf.long(), label="Download the matrix (CSV)", file_name="intent_confusion.csv",
                       key="intents_confusion_csv")

    selected = drill.picked(event, charts.CELL_PARAM)
    if selected:
        cell = selected[0]
        true_i, pred_i = str(cell.get("true_intent", "")), str(cell.get("intent", ""))
        pair = shell.cached(ctx, intents.pair_messages, messages, true_intent=true_i, intent=pred_i,
                            fallback_intent=fallback, folded=conf.folded, other_label=conf.other_label)
        st.markdown(f"**Messages labelled {literal(true_i, code=True)} and predicted {literal(pred_i, code=True)}: "
                    f"{len(pair):,}**")
        st.dataframe(pair, width="stretch", hide_index=True, key="intents_drill_table")
        shell.download_csv(pair, label="Download these messages (CSV)", file_name="intent_cell_messages.csv",
                           key="intents_drill_csv")
        if len(pair):
            shell.conversation_list(pair[["conversation_id"]].drop_duplicates(), key="intents_drill_convs")
    else:
        st.caption("No cell selected.")

    pairs = shell.cached(ctx, intents.top_confused_pairs, messages, fallback_intent=fallback)
    st.markdown("**Most confused pairs**")
    st.dataframe(pairs, width="stretch", hide_index=True,
                 column_config={"share_of_true": st.column_config.NumberColumn("share of true", format="percent")})
    st.caption("The true → predicted mistakes that happen most: each is a candidate for more training examples.")
    shell.download_csv(pairs, label="Download confused pairs (CSV)", file_name="intent_confused_pairs.csv",
                       key="intents_pairs_csv")


def _per_intent(ctx: shell.PageContext, messages: pd.DataFrame, fallback: str, threshold: float) -> None:
    st.subheader("Per-intent quality (worst first)")
    table = shell.cached(ctx, intents.per_intent_table, messages, fallback_intent=fallback)
    st.dataframe(table, width="stretch", hide_index=True, key="intents_per_intent",
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                for c in ("precision", "recall", "f1")})
    st.caption("Sorted by F1, lowest first; click a header to sort. Precision = right when predicted, "
               "recall = found when true (sklearn classification_report).")
    shell.download_csv(table, label="Download per-intent table (CSV)", file_name="intent_per_intent.csv",
                       key="intents_per_intent_csv")
    wanted = drill.linked("intent")  # a link from the Overview's "worst intents"
    if wanted is not None:
        labelled = shell.cached(ctx, intents.labelled_messages, messages, fallback_intent=fallback)
        misread = labelled[(labelled["true_intent"] == wanted) & (labelled["intent"] != wanted)]
        st.markdown(f"**Messages labelled {literal(wanted, code=True)} that the bot misread: {len(misread):,}**")
        st.dataframe(misread, width="stretch", hide_index=True, key="intents_linked_table")

    tab_fp, tab_fn = st.tabs(["False positives", "False negatives"])
    with tab_fp:
        fp = shell.cached(ctx, intents.false_positives, messages, threshold=threshold, fallback_intent=fallback)
        st.caption(f"{len(fp):,} confident (≥ {threshold:.2f}) but wrong answers: the bot thought it understood.")
        st.dataframe(fp, width="stretch", hide_index=True)
        shell.download_csv(fp, label="Download false positives (CSV)", file_name="intent_false_positives.csv",
                           key="intents_fp_csv")
    with tab_fn:
        fn = shell.cached(ctx, intents.false_negatives, messages, threshold=threshold, fallback_intent=fallback)
        st.caption(f"{len(fn):,} in-scope messages the bot fell back on or scored below {threshold:.2f}.")
        st.dataframe(fn, width="stretch", hide_index=True)
        shell.download_csv(fn, label="Download false negatives (CSV)", file_name="intent_false_negatives.csv",
                           key="intents_fn_csv")


def _confidence(ctx: shell.PageContext, messages: pd.DataFrame, fallback: str) -> None:
    st.subheader("Confidence")
    left, right = st.columns(2)
    with left:
        hist = shell.cached(ctx, intents.confidence_histogram, messages, fallback_intent=fallback)
        shell.show_chart(ctx, charts.confidence_histogram_chart, hist)
        st.caption("Red bars at high confidence are confident mistakes; blue bars at low confidence are "
                   "right answers a threshold would throw away.")
        shell.download_csv(hist, label="Download histogram (CSV)", file_name="intent_confidence_histogram.csv",
                           key="intents_hist_csv")
    with right:
        rel = shell.cached(ctx, intents.reliability_curve, messages, fallback_intent=fallback)
        shell.show_chart(ctx, charts.reliability_chart, rel)
        st.caption(f"Points below the dashed diagonal are over-confident. Expected calibration error: "
                   f"{_score(rel.expected_calibration_error)}.")
        shell.download_csv(rel.table, label="Download reliability bins (CSV)", file_name="intent_reliability.csv",
                           key="intents_rel_csv")


def _thresholds(ctx: shell.PageContext, messages: pd.DataFrame, fallback: str, threshold: float) -> None:
    st.subheader("Threshold what-if")
    try:
        grid = sorted(set(intents.DEFAULT_THRESHOLDS) | {round(float(threshold), 10)})
        thr = shell.cached(ctx, intents.threshold_table, messages, thresholds=grid, fallback_intent=fallback)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    at = thr.loc[(thr["threshold"] - threshold).abs().idxmin()]
    base = thr.loc[(thr["threshold"] - intents.DEFAULT_THRESHOLD).abs().idxmin()]
    cols = st.columns(5)
    cols[0].metric("Coverage", pct(at["coverage"]), help="Share of user messages answered (not fallback).")
    cols[1].metric("Accuracy at threshold", pct(at["accuracy"]),
                   help="Labelled messages right when predictions below the threshold count as the fallback.")
    cols[2].metric("In-scope accuracy", pct(at["in_scope_accuracy"]))
    cols[3].metric("Out-of-scope recall", pct(at["out_of_scope_recall"]))
    delta = None if threshold == intents.DEFAULT_THRESHOLD or pd.isna(at["escalation_rate"]) else \
        f"{(at['escalation_rate'] - base['escalation_rate']) * 100:+.1f} pts vs 0.60"
    cols[4].metric("Would escalate at threshold", pct(at["escalation_rate"]), delta=delta, delta_color="inverse",
                   help="Conversations with at least one user message below the threshold.")
    shell.show_chart(ctx, charts.threshold_chart, thr, threshold=threshold)
    conv_count = int(ctx.rollup["user_turns"].gt(0).sum()) if "user_turns" in ctx.rollup.columns else 0
    escalated = 0
    if conv_count and pd.notna(at["escalation_rate"]):
        escalated = round(float(at["escalation_rate"]) * conv_count)
    actual = ""
    if {"has_agent", "handoff_event"} <= set(ctx.rollup.columns) and len(ctx.rollup):
        real = float((ctx.rollup["has_agent"] | ctx.rollup["handoff_event"]).mean())
        actual = f" Today {real:.1%} of conversations reach an agent or a handoff."
    st.caption(f"The dashed rule marks your threshold ({threshold:.2f}): moving it right trades coverage for "
               f"accuracy. At {threshold:.2f} about {escalated:,} of {conv_count:,} conversations would be "
               f"escalated.{actual}")
    shell.download_csv(thr, label="Download threshold table (CSV)", file_name="intent_thresholds.csv",
                       key="intents_thr_csv")


def _drift(messages: pd.DataFrame, fallback: str, ctx: shell.PageContext) -> None:
    st.subheader("Drift by week")
    if "timestamp" in messages.columns and messages["timestamp"].notna().any():
        messages = timeaxis.dense(ctx, messages)  # a few stray dates must not stretch the axis over years
    try:
        drift = shell.cached(ctx, intents.intent_drift, messages, fallback_intent=fallback)
    except InsufficientDataError as exc:
        st.info(f"Drift needs timestamps: {literal(exc)}")
        return
    if not len(drift.weekly):
        return
    left, right = st.columns(2)
    with left:
        if drift.weekly["accuracy"].notna().any():
            shell.show_chart(ctx, charts.weekly_accuracy_chart, drift, annotate=("dates", "week_start"))
        else:
            st.info("No labelled messages with timestamps: weekly accuracy needs labels.")
        st.caption("Accuracy per ISO week: a drop after a release or a campaign is a retraining signal.")
        shell.download_csv(drift.weekly, label="Download weekly accuracy (CSV)", file_name="intent_weekly.csv",
                           key="intents_weekly_csv")
    with right:
        shell.show_chart(ctx, charts.intent_mix_chart, drift, annotate=("period", "week", "week"))
        st.caption("Share of predicted intents per week: a growing band is a new need, or a new confusion.")
        shell.download_csv(drift.mix, label="Download intent mix (CSV)", file_name="intent_mix.csv",
                           key="intents_mix_csv")
    st.markdown("**Biggest week-over-week moves**")
    st.dataframe(drift.movers, width="stretch", hide_index=True)
    st.caption("Each intent's largest change in share (of predictions) or accuracy (of its labelled messages, "
               "weeks with at least 10) and the week it happened.")
    shell.download_csv(drift.movers, label="Download movers (CSV)", file_name="intent_movers.csv",
                       key="intents_movers_csv")


def _model_ab(ctx: shell.PageContext, messages: pd.DataFrame, fallback: str) -> None:
    st.subheader("Model A/B")
    min_support = st.number_input("Minimum labelled messages per side to judge", min_value=1, value=30, step=1,
                                  key="intents_min_support")
    try:
        ab = shell.cached(ctx, intents.model_comparison, messages, fallback_intent=fallback,
                          min_support=int(min_support))
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    st.dataframe(ab.overall, width="stretch", hide_index=True)
    shell.show_chart(ctx, charts.model_comparison_chart, ab.per_intent)
    st.caption(f"Accuracy of each model minus the baseline {literal(ab.baseline)} per true intent; faded bars have "
               f"fewer than {ab.min_support:,} labelled messages on a side: too small to judge.")
    st.dataframe(ab.per_intent, width="stretch", hide_index=True)
    shell.download_csv(ab.per_intent, label="Download model comparison (CSV)", file_name="intent_model_ab.csv",
                       key="intents_ab_csv")
