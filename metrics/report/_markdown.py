"""The report as Markdown (CommonMark + GitHub tables) for meeting notes, wikis and e-mail.

Text from the data goes through :func:`md_text`, which escapes only what would change the
Markdown's structure: ``|`` (a table cell), ``*`` ``_`` (emphasis), ``[`` ``]`` (links), ``<``
``>`` (HTML and autolinks), `````` ` `````` (code spans), a ``#`` at the start (a heading) and a
backslash that would escape the next character; a line break becomes a space. Numbers, ``%``
and ``$`` are left as they are, so the Markdown reads as written.
"""

from __future__ import annotations

import re

import pandas as pd

from metrics.kpis import CATALOGUE, format_delta, format_value
from metrics.report._build import Report, is_missing
from metrics.report._html import _evidence, _p, status_text

_BREAKING = re.compile(r"[|*_\[\]<>`]|\\(?=[!-/:-@\[-`{-~])")
_TREND_COLUMNS = 6


def md_text(value) -> str:
    """Text from the data, safe inside Markdown prose, list items and table cells.

    Examples
    --------
    >>> md_text("Pro | $79 *per* month, 100% [sale] <b>")
    'Pro \\\\| $79 \\\\*per\\\\* month, 100% \\\\[sale\\\\] \\\\<b\\\\>'
    >>> md_text("# not a heading"), md_text("a\\\\*b"), md_text("C:\\\\temp")
    ('\\\\# not a heading', 'a\\\\\\\\\\\\*b', 'C:\\\\temp')
    >>> md_text(None)
    ''
    """
    if value is None or is_missing(value):
        return ""
    text = re.sub(r"[\r\n]+", " ", str(value))
    text = _BREAKING.sub(lambda m: "\\" + m.group(0), text)
    return "\\" + text if text.startswith("#") else text


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _delta_cell(delta, kind, test, p, significant) -> str:
    if is_missing(delta):
        return "—"
    return f"{format_delta(delta, kind)}: {_evidence(test, p, significant)}"


