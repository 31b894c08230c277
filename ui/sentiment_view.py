"""The Sentiment page's body: how customers feel (VADER on user messages), how the bot sounds, what
ratings say, and how far VADER agrees with people.

Definitions live in metrics/sentiment/__init__.py (scoring), metrics/sentiment/measures.py (metrics) and
metrics/sentiment/charts.py (charts); scores are cached in the store (metrics/sentiment/cache.py)
and "send to audit" writes metrics/audit/queue.py. Each metric is computed once per data slice and options
(:func:`ui.shell.cached`, shared by every session), so clicking a chart does not recompute it; the session
remembers its own scoring run (:func:`_memo`) for the progress bar and the cache statistics.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from metrics import kpis
from metrics.audit import queue as audit_queue
from metrics.sentiment import charts
from metrics.sentiment import measures as sm
from metrics.errors import ChatlensError, InsufficientDataError
from metrics.io.schema import has_timestamps
from metrics.sentiment import ANALYZER_VERSION, Cutoffs, SentimentScorer, score_messages
from metrics.sentiment.cache import StoreCache
from ui import drill, shell, tiles, timeaxis, urlstate
from ui.fmt import literal, num, pct

#: Show a progress bar when at least this many distinct texts need scoring.
PROGRESS_MIN_TEXTS = 5_000
GUIDE = ("“A 3.2-star average rating with 45% negative sentiment indicates serious quality issues, "
         "while 4.5 stars with 75% positive sentiment means your bot is hitting the mark.”")
FLASH = "sentiment_flash"
BAND_MESSAGES = {"serious_problem": ("error", "Serious quality problem"), "on_target": ("success", "On target"),
                 "in_between": ("warning", "Between the bands"), "unknown": ("info", "Not enough data")}


def _compound(value) -> str:
    return num(value, "{:+.3f}")


def _stars(value) -> str:
    return num(value, "{:.2f} ★")


def render(ctx: shell.PageContext) -> None:
    st.caption("The customer's sentiment (VADER compound of user messages, −1 to +1), the bot's tone, ratings, "
               "and how well VADER agrees with human judgement. VADER misses sarcasm and context: use it to find "
               "conversations to read, not as the verdict.")
    messages = ctx.messages
    if ctx.dataset_id is None or len(messages) == 0:
        st.info("No messages to analyse. Load a dataset on the **Data** page (or widen the filters).")
        return
    flash = st.session_state.pop(FLASH, None)  # plain text, escaped when shown
    if flash:
        st.success(literal(flash), icon=":material/check_circle:")
    settings = _settings()
    if settings is None:
        return
    cutoffs, bands, min_drop = settings
    _reset_memo(ctx)

    compound, stats = _scores(ctx)
    scored = shell.scored(ctx, cutoffs=cutoffs, compound=compound)
    dist = shell.cached(ctx, sm.sentiment_distribution, scored, cutoffs=cutoffs)
    shift = shell.cached(ctx, sm.sentiment_shift, scored, min_drop=min_drop)
    ratings = shell.cached(ctx, sm.rating_summary, ctx.rollup)
    _headline(ctx, scored, dist, ratings, stats, cutoffs, bands)
    _trend(ctx, scored, cutoffs)
    _distribution(ctx, scored, dist, cutoffs, bands)
    _breakdowns(ctx, scored, cutoffs)
    _shift(ctx, shift)
    _reactions(ctx, scored, cutoffs)
    _ratings(ctx, scored, ratings, bands)
    _calibration(ctx, scored, ratings, cutoffs)
    _send_to_audit(ctx, scored, cutoffs)


def _settings() -> tuple[Cutoffs, sm.QualityBands, float] | None:
    with st.expander("Settings: label cut-offs, shift threshold, quality bands"):
        c1, c2, c3 = st.columns(3)
        pos_cut = c1.number_input("Positive when compound ≥", value=0.05, step=0.01, format="%.2f",
                                  key="sentiment_pos_cut", help="VADER's standard cut-off is 0.05.")
        neg_cut = c2.number_input("Negative when compound ≤", value=-0.05, step=0.01, format="%.2f",
                                  key="sentiment_neg_cut", help="VADER's standard cut-off is −0.05.")
        min_drop = c3.number_input("Worsened when the last message drops by more than", value=0.05, min_value=0.0,
                                   max_value=1.99, step=0.05, format="%.2f", key="sentiment_min_drop")
        b1, b2, b3, b4 = st.columns(4)
        problem_rating = b1.number_input("Problem at ≤ stars", value=3.2, step=0.1, key="sentiment_problem_rating")
        problem_negative = b2.number_input("Problem at ≥ negative share", value=0.45, step=0.05,
                                           key="sentiment_problem_negative")
        target_rating = b3.number_input("Target at ≥ stars", value=4.5, step=0.1, key="sentiment_target_rating")
        target_positive = b4.number_input("Target at ≥ positive share", value=0.75, step=0.05,
                                          key="sentiment_target_positive")
        st.caption(f"Quality bands from the guide: {GUIDE}")
    try:
        cutoffs = Cutoffs(positive=float(pos_cut), negative=float(neg_cut))
        bands = sm.QualityBands(problem_rating=float(problem_rating), problem_negative_rate=float(problem_negative),
                                target_rating=float(target_rating), target_positive_rate=float(target_positive))
    except ChatlensError as exc:
        shell.show_error(exc)
        return None
    return cutoffs, bands, float(min_drop)


# ----------------------------------------------------------------------------------------- memo
def _reset_memo(ctx: shell.PageContext) -> None:
    """Forget the remembered results when the data (dataset version, filters) changes."""
    data_key = (ctx.dataset_id, ctx.version, repr(sorted(ctx.filters.items())), len(ctx.messages), ANALYZER_VERSION)
    if st.session_state.get("sentiment_memo_key") != data_key:
        st.session_state["sentiment_memo_key"] = data_key
        st.session_state["sentiment_memo"] = {}


def _memo(name: str, fn, *args):
    """``fn()`` computed once per (name, args) for the current data; args must be hashable."""
    values = st.session_state["sentiment_memo"]
    key = (name, args)
    if key not in values:
        if len(values) > 64:
            values.clear()
        values[key] = fn()
    return values[key]


def _bot_tone(scored: pd.DataFrame, *, cutoffs: Cutoffs) -> pd.DataFrame:
    """The ten lowest-scoring bot texts (mean compound per distinct bot message)."""
    return sm.sentiment_breakdown(scored.assign(bot_text=scored["text"]), by="bot_text", speaker="bot",
                                  cutoffs=cutoffs).head(10)


def _scores(ctx: shell.PageContext):
    """Each message's compound and the scorer's statistics; a progress bar on large new datasets."""
    progress_slot = st.empty()

    def progress(done: int, total: int) -> None:
        if total >= PROGRESS_MIN_TEXTS:
            progress_slot.progress(done / total if total else 1.0,
                                   text=f"Scoring sentiment: {done:,} of {total:,} new distinct texts")

    try:
        cache = StoreCache(ctx.db)
    except ChatlensError:
        cache = None

    def score():
        scorer = SentimentScorer(progress=progress)
        pending = shell.take_pending_scores(*ctx.key[:3])  # scored in the background since the save, if large
        compound = score_messages(ctx.messages, scorer=scorer, cache=cache, pending=pending)
        if pending is not None and pending.done() and not scorer.last_stats.distinct_count:
            return compound, pending.stats  # every text came from the background scoring
        return compound, scorer.last_stats

    compound, stats = _memo("compound", score)
    progress_slot.empty()
    return compound, stats


def change_log_annotations(db, dataset_id) -> pd.DataFrame | None:
    """CHANGE-LOG HOOK: the improvement log's entries (columns date, title) for trend annotations.

    Uses ``metrics.improve.changelog.annotations(db, dataset_id)`` once the improvement-loop feature adds
    it; until then (or when it fails) the trend has no annotations.
    """
    try:
        from metrics.improve import changelog
    except ImportError:
        return None
    try:
        notes = changelog.annotations(db, dataset_id)
    except (ImportError, AttributeError, TypeError, ChatlensError):  # an optional feature never breaks this page
        return None
    return notes if isinstance(notes, pd.DataFrame) and {"date", "title"} <= set(notes.columns) else None


def _audit_tone_scores(db, dataset_id) -> pd.DataFrame | None:
    """Reviewers' tone scores of this dataset from the audit feature (None when absent or empty)."""
    try:
        from metrics.audit import store as audit_store
    except ImportError:
        return None
    try:
        scores = audit_store.export_scores(db)
    except (ChatlensError, AttributeError):
        return None
    scores = scores[scores["dataset_id"] == int(dataset_id)] if "dataset_id" in scores.columns else scores
    return scores if len(scores) and "tone" in scores.columns else None


