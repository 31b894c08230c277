"""The weekly review and the improvement report: generated text for the team and stakeholders.

The guide: "Schedule weekly reviews where your team discusses the data together. What changed
this week? Why? What's one thing we'll optimize this week?" and "Document what you changed and
why so you can explain metric changes to stakeholders".

Weekly review (:func:`weekly_review`)
    *What changed this week*: the KPIs whose week-over-week move is significant (rates,
    two-proportion z-test, ``p < alpha``), strongest evidence first; then the untested KPIs
    (scores, counts, money) that moved by at least ``min_relative`` (default 20 %) of their
    previous value, marked "not tested". At most ``max_moves`` rows. *One thing to optimise*:
    the first open item of the ranked backlog (:func:`metrics.improve.backlog.rank_backlog`). Also the
    goals' status and the breached alerts.
Exports
    :func:`review_markdown` (paste into the meeting notes) and :func:`review_frame` (one row
    per line of the review, for CSV). Text that comes from the data is Markdown-escaped.
Improvement report (:func:`improvement_report`)
    Markdown: per change log entry, what changed, why, the metric it was expected to move and
    what happened to it (:func:`metrics.improve.changelog.before_after_table`), including "cannot be
    attributed" and its reasons.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from metrics.improve.backlog import SOURCE_LABELS
from metrics.errors import ConfigError
from metrics.kpis import CATALOGUE, NOT_TESTED, format_delta, format_value

__all__ = [
    "WeeklyReview",
    "weekly_review",
    "review_markdown",
    "review_frame",
    "improvement_report",
    "md_escape",
    "recent_window",
]

#: Inline characters that would change the Markdown wherever they stand: code, emphasis, links, table cells,
#: strike-through; ``_`` only at a word's edge (GFM never reads ``lead_rate`` as emphasis); ``<`` only where it
#: could open an HTML tag; ``&`` only where it would read as an entity (``&amp;``).
_MD_INLINE = re.compile(r"[\\`*\[\]|~]|(?<![^\W_])_|_(?![^\W_])|<(?=[A-Za-z/!?])|&(?=#?\w+;)")
#: Block markers that count only at the start of the text (it is placed after ``- `` or at a line's start):
#: ``- x``, ``+ x``, ``---``, ``# x``, ``>x``, ``1. x``; not ``-3.4`` or ``#tag``.
_MD_LEADING = re.compile(r"^(\s*)(?:([-+=])(?=[-+=\s]|$)|(#)(?=[#\s]|$)|(>)|(\d+)([.)])(?=\s|$))")


def _escape_leading(m: re.Match) -> str:
    if m.group(5):
        return f"{m.group(1)}{m.group(5)}\\{m.group(6)}"
    return f"{m.group(1)}\\{m.group(2) or m.group(3) or m.group(4)}"


def md_escape(text) -> str:
    """Text from the data, made literal in a Markdown document with as few escapes as Markdown needs: the
    characters that would make code, emphasis, links, HTML, table cells or strike-through, and a block marker
    at its start. Money, percentages, dates, dashes and brackets stay as written, so the exported document
    reads as plain Markdown. (Streamlit's ``$`` maths is closed by ``ui.fmt.harden_markdown`` when the
    document is shown on a page.)

    Examples
    --------
    >>> print(md_escape("Pro is $79 *per* month (40.0% > 30%) on 2026-W44"))
    Pro is $79 \\*per\\* month (40.0% > 30%) on 2026-W44
    >>> print(md_escape("Shop_bot"), md_escape("_x_"), md_escape("- item"), md_escape("a|b <b> [l](u)"))
    Shop_bot \\_x\\_ \\- item a\\|b \\<b> \\[l\\](u)
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(0), str(text).replace("\n", " "))
    return _MD_LEADING.sub(_escape_leading, text, count=1)


@dataclass(frozen=True)
class WeeklyReview:
    """The review of one week (module docstring).

    ``moves`` columns: ``metric, label, kind, previous, current, delta, p_value, test,
    significant, better, sentence``. ``focus`` is the top open backlog item as a dict (keys
    ``key, source, subject, problem, metric, impact_per_week, effort, score``) or None.
    ``goals`` columns: ``goal, metric, value, status, target``. ``alerts``: sentences of the
    breached rules. ``notes``: what could not be said and why.
    """

    week: str | None
    moves: pd.DataFrame
    focus: dict | None
    goals: pd.DataFrame
    alerts: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _move_sentence(row, kpi) -> str:
    prev, cur = format_value(row["wow_previous"], kpi.kind), format_value(row["value"], kpi.kind)
    verb = "rose" if row["wow_delta"] > 0 else "fell" if row["wow_delta"] < 0 else "stayed"
    if row["wow_test"] == NOT_TESTED:
        evidence = "not tested"
    else:
        evidence = f"p = {row['wow_p_value']:.3g}, {'significant' if row['wow_significant'] else 'not significant'}"
    return f"{kpi.label} {verb} from {prev} to {cur} ({format_delta(row['wow_delta'], kpi.kind)}; {evidence})"


