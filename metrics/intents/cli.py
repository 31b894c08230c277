"""The ``intents`` subcommand and the ``intents`` section of ``summary``.

``python -m metrics intents PATH [--map canonical=source ...] [--fallback-intent NAME]
[--thresholds 0.1,0.2,...] [--top-pairs N] --format json|text`` prints one object:

``labelled_messages``, ``accuracy``, ``macro_f1``, ``weighted_f1``, ``mcc``,
``per_intent`` (intent -> ``{precision, recall, f1, support}``), ``confusion``
(``{labels: [...], matrix: [[...]]}``, rows true, columns predicted), ``top_confused_pairs``
(list of ``{true_intent, intent, count}``), ``expected_calibration_error`` and
``thresholds`` (list of ``{threshold, coverage, accuracy, weighted_f1, in_scope_accuracy,
out_of_scope_recall, mcc}``). NaN is written as ``null``.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from metrics import intents
from metrics.errors import ConfigError, InsufficientDataError

from metrics.intents.facts import _summary_object  # shared with the facts

__all__ = ["add_parser", "run", "intents_summary", "summary_section", "section_provider", "parse_thresholds"]


def parse_thresholds(text: str | None) -> list[float] | None:
    """Parse ``"0.1,0.2"`` into ``[0.1, 0.2]``; None or "" gives None (the default grid).

    Examples
    --------
    >>> parse_thresholds("0.1, 0.5")
    [0.1, 0.5]
    >>> parse_thresholds("") is None
    True
    """
    if text is None or not str(text).strip():
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--thresholds expects comma-separated numbers in [0, 1], got {part!r}") from None
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"--thresholds expects numbers in [0, 1], got {part!r}")
        out.append(value)
    return out or None


def intents_summary(messages: pd.DataFrame, *, fallback_intent: str = intents.DEFAULT_FALLBACK_INTENT,
                    thresholds=None, top_pairs: int = 10) -> dict:
    """The JSON-ready ``intents`` object described in the module docstring.

    Raises InsufficientDataError when the frame lacks ``intent`` / ``true_intent``. With no
    labelled message the counts are 0, rates ``None`` and the lists empty.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "row": [1, 2], "speaker": ["user"] * 2,
    ...     "text": ["x", "y"], "intent": ["a", "b"], "true_intent": ["a", "a"], "confidence": [0.9, 0.4]})
    >>> s = intents_summary(m, thresholds=[0.5])
    >>> s["labelled_messages"], s["accuracy"], s["confusion"]
    (2, 0.5, {'labels': ['a', 'b'], 'matrix': [[1, 1], [0, 0]]})
    >>> s["thresholds"][0]["coverage"]
    0.5
    """
    report = intents.intent_report(messages, fallback_intent=fallback_intent)
    table = intents.per_intent_table(messages, fallback_intent=fallback_intent)
    conf = intents.confusion(messages, fallback_intent=fallback_intent)
    pairs = intents.top_confused_pairs(messages, fallback_intent=fallback_intent, limit=top_pairs)
    rel = intents.reliability_curve(messages, fallback_intent=fallback_intent)
    thr = intents.threshold_table(messages, thresholds=thresholds, fallback_intent=fallback_intent)
    return _summary_object(fallback_intent, report, table, conf, pairs, rel, thr)


def summary_section(messages: pd.DataFrame, *, fallback_intent: str = intents.DEFAULT_FALLBACK_INTENT) -> dict | None:
    """The ``intents`` object for ``summary``, or None when the frame lacks ``intent``/``true_intent``.

    Examples
    --------
    >>> summary_section(pd.DataFrame({"conversation_id": ["a"], "speaker": ["user"], "text": ["x"]})) is None
    True
    """
    if not intents.has_intent_labels(messages):
        return None
    return intents_summary(messages, fallback_intent=fallback_intent)


def section_provider(messages: pd.DataFrame, rollup=None) -> dict | None:
    """Adapter for ``metrics.summary.SECTION_PROVIDERS``: ``{"intents": ...}`` or None."""
    section = summary_section(messages)
    return None if section is None else {"intents": section}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``intents`` subcommand to ``python -m metrics``."""
    from metrics.cli import add_load_options

    parser = subparsers.add_parser("intents", help="intent recognition quality (needs intent and true_intent)")
    add_load_options(parser)
    parser.add_argument("--fallback-intent", default=intents.DEFAULT_FALLBACK_INTENT, metavar="NAME",
                        help=f"the out-of-scope / fallback intent (default {intents.DEFAULT_FALLBACK_INTENT})")
    parser.add_argument("--thresholds", default=None, metavar="T1,T2,...",
                        help="comma-separated confidence thresholds for the what-if table (default 0.00..1.00 by 0.05)")
    parser.add_argument("--top-pairs", type=int, default=10, metavar="N", help="how many confused pairs to list")
    parser.set_defaults(handler=run, module=__name__)
    return parser


def run(args) -> int:
    """Load ``args.path`` and print the intents object (JSON or text); returns the exit status."""
    from metrics.cli import _as_text, load_from_args

    thresholds = parse_thresholds(args.thresholds)
    if args.top_pairs < 1:
        raise ConfigError(f"--top-pairs must be >= 1, got {args.top_pairs!r}")
    result = load_from_args(args)
    if not intents.has_intent_labels(result.frame):
        raise InsufficientDataError(
            f"{result.file}: the intents report needs a predicted 'intent' and a labelled 'true_intent' column; "
            f"found {list(result.frame.columns)!r}. Use --map intent=SOURCE --map true_intent=SOURCE.")
    report = intents_summary(result.frame, fallback_intent=args.fallback_intent, thresholds=thresholds,
                             top_pairs=args.top_pairs)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_as_text(report))
    return 0