# ----------------------------------------------------------------------------------------- sections
def _headline(ctx: shell.PageContext, scored: pd.DataFrame, dist, ratings, stats, cutoffs: Cutoffs,
              bands: sm.QualityBands) -> None:
    band = sm.quality_band(mean_rating=ratings.mean_rating, positive_rate=dist.positive_rate,
                           negative_rate=dist.negative_rate, bands=bands)
    cols = st.columns(5)
    cols[0].metric("User messages scored", f"{dist.message_count:,}")
    cols[1].metric("Mean compound", _compound(dist.mean_compound),
                   help="Mean VADER compound of user messages (−1 to +1).")
    cols[2].metric("Positive sentiment · period", pct(dist.positive_rate), help=f"Share with compound ≥ {cutoffs.positive:g}.")
    # the registry's KPIs (the same computation and label wherever they are shown), with this page's cut-offs
    options = kpis.KpiOptions(cutoffs=cutoffs)
    tiles.kpi_tile(ctx, cols[3], "negative_sentiment_rate", scored, ctx.rollup, options=options,
                   extra_help=f"Negative: compound ≤ {cutoffs.negative:g} (set on this page).")
    tiles.kpi_tile(ctx, cols[4], "csat", scored, ctx.rollup, missing="no ratings",
                   extra_help="This data has no post-conversation ratings (a 'rating' column of 1-5 stars)."
                   if not ratings.rating_count else None)
    kind, label = BAND_MESSAGES[band.band]
    getattr(st, kind)(f"**{label}**: {literal('; '.join(band.reasons))}. Guide: {GUIDE}")
    processes = f" on {stats.processes:,} processes" if stats.processes > 1 else ""
    st.caption(f"{stats.distinct_count:,} distinct texts: {stats.cached_count:,} from the score cache, "
               f"{stats.scored_count:,} scored now{processes}. Each distinct text is scored once; scores are kept "
               "in the store.")


