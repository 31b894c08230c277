"""The report as one self-contained, printable HTML page.

Self-contained: the CSS is inline, the charts are SVG documents in ``data:`` URIs, there is no
script, and a Content-Security-Policy forbids fetching anything (``default-src 'none'``), so
the page opens offline and a mail client or browser loads nothing from the network.
Every string reaches the page through Jinja2 with autoescaping, so text from the data (the
dataset's name, escalation reasons, change titles, backlog subjects, ...) is HTML-escaped.
"""

from __future__ import annotations

import pandas as pd
from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from metrics.kpis import CATALOGUE, NOT_TESTED, format_delta, format_value
from metrics.report._build import TREND_WEEKS, Report, is_missing

STATUS_TEXT = {"green": "On track", "amber": "Watch", "red": "Off track", "none": "No goal"}


def status_text(status: str, *, has_goal: bool) -> str:
    """The badge text; a goal's metric without a value in the period is "No value", not "No goal"."""
    return "No value" if status == "none" and has_goal else STATUS_TEXT.get(status, status)

_CSS = """
:root { --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; --green:#1a7f37; --amber:#9a6700; --red:#cf222e;
        --grey:#6e7781; --good:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1100px; padding: 24px; font-size: 13px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line);
     break-after: avoid; page-break-after: avoid; }
h3 { font-size: 13px; margin: 10px 0 4px; }
.meta { color: var(--muted); margin: 0 0 2px; }
.banner { border: 1px solid var(--red); border-left: 6px solid var(--red); padding: 8px 12px; margin: 12px 0;
          background: #fff5f5; }
.banner ul { margin: 4px 0 0 18px; padding: 0; }
.tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; }
.tile { border: 1px solid var(--line); border-top: 5px solid var(--grey); border-radius: 4px; padding: 8px 10px;
        break-inside: avoid; page-break-inside: avoid; }
.tile.green { border-top-color: var(--green); } .tile.amber { border-top-color: var(--amber); }
.tile.red { border-top-color: var(--red); } .tile.na { color: var(--muted); background: #f6f8fa; }
.tile .label { font-weight: bold; }
.tile .value { font-size: 22px; font-weight: bold; margin: 2px 0; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; color: #fff;
         background: var(--grey); margin-left: 4px; font-weight: normal; vertical-align: middle; }
.badge.green { background: var(--green); } .badge.amber { background: var(--amber); }
.badge.red { background: var(--red); }
.delta { font-size: 12px; margin: 1px 0; } .delta .good { color: var(--good); font-weight: bold; }
.delta .bad { color: var(--bad); font-weight: bold; }
.small { font-size: 11px; color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(2, 1fr); gap: 10px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px; break-inside: avoid;
         page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-weight: bold; font-size: 12px; margin-bottom: 2px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num, th.num { text-align: right; white-space: nowrap; }
tr { break-inside: avoid; page-break-inside: avoid; }
.section { break-inside: auto; }
ul.plain { margin: 4px 0; padding-left: 18px; }
footer { margin-top: 24px; color: var(--muted); font-size: 11px; border-top: 1px solid var(--line); padding-top: 6px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  .tiles { grid-template-columns: repeat(3, 1fr); }
  h2 { margin-top: 14px; }
}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}{% if dataset %} · {{ dataset }}{% endif %}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p class="meta">{% if dataset %}Dataset <strong>{{ dataset }}</strong> · {% endif %}{{ period_text }}
 · compared with {{ previous_text }} · {{ view_label }} view</p>
<p class="meta">{{ conversations }} conversations and {{ messages }} messages in the period · data from {{ first_day }}
 to {{ last_day }} (UTC) · generated {{ generated_at }}</p>
</header>

{% if breached %}
<div class="banner" role="alert"><strong>{{ breached|length }} alert rule(s) breached in {{ alert_week }}</strong>
<ul>{% for a in breached %}<li>{{ a }}</li>{% endfor %}</ul></div>
{% endif %}

<h2>Key metrics</h2>
<p class="small">Status against each goal's red/amber/green band; deltas with their significance test
(significant when p &lt; {{ alpha }}). Values of the period {{ period_label }}.</p>
<div class="tiles">
{% for t in tiles %}
<div class="tile {{ t.status if t.available else 'na' }}">
  <div class="label">{{ t.label }}{% if t.available %}<span class="badge {{ t.status }}">{{ t.status_text }}</span>{% endif %}</div>
  {% if t.available %}
  <div class="value">{{ t.value }}</div>
  {% for d in t.deltas %}<div class="delta">{{ d.name }}: <span class="{{ d.cls }}">{{ d.text }}</span> · {{ d.evidence }}</div>{% endfor %}
  <div class="small">{{ t.footer }}</div>
  {% else %}
  <div class="value">—</div><div class="small">Not available: {{ t.reason }}</div>
  {% endif %}
</div>
{% endfor %}
</div>

{% if goals %}
<h2>Goals</h2>
<table><thead><tr><th>Goal</th><th>Metric</th><th class="num">Value</th><th class="num">Target</th><th>Status</th></tr></thead>
<tbody>{% for g in goals %}<tr><td>{{ g.name }}</td><td>{{ g.metric }}</td><td class="num">{{ g.value }}</td>
<td class="num">{{ g.target }}</td><td><span class="badge {{ g.status }}">{{ g.status_text }}</span></td></tr>{% endfor %}</tbody></table>
{% endif %}

{% if charts %}
<h2>Trends</h2>
<p class="small">The last {{ trend_weeks }} ISO weeks up to the end of the period; grey points are incomplete weeks,
dashed lines the goal band, purple rules the change log.</p>
<div class="charts">
{% for c in charts %}<figure><figcaption>{{ c.label }}</figcaption><img src="{{ c.uri }}" alt="{{ c.alt }}" width="{{ c.width }}"></figure>
{% endfor %}
</div>
{% endif %}

<h2>What needs improvement this week</h2>
<h3>What changed</h3>
{% if moves %}<ul class="plain">{% for s in moves %}<li>{{ s }}</li>{% endfor %}</ul>
{% else %}<p>Nothing moved significantly.</p>{% endif %}
<h3>One thing to optimise</h3>
{% if focus %}<p><strong>{{ focus.subject }}</strong> ({{ focus.source }}): {{ focus.problem }}.
About {{ focus.impact }} affected conversations per week; expected to move {{ focus.metric }}.</p>
{% else %}<p>No open candidate in the improvement backlog.</p>{% endif %}
{% if backlog %}
<h3>Improvement backlog (impact ÷ effort)</h3>
<table><thead><tr><th class="num">Rank</th><th>Subject</th><th>Source</th><th>Problem</th><th class="num">Affected / week</th>
<th class="num">Effort</th><th class="num">Score</th></tr></thead>
<tbody>{% for b in backlog %}<tr><td class="num">{{ b.rank }}</td><td>{{ b.subject }}</td><td>{{ b.source }}</td><td>{{ b.problem }}</td>
<td class="num">{{ b.impact }}</td><td class="num">{{ b.effort }}</td><td class="num">{{ b.score }}</td></tr>{% endfor %}</tbody></table>
{% endif %}
{% if review_notes %}<ul class="plain small">{% for n in review_notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}

<h2>Top escalation reasons</h2>
{% if reasons %}
<table><thead><tr><th>Reason</th><th class="num">Escalations</th><th class="num">Share</th><th class="num">{{ previous_label }}</th></tr></thead>
<tbody>{% for r in reasons %}<tr><td>{{ r.reason }}</td><td class="num">{{ r.count }}</td><td class="num">{{ r.share }}</td>
<td class="num">{{ r.previous }}</td></tr>{% endfor %}</tbody></table>
{% if reasons_chart %}<figure><figcaption>Escalations per reason, {{ period_label }}</figcaption>
<img src="{{ reasons_chart.uri }}" alt="{{ reasons_chart.alt }}" width="{{ reasons_chart.width }}"></figure>{% endif %}
{% else %}<p>No escalation in the period.</p>{% endif %}

<h2>Top knowledge gaps</h2>
{% if gaps %}
<table><thead><tr><th class="num">#</th><th>Gap topic</th><th class="num">Messages</th><th class="num">Conversations</th>
<th class="num">Escalated</th><th>Main signal</th><th>Example</th></tr></thead>
<tbody>{% for g in gaps %}<tr><td class="num">{{ g.rank }}</td><td>{{ g.label }}</td><td class="num">{{ g.messages }}</td>
<td class="num">{{ g.conversations }}</td><td class="num">{{ g.escalated }}</td><td>{{ g.signal }}</td>
<td>{{ g.example }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p>No knowledge gap found in the period (no fallback, low-confidence, misunderstood or rephrased message).</p>{% endif %}

<h2>Change log: before and after</h2>
{% if changes %}
<table><thead><tr><th>Date</th><th>Change</th><th>Expected to move</th><th>What happened</th>
{% if operational %}<th class="num">Before</th><th class="num">After</th><th class="num">p</th>{% endif %}</tr></thead>
<tbody>{% for c in changes %}<tr><td>{{ c.date }}</td><td><strong>{{ c.title }}</strong><br><span class="small">{{ c.kind }}{% if c.why %} · why: {{ c.why }}{% endif %}</span></td>
<td>{{ c.metric }}</td><td>{{ c.verdict }}</td>
{% if operational %}<td class="num">{{ c.before }}</td><td class="num">{{ c.after }}</td><td class="num">{{ c.p }}</td>{% endif %}</tr>{% endfor %}</tbody></table>
{% else %}<p>No change is logged for this dataset before the end of the period.</p>{% endif %}

{% if operational %}
<h2>All metrics, {{ period_label }} vs {{ previous_label }}</h2>
<table><thead><tr><th>Metric</th><th class="num">{{ period_label }}</th><th class="num">n</th><th class="num">{{ previous_label }}</th>
<th class="num">n</th><th class="num">Delta</th><th class="num">p</th><th>Test</th></tr></thead>
<tbody>{% for r in comparison %}<tr><td>{{ r.label }}</td><td class="num">{{ r.a }}</td><td class="num">{{ r.n_a }}</td>
<td class="num">{{ r.b }}</td><td class="num">{{ r.n_b }}</td><td class="num">{{ r.delta }}</td><td class="num">{{ r.p }}</td>
<td>{{ r.test }}</td></tr>{% endfor %}</tbody></table>
<h2>Alert rules</h2>
{% if alert_rows %}<table><thead><tr><th>Rule</th><th>Result</th></tr></thead>
<tbody>{% for a in alert_rows %}<tr><td>{{ a.rule }}</td><td>{{ a.result }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p>No alert rule was evaluated.</p>{% endif %}
{% endif %}

{% if notes %}<h2>Notes</h2><ul class="plain">{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}

<footer>Generated by Chatlens. Every metric is defined in the KPI catalogue (metrics/kpis.py); rates are tested with the
pooled two-proportion z-test, CSAT with Mann-Whitney U, counts with the exact Poisson rate test; money is not tested.
Weeks are ISO weeks (Monday to Sunday, UTC).</footer>
</body>
</html>
"""