def weekly_review(table: pd.DataFrame, *, backlog: pd.DataFrame | None = None, alert_results: Sequence = (),
                  goals: Sequence = (), min_relative: float = 0.2, max_moves: int = 5) -> WeeklyReview:
    """Build the weekly review from a :func:`metrics.kpis.kpi_table` (module docstring).

    ``backlog`` is a :func:`metrics.improve.backlog.rank_backlog` frame, ``alert_results`` the
    :class:`metrics.improve.alerts.AlertResult` list, ``goals`` the :class:`metrics.improve.goals.Goal` list.
    The table is not modified.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["escalation_rate"], "available": [True], "period": ["2026-W44"],
    ...     "value": [0.20], "wow_previous": [0.30], "wow_delta": [-0.10], "wow_relative_delta": [-1 / 3],
    ...     "wow_p_value": [0.001], "wow_significant": [True], "wow_test": ["two-proportion z-test"]})
    >>> weekly_review(t).moves["sentence"].tolist()
    ['Escalation rate fell from 30.0% to 20.0% (-10.0 pp; p = 0.001, significant)']
    """
    if not 0 <= min_relative:
        raise ConfigError(f"min_relative must be >= 0, got {min_relative!r}")
    if isinstance(max_moves, bool) or not isinstance(max_moves, int) or max_moves < 1:
        raise ConfigError(f"max_moves must be a whole number >= 1, got {max_moves!r}")
    notes = []
    avail = table[table["available"].astype(bool).to_numpy()] if len(table) else table
    weeks = [p for p in avail["period"].dropna().tolist() if p != "all"] if len(avail) else []
    week = weeks[0] if weeks else None
    if week is None:
        notes.append("No complete ISO week in the data: week-over-week moves need timestamps and a complete week.")
    rows = []
    for _, row in avail.iterrows():
        kpi = CATALOGUE.get(row["name"])
        if kpi is None or _isnan(row.get("wow_delta")):
            continue
        tested = row["wow_test"] != NOT_TESTED
        if tested and not bool(row["wow_significant"]):
            continue
        rel = row.get("wow_relative_delta")
        if not tested and (_isnan(rel) or abs(rel) < min_relative):
            continue
        better = (row["wow_delta"] > 0) == (kpi.direction == "higher") if row["wow_delta"] != 0 else None
        rows.append({"metric": kpi.name, "label": kpi.label, "kind": kpi.kind, "previous": row["wow_previous"],
                     "current": row["value"], "delta": row["wow_delta"], "p_value": row["wow_p_value"],
                     "test": row["wow_test"], "significant": bool(row["wow_significant"]), "better": better,
                     "sentence": _move_sentence(row, kpi), "_order": (0 if tested else 1,
                                                                     row["wow_p_value"] if tested else -abs(rel))})
    cols = ["metric", "label", "kind", "previous", "current", "delta", "p_value", "test", "significant", "better",
            "sentence"]
    if rows:
        moves = pd.DataFrame(rows).sort_values("_order", kind="stable").head(max_moves)[cols].reset_index(drop=True)
    else:
        moves = pd.DataFrame({c: [] for c in cols})
        if week is not None:
            notes.append("No KPI moved significantly week over week.")
    focus = None
    if backlog is not None and len(backlog):
        open_items = backlog[backlog["status"].astype("str").eq("open").to_numpy(bool)] \
            if "status" in backlog.columns else backlog
        if len(open_items):
            top = open_items.iloc[0]
            focus = {k: (top[k].item() if hasattr(top[k], "item") else top[k])
                     for k in ("key", "source", "subject", "problem", "metric", "impact_per_week", "effort", "score")
                     if k in top.index}
    if focus is None:
        notes.append("No open improvement candidate (the backlog is empty or every item is accepted or done).")
    goal_rows = []
    value = dict(zip(table["name"], table["value"])) if len(table) else {}
    for g in goals:
        v = value.get(g.metric, float("nan"))
        goal_rows.append({"goal": g.name, "metric": g.metric, "value": v, "status": g.status(v),
                          "target": g.target})
    goals_frame = pd.DataFrame(goal_rows, columns=["goal", "metric", "value", "status", "target"])
    alerts = tuple(r.sentence() for r in alert_results if getattr(r, "breached", False))
    return WeeklyReview(week, moves, focus, goals_frame, alerts, tuple(notes))