def _trend(ctx: shell.PageContext, scored: pd.DataFrame, cutoffs: Cutoffs) -> None:
    st.subheader("Trend")
    if not has_timestamps(scored):
        st.info("The trend needs timestamps; this dataset has none.")
        return
    period_choice = (urlstate.Choice("group", "sentiment_freq", ("week", "day"), label="period"),)
    urlstate.bind("sentiment", period_choice)
    scored = timeaxis.dense(ctx, scored)  # a few stray dates must not stretch the axis over years
    t1, t2 = st.columns([1, 1])
    freq = t1.radio("Period", ["day", "week"], horizontal=True, key="sentiment_freq")
    urlstate.sync("sentiment", period_choice)
    window = t2.number_input("Rolling mean over (periods)", min_value=1, max_value=60,
                             value=7 if freq == "day" else 4, step=1, key=f"sentiment_window_{freq}")
    trend = shell.cached(ctx, sm.sentiment_trend, scored, freq=freq, window=int(window), cutoffs=cutoffs)
    changes = change_log_annotations(ctx.db, ctx.dataset_id)
    event = shell.show_chart(ctx, charts.trend_chart, trend, changes=changes, on_select="rerun", key="sentiment_trend")
    st.caption(f"Mean compound of user messages per {literal(freq)} (blue) and its {int(window)}-{literal(freq)} "
               "rolling mean (orange, dashed); improving sentiment means the training is working. Click a point "
               "to list that period's conversations" + ("; purple rules are change-log entries." if changes is not None
                                                else "."))
    shell.download_csv(trend, label="Download the trend (CSV)", file_name=f"sentiment_trend_{freq}.csv",
                       key="sentiment_trend_csv")
    picked = drill.picked(event, charts.PERIOD_PARAM)
    if picked:
        label_value = str(picked[0].get("label", ""))
        match = trend[trend["label"] == label_value]
        if len(match):
            found = shell.cached(ctx, sm.conversations_matching, scored, period=match["period"].iloc[0], freq=freq,
                                 cutoffs=cutoffs)
            drill.listing(found, heading=f"Conversations of {label_value}, most negative first: {len(found):,}",
                          key="sentiment_trend_convs")