_ENV = Environment(loader=DictLoader({"report.html": _TEMPLATE}), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _p(p) -> str:
    return "—" if is_missing(p) else f"{p:.3g}"


def _evidence(test: str, p, significant: bool) -> str:
    if test == NOT_TESTED or is_missing(p):
        return "not tested"
    return f"{'significant' if significant else 'not significant'}, p = {p:.3g}, {test}"


def _delta(name: str, delta, kind: str, better, test: str, p, significant: bool) -> dict:
    arrow = "" if is_missing(delta) or delta == 0 else (" ▲" if delta > 0 else " ▼")
    cls = "" if better is None or is_missing(better) else ("good" if better else "bad")
    return {"name": name, "text": format_delta(delta, kind) + arrow, "cls": cls,
            "evidence": _evidence(test, p, significant)}


def tile_rows(report: Report) -> list[dict]:
    """The KPI tiles as plain strings (value, status, deltas with evidence), in catalogue order."""
    p = report.period
    first = {"week": "WoW", "month": "MoM"}.get(p.kind, "vs previous")
    rows = []
    for t in report.tiles.to_dict("records"):
        kpi = CATALOGUE[t["name"]]
        deltas = [_delta(first, t["delta"], kpi.kind, t["better"], t["test"], t["p_value"], t["significant"])]
        if report.mom is not None:
            deltas.append(_delta("MoM", t["mom_delta"], kpi.kind, t["mom_better"], t["mom_test"], t["mom_p_value"],
                                 t["mom_significant"]))
        footer = f"n = {t['n_a']:,}" + (f" · goal: {t['goal']}" if t["goal"] else "")
        if kpi.vanity:
            footer += " · activity, not quality"
        if t["reason"]:
            footer += f" · {t['reason']}"
        rows.append({"label": kpi.label, "available": bool(t["available"]), "reason": t["reason"],
                     "value": format_value(t["value_a"], kpi.kind), "status": t["status"],
                     "status_text": status_text(t["status"], has_goal=bool(t["goal"])), "deltas": deltas,
                     "footer": footer})
    return rows


def _charts(report: Report) -> list[dict]:
    from metrics.improve.changelog import annotations_frame
    from metrics.report._charts import CHART_WIDTH, svg_data_uri, to_svg, trend_chart

    notes = annotations_frame(report.change_entries) if report.change_entries else None
    bands = report.bands
    out = []
    for name in report.chart_metrics():
        kpi = CATALOGUE[name]
        svg = to_svg(trend_chart(report.trends[name], band=bands.get(name), annotations=notes))
        s = report.trends[name]
        last = s["value"].dropna()
        alt = f"{kpi.label} per ISO week, {s['period'].iloc[0]} to {s['period'].iloc[-1]}" + (
            f"; latest {format_value(last.iloc[-1], kpi.kind)}" if len(last) else "")
        out.append({"label": kpi.label, "uri": svg_data_uri(svg), "alt": alt, "width": CHART_WIDTH + 120})
    return out


def render_html(report: Report) -> str:
    """The report as a self-contained HTML page (module docstring)."""
    from metrics.improve.backlog import SOURCE_LABELS
    from metrics.report._charts import CHART_WIDTH, reasons_chart, svg_data_uri, to_svg

    p = report.period
    operational = report.view == "operational"
    review = report.review
    goals = []
    for g in review.goals.to_dict("records"):
        kind = CATALOGUE[g["metric"]].kind
        goals.append({"name": g["goal"], "metric": CATALOGUE[g["metric"]].label,
                      "value": format_value(g["value"], kind), "target": format_value(g["target"], kind),
                      "status": g["status"], "status_text": status_text(g["status"], has_goal=True)})
    focus = None
    if review.focus:
        f = review.focus
        focus = {"subject": f.get("subject", ""), "source": SOURCE_LABELS.get(f.get("source"), f.get("source", "")),
                 "problem": f.get("problem", ""), "impact": f"{float(f.get('impact_per_week', 0.0)):.1f}",
                 "metric": CATALOGUE[f["metric"]].label.lower() if f.get("metric") in CATALOGUE else ""}
    backlog = []
    if operational and len(report.backlog):
        for i, b in enumerate(report.backlog.to_dict("records"), start=1):
            backlog.append({"rank": b.get("rank", i), "subject": b.get("subject", ""),
                            "source": SOURCE_LABELS.get(b.get("source"), b.get("source", "")),
                            "problem": b.get("problem", ""), "impact": f"{float(b.get('impact_per_week', 0.0)):.1f}",
                            "effort": f"{float(b.get('effort', 1.0)):g}", "score": f"{float(b.get('score', 0.0)):.1f}"})
    limit = 10 if operational else 5
    esc = report.escalations.head(limit)
    reasons = [{"reason": r["reason"], "count": f"{int(r['conversation_count']):,}",
                "share": f"{float(r['share_rate']):.0%}", "previous": f"{int(r['previous_count']):,}"}
               for r in esc.to_dict("records")]
    reasons_img = None
    if operational and len(esc):
        reasons_img = {"uri": svg_data_uri(to_svg(reasons_chart(esc))), "width": CHART_WIDTH + 200,
                       "alt": "; ".join(f"{r['reason']}: {r['count']}" for r in reasons)}
    changes = []
    entries = {e.id: e for e in report.change_entries if e.id is not None}
    for i, c in enumerate(report.changes.to_dict("records")):
        e = entries.get(c.get("change_id")) or (report.change_entries[i] if i < len(report.change_entries) else None)
        kind = CATALOGUE[c["metric"]].kind if c.get("metric") in CATALOGUE else "rate"
        changes.append({"date": c.get("date", ""), "title": c.get("title", ""),
                        "kind": e.kind_label if e is not None else "", "why": e.why if e is not None else "",
                        "metric": CATALOGUE[c["metric"]].label if c.get("metric") in CATALOGUE else c.get("metric", ""),
                        "verdict": c.get("verdict", ""),
                        "before": format_value(c.get("before"), kind), "after": format_value(c.get("after"), kind),
                        "p": _p(c.get("p_value"))})
    comparison = []
    for t in report.tiles.to_dict("records"):
        kind = t["kind"]
        comparison.append({"label": t["label"], "a": format_value(t["value_a"], kind) if t["available"] else "—",
                           "b": format_value(t["value_b"], kind) if t["available"] else "—",
                           "n_a": f"{t['n_a']:,}", "n_b": f"{t['n_b']:,}", "delta": format_delta(t["delta"], kind),
                           "p": _p(t["p_value"]),
                           "test": t["test"] if t["available"] else f"not available: {t['reason']}"})
    alert_rows = [{"rule": a.name or a.rule, "result": ("BREACHED: " if a.breached else "") + a.sentence()}
                  for a in report.alerts]
    breached = [a.sentence() for a in report.alerts if a.breached]
    notes = list(report.notes)
    html = _ENV.get_template("report.html").render(
        css=Markup(_CSS), title=report.title, dataset=report.dataset_name, view_label=report.view.capitalize(),
        period_text=_period_text(report), previous_text=_previous_text(report), period_label=p.current.label,
        previous_label=p.previous.label, conversations=f"{report.conversation_count:,}",
        messages=f"{report.message_count:,}", first_day=report.first_day, last_day=report.last_day,
        generated_at=report.generated_at, breached=breached, alert_week=report.alerts[0].week if report.alerts else "",
        alpha=f"{report.alpha:g}", tiles=tile_rows(report), goals=goals, charts=_charts(report), trend_weeks=TREND_WEEKS,
        moves=list(review.moves["sentence"]), focus=focus, backlog=backlog, review_notes=list(review.notes),
        reasons=reasons, reasons_chart=reasons_img, changes=changes, operational=operational, gaps=_gap_rows(report),
        comparison=comparison, alert_rows=alert_rows, notes=notes)
    return html


def _gap_rows(report: Report) -> list[dict]:
    """The report's knowledge-gap topics as template rows (escaped by the template)."""
    return [{"rank": int(g["rank"]), "label": g["label"], "messages": f"{int(g['message_count']):,}",
             "conversations": f"{int(g['conversation_count']):,}", "escalated": f"{float(g['escalation_rate']):.0%}",
             "signal": str(g["top_signal"]).replace("_", " "), "example": str(g["example"])[:160]}
            for g in report.gaps.to_dict("records")]


def _period_text(report: Report) -> str:
    c = report.period.current
    last = (c.end - pd.Timedelta(days=1)).date().isoformat()
    return f"Period {c.label} ({c.start.date().isoformat()} to {last})"


def _previous_text(report: Report) -> str:
    p = report.period
    text = p.previous.label
    if report.mom is not None:
        text += f" (and {report.mom.current.label} with {report.mom.previous.label} month over month)"
    return text
