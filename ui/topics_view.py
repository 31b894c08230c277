"""The Topics page's body: what users ask about (topics found by clustering their messages), how each topic
ends, and what the bot does not handle (knowledge gaps) with their export as training data.

Definitions live in metrics/topics/ (compute in its private modules, charts in metrics/topics/charts.py,
stored names and runs in metrics/topics/persist.py). The page's choices live in the URL (``?view=``,
``?unit=``, ``?k=``, ``?topic=``, ``?gap=``), so a copied link reopens the same view.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import pandas as pd
import streamlit as st

from metrics import intents
from metrics import topics as T
from metrics.errors import ChatlensError
from metrics.topics import charts, persist
from ui import shell
from ui.fmt import literal, num, pct

VIEWS = ("Topics", "Knowledge gaps")
UNIT_LABELS = {"messages": "Every user message", "first": "First user message of each conversation"}
AUTO = "auto"
K_CHOICES = (AUTO,) + tuple(str(k) for k in range(2, 61))
SOURCE_LABELS = {"renamed": "your name", "pinned": "pinned label", "automatic": "automatic label"}
_state = st.session_state


# ----------------------------------------------------------------------------------------- URL state
def _query_defaults() -> list[str]:
    """Read ``?view=``, ``?unit=``, ``?k=`` once per session; bad values fall back, with a notice."""
    notices = []
    q = st.query_params
    view = q.get("view", VIEWS[0])
    if view not in VIEWS:
        notices.append(f"The link asked for the view '{view}', which does not exist: showing {VIEWS[0]}.")
        view = VIEWS[0]
    unit = q.get("unit", "messages")
    if unit not in UNIT_LABELS:
        notices.append(f"The link asked for the unit '{unit}': showing every user message instead.")
        unit = "messages"
    k = q.get("k", AUTO)
    if k not in K_CHOICES:
        notices.append(f"The link asked for {k} topics; choose 2 to 60 (or automatic): showing automatic.")
        k = AUTO
    _state.setdefault("topics_view", view)
    _state.setdefault("topics_unit", unit)
    _state.setdefault("topics_k", k)
    return notices


def _sync_query(**values) -> None:
    changed = {k: str(v) for k, v in values.items() if v is not None and st.query_params.get(k) != str(v)}
    if changed:
        st.query_params.update(changed)
    for key in [k for k, v in values.items() if v is None and k in st.query_params]:
        del st.query_params[key]


def _linked_id(field: str) -> int | None:
    value = st.query_params.get(field)
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------- page
def render(ctx: shell.PageContext) -> None:
    st.caption("What users ask about, found by clustering what they wrote; how each topic ends; and what the bot "
               "does not handle, ready to become training data.")
    if ctx.dataset_id is None or len(ctx.all_messages) == 0:
        st.info("No messages to analyse. Load a dataset on the **Data** page.")
        return
    if "notices" not in _state.get("topics_seen", {}):
        _state["topics_seen"] = {"notices": _query_defaults()}
    for notice in _state["topics_seen"]["notices"]:
        st.warning(literal(notice), icon=":material/link_off:")
    flash = _state.pop("topics_flash", None)
    if flash:
        st.success(literal(flash), icon=":material/check_circle:")
    view = st.segmented_control("View", VIEWS, key="topics_view") or VIEWS[0]
    _sync_query(view=view)
    if ctx.filters:
        st.caption("Topics are found on the whole dataset (so their ids and names stay put); outcomes, trends "
                   "and counts below follow the sidebar filters.")
    if view == VIEWS[0]:
        _topics_section(ctx)
    else:
        _gaps_section(ctx)


def _options_key(options: T.TopicOptions) -> str:
    return repr(options)


def _run(ctx: shell.PageContext, unit: str, options: T.TopicOptions):
    """The topic model of the whole dataset for ``unit``: repeated exactly while the data and options are the
    same, matched to the stored run otherwise, and stored."""
    state = persist.load_state(ctx.db, ctx.dataset_id, unit)
    gap_options = _gap_options(ctx) if unit == "gaps" else None
    key = _options_key(options) + (repr(gap_options) if gap_options is not None else "")
    previous = state.previous_for(ctx.version, key)
    with st.spinner("Finding topics…"):
        # shared read-only (shell.derive: no copy per rerun, unlike shell.cached): a model holds every clustered
        # message, a million rows at scale
        if unit == "gaps":
            model = shell.derive(ctx, "gap report", T.gap_report, ctx.all_messages, options=gap_options,
                                 topic_options=options, previous=previous, merges=state.merges)
            snapshot = model.model.snapshot
        else:
            model = shell.derive(ctx, "topic model", T.discover_topics, ctx.all_messages, options=options,
                                 previous=previous, merges=state.merges)
            snapshot = model.snapshot
    # written once per run shown (a rerun of the page does not rewrite it): the snapshot, and which conversations
    # are in which topic, so a (re)named topic filters every page (shell's "Topic" filter)
    saved_key = (ctx.dataset_id, ctx.version, unit, key, repr(sorted(state.merges.items())), id(model))
    if _state.get(f"topics_saved_{unit}") != saved_key:
        persist.save_snapshot(ctx.db, ctx.dataset_id, unit, snapshot, version=ctx.version, options_key=key,
                              basis=previous, assignments=None if unit == "gaps" else model.assignments)
        _state[f"topics_saved_{unit}"] = saved_key
    # the run's large frames by name (what the run depends on), so later cached calls on this model key them by
    # that name instead of hashing a million assignments on every rerun
    run_id = f"topics:{unit}:{key}:{persist.snapshot_digest(previous)}:{sorted(state.merges.items())}"
    topic_model = model.model if unit == "gaps" else model
    ctx.derived[f"{run_id}:assignments"] = topic_model.assignments
    if unit == "gaps":
        ctx.derived[f"{run_id}:messages"] = model.messages
    return model, state


def _filtered(model: T.TopicModel, ctx: shell.PageContext) -> T.TopicModel:
    if not ctx.filters:
        return model
    name = next((n for n, f in ctx.derived.items() if f is model.assignments), None)
    keep = model.assignments["conversation_id"].isin(ctx.rollup["conversation_id"])
    shown = dataclasses.replace(model, assignments=model.assignments[keep].reset_index(drop=True))
    if name is not None:  # the same run on this slice (the slice's key holds the filters)
        ctx.derived[f"{name}:filtered"] = shown.assignments
    return shown


def _topic_listing(assignments: pd.DataFrame, topic: int) -> pd.DataFrame:
    """The conversations of one topic: messages in the topic and the first of them."""
    convs = assignments[assignments["topic"] == topic]
    return convs.groupby("conversation_id", sort=True).agg(messages=("text", "size"),
                                                           first_message=("text", "first")).reset_index()


# ----------------------------------------------------------------------------------------- topics
def _topics_section(ctx: shell.PageContext) -> None:
    c1, c2, c3 = st.columns([2, 1, 1])
    unit = c1.radio("Cluster", list(UNIT_LABELS), key="topics_unit", horizontal=True,
                    format_func=lambda u: UNIT_LABELS[u])
    k = c2.selectbox("Number of topics", K_CHOICES, key="topics_k",
                     format_func=lambda v: "automatic" if v == AUTO else v,
                     help="Automatic: the knee of the silhouette curve over 2 to 30 topics.")
    rediscover = c3.button("Re-discover", key="topics_rediscover",
                           help="Cluster afresh instead of refitting the stored topics; names follow the topics "
                                "that are matched.")
    if rediscover:
        _state[f"topics_fresh_{ctx.dataset_id}_{ctx.version}_{unit}"] = True
    fresh = _state.get(f"topics_fresh_{ctx.dataset_id}_{ctx.version}_{unit}", False)
    options = T.TopicOptions(unit=unit, n_topics=None if k == AUTO else int(k), warm_start=not fresh)
    _sync_query(unit=unit, k=k)
    try:
        model, state = _run(ctx, unit, options)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    if model.empty:
        st.info("No user message to cluster (small talk such as greetings and thanks is left out).")
        return
    shown = _filtered(model, ctx)
    try:
        outcomes = shell.cached(ctx, T.topic_outcomes, shown, ctx.messages, ctx.rollup,
                                compound=_compound(ctx))
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    table = T.with_names(model.topics, state.names).drop(columns=["message_count", "conversation_count"])
    table = table.merge(outcomes.drop(columns=["label"]), on="topic", how="left")
    for note in model.notes:
        st.info(literal(note), icon=":material/info:")

    m = st.columns(4)
    m[0].metric("Topics", f"{model.n_topics:,}")
    m[1].metric("Messages clustered", f"{len(shown.assignments):,}")
    m[2].metric("Growing", f"{int(table['growing'].sum()):,}",
                help="Messages in the last 7 days at least 50% above the 7 days before, and unlikely by chance.")
    m[3].metric("New", f"{int(table['new'].sum()):,}", help="At least 80% of the topic's messages are from the "
                "last 14 days.")
    st.caption(f"How: {literal(model.method)}. Seeded, so the same data gives the same topics.")

    st.subheader("Topics")
    color = st.radio("Colour by", ["escalation_rate", "resolution_rate", "abandonment_rate", "negative_rate"],
                     key="topics_color", horizontal=True, format_func=lambda c: charts.RATE_TITLES[c])
    event = shell.show_chart(ctx, charts.topic_bar_chart, table, color=color, on_select="rerun",
                             key=f"topics_chart_{ctx.dataset_id}_{unit}")
    st.caption("Bars: messages per topic. Click a bar to see the topic below.")
    _topic_table(ctx, table)
    ids = table["topic"].tolist()
    names = dict(zip(table["topic"], table["name"]))
    pick_key = f"topics_pick_{ctx.dataset_id}_{ctx.version}_{unit}"
    clicked = charts.selected_topic(event)
    if clicked in ids and _state.get(f"{pick_key}_clicked") != clicked:
        _state[pick_key] = clicked
    _state[f"{pick_key}_clicked"] = clicked
    if _state.get(pick_key) not in ids:
        linked = _linked_id("topic")
        _state[pick_key] = linked if linked in ids else ids[0]
    topic = st.selectbox("Topic", ids, key=pick_key, format_func=lambda t: f"{t} · {names[t]}")
    _sync_query(topic=topic)
    _topic_detail(ctx, model, shown, table, topic)
    _as_filter(ctx, unit, topic)
    _manage(ctx, unit, table, topic, key="topics")
    _trends(ctx, shown, table)
    if len(model.k_scores):
        with st.expander("How the number of topics was chosen"):
            shell.show_chart(ctx, charts.silhouette_chart, model.k_scores, chosen=model.n_topics)
            st.caption("Mean silhouette (cosine) of the clustering for each number of topics; the dashed line is "
                       "the knee, where more topics stop paying off.")


def _compound(ctx: shell.PageContext):
    try:
        return shell.scored(ctx)["compound"]
    except ChatlensError:
        return None


def _topic_table(ctx: shell.PageContext, table: pd.DataFrame) -> None:
    cols = ["topic", "name", "message_count", "conversation_count", "resolution_rate", "escalation_rate",
            "abandonment_rate", "mean_sentiment", "negative_rate", "mean_rating", "csat_rate", "wow_change",
            "growing", "new", "terms"]
    shown = table[cols]
    st.dataframe(shown, width="stretch", hide_index=True, key="topics_table", column_config={
        **{c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
           for c in ("resolution_rate", "escalation_rate", "abandonment_rate", "negative_rate", "csat_rate")},
        "mean_sentiment": st.column_config.NumberColumn("mean sentiment", format="%.2f"),
        "mean_rating": st.column_config.NumberColumn("mean rating", format="%.2f"),
        "message_count": st.column_config.NumberColumn("messages"),
        "conversation_count": st.column_config.NumberColumn("conversations"),
        "wow_change": st.column_config.NumberColumn("week over week", format="percent")})
    st.caption("Rates are over the topic's conversations that ended (in-progress ones are left out); CSAT is the "
               "share of ratings 4 or 5; wow change compares the last 7 days with the 7 before.")
    shell.download_csv(shown, label="Download the topics (CSV)", file_name="topics.csv", key="topics_csv")


def _topic_detail(ctx, model: T.TopicModel, shown: T.TopicModel, table: pd.DataFrame, topic: int) -> None:
    row = table.loc[table["topic"] == topic].iloc[0]
    st.markdown(f"**Topic {int(topic)}: {literal(row['name'])}**")
    st.caption(f"{int(row['message_count']):,} message(s) in {int(row['conversation_count']):,} conversation(s); "
               f"resolution {pct(row['resolution_rate'])}, escalation {pct(row['escalation_rate'])}, "
               f"week over week {pct(row['wow_change'])}.")
    terms = model.terms[model.terms["topic"] == topic]
    if len(terms):
        st.markdown("Distinctive terms: " + ", ".join(literal(t, code=True) for t in terms["term"]))
    examples = model.examples[model.examples["topic"] == topic][["rank", "text", "message_count", "similarity"]]
    st.dataframe(examples, width="stretch", hide_index=True, key="topics_examples", column_config={
        "similarity": st.column_config.NumberColumn("similarity to the topic", format="%.2f"),
        "message_count": st.column_config.NumberColumn("times written")})
    st.caption("The most typical messages of the topic (closest to its centre).")
    shell.conversation_list(shell.cached(ctx, _topic_listing, shown.assignments, int(topic)), key="topics_convs")


def _as_filter(ctx: shell.PageContext, unit: str, topic: int) -> None:
    """The topic as the sidebar's Topic filter (every page), or its conversations on the Conversations page."""
    try:
        filter_unit, _ = persist.filter_run(ctx.db, ctx.dataset_id)
    except ChatlensError:
        return
    if filter_unit != unit:
        st.caption("The sidebar's Topic filter uses the topics of every user message: switch “Cluster” to that to "
                   "filter the other pages by a topic.")
        return
    c1, c2 = st.columns(2)
    if c1.button("Filter every page by this topic", key="topics_filter_all", icon=":material/filter_alt:"):
        shell.filter_by_topic(topic)
        st.rerun()
    if c2.button("Open its conversations", key="topics_open_convs", icon=":material/forum:"):
        shell.open_conversations(found=int(topic))


