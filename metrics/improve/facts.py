"""The improve family's facts: the units of every catalogue KPI, for the summary's ``kpis`` section.

Every KPI of :mod:`metrics.kpis` is either the mean, count or sum of *units* that each belong to one
conversation (its ``units`` function), or the ROI model run on per-conversation facts
(:func:`metrics.roi._basis_facts`). Both are shard facts; the periods, deltas and statuses are
computed in :func:`sections` from the combined units and the whole rollup, exactly as
:func:`metrics.kpis.kpi_table` does from the messages.

Tables (:mod:`metrics.core.facts` explains how they combine across shards):

``units``
    One row per unit of every unit KPI: ``kpi``, ``conversation_id``, ``seq``, ``value`` (float). ``seq``
    numbers a conversation's units of one KPI (several for the per-message KPIs: intent accuracy,
    negative sentiment) in increasing ``value`` order, so a shard's rows do not depend on its row order.
``unavailable``
    One row per KPI the data cannot give (a missing column): ``kpi``, ``reason`` (the message
    :func:`metrics.kpis.kpi_table` shows); ``reason`` is reduced with ``min`` across shards (they agree).
``roi``
    One row per conversation: the ROI model's flags (``started_at, ended_at, escalated, resolved, lead,
    known, converted, value, negative``; :class:`metrics.roi._BasisFacts`).
``roi_columns``
    One additive row of booleans (``max``): which columns the ROI basis saw (``outcome``,
    ``goal_achieved``, ``survey_solved`` in the rollup; ``event`` in the messages; ``converted``,
    ``conversion_value``; feedback: ``rating`` or ``thumbs``).

The outcome rules' "still open" needs the export's last timestamp: a shard takes it from
``ctx.export_end`` (``OutcomeRules(export_end=...)``), not from its own messages.

Section: ``kpis`` (:func:`metrics.improve.cli_alerts.kpis_section`; absent without conversations).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from metrics.core.facts import Context, Table
from metrics.errors import ChatlensError

__all__ = ["TABLES", "shard_facts", "sections", "kpi_data"]

TABLES: dict[str, Table] = {
    "units": Table(keys=("kpi", "conversation_id", "seq")),
    "unavailable": Table(keys=("kpi",), agg={"reason": "min"}),
    "roi": Table(keys=("conversation_id",)),
    "roi_columns": Table(keys=(), agg={"has_outcome": "max", "has_goal_achieved": "max", "has_survey_solved": "max",
                                       "has_event": "max", "has_converted": "max", "has_value": "max",
                                       "has_feedback": "max"}),
}

_UNITS_DTYPES = {"kpi": "str", "conversation_id": "str", "seq": "int64", "value": "float64"}
_ROI_DTYPES = {"conversation_id": "str", "started_at": "datetime64[ns, UTC]", "ended_at": "datetime64[ns, UTC]",
               "escalated": "bool", "resolved": "bool", "lead": "bool", "known": "bool", "converted": "bool",
               "value": "float64", "negative": "bool"}
_OUTCOME_FLAGS = {"outcome": "has_outcome", "goal_achieved": "has_goal_achieved", "survey_solved": "has_survey_solved"}


def _unit_kpis() -> list[str]:
    from metrics.kpis import CATALOGUE

    return [k.name for k in CATALOGUE.values() if k.aggregate != "roi"]


def _options(ctx: Context):
    """The KPI options of a shard: the default definitions, "still open" measured from the dataset's end."""
    from metrics.kpis import KpiOptions
    from metrics.outcomes import OutcomeRules

    if pd.isna(ctx.export_end):
        return KpiOptions()
    return KpiOptions(outcome_rules=OutcomeRules(export_end=ctx.export_end))