def _heading(level: int) -> tuple[str, str]:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
        raise ConfigError(f"level must be a heading level from 1 to 5, got {level!r}")
    return "#" * level, "#" * (level + 1)


def review_markdown(review: WeeklyReview, *, dataset_name: str | None = None, level: int = 1) -> str:
    """The review as Markdown for the meeting notes (title at heading ``level``, sections one below).

    Examples
    --------
    >>> r = WeeklyReview("2026-W44", pd.DataFrame({"sentence": []}), None, pd.DataFrame({"goal": []}))
    >>> review_markdown(r).splitlines()[0]
    '# Weekly review: 2026-W44'
    """
    h1, h2 = _heading(level)
    lines = [f"{h1} Weekly review: {review.week or 'no complete week'}"]
    if dataset_name:
        lines.append(f"Dataset: {md_escape(dataset_name)}")
    lines += ["", f"{h2} What changed this week"]
    lines += [f"- {md_escape(s)}" for s in review.moves["sentence"]] or ["- Nothing moved significantly."]
    lines += ["", f"{h2} Why? (for the team to discuss)",
              "- Check the change log: did a change go live? Open the conversations behind the move."]
    lines += ["", f"{h2} One thing to optimise this week"]
    if review.focus:
        f = review.focus
        effort = f.get("effort")
        source = SOURCE_LABELS.get(f["source"], f["source"])
        lines.append(f"- **{md_escape(f['subject'])}** ({md_escape(source)}): {md_escape(f['problem'])}.")
        lines.append(f"- Impact: about {f['impact_per_week']:.1f} affected conversations per week"
                     + (f"; effort {effort:g}; score {f['score']:.1f}" if effort is not None and 'score' in f else "")
                     + f". Expected to move {CATALOGUE[f['metric']].label.lower()}.")
    else:
        lines.append("- No open candidate in the backlog.")
    if len(review.goals):
        lines += ["", f"{h2} Goals", "", "| goal | metric | value | status | target |", "|---|---|---|---|---|"]
        for g in review.goals.itertuples(index=False):
            kind = CATALOGUE[g.metric].kind
            lines.append(f"| {md_escape(g.goal)} | {CATALOGUE[g.metric].label} | {md_escape(format_value(g.value, kind))} "
                         f"| {g.status} | {md_escape(format_value(g.target, kind))} |")
    if review.alerts:
        lines += ["", f"{h2} Breached alerts"] + [f"- {md_escape(a)}" for a in review.alerts]
    if review.notes:
        lines += ["", f"{h2} Notes"] + [f"- {md_escape(n)}" for n in review.notes]
    return "\n".join(lines) + "\n"


def review_frame(review: WeeklyReview) -> pd.DataFrame:
    """The review as rows for CSV: ``section, item, value, previous, delta, p_value, status, detail``.

    Examples
    --------
    >>> r = WeeklyReview("2026-W44", pd.DataFrame({"sentence": []}), None, pd.DataFrame({"goal": []}))
    >>> list(review_frame(r).columns)
    ['week', 'section', 'item', 'value', 'previous', 'delta', 'p_value', 'status', 'detail']
    """
    rows = []
    for m in review.moves.to_dict("records"):
        rows.append({"section": "what changed", "item": m["label"], "value": m["current"], "previous": m["previous"],
                     "delta": m["delta"], "p_value": m["p_value"],
                     "status": "significant" if m["significant"] else m["test"], "detail": m["sentence"]})
    if review.focus:
        f = review.focus
        rows.append({"section": "one thing to optimise", "item": f["subject"], "value": f["impact_per_week"],
                     "status": f["source"], "detail": f["problem"]})
    for g in review.goals.to_dict("records"):
        rows.append({"section": "goal", "item": g["goal"], "value": g["value"], "status": g["status"],
                     "detail": f"{g['metric']}, target {g['target']:g}"})
    for a in review.alerts:
        rows.append({"section": "breached alert", "item": a.split(":", 1)[0], "status": "breached", "detail": a})
    for n in review.notes:
        rows.append({"section": "note", "detail": n})
    cols = ["section", "item", "value", "previous", "delta", "p_value", "status", "detail"]
    out = pd.DataFrame(rows, columns=cols)
    out.insert(0, "week", review.week)
    return out