def _trends(ctx: shell.PageContext, shown: T.TopicModel, table: pd.DataFrame) -> None:
    st.subheader("Trend by week")
    trend = shell.cached(ctx, T.topic_trend, shown)
    if len(trend) == 0:
        st.info("Trends need timestamps.")
        return
    trend = trend.assign(name=trend["topic"].map(dict(zip(table["topic"], table["name"]))))
    top = table.sort_values("message_count", ascending=False)["topic"].head(8).tolist()
    flagged = table.loc[table["growing"] | table["new"], "topic"].tolist()
    picked = st.multiselect("Topics", table["topic"].tolist(), default=list(dict.fromkeys(flagged + top))[:8],
                            key=f"topics_trend_pick_{ctx.dataset_id}",
                            format_func=lambda t: f"{t} · {dict(zip(table['topic'], table['name']))[t]}")
    if picked:
        shell.show_chart(ctx, charts.topic_trend_chart, trend, topics=picked)
    st.caption("Messages per topic per week (weeks start on Monday, UTC). Growing and new topics are picked first.")


def _manage(ctx: shell.PageContext, unit: str, table: pd.DataFrame, topic: int, *, key: str) -> None:
    names = dict(zip(table["topic"], table["name"]))
    with st.expander("Rename, pin or merge topics"):
        source = table.loc[table["topic"] == topic, "name_source"].iloc[0]
        st.caption(f"Topic {int(topic)} shows its {literal(SOURCE_LABELS.get(source, source))}. Names are stored "
                   "with the dataset and follow the topic when the data is uploaded again.")
        c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
        new_name = c1.text_input("New name", key=f"{key}_new_name", placeholder="e.g. Delivery delays")
        if c2.button("Rename", key=f"{key}_rename"):
            _act(persist.rename_topic, ctx, unit, topic, new_name, done=f"Topic {topic} is now '{new_name.strip()}'.")
        if c3.button("Pin label", key=f"{key}_pin", help="Keep the current label whatever later runs call it."):
            label = table.loc[table["topic"] == topic, "label"].iloc[0]
            _act(persist.pin_topic, ctx, unit, topic, label, done=f"Pinned the label of topic {topic}.")
        if c4.button("Reset name", key=f"{key}_reset", help="Back to the automatic label."):
            _act(persist.reset_name, ctx, unit, topic, done=f"Topic {topic} shows its automatic label again.")
        others = [t for t in table["topic"].tolist() if t != topic]
        merge = st.multiselect("Merge into the selected topic", others, key=f"{key}_merge_pick",
                               format_func=lambda t: f"{t} · {names[t]}")
        m1, m2 = st.columns(2)
        if m1.button("Merge", key=f"{key}_merge", disabled=not merge):
            _act(persist.merge_topics, ctx, unit, merge, topic,
                 done=f"Merged {len(merge)} topic(s) into topic {topic}.")
        if m2.button("Undo merges", key=f"{key}_unmerge"):
            _act(persist.unmerge_topic, ctx, unit, topic, done=f"Undid the merges of topic {topic}.")


