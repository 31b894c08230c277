"""The Engagement page's body: volume trend, spikes, peak hours, engagement depth, business hours,
repeat users, channels. Definitions live in metrics/engagement/volume.py and metrics/engagement/__init__.py.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from metrics import engagement
from metrics.engagement import volume
from metrics.engagement import charts
from metrics.errors import ChatlensError
from metrics.io.schema import has_timestamps
from ui import drill, shell, timeaxis, urlstate
from ui.fmt import literal, num, pct

#: The page's choices kept in the URL: ``?group=``, ``?k=`` (the spike threshold).
URL_CHOICES = (urlstate.Choice("group", "engagement_period", ("week", "month", "day"), label="grouping"),
               urlstate.Choice("k", "engagement_spike_k", default=3.5, lo=1.0, hi=10.0, cast=float,
                               label="spike threshold"))
DRILL_COLUMNS = ["conversation_id", "started_at", "channel", "user_turns", "message_count", "duration_seconds"]


def render(ctx: shell.PageContext) -> None:
    st.caption("How many conversations the bot handles, when, and how deep they go. Volume is an activity "
               "metric: read it next to the outcomes, not instead of them.")
    rollup = ctx.rollup
    if ctx.dataset_id is None or len(rollup) == 0:
        st.info("No conversations to analyse. Load a dataset on the **Data** page (or widen the filters).")
        return
    timed = has_timestamps(ctx.messages)
    details = partial(_details, rollup)   # built only when a chart is clicked
    summary = shell.cached(ctx, engagement.engagement_summary, rollup)
    _headline(summary, timed)
    if timed:
        _volume(rollup, details, ctx)
    _depth(ctx, details, summary, timed)
    _segments(ctx, details, timed)
    _channels(ctx, details)


def _details(rollup):
    """The rollup columns listed beside the conversations of a drill-down."""
    return rollup[[c for c in DRILL_COLUMNS if c in rollup.columns]]


def _chart(chart, *, key: str, name: str, rows, title: str, details) -> None:
    drill.chart_with_drill(chart, key=key, param=charts.PARAMS[name][0], rows=rows, title=title, details=details)


def _headline(summary, timed: bool) -> None:
    cols = st.columns(5)
    cols[0].metric("Conversations", f"{summary.conversation_count:,}")
    cols[1].metric("Mean user turns", num(summary.mean_user_turns),
                   help="User messages per conversation, averaged. Median: " + num(summary.median_user_turns, "{:g}"))
    cols[2].metric("Median duration", num(summary.median_duration_seconds / 60, "{:.1f} min") if timed
                   else "no timestamps",
                   help="Last minus first message time (needs timestamps).")
    cols[3].metric("Repeat-user share", pct(summary.repeat_user_rate),
                   help="Conversations whose user had an earlier conversation, among conversations with a user id.")
    cols[4].metric("After hours", pct(summary.after_hours_rate),
                   help="Conversations started outside business hours (Mon-Fri 09:00-17:00 UTC by default).")
    if not timed:
        st.info("This dataset has no timestamps: the volume trend, spikes, peak hours, duration and business-hours "
                "views need timestamps and are skipped.")


def _volume(rollup, details, ctx: shell.PageContext) -> None:
    st.subheader("Volume trend")
    urlstate.bind("engagement", URL_CHOICES)
    rollup = timeaxis.dense(ctx, rollup)  # a few stray dates must not stretch the axis over years
    c1, c2 = st.columns([2, 1])
    period = c1.radio("Group by", ["week", "month", "day"], horizontal=True, key="engagement_period")
    k = c2.number_input("Spike threshold k (robust SDs)", min_value=1.0, max_value=10.0, step=0.5,
                        key="engagement_spike_k",
                        help="A day spikes when it is more than k robust standard deviations (1.4826 x MAD) "
                             "above the median of the 28 days before it.")
    urlstate.sync("engagement", URL_CHOICES)
    try:
        per_period = shell.cached(ctx, volume.conversations_per_period, rollup, period=period)
        spikes = shell.cached(ctx, volume.volume_spikes, rollup, k=float(k))
        spike_list = spikes.loc[spikes["is_spike"], "day"].tolist()
        periods = partial(shell.derive, ctx, "periods", volume.conversation_periods, rollup)
        trend = shell.chart(ctx, charts.volume_trend_chart, per_period,
                            spike_periods=volume.period_labels(spike_list, period=period),
                            annotate=("period", period, "period"))
        _chart(trend,
               key="engagement_volume", name="volume", rows=lambda: periods().rename(columns={period: "period"}),
               title="Conversations started", details=details)
        st.caption(f"Conversations started per {literal(period)}; red bars contain a spike day. Look for steps and "
                   "spikes, then click a bar to read its conversations.")
        shell.download_csv(per_period, label="Download volume (CSV)", file_name=f"volume_per_{period}.csv",
                           key="engagement_volume_csv")

        st.subheader("Spikes")
        if spike_list:
            st.warning(f"{len(spike_list):,} spike day(s): {literal(', '.join(spike_list))}. {volume.SPIKE_WARNING}",
                       icon=":material/warning:")
        else:
            st.caption(f"No day is more than k = {k:g} robust standard deviations above its 28-day baseline.")
        _chart(shell.chart(ctx, charts.daily_spike_chart, spikes), key="engagement_spikes", name="spikes", rows=periods,
               title="Conversations that day", details=details)
        st.caption("Daily conversations (line), the spike threshold (dashed) and spike days (red points): click a "
                   "point to check whether a spike is real demand or a bug opening conversations.")
        shell.download_csv(spikes, label="Download daily volume and baseline (CSV)", file_name="volume_spikes.csv",
                           key="engagement_spikes_csv")

        st.subheader("Peak hours")
        heat = shell.cached(ctx, volume.hour_weekday_heatmap, rollup)
        _chart(shell.chart(ctx, charts.heatmap_chart, heat), key="engagement_heatmap", name="heatmap", rows=periods,
               title="Conversations started in that hour", details=details)
        st.caption("Conversations by weekday and hour (UTC): the darkest cells are your peak; staff agents and "
                   "schedule changes around them. Click a cell for its conversations.")
        shell.download_csv(heat, label="Download heatmap (CSV)", file_name="volume_heatmap.csv",
                           key="engagement_heatmap_csv")
    except ChatlensError as exc:
        shell.show_error(exc)


def _depth(ctx, details, summary, timed: bool) -> None:
    rollup = ctx.rollup
    st.subheader("Engagement depth")
    tab_turns, tab_messages, tab_duration = st.tabs(["User turns", "Messages", "Duration"])
    with tab_turns:
        turns = shell.cached(ctx, engagement.user_turns_distribution, rollup)
        _chart(shell.chart(ctx, charts.count_bar_chart, turns, x="user_turns", chart="turns", x_title="User turns"),
               key="engagement_turns", name="turns", rows=rollup, title="Conversations with that many user turns",
               details=details)
        st.caption(f"User messages per conversation (mean {num(summary.mean_user_turns)}, median "
                   f"{num(summary.median_user_turns, '{:g}')}): a pile at 0-1 turns means people leave before the "
                   "bot could help.")
        shell.download_csv(turns, label="Download turns distribution (CSV)", file_name="user_turns.csv",
                           key="engagement_turns_csv")
    with tab_messages:
        msgs = shell.cached(ctx, engagement.message_count_distribution, rollup)
        _chart(shell.chart(ctx, charts.count_bar_chart, msgs, x="message_count", chart="messages", x_title="Messages"),
               key="engagement_messages", name="messages", rows=rollup, title="Conversations with that many messages",
               details=details)
        st.caption("All messages (user, bot, agent, system) per conversation: long tails are worth reading.")
        shell.download_csv(msgs, label="Download messages distribution (CSV)", file_name="message_counts.csv",
                           key="engagement_messages_csv")
    with tab_duration:
        if timed:
            dur = shell.cached(ctx, engagement.duration_distribution, rollup)
            _chart(shell.chart(ctx, charts.count_bar_chart, dur, x="bucket", chart="duration", x_title="Duration",
                                          sort=[b[0] for b in engagement.DURATION_BUCKETS]),
                   key="engagement_duration", name="duration",
                   rows=lambda: shell.derive(ctx, "duration_buckets", engagement.duration_buckets, rollup),
                   title="Conversations of that duration", details=details)
            st.caption("First to last message: very short conversations are often drop-offs, very long ones "
                       "loops or hand-offs.")
            shell.download_csv(dur, label="Download durations (CSV)", file_name="durations.csv",
                               key="engagement_duration_csv")
        else:
            st.info("The duration view needs timestamps.")


def _segment_table(frame, *, key: str) -> None:
    st.dataframe(frame, width="stretch", hide_index=True, key=key,
                 column_config={"share_rate": st.column_config.NumberColumn("share", format="percent")})


def _segments(ctx, details, timed: bool) -> None:
    rollup = ctx.rollup
    left, right = st.columns(2)
    with left:
        st.subheader("Business vs after hours")
        if timed:
            hours = shell.cached(ctx, engagement.engagement_by_segment, rollup, by="business_hours")
            _chart(shell.chart(ctx, charts.segment_chart, hours, value="conversation_count", chart="hours",
                               title="Conversations"),
                   key="engagement_hours", name="hours",
                   rows=lambda: engagement.segment_labels(rollup, by="business_hours"),
                   title="Conversations in that segment", details=details)
            st.caption("Conversations started inside vs outside business hours (Mon-Fri 09-17 UTC); compare their "
                       "mean turns in the table: after-hours users cannot be handed to a human.")
            _segment_table(hours, key="engagement_hours_table")
            shell.download_csv(hours, label="Download business-hours split (CSV)", file_name="business_hours.csv",
                               key="engagement_hours_csv")
        else:
            st.info("The business-hours split needs timestamps.")
    with right:
        st.subheader("Repeat users")
        repeat = shell.cached(ctx, engagement.engagement_by_segment, rollup, by="repeat_user")
        ru = shell.cached(ctx, engagement.repeat_users, rollup)
        _chart(shell.chart(ctx, charts.segment_chart, repeat, value="conversation_count", chart="repeat",
                           title="Conversations"),
               key="engagement_repeat", name="repeat",
               rows=lambda: engagement.segment_labels(rollup, by="repeat_user"),
               title="Conversations of that segment", details=details)
        st.caption(f"Repeat users come back ({pct(ru.returning_user_rate)} of {ru.user_count:,} users had more than "
                   "one conversation): they signal trust, so track them as their own segment.")
        _segment_table(repeat, key="engagement_repeat_table")
        shell.download_csv(repeat, label="Download repeat-user segments (CSV)", file_name="repeat_users.csv",
                           key="engagement_repeat_csv")


def _channels(ctx, details) -> None:
    rollup = ctx.rollup
    st.subheader("Channels")
    channels = shell.cached(ctx, volume.conversations_by_channel, rollup)
    _chart(shell.chart(ctx, charts.count_bar_chart, channels, x="channel", chart="channel", x_title="Channel",
                       sort="-y"),
           key="engagement_channel", name="channel",
           rows=lambda: rollup.assign(channel=rollup["channel"].astype("str").fillna(volume.NO_CHANNEL)),
           title="Conversations on that channel", details=details)
    st.caption("Conversations per channel: a channel growing faster than the others deserves its own review.")
    shell.download_csv(channels, label="Download channels (CSV)", file_name="channels.csv",
                       key="engagement_channel_csv")