def improvement_report(entries: Sequence, results: pd.DataFrame, *, title: str = "Improvement report",
                       dataset_name: str | None = None, level: int = 1) -> str:
    """Markdown: what changed, why, the expected metric and what happened to it, per change.

    ``entries`` are :class:`metrics.improve.changelog.ChangeEntry` objects, ``results`` the
    :func:`metrics.improve.changelog.before_after_table` of them (matched by ``change_id``, else by
    position).

    Examples
    --------
    >>> from metrics.improve.changelog import ChangeEntry
    >>> e = ChangeEntry("2026-09-21", "Deploy nlu-v2", "training_data", "intent_accuracy", why="misreads", id=1)
    >>> res = pd.DataFrame({"change_id": [1], "verdict": ["Intent accuracy went from 90% to 93%."]})
    >>> "## 2026-09-21: Deploy nlu-v2" in improvement_report([e], res)
    True
    """
    h1, h2 = _heading(level)
    lines = [f"{h1} {md_escape(title)}"]
    if dataset_name:
        lines.append(f"Dataset: {md_escape(dataset_name)}")
    entries = list(entries)
    if not entries:
        return "\n".join(lines + ["", "The change log is empty."]) + "\n"
    by_id = {}
    if len(results) and "change_id" in results.columns:
        by_id = {r["change_id"]: r for r in results.to_dict("records") if not _isnan(r.get("change_id"))}
    records = results.to_dict("records") if len(results) else []
    for i, e in enumerate(entries):
        r = by_id.get(e.id) or (records[i] if i < len(records) else {})
        lines += ["", f"{h2} {e.date.isoformat()}: {md_escape(e.title)}",
                  f"- **What changed:** {e.kind_label}" + (f". {md_escape(e.detail)}" if e.detail else ""),
                  f"- **Why:** {md_escape(e.why) or 'not recorded'}",
                  f"- **Expected to move:** {CATALOGUE[e.metric].label.lower()} "
                  f"({'up' if CATALOGUE[e.metric].direction == 'higher' else 'down'} is better)",
                  f"- **What happened:** {md_escape(r.get('verdict', 'not measured'))}"]
        if r and not _isnan(r.get("before")) and not _isnan(r.get("after")):
            kind = CATALOGUE[e.metric].kind
            p = r.get("p_value")
            lines.append(f"- Before ({int(r.get('window_days', 0))} days): {md_escape(format_value(r['before'], kind))} "
                         f"(n = {int(r.get('before_n', 0))}); after: {md_escape(format_value(r['after'], kind))} "
                         f"(n = {int(r.get('after_n', 0))}); p = {'not tested' if _isnan(p) else f'{p:.3g}'}")
    return "\n".join(lines) + "\n"


def recent_window(messages: pd.DataFrame, rollup: pd.DataFrame, *, weeks: int = 4
                  ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The conversations started in the last ``weeks`` complete ISO weeks, and a label.

    Without timestamps (or without a complete week) everything is returned, labelled
    accordingly. Inputs are not modified.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["x"] * 2,
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-16"], utc=True), "row": [1, 2]})
    >>> _, r, label = recent_window(m, conversation_rollup(m), weeks=1)
    >>> r["conversation_id"].tolist(), label
    (['b'], '2026-W33')
    """
    from metrics.kpis import kpi_series, latest_complete_period

    if isinstance(weeks, bool) or not isinstance(weeks, int) or weeks < 1:
        raise ConfigError(f"weeks must be a whole number >= 1, got {weeks!r}")
    if len(rollup) == 0 or not rollup["started_at"].notna().any():
        return messages, rollup, "all data (no timestamps)"
    series = kpi_series(messages, rollup, metric="total_conversations", freq="W")
    i = latest_complete_period(series)
    if i is None:
        return messages, rollup, "all data (no complete week yet)"
    j = max(0, i - weeks + 1)
    lo, hi = series["period_start"].iloc[j], series["period_end"].iloc[i]
    keep = (rollup["started_at"].ge(lo) & rollup["started_at"].lt(hi)).fillna(False).to_numpy(bool)
    r = rollup[keep].reset_index(drop=True)
    m = messages[messages["conversation_id"].isin(r["conversation_id"]).to_numpy(bool)].reset_index(drop=True)
    label = str(series["period"].iloc[i]) if j == i else f"{series['period'].iloc[j]} to {series['period'].iloc[i]}"
    return m, r, label