def _act(fn, ctx, unit, *args, done: str) -> None:
    try:
        fn(ctx.db, ctx.dataset_id, unit, *args)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    _state["topics_flash"] = done
    st.rerun()


# ----------------------------------------------------------------------------------------- gaps
def _gap_options(ctx: shell.PageContext) -> T.GapOptions:
    fallback = _state.get("topics_gap_fallback") or intents.suggest_fallback_intent(ctx.all_messages)
    threshold = float(_state.get("topics_gap_threshold", intents.DEFAULT_THRESHOLD))
    return T.GapOptions(fallback_intent=fallback, threshold=threshold)


def _gaps_section(ctx: shell.PageContext) -> None:
    messages = ctx.all_messages
    with st.expander("Gap settings"):
        candidates = sorted(set(messages["intent"].dropna().astype(str))) if "intent" in messages.columns else []
        suggested = intents.suggest_fallback_intent(messages)
        options = list(dict.fromkeys([suggested] + candidates))
        _state.setdefault("topics_gap_fallback", suggested)
        if _state["topics_gap_fallback"] not in options:
            _state["topics_gap_fallback"] = suggested
        st.selectbox("Fallback intent", options, key="topics_gap_fallback",
                     help="The intent that means the bot did not understand.")
        _state.setdefault("topics_gap_threshold", float(intents.DEFAULT_THRESHOLD))
        st.slider("Confidence threshold", 0.0, 1.0, step=0.05, key="topics_gap_threshold",
                  help="A message predicted with a lower confidence is a gap.")
    try:
        report, state = _run(ctx, "gaps", T.TopicOptions(max_topics=20))
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    m = st.columns(3)
    m[0].metric("Gap messages", f"{len(report.messages):,}",
                help="User messages the bot did not handle (any signal).")
    m[1].metric("Share of user messages", pct(len(report.messages) / report.user_message_count
                                                if report.user_message_count else None))
    m[2].metric("Gap topics", f"{len(report.topics):,}")
    if report.empty:
        st.info("No knowledge gap found: no fallback, low-confidence, misunderstood, rephrased, escalated or "
                "abandoned user message.")
        return
    examples = shell.cached(ctx, T.intent_examples, messages, fallback_intent=report.fallback_intent,
                            threshold=report.options.threshold)
    clustered = report.messages[report.messages["topic"] >= 0][["topic", "text"]]
    nearest = shell.cached(ctx, T.nearest_intents, clustered, examples)
    table = T.with_names(report.topics, state.names).merge(nearest, on="topic", how="left")
    st.subheader("Gap topics, ranked")
    event = shell.show_chart(ctx, charts.gap_rank_chart, table, on_select="rerun",
                             key=f"topics_gap_chart_{ctx.dataset_id}")
    st.caption("Score = messages × impact, impact = 1 + escalation rate + negative-sentiment rate. Click a bar to "
               "see the gap topic below.")
    cols = ["rank", "topic", "name", "message_count", "conversation_count", "escalation_rate", "negative_rate",
            "impact", "score", "top_signal", "nearest_intent", "similarity"]
    st.dataframe(table[cols], width="stretch", hide_index=True, key="topics_gap_table", column_config={
        "escalation_rate": st.column_config.NumberColumn("escalation rate", format="percent"),
        "negative_rate": st.column_config.NumberColumn("negative rate", format="percent"),
        "impact": st.column_config.NumberColumn(format="%.2f"), "score": st.column_config.NumberColumn(format="%.1f"),
        "similarity": st.column_config.NumberColumn("similarity to nearest intent", format="%.2f"),
        "message_count": st.column_config.NumberColumn("messages"),
        "conversation_count": st.column_config.NumberColumn("conversations"),
        "top_signal": st.column_config.TextColumn("main signal"),
        "nearest_intent": st.column_config.TextColumn("nearest intent")})
    shell.download_csv(table[cols], label="Download the gap topics (CSV)", file_name="gap_topics.csv",
                       key="topics_gap_csv")
    ids = table["topic"].tolist()
    names = dict(zip(table["topic"], table["name"]))
    pick_key = f"topics_gap_pick_{ctx.dataset_id}_{ctx.version}"
    clicked = charts.selected_topic(event, charts.GAP_PARAM)
    if clicked in ids and _state.get(f"{pick_key}_clicked") != clicked:
        _state[pick_key] = clicked
    _state[f"{pick_key}_clicked"] = clicked
    if _state.get(pick_key) not in ids:
        linked = _linked_id("gap")
        _state[pick_key] = linked if linked in ids else ids[0]
    gap = st.selectbox("Gap topic", ids, key=pick_key, format_func=lambda t: f"{t} · {names[t]}")
    _sync_query(gap=gap)
    _gap_detail(ctx, report, table, gap)
    _manage(ctx, "gaps", table, gap, key="topics_gap")
    _templates_and_overlaps(ctx, report)


