"""``python -m metrics roi [--monthly-cost N] [--conversations N] ... [--format json|text]``.

Prints the outputs of :func:`metrics.roi.compute_roi` for the inputs given on the command
line; every input not given keeps the default of :class:`metrics.roi.RoiInputs` (the
guide's worked example). With ``--format json`` one JSON object with the keys
``total_monthly_cost, cost_per_conversation, cost_per_outcome, human_cost_ratio,
automation_savings, pipeline_value, attributed_revenue, return_multiple, net_roi,
break_even_conversion_rate`` (plus every other output of :class:`metrics.roi.RoiResult`,
``inputs`` and ``notes``); undefined values are ``null``. A bad value exits with status 2
and one line naming the option and the value, never a traceback.

Options (flag -> input): see :data:`FLAGS`. Rates are fractions (``0.1`` = 10%).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from metrics.errors import ConfigError
from metrics.roi import FIELDS, RoiInputs, compute_roi

__all__ = ["FLAGS", "HEADLINE_KEYS", "add_parser", "inputs_from_args", "run"]

#: Command-line flag -> RoiInputs field.
FLAGS: dict[str, str] = {
    "--monthly-cost": "platform_cost_monthly",
    "--maintenance-cost": "maintenance_cost_monthly",
    "--training-hours": "training_hours_monthly",
    "--training-hourly-rate": "training_hourly_rate",
    "--development-cost": "development_cost",
    "--amortization-months": "amortization_months",
    "--conversations": "conversations_monthly",
    "--successful-outcomes": "successful_outcomes_monthly",
    "--escalation-rate": "escalation_rate",
    "--cost-per-escalation": "cost_per_escalation",
    "--human-cost-per-ticket": "human_cost_per_ticket",
    "--leads": "leads_monthly",
    "--value-per-lead": "value_per_lead",
    "--lead-conversion-rate": "lead_conversion_rate",
    "--negative-rate": "negative_experience_rate",
    "--quality-cost": "quality_cost_per_negative",
}

#: The keys the issue names, printed first.
HEADLINE_KEYS = ("total_monthly_cost", "cost_per_conversation", "cost_per_outcome", "human_cost_ratio",
                 "automation_savings", "pipeline_value", "attributed_revenue", "return_multiple", "net_roi",
                 "break_even_conversion_rate")

_SPECS = {f.name: f for f in FIELDS}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``roi`` subcommand to ``subparsers`` (values are validated in :func:`run`)."""
    parser = subparsers.add_parser("roi", help="cost per outcome and ROI from a monthly cost model",
                                   description="Cost per conversation / outcome, savings and ROI. Inputs not "
                                               "given keep the defaults (the guide's worked example).")
    for flag, name in FLAGS.items():
        spec = _SPECS[name]
        parser.add_argument(flag, dest=name, default=None, metavar="R" if spec.is_rate else "N",
                            help=f"{spec.label} ({spec.unit}, {spec.minimum:g}-{spec.maximum:g}; "
                                 f"default {spec.default:g})")
    parser.add_argument("--format", choices=("json", "text"), default="text")
    parser.set_defaults(handler=run)
    return parser


def inputs_from_args(args) -> RoiInputs:
    """RoiInputs from parsed arguments; a bad value raises ConfigError naming the flag."""
    values = {}
    for flag, name in FLAGS.items():
        raw = getattr(args, name, None)
        if raw is None:
            continue
        try:
            number = float(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{flag} must be a number, got {raw!r}") from None
        spec = _SPECS[name]
        if not math.isfinite(number) or not (spec.minimum <= number <= spec.maximum):
            raise ConfigError(f"{flag} must be between {spec.minimum:g} and {spec.maximum:g} ({spec.unit}), "
                              f"got {raw!r}")
        values[name] = number
    return RoiInputs().replace(**values)


def _report(inputs: RoiInputs) -> dict:
    result = compute_roi(inputs).as_dict(json_safe=True)
    ordered = {k: result[k] for k in HEADLINE_KEYS}
    ordered.update({k: v for k, v in result.items() if k not in ordered and k != "notes"})
    ordered["inputs"] = inputs.as_dict()
    ordered["notes"] = result["notes"]
    return ordered


def _num(value: float) -> str:
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _as_text(report: dict) -> str:
    lines = []
    for key, value in report.items():
        if key == "inputs":
            lines.append("inputs:")
            lines.extend(f"  {k}: {_num(v)}" for k, v in value.items())
        elif key == "notes":
            lines.extend(f"note: {n}" for n in value)
        else:
            lines.append(f"{key}: {'undefined' if value is None else _num(value)}")
    return "\n".join(lines)


def run(args) -> int:
    """Print the report; 0 on success, 2 with a one-line message on a bad value."""
    try:
        inputs = inputs_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = _report(inputs)
    if getattr(args, "format", "text") == "json":
        print(json.dumps(report, allow_nan=False))
    else:
        print(_as_text(report))
    return 0
