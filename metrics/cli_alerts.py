"""The ``alerts`` subcommand and the ``kpis`` section of ``summary``.

``python -m metrics alerts PATH [--rules FILE] [--map canonical=source ...] [--format json|text]``

Evaluates alert rules (:mod:`metrics.alerts`) on the latest complete ISO week of the export
and prints the breached rules. Exit status: 0 when no rule is breached, 1 when at least one
is (so it can run from cron after each export), 2 on bad input (unreadable export, bad
rules file, no timestamps, no complete week). Without ``--rules`` the default rules are used:
``intent_accuracy < 80%``, ``escalation_rate > 30%``, ``volume_spike``. A rule on
``negative_sentiment_rate`` scores the messages with VADER first.

JSON output (the default): ``{"week": "2026-W44", "breached": [{"rule", "name", "metric",
"op", "threshold", "value", "n", "week", "detail"}], "not_evaluated": [{"rule", "reason"}],
"evaluated_count": 3}``; NaN is written as ``null``.

``summary`` section (:func:`section_provider`): ``{"kpis": [{"name", "value", "wow_delta",
"mom_delta", "status"}]}`` for every catalogue KPI; ``status`` (green, amber, red, none) is
against the guide's suggested starting bands (:data:`metrics.goals.SUGGESTIONS`; ``none`` for
KPIs without one), because the CLI has no goals editor. A KPI the data cannot give has
``value`` null.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from metrics import alerts
from metrics.kpis import kpi_table

__all__ = ["add_parser", "run", "section_provider", "kpis_section"]


def add_parser(subparsers) -> None:
    """Register ``alerts`` on the ``python -m metrics`` parser."""
    from metrics.cli import add_load_options

    parser = subparsers.add_parser("alerts", help="evaluate alert rules on the latest complete week; "
                                                  "exit 1 when a rule is breached")
    add_load_options(parser)
    parser.add_argument("--rules", default=None, metavar="FILE",
                        help="alert rules file (.json or .toml); default: "
                             + ", ".join(repr(r) for r in alerts.DEFAULT_RULES))
    parser.set_defaults(handler=run, format="json")


def _with_sentiment(messages: pd.DataFrame, rules) -> pd.DataFrame:
    if any(r.metric == "negative_sentiment_rate" for r in rules) and "compound" not in messages.columns:
        from metrics.sentiment import add_sentiment

        return add_sentiment(messages)
    return messages


def run(args) -> int:
    """Load ``args.path``, evaluate the rules, print the report; 0 none breached, 1 some breached.

    Bad input raises a :class:`~metrics.errors.ChatlensError`, which ``metrics.cli.main``
    turns into exit status 2.
    """
    from metrics.cli import load_from_args
    from metrics.rollup import conversation_rollup
    from metrics.summary import jsonable

    rules = alerts.load_rules_file(args.rules) if args.rules else alerts.default_rules()
    result = load_from_args(args)
    messages = _with_sentiment(result.frame, rules)
    results = alerts.evaluate_rules(messages, conversation_rollup(result.frame), rules)
    report = alerts.alerts_report(results)
    if getattr(args, "format", "json") == "text":
        breached = [r for r in results if r.breached]
        print(f"week {report['week']}: {len(breached)} of {len(results)} rule(s) breached")
        for r in results:
            print(("BREACHED  " if r.breached else "ok        " if r.evaluated else "skipped   ") + r.sentence())
    else:
        print(json.dumps(jsonable(report), ensure_ascii=False))
    return 1 if report["breached"] else 0


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def kpis_section(messages: pd.DataFrame, rollup: pd.DataFrame) -> list[dict]:
    """``[{name, value, wow_delta, mom_delta, status}]`` for every catalogue KPI (module docstring).

    Examples
    --------
    >>> from metrics.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-09"], utc=True), "row": [1, 2]})
    >>> [k for k in kpis_section(m, conversation_rollup(m)) if k["name"] == "escalation_rate"]
    [{'name': 'escalation_rate', 'value': 0.5, 'wow_delta': None, 'mom_delta': None, 'status': 'none'}]
    """
    from metrics.goals import SUGGESTIONS

    bands = {s.metric: (s.red, s.green) for s in SUGGESTIONS}
    table = kpi_table(messages, rollup, bands=bands, spark_periods=0)
    return [{"name": r.name, "value": _num(r.value) if r.available else None, "wow_delta": _num(r.wow_delta),
             "mom_delta": _num(r.mom_delta), "status": r.status}
            for r in table.itertuples(index=False)]


def section_provider(messages: pd.DataFrame, rollup: pd.DataFrame) -> dict | None:
    """Adapter for ``metrics.summary.SECTION_PROVIDERS``: ``{"kpis": [...]}`` (None without conversations)."""
    if len(rollup) == 0:
        return None
    return {"kpis": kpis_section(messages, rollup)}
