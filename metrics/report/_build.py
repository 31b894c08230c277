"""The report's content: a typed result computed from one dataset, drawn by the HTML and Markdown renderers."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from metrics.improve.compare import PeriodPair, compare_periods, latest_period, parse_period, window_slice
from metrics.errors import ChatlensError, ConfigError, InsufficientDataError
from metrics.kpis import CATALOGUE, KPI_NAMES, NOT_TESTED, KpiData, KpiOptions

VIEWS = ("executive", "operational")
#: Trend charts of the executive view after the goals' metrics (the Overview's extra tiles).
EXECUTIVE_TRENDS = ("escalation_rate", "containment_rate", "csat", "total_conversations")
MAX_EXECUTIVE_TRENDS = 6
TREND_WEEKS = 13
#: Below this many conversations in the period the report says its numbers are noisy.
SMALL_PERIOD = 30
_NAN = float("nan")


@dataclass(frozen=True)
class Report:
    """Everything a report shows (see :func:`build_report`); renderers only format it.

    ``tiles``: one row per catalogue KPI, in catalogue order: the columns of
    :func:`metrics.improve.compare.compare_periods` (side ``a`` = ``period.current``, ``b`` =
    ``period.previous``), ``mom_*`` (month over month for a weekly report: ``mom_value_b``,
    ``mom_delta``, ``mom_p_value``, ``mom_test``, ``mom_significant``, ``mom_better``; NaN
    otherwise), the goal band ``red``/``green``, ``status`` (green, amber, red, none) and
    ``goal`` (the goal's name, "" without one). ``trends``: weekly :func:`metrics.kpis.kpi_series`
    frames (the last :data:`TREND_WEEKS` weeks up to the period's end) per available KPI.
    ``escalations``: reasons in the period (``reason, conversation_count, share_rate,
    previous_count``). ``review``: :class:`metrics.improve.review.WeeklyReview` of the period.
    ``changes``: :func:`metrics.improve.changelog.before_after_table` rows of the change log entries
    dated before the period's end, newest first. ``backlog``: the ranked open backlog (top 5).
    ``gaps``: the top knowledge-gap topics of the period (:func:`metrics.topics.gap_report`: ``rank, label,
    message_count, conversation_count, escalation_rate, top_signal, example``), at most :data:`TOP_GAPS`.
    ``alpha``: the significance level of every test in the report.
    """

    dataset_name: str
    view: str
    generated_at: str
    period: PeriodPair
    mom: PeriodPair | None
    first_day: str | None
    last_day: str | None
    conversation_count: int
    message_count: int
    tiles: pd.DataFrame
    trends: dict
    escalations: pd.DataFrame
    review: object
    alerts: tuple
    changes: pd.DataFrame
    change_entries: tuple
    backlog: pd.DataFrame
    goals: tuple
    notes: tuple[str, ...] = field(default=())
    alpha: float = 0.05
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def title(self) -> str:
        what = {"week": "Weekly", "month": "Monthly"}.get(self.period.kind, "Period")
        return f"{what} report: {self.period.current.label}"

    @property
    def bands(self) -> dict:
        t = self.tiles
        return {n: (r, g) for n, r, g in zip(t["name"], t["red"], t["green"])
                if not (math.isnan(r) or math.isnan(g))}

    def chart_metrics(self) -> list[str]:
        """The KPIs whose trend the view charts: the executive view the goals' metrics then
        :data:`EXECUTIVE_TRENDS` (at most :data:`MAX_EXECUTIVE_TRENDS`), the operational view every
        KPI with a trend (money metrics last)."""
        have = [n for n in KPI_NAMES if n in self.trends]
        if self.view == "operational":
            return [n for n in have if CATALOGUE[n].kind != "money"] + [n for n in have if CATALOGUE[n].kind == "money"]
        wanted = [g.metric for g in self.goals] + list(EXECUTIVE_TRENDS)
        out = []
        for n in wanted:
            if n in have and n not in out:
                out.append(n)
        return out[:MAX_EXECUTIVE_TRENDS]


def _truncate(messages: pd.DataFrame, rollup: pd.DataFrame, end: pd.Timestamp):
    keep = rollup["started_at"].lt(end).fillna(False).to_numpy(bool)
    if keep.all():
        return messages, rollup
    r = rollup[keep].reset_index(drop=True)
    ids = set(r["conversation_id"].astype("str"))
    return messages[messages["conversation_id"].astype("str").isin(ids).to_numpy(bool)].reset_index(drop=True), r


def _tiles(messages, rollup, period: PeriodPair, mom: PeriodPair | None, options, bands, goal_names,
           alpha) -> pd.DataFrame:
    tiles = compare_periods(messages, rollup, period, options=options, alpha=alpha)
    mom_cols = {"mom_value_b": _NAN, "mom_delta": _NAN, "mom_p_value": _NAN, "mom_test": NOT_TESTED,
                "mom_significant": False, "mom_better": None}
    if mom is not None:
        m = compare_periods(messages, rollup, mom, options=options, alpha=alpha)
        tiles["mom_value_b"] = m["value_b"].to_numpy()
        tiles["mom_delta"] = m["delta"].to_numpy()
        tiles["mom_p_value"] = m["p_value"].to_numpy()
        tiles["mom_test"] = m["test"].to_numpy()
        tiles["mom_significant"] = m["significant"].to_numpy()
        tiles["mom_better"] = m["better"].to_numpy()
    else:
        for c, v in mom_cols.items():
            tiles[c] = v
    from metrics.kpis import rag_status

    tiles["red"] = [float(bands.get(n, (_NAN, _NAN))[0]) for n in tiles["name"]]
    tiles["green"] = [float(bands.get(n, (_NAN, _NAN))[1]) for n in tiles["name"]]
    tiles["status"] = [rag_status(v, red=bands[n][0], green=bands[n][1], direction=CATALOGUE[n].direction)
                       if n in bands and ok else "none"
                       for n, v, ok in zip(tiles["name"], tiles["value_a"], tiles["available"])]
    tiles["goal"] = [goal_names.get(n, "") for n in tiles["name"]]
    return tiles


def _review_table(tiles: pd.DataFrame, label: str) -> pd.DataFrame:
    """The tiles in the shape of :func:`metrics.kpis.kpi_table` that :func:`metrics.improve.review.weekly_review` reads."""
    return pd.DataFrame({"name": tiles["name"], "available": tiles["available"],
                         "period": [label] * len(tiles), "value": tiles["value_a"],
                         "wow_previous": tiles["value_b"], "wow_delta": tiles["delta"],
                         "wow_relative_delta": tiles["relative_delta"], "wow_p_value": tiles["p_value"],
                         "wow_significant": tiles["significant"], "wow_test": tiles["test"]})


def _trends(messages, rollup, options, end: pd.Timestamp, names: Sequence[str]) -> dict:
    data = KpiData(messages, rollup, options)
    weeks = data.series("total_conversations")
    keep = weeks["period_end"].le(end).to_numpy(bool)
    wanted = set(weeks.loc[keep, "period_start"].tail(TREND_WEEKS))
    out = {}
    for name in names:
        try:
            s = data.series(name, periods=wanted)
        except ChatlensError:
            continue
        s = s[s["period_start"].isin(wanted).to_numpy(bool)].reset_index(drop=True)
        if s["value"].notna().any():
            out[name] = s
    return out


def _escalations(messages, rollup, period: PeriodPair) -> pd.DataFrame:
    from metrics.outcomes.escalation import escalation_reasons

    cols = ["reason", "conversation_count", "share_rate", "previous_count"]
    m, r = window_slice(messages, rollup, period.current)
    pm, pr = window_slice(messages, rollup, period.previous)
    cur = escalation_reasons(m, r) if len(r) else pd.DataFrame(columns=cols[:3])
    prev = escalation_reasons(pm, pr) if len(pr) else pd.DataFrame({"reason": [], "conversation_count": []})
    if len(cur) == 0:
        return pd.DataFrame({c: [] for c in cols})
    before = dict(zip(prev["reason"].astype(str), prev["conversation_count"].astype(int)))
    out = cur[["reason", "conversation_count", "share_rate"]].copy()
    out["previous_count"] = [int(before.get(str(x), 0)) for x in out["reason"]]
    return out.reset_index(drop=True)


#: Knowledge-gap topics a report lists.
TOP_GAPS = 5


def _gaps(messages: pd.DataFrame) -> pd.DataFrame:
    """The period's top knowledge-gap topics with one example message each (empty without user text)."""
    from metrics.topics import gap_report

    cols = ["rank", "label", "message_count", "conversation_count", "escalation_rate", "top_signal", "example"]
    if not len(messages) or not messages["speaker"].eq("user").any():
        return pd.DataFrame({c: [] for c in cols})
    report = gap_report(messages)
    top = report.topics.head(TOP_GAPS).copy()
    if not len(top):
        return pd.DataFrame({c: [] for c in cols})
    first = report.messages.drop_duplicates("topic").set_index("topic")["text"] if len(report.messages) else {}
    top["example"] = [str(first.get(t, "")) for t in top["topic"]]
    return top[cols].reset_index(drop=True)


def build_report(messages: pd.DataFrame, rollup: pd.DataFrame, *, period: str | PeriodPair = "last-week",
                 view: str = "executive", dataset_name: str = "", goals: Sequence = (), rules: Sequence | None = None,
                 changes: Sequence = (), backlog_state: pd.DataFrame | None = None,
                 backlog_added: pd.DataFrame | None = None, options: KpiOptions | None = None, alpha: float = 0.05,
                 now: dt.datetime | None = None) -> Report:
    """The report of ``period`` (``last-week``, ``last-month``, ``FROM..TO`` or a
    :class:`~metrics.improve.compare.PeriodPair`) for ``messages`` (scored with a ``compound`` column for
    the sentiment KPI, see :func:`metrics.sentiment.add_sentiment`) and their ``rollup``.

    Only conversations started before the period's end are used: a report of an earlier period
    is what was known at its end. ``goals`` (:class:`metrics.improve.goals.Goal`) give the RAG bands
    (:func:`metrics.improve.goals.goal_bands`; the guide's suggestions when empty); ``rules`` the alert
    rules (defaults when None); ``changes`` the change log entries
    (:class:`metrics.improve.changelog.ChangeEntry`); ``backlog_state`` the team's efforts and statuses
    (:func:`metrics.improve.store.backlog_state`), ``backlog_added`` the items added by hand
    (:func:`metrics.improve.store.added_backlog_items`). InsufficientDataError without timestamps or a
    complete period; ConfigError for a bad period or view. Inputs are not modified.
    """
    from metrics.improve import alerts as alerts_mod
    from metrics.improve.backlog import improvement_candidates, rank_backlog
    from metrics.improve.changelog import before_after_table
    from metrics.improve.goals import goal_bands, suggested_goals
    from metrics.improve.review import weekly_review

    if view not in VIEWS:
        raise ConfigError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if len(rollup) == 0 or not rollup["started_at"].notna().any():
        raise InsufficientDataError("a report covers a period and needs timestamps; this data has none")
    pair = period if isinstance(period, PeriodPair) else parse_period(period, rollup)
    notes = []
    end = pair.current.end
    m, r = _truncate(messages, rollup, end)
    if not (r["started_at"].ge(pair.current.start) & r["started_at"].lt(end)).any():
        raise InsufficientDataError(f"no conversation started in {pair.current.label}")
    first, last = r["started_at"].min(), r["started_at"].max()
    if first > pair.previous.start:
        notes.append(f"The data starts on {first.date().isoformat()}, inside the comparison period "
                     f"{pair.previous.label}: its values cover only part of it.")
    mom = None
    if pair.kind == "week":
        try:
            mom = latest_period(r, freq="M")
        except InsufficientDataError:
            notes.append("No complete calendar month in the data: no month-over-month deltas.")
    goals = tuple(goals) or tuple(suggested_goals())
    bands = goal_bands(goals)
    goal_names = {}
    for g in goals:
        goal_names.setdefault(g.metric, g.name)
    tiles = _tiles(m, r, pair, mom, options, bands, goal_names, alpha)
    trends = _trends(m, r, options, end, [n for n, ok in zip(tiles["name"], tiles["available"]) if ok])
    try:
        escalations = _escalations(m, r, pair)
    except ChatlensError as exc:
        escalations = pd.DataFrame({"reason": [], "conversation_count": [], "share_rate": [], "previous_count": []})
        notes.append(f"Escalation reasons: {exc}")
    rules = list(rules) if rules is not None else alerts_mod.default_rules()
    try:
        alert_results = tuple(alerts_mod.evaluate_rules(m, r, rules, options=options))
    except ChatlensError as exc:
        alert_results = ()
        notes.append(f"Alerts not evaluated: {exc}")
    try:
        candidates = improvement_candidates(m, r, min_count=20, added=backlog_added)
        ranked = rank_backlog(candidates.table, backlog_state)
        if "status" in ranked.columns:
            ranked = ranked[ranked["status"].astype("str").eq("open").to_numpy(bool)]
    except ChatlensError as exc:
        ranked = None
        notes.append(f"Improvement backlog: {exc}")
    review = weekly_review(_review_table(tiles, pair.current.label), backlog=ranked, alert_results=alert_results,
                           goals=[g for g in goals if g.metric in CATALOGUE])
    entries = sorted((e for e in changes if e.start < end), key=lambda e: (e.date, e.id or 0), reverse=True)[:10]
    if entries:
        table = before_after_table(m, r, entries, options=options)
    else:
        table = pd.DataFrame({c: [] for c in ("change_id", "date", "title", "metric", "verdict")})
    pm, pr = window_slice(m, r, pair.current)
    try:
        gaps = _gaps(pm)
    except ChatlensError as exc:
        gaps = pd.DataFrame()
        notes.append(f"Knowledge gaps: {exc}")
    if len(pr) < SMALL_PERIOD:
        notes.append(f"Only {len(pr)} conversations started in {pair.current.label}: the values and their moves are "
                     "noisy; a longer period (a month, or a custom range) gives firmer numbers.")
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    backlog = ranked.head(5).reset_index(drop=True) if ranked is not None else pd.DataFrame()
    return Report(dataset_name=str(dataset_name or ""), view=view, generated_at=stamp.strftime("%Y-%m-%d %H:%M UTC"),
                  period=pair, mom=mom, first_day=first.date().isoformat(), last_day=last.date().isoformat(),
                  conversation_count=int(len(pr)), message_count=int(len(pm)), tiles=tiles, trends=trends,
                  escalations=escalations, review=review, alerts=alert_results, changes=table,
                  change_entries=tuple(entries), backlog=backlog, goals=goals, notes=tuple(notes), alpha=alpha,
                  gaps=gaps)


def is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))