def render_markdown(report: Report) -> str:
    """The report as Markdown (module docstring): the same sections as the HTML, trends as a table."""
    from metrics.improve.backlog import SOURCE_LABELS

    p = report.period
    operational = report.view == "operational"
    first = {"week": "WoW", "month": "MoM"}.get(p.kind, "vs previous")
    lines = [f"# {report.title}", ""]
    head = f"Dataset **{md_text(report.dataset_name)}** · " if report.dataset_name else ""
    last = (p.current.end - pd.Timedelta(days=1)).date().isoformat()
    lines.append(f"{head}Period {md_text(p.current.label)} ({p.current.start.date().isoformat()} to {last}) · "
                 f"compared with {md_text(p.previous.label)}"
                 + (f" and month over month {md_text(report.mom.current.label)} vs {md_text(report.mom.previous.label)}"
                    if report.mom else "") + f" · {report.view.capitalize()} view")
    lines += ["", f"{report.conversation_count:,} conversations and {report.message_count:,} messages in the period · "
              f"data from {report.first_day} to {report.last_day} (UTC) · generated {report.generated_at}"]
    breached = [a for a in report.alerts if a.breached]
    if breached:
        lines += ["", f"> **{len(breached)} alert rule(s) breached in {md_text(breached[0].week)}**", ">"]
        lines += [f"> - {md_text(a.sentence())}" for a in breached]

    lines += ["", "## Key metrics", ""]
    header = ["Metric", "Value", "Status", first] + (["MoM"] if report.mom else []) + ["n"]
    rows = []
    for t in report.tiles.to_dict("records"):
        kpi = CATALOGUE[t["name"]]
        if not t["available"]:
            rows.append([kpi.label, "—", "not available", md_text(t["reason"])] + (["—"] if report.mom else []) + ["0"])
            continue
        row = [kpi.label + (" (activity, not quality)" if kpi.vanity else ""), format_value(t["value_a"], kpi.kind),
               status_text(t["status"], has_goal=bool(t["goal"])),
               _delta_cell(t["delta"], kpi.kind, t["test"], t["p_value"], t["significant"])]
        if report.mom:
            row.append(_delta_cell(t["mom_delta"], kpi.kind, t["mom_test"], t["mom_p_value"], t["mom_significant"]))
        rows.append(row + [f"{t['n_a']:,}"])
    lines += _table(header, rows, "lrll" + ("l" if report.mom else "") + "r")

    goals = report.review.goals
    if len(goals):
        lines += ["", "## Goals", ""]
        lines += _table(["Goal", "Metric", "Value", "Target", "Status"],
                        [[md_text(g["goal"]), CATALOGUE[g["metric"]].label,
                          format_value(g["value"], CATALOGUE[g["metric"]].kind),
                          format_value(g["target"], CATALOGUE[g["metric"]].kind),
                          status_text(g["status"], has_goal=True)] for g in goals.to_dict("records")], "llrrl")

    charted = report.chart_metrics()
    if charted:
        periods = report.trends[charted[0]]["period"].tail(_TREND_COLUMNS).tolist()
        lines += ["", "## Trends", "", f"The last {len(periods)} ISO weeks up to the end of the period.", ""]
        rows = []
        for name in charted:
            s = report.trends[name].set_index("period")["value"]
            rows.append([CATALOGUE[name].label] + [format_value(s.get(w, float("nan")), CATALOGUE[name].kind)
                                                   for w in periods])
        lines += _table(["Metric"] + periods, rows, "l" + "r" * len(periods))

    review = report.review
    lines += ["", "## What needs improvement this week", "", "### What changed", ""]
    lines += [f"- {md_text(s)}" for s in review.moves["sentence"]] or ["- Nothing moved significantly."]
    lines += ["", "### One thing to optimise", ""]
    if review.focus:
        f = review.focus
        metric = CATALOGUE[f["metric"]].label.lower() if f.get("metric") in CATALOGUE else ""
        lines.append(f"- **{md_text(f.get('subject'))}** ({md_text(SOURCE_LABELS.get(f.get('source'), f.get('source')))}): "
                     f"{md_text(f.get('problem'))}. About {float(f.get('impact_per_week', 0.0)):.1f} affected "
                     f"conversations per week; expected to move {metric}.")
    else:
        lines.append("- No open candidate in the improvement backlog.")
    if operational and len(report.backlog):
        lines += ["", "### Improvement backlog (impact ÷ effort)", ""]
        lines += _table(["Rank", "Subject", "Source", "Problem", "Affected / week", "Effort", "Score"],
                        [[str(b.get("rank", i)), md_text(b.get("subject")),
                          md_text(SOURCE_LABELS.get(b.get("source"), b.get("source"))), md_text(b.get("problem")),
                          f"{float(b.get('impact_per_week', 0.0)):.1f}", f"{float(b.get('effort', 1.0)):g}",
                          f"{float(b.get('score', 0.0)):.1f}"]
                         for i, b in enumerate(report.backlog.to_dict("records"), start=1)], "rlllrrr")
    if review.notes:
        lines += [""] + [f"- {md_text(n)}" for n in review.notes]

    lines += ["", "## Top escalation reasons", ""]
    esc = report.escalations.head(10 if operational else 5)
    if len(esc):
        lines += _table(["Reason", "Escalations", "Share", md_text(p.previous.label)],
                        [[md_text(r["reason"]), f"{int(r['conversation_count']):,}", f"{float(r['share_rate']):.0%}",
                          f"{int(r['previous_count']):,}"] for r in esc.to_dict("records")], "lrrr")
    else:
        lines.append("No escalation in the period.")

    lines += ["", "## Top knowledge gaps", ""]
    if len(report.gaps):
        lines += _table(["#", "Gap topic", "Messages", "Escalated", "Main signal", "Example"],
                        [[str(int(g["rank"])), md_text(g["label"]), f"{int(g['message_count']):,}",
                          f"{float(g['escalation_rate']):.0%}", md_text(str(g["top_signal"]).replace("_", " ")),
                          md_text(str(g["example"])[:120])] for g in report.gaps.to_dict("records")], "rlrrll")
    else:
        lines.append("No knowledge gap found in the period.")

    lines += ["", "## Change log: before and after", ""]
    if len(report.changes):
        entries = {e.id: e for e in report.change_entries if e.id is not None}
        for i, c in enumerate(report.changes.to_dict("records")):
            e = entries.get(c.get("change_id")) or (report.change_entries[i] if i < len(report.change_entries) else None)
            kpi = CATALOGUE.get(c.get("metric"))
            lines += [f"### {md_text(c.get('date'))}: {md_text(c.get('title'))}", ""]
            if e is not None:
                lines.append(f"- **What changed:** {e.kind_label}" + (f". {md_text(e.detail)}" if e.detail else ""))
                lines.append(f"- **Why:** {md_text(e.why) or 'not recorded'}")
            if kpi is not None:
                lines.append(f"- **Expected to move:** {kpi.label.lower()} "
                             f"({'up' if kpi.higher_is_better else 'down'} is better)")
            lines.append(f"- **What happened:** {md_text(c.get('verdict'))}")
            if operational and kpi is not None and not is_missing(c.get("before")):
                lines.append(f"- Before: {format_value(c.get('before'), kpi.kind)}; after: "
                             f"{format_value(c.get('after'), kpi.kind)}; p = {_p(c.get('p_value'))}")
            lines.append("")
        lines.pop()
    else:
        lines.append("No change is logged for this dataset before the end of the period.")

    if operational:
        lines += ["", f"## All metrics, {md_text(p.current.label)} vs {md_text(p.previous.label)}", ""]
        rows = []
        for t in report.tiles.to_dict("records"):
            k = t["kind"]
            ok = t["available"]
            rows.append([t["label"], format_value(t["value_a"], k) if ok else "—", f"{t['n_a']:,}",
                         format_value(t["value_b"], k) if ok else "—", f"{t['n_b']:,}", format_delta(t["delta"], k),
                         _p(t["p_value"]), md_text(t["test"] if ok else f"not available: {t['reason']}")])
        lines += _table(["Metric", md_text(p.current.label), "n", md_text(p.previous.label), "n", "Delta", "p", "Test"],
                        rows, "lrrrrrrl")
        lines += ["", "## Alert rules", ""]
        lines += [f"- {'**BREACHED** ' if a.breached else ''}{md_text(a.sentence())}" for a in report.alerts] or \
            ["No alert rule was evaluated."]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {md_text(n)}" for n in report.notes]
    lines += ["", "---", "", "Generated by Chatlens. Rates: pooled two-proportion z-test; CSAT: Mann-Whitney U; counts: "
              "exact Poisson rate test; money: not tested. Weeks are ISO weeks (Monday to Sunday, UTC)."]
    return "\n".join(lines) + "\n"