def _distribution(ctx: shell.PageContext, scored: pd.DataFrame, dist, cutoffs: Cutoffs, bands: sm.QualityBands) -> None:
    st.subheader("Distribution")
    left, right = st.columns(2)
    with left:
        frame = dist.to_frame()
        event = shell.show_chart(ctx, charts.distribution_chart, frame, bands=bands, on_select="rerun",
                                 key="sentiment_distribution")
        st.caption("Share of user messages per label; black ticks mark the guide's problem line (negative) and "
                   "target (positive). Click a bar to list its conversations.")
        shell.download_csv(frame, label="Download the distribution (CSV)", file_name="sentiment_distribution.csv",
                           key="sentiment_distribution_csv")
    with right:
        bot = shell.cached(ctx, sm.sentiment_distribution, scored, speaker="bot", cutoffs=cutoffs)
        st.markdown("**The bot's tone**")
        b1, b2, b3 = st.columns(3)
        b1.metric("Bot messages", f"{bot.message_count:,}")
        b2.metric("Bot mean compound", _compound(bot.mean_compound))
        b3.metric("Bot negative", pct(bot.negative_rate))
        tone = shell.cached(ctx, _bot_tone, scored, cutoffs=cutoffs)
        st.dataframe(tone[["mean_compound", "message_count", "bot_text"]], width="stretch", hide_index=True,
                     key="sentiment_bot_tone")
        st.caption("Bot messages scored separately: the ten lowest-scoring texts. An apology scores negative; "
                   "read them before rewriting.")
        shell.download_csv(tone, label="Download bot tone (CSV)", file_name="sentiment_bot_tone.csv",
                           key="sentiment_bot_tone_csv")
    picked = drill.picked(event, charts.SENTIMENT_PARAM)
    if picked:
        label_value = str(picked[0].get("sentiment", ""))
        if label_value in ("negative", "neutral", "positive"):
            found = shell.cached(ctx, sm.conversations_matching, scored, sentiment=label_value, cutoffs=cutoffs)
            drill.listing(found, heading=f"Conversations with {label_value} user messages, most negative first: "
                                         f"{len(found):,}", key="sentiment_distribution_convs")


def _breakdowns(ctx: shell.PageContext, scored: pd.DataFrame, cutoffs: Cutoffs) -> None:
    st.subheader("Breakdowns")
    options = [c for c in ("intent", "topic", "channel", "segment")
               if c in scored.columns and scored[c].notna().any()]
    if not options:
        st.info("No intent, topic, channel or segment column to break sentiment down by.")
        return
    by_choice = (urlstate.Choice("by", "sentiment_by", tuple(options), label="breakdown"),)
    urlstate.bind("sentiment", by_choice)
    by = st.radio("Break down by", options, horizontal=True, key="sentiment_by")
    urlstate.sync("sentiment", by_choice)
    breakdown = shell.cached(ctx, sm.sentiment_breakdown, scored, by=by, cutoffs=cutoffs)
    event = shell.show_chart(ctx, charts.breakdown_chart, breakdown, by=by, on_select="rerun",
                             key="sentiment_breakdown")
    st.caption(f"Mean compound of user messages per {literal(by)}, worst first: the problem areas. Click a bar to list "
               "its conversations.")
    shell.download_csv(breakdown, label="Download the breakdown (CSV)", file_name=f"sentiment_by_{by}.csv",
                       key="sentiment_breakdown_csv")
    picked = drill.picked(event, charts.GROUP_PARAM)
    if picked and by in picked[0]:
        value = picked[0][by]
        found = shell.cached(ctx, sm.conversations_matching, scored, by=by, value=value, cutoffs=cutoffs)
        drill.listing(found, heading=f"Conversations with {by} = {value}, most negative first: {len(found):,}",
                      key="sentiment_breakdown_convs")