def _gap_detail(ctx: shell.PageContext, report: T.GapReport, table: pd.DataFrame, gap: int) -> None:
    row = table.loc[table["topic"] == gap].iloc[0]
    st.markdown(f"**Gap topic {int(gap)}: {literal(row['name'])}**")
    near = row["nearest_intent"]
    if isinstance(near, str) and near:
        st.caption(f"Closest existing intent: {literal(near, code=True)} "
                   f"(similarity {num(row['similarity'], '{:.2f}')}). "
                   "Close: add these examples to it; far: a new intent.")
    else:
        st.caption("No existing intent to compare with (the data has no predicted or labelled intents).")
    msgs = report.messages[report.messages["topic"] == gap]
    shown = msgs[["conversation_id", "text", "intent", "confidence", "signals", "bot_reply"]]
    st.dataframe(shown.head(200), width="stretch", hide_index=True, key="topics_gap_examples",
                 column_config={"confidence": st.column_config.NumberColumn(format="%.2f")})
    st.caption(f"{len(msgs):,} message(s); the first 200 are shown.")
    st.markdown("**Export as training data**")
    intent = st.text_input("New intent name", value=T.intent_name(row["name"]), key=f"topics_gap_intent_{gap}",
                           help="Letters, digits, _ . and - (a Rasa intent name).")
    try:
        examples = T.training_examples(msgs["text"], intent=intent)
        yaml_text = T.rasa_nlu_yaml(examples)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    c1, c2 = st.columns(2)
    with c1:  # the CSV goes through the one formula-escaping writer (metrics.io.export.to_csv_bytes)
        shell.download_csv(examples[["intent", "text"]], label="Download examples (CSV)", file_name=f"{intent}.csv",
                           key="topics_gap_export_csv")
    c2.download_button("Download Rasa NLU (YAML)", yaml_text.encode("utf-8"), file_name=f"{intent}.yml",
                       mime="application/x-yaml", key="topics_gap_export_yaml")
    st.caption(f"{len(examples):,} distinct example(s).")
    _to_backlog(ctx, row)


