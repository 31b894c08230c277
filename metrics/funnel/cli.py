"""The ``funnel`` subcommand and the ``funnel`` section of ``summary``.

``python -m metrics funnel PATH --stage NAME=RULE [--stage NAME=RULE ...] [--strict/--no-strict]
[--map canonical=source ...] --format json|text``

RULE is ``event:NAME``, ``intent:NAME``, ``user~REGEX``, ``bot~REGEX`` or
``field:NAME=VALUE`` (see :mod:`metrics.funnel`). Without ``--stage`` the lead-generation
funnel (inquiry -> qualification -> e-mail -> phone) is used. The JSON object holds:

``strict`` (bool), ``conversations`` (all conversations in the file), ``stages`` (list of
``{name, conversations, rate_of_entry, step_rate, dropped}``), ``converted`` (conversations
that entered the funnel and converted; ``null`` without a ``converted`` column),
``conversion_value`` (their total ``conversion_value``; ``null`` without the column) and
``warnings`` (e.g. an event name never seen in the file). NaN is written as ``null``.

A bad ``--stage`` exits with status 2 and one line naming the stage and the rule.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from metrics import funnel
from metrics.errors import ConfigError, InsufficientDataError

from metrics.funnel.facts import _num, _summary_object  # noqa: F401 (shared with the facts)

__all__ = ["add_parser", "run", "parse_stage_args", "funnel_summary", "summary_section", "section_provider"]


def parse_stage_args(values) -> list[funnel.Stage]:
    """``["inquiry=event:inquiry", ...]`` -> stages; None or [] gives the default lead funnel.

    Raises :class:`ConfigError` naming the bad ``--stage`` value.

    Examples
    --------
    >>> [s.name for s in parse_stage_args(["a=event:x", "b=field:converted=true"])]
    ['a', 'b']
    >>> len(parse_stage_args(None))
    4
    """
    if not values:
        return list(funnel.DEFAULT_LEAD_FUNNEL)
    stages = []
    for value in values:
        try:
            stages.append(funnel.parse_stage(value))
        except ConfigError as exc:
            raise ConfigError(f"--stage {value!r}: {exc}") from None
    try:
        funnel.stages_to_dicts(stages)  # duplicate names etc.
    except ConfigError as exc:
        raise ConfigError(f"--stage: {exc}") from None
    return stages


def funnel_summary(messages: pd.DataFrame, stages, *, strict: bool = True) -> dict:
    """The JSON-ready object described in the module docstring.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "row": [1, 2], "speaker": ["user"] * 2,
    ...                   "text": ["x", "y"], "event": ["inquiry", None]})
    >>> s = funnel_summary(m, ["in=event:inquiry"])
    >>> s["stages"], s["converted"]
    ([{'name': 'in', 'conversations': 1, 'rate_of_entry': 1.0, 'step_rate': 0.5, 'dropped': 0}], None)
    """
    table = funnel.funnel_table(messages, stages, strict=strict)
    converted = value = None
    try:
        summary = funnel.conversion_summary(messages, stages, strict=strict, lead_stage=0)
        converted = int(summary.converted_count)
        value = _num(summary.total_value)
    except InsufficientDataError:
        pass
    return _summary_object(strict, int(messages["conversation_id"].nunique()) if len(messages) else 0,
                           table.itertuples(index=False), converted, value,
                           funnel.validate_funnel(stages, messages))


def summary_section(messages: pd.DataFrame) -> dict | None:
    """The default lead funnel for ``summary``, or None when the data has no ``inquiry``
    event (the funnel would be empty).

    Examples
    --------
    >>> summary_section(pd.DataFrame({"conversation_id": ["a"], "speaker": ["user"], "text": ["x"]})) is None
    True
    """
    if "event" not in messages.columns or len(messages) == 0:
        return None
    first = funnel.DEFAULT_LEAD_FUNNEL[0].rule.name
    if not messages["event"].astype("str").str.strip().str.casefold().eq(first).fillna(False).any():
        return None
    return funnel_summary(messages, funnel.DEFAULT_LEAD_FUNNEL)


def section_provider(messages: pd.DataFrame, rollup=None) -> dict | None:
    """Adapter for ``metrics.summary.SECTION_PROVIDERS``: ``{"funnel": ...}`` or None."""
    section = summary_section(messages)
    return None if section is None else {"funnel": section}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``funnel`` subcommand to ``python -m metrics``."""
    from metrics.cli import add_load_options

    parser = subparsers.add_parser(
        "funnel", help="funnel reach, drop-off and downstream conversion",
        description="Stages are NAME=RULE with RULE one of event:NAME, intent:NAME, user~REGEX, "
                    "bot~REGEX, field:NAME=VALUE (regexes are case-insensitive). Without --stage: "
                    "inquiry -> qualification -> email -> phone.")
    add_load_options(parser)
    parser.add_argument("--stage", action="append", default=[], metavar="NAME=RULE",
                        help="a funnel stage, in order (repeat), e.g. --stage inquiry=event:inquiry")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                        help="stage k counts only after stage k-1 (default); --no-strict: any order")
    parser.set_defaults(handler=run, module=__name__)
    return parser


def _as_text(report: dict) -> str:
    lines = [f"funnel ({'strict order' if report['strict'] else 'any order'}), "
             f"{report['conversations']:,} conversation(s)"]
    width = max([5] + [len(s["name"]) for s in report["stages"]])
    lines.append(f"{'stage':<{width}}  {'reached':>8}  {'% entry':>8}  {'step':>7}  {'stopped':>8}")

    def pct(v):
        return "–" if v is None else f"{v:.1%}"
    for s in report["stages"]:
        lines.append(f"{s['name']:<{width}}  {s['conversations']:>8,}  {pct(s['rate_of_entry']):>8}  "
                     f"{pct(s['step_rate']):>7}  {s['dropped']:>8,}")
    lines.append(f"converted: {'n/a (no converted column)' if report['converted'] is None else report['converted']}")
    if report["conversion_value"] is not None:
        lines.append(f"conversion value: {report['conversion_value']:,.2f}")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def run(args) -> int:
    """Load ``args.path`` and print the funnel (JSON or text); returns the exit status.

    A bad ``--stage`` prints ``error: --stage '...': ...`` (one line) and returns 2 before
    the file is read.
    """
    from metrics.cli import load_from_args

    try:
        stages = parse_stage_args(args.stage)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = load_from_args(args)
    report = funnel_summary(result.frame, stages, strict=bool(args.strict))
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_as_text(report))
    return 0
