"""ROI inputs <-> URL query parameters, so a copied link opens the same scenario.

Every field of :class:`metrics.roi.RoiInputs` is one parameter, named after the field
(``?platform_cost_monthly=5000&lead_conversion_rate=0.1&...``), plus ``dataset=<id>``, the
dataset the inputs were made on (the ROI page opens that dataset when a link names it). Numbers are written so that
they read back exactly: whole numbers without a decimal point, others with Python's
shortest round-trip ``repr``.

Reading is forgiving: a missing parameter takes the default silently; a value that is not a
finite number, or is outside the field's range, takes the default *and* adds a notice that
names the parameter and repeats the bad value. Parameters that are not ROI inputs (other
pages', the shell's) are ignored.
"""

from __future__ import annotations

import math
from typing import Mapping

from metrics.roi import FIELDS, RoiInputs

__all__ = ["DATASET_PARAM", "to_query_params", "from_query_params", "format_number"]

#: The parameter naming the dataset the inputs were made on (a link opens that dataset, not the default one).
DATASET_PARAM = "dataset"


def format_number(value: float) -> str:
    """Shortest text that reads back as exactly ``value``.

    Examples
    --------
    >>> format_number(5000.0), format_number(0.1), format_number(1 / 3)
    ('5000', '0.1', '0.3333333333333333')
    """
    value = float(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def to_query_params(inputs: RoiInputs, *, dataset_id: int | None = None) -> dict[str, str]:
    """Every input as ``{field name: text}``, in the order of :data:`metrics.roi.FIELDS`, then the
    dataset the inputs belong to (:data:`DATASET_PARAM`) when ``dataset_id`` is given.

    Examples
    --------
    >>> p = to_query_params(RoiInputs())
    >>> p["platform_cost_monthly"], p["lead_conversion_rate"], len(p)
    ('5000', '0.1', 16)
    >>> to_query_params(RoiInputs(), dataset_id=3)["dataset"]
    '3'
    """
    params = {f.name: format_number(getattr(inputs, f.name)) for f in FIELDS}
    if dataset_id is not None:
        params[DATASET_PARAM] = str(int(dataset_id))
    return params


def _value(raw) -> str:
    """The last value when a parameter repeats (``st.query_params`` keeps lists for repeats)."""
    if isinstance(raw, (list, tuple)):
        return str(raw[-1]) if raw else ""
    return str(raw)


def from_query_params(params: Mapping[str, object], *,
                      defaults: RoiInputs | None = None) -> tuple[RoiInputs, list[str]]:
    """Inputs read from query parameters, and a notice per rejected value.

    ``defaults`` (default :class:`RoiInputs`) fills missing and rejected parameters. A value
    is rejected when it does not parse as a finite number (``abc``, ``nan``, ``inf``, empty)
    or is outside the field's range; the notice reads ``Link parameter 'NAME' = 'VALUE' is
    not a number; using the default D.`` or ``... is out of range [MIN, MAX]; using ...``.
    ``params`` may be a dict, ``st.query_params`` or any mapping of str to str (or to lists,
    whose last item counts). Never raises for bad values.

    Examples
    --------
    >>> inputs, notices = from_query_params({"lead_conversion_rate": "0.25", "leads_monthly": "lots"})
    >>> inputs.lead_conversion_rate, inputs.leads_monthly
    (0.25, 100.0)
    >>> notices
    ["Link parameter 'leads_monthly' = 'lots' is not a number; using the default 100."]
    """
    defaults = defaults or RoiInputs()
    values: dict[str, float] = {}
    notices: list[str] = []
    for spec in FIELDS:
        if spec.name not in params:
            continue
        text = _value(params[spec.name]).strip()
        fallback = format_number(getattr(defaults, spec.name))
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            notices.append(f"Link parameter {spec.name!r} = {text!r} is not a number; using the default {fallback}.")
            continue
        if not (spec.minimum <= number <= spec.maximum):
            notices.append(f"Link parameter {spec.name!r} = {text!r} is out of range "
                           f"[{format_number(spec.minimum)}, {format_number(spec.maximum)}]; "
                           f"using the default {fallback}.")
            continue
        values[spec.name] = number
    return defaults.replace(**values), notices