def _to_backlog(ctx: shell.PageContext, row: pd.Series) -> None:
    """The gap topic as an item of the Improvement page's backlog, with its impact estimate."""
    from metrics.improve import store as goals_store
    from metrics.improve.backlog import data_weeks, gap_item
    from metrics.core.rollup import conversation_rollup

    st.markdown("**Fix it**")
    rollup = ctx.rollup if not ctx.filters else shell.cached(ctx, conversation_rollup, ctx.all_messages)
    has_intents = "intent" in ctx.all_messages.columns and ctx.all_messages["intent"].notna().any()
    item = gap_item(row, weeks=data_weeks(rollup), has_intents=bool(has_intents))
    st.caption(f"Impact estimate: {item['affected_count']:,} conversation(s) over {item['weeks']:.1f} week(s), "
               f"{item['impact_per_week']:.1f} a week.")
    if st.button("Add to the improvement backlog", key="topics_gap_backlog", icon=":material/playlist_add:"):
        try:
            new = goals_store.add_backlog_item(ctx.db, ctx.dataset_id, item)
        except ChatlensError as exc:
            shell.show_error(exc)
            return
        _state["topics_flash"] = (f"Added “{row['name']}” to the improvement backlog." if new else
                                  f"Updated “{row['name']}” in the improvement backlog.")
        st.rerun()