def _shift(ctx: shell.PageContext, shift) -> None:
    st.subheader("Shift within a conversation")
    s1, s2, s3 = st.columns(3)
    s1.metric("Conversations with 2+ scored messages", f"{shift.eligible_count:,}",
              help="Conversations with two or more scored user messages: their first and last are compared.")
    s2.metric("Worsened", pct(shift.worsened_conversation_rate),
              help=f"Last user message scores more than {shift.min_drop:g} below the first.")
    s3.metric("Improved", pct(shift.improved_conversation_rate))
    counts = shift.counts_frame()
    event = shell.show_chart(ctx, charts.shift_chart, counts, on_select="rerun", key="sentiment_shift")
    st.caption("First vs last user message of each conversation: a conversation that ends worse than it began is "
               "one the bot did not help. Click a bar to list them.")
    shell.download_csv(shift.table, label="Download the shift per conversation (CSV)",
                       file_name="sentiment_shift.csv", key="sentiment_shift_csv")
    picked = drill.picked(event, charts.DIRECTION_PARAM)
    if picked:
        direction = str(picked[0].get("direction", ""))
        found = shift.table[shift.table["direction"] == direction].sort_values("shift", kind="stable")
        drill.listing(found, heading=f"{direction.capitalize()} conversations: {len(found):,}",
                      key="sentiment_shift_convs")


def _reactions(ctx: shell.PageContext, scored: pd.DataFrame, cutoffs: Cutoffs) -> None:
    st.subheader("Bot messages followed by a negative reaction")
    min_count = st.number_input("Only bot messages answered at least this often", min_value=1, value=5, step=1,
                                key="sentiment_reaction_min")
    reactions = shell.cached(ctx, sm.negative_reactions, scored, cutoffs=cutoffs, min_count=int(min_count), top=15)
    if not len(reactions):
        st.info("No bot message was followed by a negative user reply often enough.")
        return
    event = shell.show_chart(ctx, charts.reactions_chart, reactions, on_select="rerun", key="sentiment_reactions")
    st.caption("Bot messages most often followed by a negative user message. A greeting answered by a complaint "
               "reflects the problem the user came with; a clarification or answer with a high negative share "
               "is a response to rewrite. Click a bar to list the conversations.")
    shell.download_csv(reactions, label="Download the reactions (CSV)", file_name="sentiment_reactions.csv",
                       key="sentiment_reactions_csv")
    picked = drill.picked(event, charts.REACTION_PARAM)
    if not picked and drill.linked("bot_text"):  # a link from the Overview's operational view
        picked = [{"bot_text": drill.linked("bot_text")}]
    if picked:
        text = str(picked[0].get("bot_text", ""))
        found = shell.cached(ctx, sm.reaction_conversations, scored, text, cutoffs=cutoffs)
        drill.listing(found, heading=f"Negative replies to “{text}”: {len(found):,} conversations",
                      key="sentiment_reactions_convs")