def _typed(frame: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    return pd.DataFrame({c: (frame[c] if c in frame.columns else pd.Series([], dtype=t)).astype(t)
                         for c, t in dtypes.items()}).reset_index(drop=True)


def _units_rows(name: str, units: pd.DataFrame) -> pd.DataFrame:
    ids = pd.Series(units["conversation_id"], dtype="str").reset_index(drop=True)
    frame = pd.DataFrame({"conversation_id": ids.array, "value": units["value"].to_numpy(dtype="float64")})
    frame = frame.sort_values(["conversation_id", "value"], kind="stable").reset_index(drop=True)
    frame["seq"] = frame.groupby("conversation_id", sort=False).cumcount().astype("int64")
    frame["kpi"] = name
    return _typed(frame, _UNITS_DTYPES)


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, pd.DataFrame]:
    """The four tables of one shard (module docstring).

    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...                   "row": [1, 2], "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04"], utc=True)})
    >>> f = shard_facts(m, Context(export_end=pd.Timestamp("2026-08-04", tz="UTC")))
    >>> u = f["units"]
    >>> u[u["kpi"] == "escalation_rate"][["conversation_id", "value"]].values.tolist()
    [['a', 0.0], ['b', 1.0]]
    >>> sorted(f["unavailable"]["kpi"])[:2], f["roi"]["escalated"].tolist()
    (['conversion_rate', 'csat'], [False, True])
    """
    from metrics.core.facts import shard_rollup
    from metrics.kpis import KpiData, _roi_facts

    data = KpiData(shard, shard_rollup(shard), _options(ctx))
    parts, missing = [], []
    for name in _unit_kpis():
        try:
            parts.append(_units_rows(name, data.metric_units(name)))
        except ChatlensError as exc:
            missing.append((name, str(exc)))
    units = pd.concat(parts, ignore_index=True) if parts else _typed(pd.DataFrame(), _UNITS_DTYPES)
    units = _typed(units, _UNITS_DTYPES)
    unavailable = pd.DataFrame({"kpi": pd.Series([k for k, _ in missing], dtype="str"),
                                "reason": pd.Series([r for _, r in missing], dtype="str")})
    basis = _roi_facts(data)
    roi = basis.table.reset_index(drop=True).copy()
    roi.insert(0, "conversation_id", data.rollup["conversation_id"].astype("str").to_numpy() if len(roi)
               else pd.Series([], dtype="str"))
    roi = _typed(roi, _ROI_DTYPES)
    flags = {flag: column in basis.outcome_cols for column, flag in _OUTCOME_FLAGS.items()}
    flags.update(has_event=basis.has_event, has_converted=basis.has_converted, has_value=basis.has_value,
                 has_feedback=basis.has_feedback)
    roi_columns = pd.DataFrame({c: pd.Series([bool(flags[c])], dtype="bool") for c in TABLES["roi_columns"].agg})
    return {"units": units, "unavailable": unavailable, "roi": roi, "roi_columns": roi_columns}


def kpi_data(facts: dict, rollup: pd.DataFrame | None = None):
    """A :class:`metrics.kpis.KpiData` built from the combined facts (no messages): what
    :func:`metrics.kpis.kpi_table` computes from the messages, it computes from here.
    ``rollup``: :func:`metrics.engagement.facts.rollup` of ``facts`` (computed when not given)."""
    from metrics.engagement.facts import rollup as whole_rollup
    from metrics.kpis import KpiData
    from metrics.roi import _BasisFacts

    roll = whole_rollup(facts) if rollup is None else rollup
    own = facts["improve"]
    units = own["units"]
    errors = dict(zip(own["unavailable"]["kpi"].astype("str"), own["unavailable"]["reason"].astype("str")))
    by_kpi = {}
    if len(units):
        kpis = units["kpi"].astype("str").to_numpy(dtype=object)
        for name, rows in pd.Series(np.arange(len(units))).groupby(kpis).indices.items():
            part = units.iloc[rows]
            by_kpi[str(name)] = pd.DataFrame({"conversation_id": part["conversation_id"].array,
                                              "value": part["value"].to_numpy(dtype="float64")})
    empty = pd.DataFrame({"conversation_id": pd.Series([], dtype="str"), "value": pd.Series([], dtype="float64")})
    unit_frames = {name: by_kpi.get(name, empty) for name in _unit_kpis() if name not in errors}

    roi = own["roi"]
    ids = roll["conversation_id"].astype("str") if len(roll) else pd.Series([], dtype="str")
    pos = pd.Index(roi["conversation_id"].astype("str").array).get_indexer(ids)
    if (pos < 0).any():
        raise ValueError("the improve facts lack the ROI facts of some conversations of the rollup")
    table = roi.iloc[pos].drop(columns=["conversation_id"]).reset_index(drop=True)
    flags = own["roi_columns"]
    flag = {c: bool(flags[c].iloc[0]) if len(flags) else False for c in TABLES["roi_columns"].agg}
    basis = _BasisFacts(table, tuple(c for c, f in _OUTCOME_FLAGS.items() if flag[f]), flag["has_event"],
                        flag["has_converted"], flag["has_value"], flag["has_feedback"])
    return KpiData.from_facts(roll, unit_frames, errors, basis)


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    """``kpis`` from the combined facts (nothing without conversations, as the summary)."""
    from metrics.engagement.facts import rollup as whole_rollup

    roll = whole_rollup(facts)
    if len(roll) == 0:
        return {}
    return {"kpis": kpis_section_of(kpi_data(facts, roll))}


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _bands() -> dict:
    from metrics.improve.goals import SUGGESTIONS

    return {s.metric: (s.red, s.green) for s in SUGGESTIONS}


def _kpis_rows(table: pd.DataFrame) -> list[dict]:
    return [{"name": r.name, "value": _num(r.value) if r.available else None, "wow_delta": _num(r.wow_delta),
             "mom_delta": _num(r.mom_delta), "status": r.status}
            for r in table.itertuples(index=False)]


def kpis_section_of(data) -> list[dict]:
    """:func:`kpis_section` of a :class:`metrics.kpis.KpiData` (one built from facts, say): the same rows."""
    from metrics.kpis import KPI_NAMES, _kpi_table

    return _kpis_rows(_kpi_table(data, list(KPI_NAMES), bands=_bands(), spark_periods=0, alpha=0.05))
