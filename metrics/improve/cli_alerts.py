"""The ``alerts`` subcommand and the ``kpis`` section of ``summary``.

``python -m metrics alerts [PATH | --db DB --dataset NAME] [--rules FILE] [--map canonical=source ...]
[--format json|text] [--notify URL|mailto:ADDR ...] [--notify-style auto|generic|slack|teams]
[--notify-always] [--smtp-config FILE]``

Evaluates alert rules (:mod:`metrics.improve.alerts`) on the latest complete ISO week of the export
(or of the stored dataset) and prints the breached rules. Exit status: 0 when no rule is
breached, 1 when at least one is (so it can run from cron after each export), 2 on bad input
(unreadable export, bad rules file, no timestamps, no complete week), 3 when a notification
could not be delivered. Without ``--rules`` the default rules are used: ``intent_accuracy <
80%``, ``escalation_rate > 30%``, ``volume_spike``, ``topic_growth``; for a stored dataset, the store's enabled
rules (saved on the Overview page) when there are any. A rule on ``negative_sentiment_rate``
scores the messages with VADER first.

``--notify TARGET`` (repeatable) delivers the breached rules when at least one is breached
(always with ``--notify-always``): a webhook URL gets a JSON ``POST`` (``--notify-style``:
``generic``, ``slack``, ``teams``; ``auto`` guesses from the host), ``mailto:`` an e-mail
through the SMTP settings (``CHATLENS_SMTP_*`` or ``--smtp-config``). See :mod:`metrics.improve.notify`
for the payloads, retries and timeouts. The report is printed before delivery, and a failed
delivery is an error on standard error and exit status 3, never a silent drop.

JSON output (the default): ``{"week": "2026-W44", "breached": [{"rule", "name", "metric",
"op", "threshold", "value", "n", "week", "detail"}], "not_evaluated": [{"rule", "reason"}],
"evaluated_count": 3}``; NaN is written as ``null``.

``summary`` section (:func:`section_provider`): ``{"kpis": [{"name", "value", "wow_delta",
"mom_delta", "status"}]}`` for every catalogue KPI; ``status`` (green, amber, red, none) is
against the guide's suggested starting bands (:data:`metrics.improve.goals.SUGGESTIONS`; ``none`` for
KPIs without one), because the CLI has no goals editor. A KPI the data cannot give has
``value`` null.
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from metrics.improve import alerts
from metrics.kpis import kpi_table

from metrics.improve.facts import _bands, _kpis_rows  # shared with the facts

__all__ = ["add_parser", "run", "section_provider", "kpis_section", "DELIVERY_FAILED"]

#: Exit status when a notification could not be delivered.
DELIVERY_FAILED = 3


def add_parser(subparsers) -> None:
    """Register ``alerts`` on the ``python -m metrics`` parser."""
    from metrics.cli_report import add_source_options
    from metrics.improve.notify import STYLES

    parser = subparsers.add_parser("alerts", help="evaluate alert rules on the latest complete week; "
                                                  "exit 1 when a rule is breached")
    add_source_options(parser)
    parser.add_argument("--rules", default=None, metavar="FILE",
                        help="alert rules file (.json or .toml); default: the store's enabled rules for --dataset, "
                             "else " + ", ".join(repr(r) for r in alerts.DEFAULT_RULES).replace("%", "%%"))
    parser.add_argument("--notify", action="append", default=[], metavar="URL|mailto:ADDR",
                        help="deliver the breached rules to a webhook (http/https) or by e-mail (mailto:); repeatable")
    parser.add_argument("--notify-style", choices=STYLES, default="auto",
                        help="webhook payload: generic JSON, slack or teams (default auto: from the host)")
    parser.add_argument("--notify-always", action="store_true",
                        help="notify also when no rule is breached (default: only when one is)")
    parser.add_argument("--smtp-config", default=None, metavar="FILE",
                        help="TOML file with an [smtp] table (host, port, user, password, from, starttls, ssl); "
                             "CHATLENS_SMTP_* variables override it")
    parser.set_defaults(handler=run, format="json")


def _with_sentiment(messages: pd.DataFrame, rules) -> pd.DataFrame:
    if any(r.metric == "negative_sentiment_rate" for r in rules) and "compound" not in messages.columns:
        from metrics.sentiment import add_sentiment

        return add_sentiment(messages)
    return messages


def _stored_topics(source):
    """For ``topic_growth`` on a stored dataset: the topics matched to the stored ones (so the alert uses the
    names given on the Topics page) and those names; ``(None, None)`` for an export file."""
    if source.db is None or source.dataset_id is None:
        return None, None
    from metrics.errors import ChatlensError
    from metrics.topics import discover_topics, persist

    state = persist.load_state(source.db, source.dataset_id, "messages")
    try:
        return discover_topics(source.frame, previous=state.snapshot, merges=state.merges), state.names
    except ChatlensError:
        return None, state.names  # evaluate_rules reports why the rule is not evaluated


def run(args) -> int:
    """Load ``args.path``, evaluate the rules, print the report; 0 none breached, 1 some breached.

    Bad input raises a :class:`~metrics.errors.ChatlensError`, which ``metrics.cli.main``
    turns into exit status 2.
    """
    from metrics.cli_report import load_source, stored_settings
    from metrics.core.rollup import conversation_rollup
    from metrics.summary import jsonable

    targets = list(getattr(args, "notify", None) or [])
    if targets:
        _check_targets(targets)
    rules = alerts.load_rules_file(args.rules) if args.rules else None
    source = load_source(args)
    topic_model = topic_names = None
    try:
        if rules is None:
            rules = (stored_settings(source)["rules"] if source.dataset_id is not None else None) \
                or alerts.default_rules()
        if any(r.metric == alerts.TOPIC_GROWTH for r in rules):
            topic_model, topic_names = _stored_topics(source)
    finally:
        source.close()
    messages = _with_sentiment(source.frame, rules)
    results = alerts.evaluate_rules(messages, conversation_rollup(source.frame), rules, topic_model=topic_model,
                                    topic_names=topic_names)
    report = alerts.alerts_report(results)
    if getattr(args, "format", "json") == "text":
        breached = [r for r in results if r.breached]
        print(f"week {report['week']}: {len(breached)} of {len(results)} rule(s) breached")
        for r in results:
            print(("BREACHED  " if r.breached else "ok        " if r.evaluated else "skipped   ") + r.sentence())
    else:
        print(json.dumps(jsonable(report), ensure_ascii=False))
    sys.stdout.flush()
    status = 1 if report["breached"] else 0
    if targets and (report["breached"] or getattr(args, "notify_always", False)):
        if not _deliver(targets, report, results, args, dataset=source.name):
            return DELIVERY_FAILED
    return status


def _check_targets(targets) -> None:
    """Refuse a malformed target before the work (ConfigError: exit 2)."""
    import urllib.parse

    from metrics.improve.notify import _check_url, parse_mailto

    for t in targets:
        scheme = urllib.parse.urlsplit(t.strip()).scheme.lower()
        if scheme == "mailto":
            parse_mailto(t.strip())
        else:
            _check_url(t.strip())


def _deliver(targets, report: dict, results, args, *, dataset: str) -> bool:
    """Deliver to every target; each failure is reported on standard error. True when all succeeded."""
    from metrics.improve import notify
    from metrics.summary import jsonable

    by_rule = {r.rule: r.sentence() for r in results if r.breached}
    payload = jsonable({**report, "breached": [{**b, "sentence": by_rule.get(b["rule"])} for b in report["breached"]]})
    ok = True
    for target in targets:
        try:
            done = notify.notify(target, payload, style=args.notify_style, dataset=dataset,
                                 smtp_config=getattr(args, "smtp_config", None), retry=notify.DEFAULT_RETRY)
        except notify.DeliveryError as exc:
            print(f"error: {exc}", file=sys.stderr)
            ok = False
        else:
            print(f"notified {done.target} ({done.status}, attempt {done.attempts})", file=sys.stderr)
    return ok


def kpis_section(messages: pd.DataFrame, rollup: pd.DataFrame) -> list[dict]:
    """``[{name, value, wow_delta, mom_delta, status}]`` for every catalogue KPI (module docstring).

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-09"], utc=True), "row": [1, 2]})
    >>> [k for k in kpis_section(m, conversation_rollup(m)) if k["name"] == "escalation_rate"]
    [{'name': 'escalation_rate', 'value': 0.5, 'wow_delta': None, 'mom_delta': None, 'status': 'none'}]
    """
    return _kpis_rows(kpi_table(messages, rollup, bands=_bands(), spark_periods=0))


def section_provider(messages: pd.DataFrame, rollup: pd.DataFrame) -> dict | None:
    """Adapter for ``metrics.summary.SECTION_PROVIDERS``: ``{"kpis": [...]}`` (None without conversations)."""
    if len(rollup) == 0:
        return None
    return {"kpis": kpis_section(messages, rollup)}