def _ratings(ctx: shell.PageContext, scored: pd.DataFrame, ratings, bands: sm.QualityBands) -> None:
    st.subheader("Ratings")
    r = st.columns(5)
    r[0].metric("Rated conversations", f"{ratings.rating_count:,}")
    tiles.kpi_tile(ctx, r[1], "csat", scored, ctx.rollup, missing="no ratings")
    r[2].metric("Thumbs up", pct(ratings.thumbs_up_rate), help=f"{ratings.thumbs_count:,} thumbs given.")
    r[3].metric("Survey response rate", pct(ratings.survey_response_rate),
                help="Conversations with any feedback (rating, thumb or 'did we solve it' answer).")
    r[4].metric("Solved (survey)", pct(ratings.survey_solved_rate), help="'Did we solve your problem?' answered yes.")
    if not ratings.rating_count:
        st.info("No ratings in this dataset: map a 1–5 rating column to `rating` on the Data page.")
        return
    left, right = st.columns(2)
    with left:
        rating_frame = ratings.distribution_frame()
        event = shell.show_chart(ctx, charts.rating_distribution_chart, rating_frame, on_select="rerun",
                                 key="sentiment_ratings")
        st.caption("Rated conversations per star. Click a bar to list them.")
        shell.download_csv(rating_frame, label="Download the rating distribution (CSV)",
                           file_name="rating_distribution.csv", key="sentiment_ratings_csv")
    with right:
        try:
            rtrend = shell.cached(ctx, sm.rating_trend, ctx.rollup, freq="week")
            shell.show_chart(ctx, charts.rating_trend_chart, rtrend, bands=bands,
                             changes=change_log_annotations(ctx.db, ctx.dataset_id))
            st.caption(f"Mean rating per week with the guide's lines: {bands.problem_rating:g} stars is a serious "
                       f"problem, {bands.target_rating:g} on target.")
            shell.download_csv(rtrend, label="Download the rating trend (CSV)", file_name="rating_trend.csv",
                               key="sentiment_rating_trend_csv")
        except InsufficientDataError as exc:
            st.info(f"Rating trend: {literal(exc)}")
    picked = drill.picked(event, charts.STARS_PARAM)
    if picked:
        stars = int(picked[0].get("stars", 0))
        if 1 <= stars <= 5:
            found = shell.cached(ctx, sm.conversations_with_rating, ctx.rollup, stars)
            drill.listing(found, heading=f"Conversations rated {stars} ★: {len(found):,}",
                          key="sentiment_ratings_convs")

    g1, g2 = st.columns(2)
    with g1:
        st.markdown("**Satisfaction by intent**")
        try:
            by_intent = shell.cached(ctx, sm.rating_by_group, ctx.messages, ctx.rollup, by="intent", min_count=5)
            st.dataframe(by_intent, width="stretch", hide_index=True, key="sentiment_rating_intent")
            st.caption("Primary intent of rated conversations (≥ 5 ratings), highest mean first: the bottom rows "
                       "are the intents to fix.")
            shell.download_csv(by_intent, label="Download ratings by intent (CSV)", file_name="rating_by_intent.csv",
                               key="sentiment_rating_intent_csv")
        except InsufficientDataError as exc:
            st.info(literal(exc))
    with g2:
        st.markdown("**Ratings vs escalation and sentiment**")
        by_esc = shell.cached(ctx, sm.rating_by_group, ctx.messages, ctx.rollup, by="escalated")
        st.dataframe(by_esc, width="stretch", hide_index=True, key="sentiment_rating_escalated")
        corr = shell.cached(ctx, sm.rating_correlations, scored, ctx.rollup)
        st.dataframe(corr, width="stretch", hide_index=True, key="sentiment_rating_corr",
                     column_config={"spearman_rho": st.column_config.NumberColumn(format="%.3f"),
                                    "p_value": st.column_config.NumberColumn(format="%.2g")})
        st.caption("Spearman correlation of the rating with escalation (negative: escalated conversations rate "
                   "lower) and with the conversation's user sentiment.")
        shell.download_csv(corr, label="Download correlations (CSV)", file_name="rating_correlations.csv",
                           key="sentiment_rating_corr_csv")