def _templates_and_overlaps(ctx: shell.PageContext, report: T.GapReport) -> None:
    with st.expander("The bot's own \"did not understand\" replies (learned from the data)"):
        templates = report.templates
        st.dataframe(templates, width="stretch", hide_index=True, key="topics_templates", column_config={
            c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
            for c in ("after_unhandled_rate", "before_rephrase_rate", "before_escalation_rate")})
        st.caption("Bot texts seen at least 3 times. A template recurs after fallback or low-confidence messages, "
                   "or precedes the user rephrasing (or an escalation, when it also follows unhandled messages).")
    with st.expander("Intents that overlap (candidates to merge)"):
        try:
            pairs = shell.cached(ctx, T.overlapping_intents, ctx.all_messages, fallback_intent=report.fallback_intent,
                                 threshold=report.options.threshold)
        except ChatlensError as exc:
            shell.show_error(exc)
            return
        if len(pairs) == 0:
            st.info("No pair of intents overlaps.")
        else:
            st.dataframe(pairs, width="stretch", hide_index=True, key="topics_overlaps", column_config={
                "similarity": st.column_config.NumberColumn(format="%.2f"),
                "confusion_rate": st.column_config.NumberColumn("confusion rate", format="percent")})
        st.caption("Pairs whose examples are similar (centroid cosine at least 0.5) or that are confused with each "
                   "other (at least 10% of their labelled messages).")