def _calibration(ctx: shell.PageContext, scored: pd.DataFrame, ratings, cutoffs: Cutoffs) -> None:
    st.subheader("Calibration against people")
    tone_scores = _audit_tone_scores(ctx.db, ctx.dataset_id)
    sources = (["ratings"] if ratings.rating_count else []) + (["audit tone scores"] if tone_scores is not None
                                                               else [])
    if not sources:
        st.info("No ratings and no audit tone scores yet: calibration needs human judgement. Reviewers can score "
                "conversations on the **Audit** page.")
        return
    source = st.radio("Human judgement", sources, horizontal=True, key="sentiment_calibration_source")
    try:
        if source == "ratings":
            calib = shell.cached(ctx, sm.sentiment_calibration, scored, ctx.rollup, cutoffs=cutoffs)
        else:
            calib = sm.sentiment_calibration(scored, tone_scores, score_column="tone", cutoffs=cutoffs)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    k = st.columns(4)
    k[0].metric("Conversations scored by reviewers", f"{calib.conversation_count:,}",
                help="Conversations with a reviewer's tone score, compared with VADER.")
    k[1].metric("Agreement", pct(calib.agreement_rate))
    k[2].metric("Cohen's kappa", num(calib.kappa, "{:.3f}"), help="0 = chance agreement, 1 = perfect.")
    k[3].metric("Weighted kappa", num(calib.weighted_kappa, "{:.3f}"),
                help="Linear weights: negative vs positive counts as a bigger miss than vs neutral.")
    left, right = st.columns(2)
    with left:
        event = shell.show_chart(ctx, charts.calibration_chart, calib.confusion, on_select="rerun",
                                 key="sentiment_calibration")
        st.caption("Human label (rating or tone 1–2 negative, 3 neutral, 4–5 positive) against VADER's label of "
                   "the conversation's mean user compound. Click a cell to list its conversations.")
        shell.download_csv(calib.pairs, label="Download the comparison (CSV)", file_name="sentiment_calibration.csv",
                           key="sentiment_calibration_csv")
    with right:
        st.markdown("**Largest disagreements**")
        st.dataframe(calib.disagreements, width="stretch", hide_index=True, key="sentiment_disagreements")
        st.caption("Where VADER and people disagree most: sarcasm and context are what VADER misses. "
                   "Read these before trusting the automated numbers.")
    picked = drill.picked(event, charts.CELL_PARAM)
    if picked:
        h, v = str(picked[0].get("human_label", "")), str(picked[0].get("vader_label", ""))
        found = calib.pairs[(calib.pairs["human_label"] == h) & (calib.pairs["vader_label"] == v)]
        drill.listing(found, heading=f"Human {h}, VADER {v}: {len(found):,} conversations",
                      key="sentiment_calibration_convs")
    else:
        shell.conversation_list(calib.disagreements, key="sentiment_disagreement_convs")


def _send_to_audit(ctx: shell.PageContext, scored: pd.DataFrame, cutoffs: Cutoffs) -> None:
    st.subheader("Send to audit")
    a1, a2 = st.columns([1, 2])
    limit = a1.number_input("How many of the most negative conversations", min_value=1, max_value=500, value=20,
                            step=5, key="sentiment_audit_n")
    worst = shell.cached(ctx, sm.most_negative_conversations, scored, limit=int(limit), cutoffs=cutoffs)
    a2.caption("The guide: “Human review takes time — prioritize conversations with negative sentiment.” "
               "Queued conversations come first in the Audit page's prioritised rounds.")
    if a2.button(f"Send the {len(worst):,} most negative conversations to audit", key="sentiment_send_audit",
                 disabled=len(worst) == 0, type="primary"):
        try:
            added = audit_queue.queue_conversations(
                ctx.db, ctx.dataset_id, worst["conversation_id"].tolist(),
                reason=f"negative sentiment (mean user compound ≤ {worst['mean_compound'].max():+.3f})")
            st.session_state[FLASH] = (f"Queued {added:,} conversation(s) for audit "
                                       f"({len(worst) - added:,} were already queued).")
            st.rerun()
        except ChatlensError as exc:
            shell.show_error(exc)
    st.dataframe(worst, width="stretch", hide_index=True, key="sentiment_worst")
    shell.download_csv(worst, label="Download the most negative conversations (CSV)",
                       file_name="sentiment_most_negative.csv", key="sentiment_worst_csv")
    try:
        queued = audit_queue.queued_conversations(ctx.db, ctx.dataset_id)
        st.caption(f"{len(queued):,} conversation(s) of this dataset are in the audit queue.")
    except ChatlensError as exc:
        shell.show_error(exc)
