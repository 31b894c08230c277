"""The intents family's facts: counts of the labelled user messages and of every user message.

Tables (:mod:`metrics.core.facts` explains how they combine across shards); both are additive,
and empty (with the same columns) when the dataset lacks ``intent`` or ``true_intent``:

``labelled``
    The labelled user messages (``true_intent`` present) counted by ``true_intent``, ``intent``
    (the prediction, missing -> :data:`~metrics.intents.DEFAULT_FALLBACK_INTENT`),
    ``threshold_step`` (how many thresholds of :data:`~metrics.intents.DEFAULT_THRESHOLDS` are at
    or below the confidence; a missing confidence is never below a threshold: the grid's length)
    and ``confidence_bin`` (the reliability curve's bin of 10, -1 without a confidence):
    ``messages`` (sum) and ``confidence_sum`` (sum, 0 for a missing confidence).
``users``
    Every user message counted by ``intent`` (as above) and ``threshold_step``: ``messages``
    (sum). The threshold table's coverage is over all user messages, labelled or not.

These counts give the confusion matrix, hence accuracy, F1, MCC, per-intent quality, the label
order and the confused pairs; the reliability bins (ECE); and, per threshold of the default grid,
the matrix of the effective predictions (thresholds).

Section: ``intents`` (:func:`metrics.intents.cli.section_provider`), with the summary's defaults:
fallback :data:`~metrics.intents.DEFAULT_FALLBACK_INTENT`, the default thresholds, 10 bins, 10 pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metrics import intents as I
from metrics.core.facts import Context, Table

__all__ = ["TABLES", "shard_facts", "sections", "intents_section"]

TABLES = {
    "labelled": Table(keys=("true_intent", "intent", "threshold_step", "confidence_bin"),
                      agg={"messages": "sum", "confidence_sum": "sum"}),
    "users": Table(keys=("intent", "threshold_step"), agg={"messages": "sum"}),
}

_FALLBACK = I.DEFAULT_FALLBACK_INTENT
_GRID = list(I.DEFAULT_THRESHOLDS)
_BINS = 10
_TOP_PAIRS = 10


def _empty_labelled() -> pd.DataFrame:
    return pd.DataFrame({"true_intent": pd.Series([], dtype="str"), "intent": pd.Series([], dtype="str"),
                         "threshold_step": pd.Series([], dtype="int64"),
                         "confidence_bin": pd.Series([], dtype="int64"),
                         "messages": pd.Series([], dtype="int64"), "confidence_sum": pd.Series([], dtype="float64")})


def _empty_users() -> pd.DataFrame:
    return pd.DataFrame({"intent": pd.Series([], dtype="str"), "threshold_step": pd.Series([], dtype="int64"),
                         "messages": pd.Series([], dtype="int64")})


def _count(keys: dict[str, np.ndarray], weights: np.ndarray | None = None) -> pd.DataFrame:
    """Rows per distinct combination of the integer ``keys``: ``messages`` and (with ``weights``)
    ``confidence_sum``, sorted by the keys."""
    frame = pd.DataFrame(keys)
    frame["messages"] = np.ones(len(frame), dtype=np.int64)
    agg = {"messages": "sum"}
    if weights is not None:
        frame["confidence_sum"] = weights
        agg["confidence_sum"] = "sum"
    out = frame.groupby(list(keys), sort=True).agg(agg).reset_index()
    out["messages"] = out["messages"].astype("int64")
    return out


def _labelled_table(shard: pd.DataFrame) -> pd.DataFrame:
    coded = I._coded(shard, _FALLBACK)
    if len(coded.true) == 0:
        return _empty_labelled()
    conf = coded.conf
    missing = np.isnan(conf)
    step = I._threshold_step(conf, _GRID)
    cbin = np.where(missing, -1, I._bin_index(np.where(missing, 0.0, conf), _BINS)).astype(np.int64)
    out = _count({"t": coded.true, "p": coded.pred, "threshold_step": step, "confidence_bin": cbin},
                 np.where(missing, 0.0, conf))
    names = np.array(coded.labels, dtype=object)
    return pd.DataFrame({
        "true_intent": pd.Series(names[out["t"].to_numpy()], dtype="str"),
        "intent": pd.Series(names[out["p"].to_numpy()], dtype="str"),
        "threshold_step": out["threshold_step"].astype("int64"),
        "confidence_bin": out["confidence_bin"].astype("int64"),
        "messages": out["messages"].astype("int64"),
        "confidence_sum": out["confidence_sum"].astype("float64"),
    }).sort_values(list(TABLES["labelled"].keys), kind="stable").reset_index(drop=True)


def _users_table(shard: pd.DataFrame) -> pd.DataFrame:
    users = I._rows(shard, I._user_mask(shard), ("intent", "confidence"))
    if len(users) == 0:
        return _empty_users()
    codes, names = I._factorize_names(users["intent"])
    intents = sorted(set(names) | ({_FALLBACK} if (codes < 0).any() else set()))
    index = {name: i for i, name in enumerate(intents)}
    pred = I._recode(codes, names, index, missing=index.get(_FALLBACK, -1))
    step = I._threshold_step(I._confidences(users), _GRID)
    out = _count({"p": pred, "threshold_step": step})
    return pd.DataFrame({
        "intent": pd.Series(np.array(intents, dtype=object)[out["p"].to_numpy()], dtype="str"),
        "threshold_step": out["threshold_step"].astype("int64"),
        "messages": out["messages"].astype("int64"),
    })


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, pd.DataFrame]:
    """The two tables of one shard (module docstring).

    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user", "user", "bot"],
    ...     "text": ["x", "y", "z"], "intent": ["a", None, "a"], "true_intent": ["a", None, "a"],
    ...     "confidence": [0.93, 0.2, 0.5]})
    >>> f = shard_facts(m, Context(columns=tuple(sorted(m.columns))))
    >>> f["labelled"].values.tolist()
    [['a', 'a', 19, 9, 1, 0.93]]
    >>> f["users"].values.tolist()
    [['a', 19, 1], ['nlu_fallback', 5, 1]]
    """
    if not I.has_intent_labels(shard):
        return {"labelled": _empty_labelled(), "users": _empty_users()}
    return {"labelled": _labelled_table(shard), "users": _users_table(shard)}


def _positions(values: pd.Series, labels: tuple[str, ...]) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    return np.array([index[v] for v in values], dtype=np.int64)


def intents_section(labelled: pd.DataFrame, users: pd.DataFrame) -> dict:
    """The ``intents`` object of ``summary`` from the combined ``labelled`` and ``users`` tables."""

    cnt = labelled["messages"].to_numpy(dtype=np.int64)
    labels = tuple(sorted(set(labelled["true_intent"]) | set(labelled["intent"])))
    size = len(labels)
    true, pred = _positions(labelled["true_intent"], labels), _positions(labelled["intent"], labels)
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (true, pred), cnt)

    report = I._report_from_matrix(matrix, _FALLBACK)
    table = I._per_intent_from_matrix(labels, matrix)
    conf = I._confusion_from_matrix(labels, matrix, top_n=None, other_label="other")
    pairs = I._top_pairs_from_matrix(labels, matrix, _TOP_PAIRS)

    cbin = labelled["confidence_bin"].to_numpy(dtype=np.int64)
    scored = cbin >= 0
    counts = np.bincount(cbin[scored], weights=cnt[scored], minlength=_BINS).astype(np.int64)
    sums = np.bincount(cbin[scored], weights=labelled["confidence_sum"].to_numpy(dtype=float)[scored],
                       minlength=_BINS)
    right = scored & (true == pred)
    hits = np.bincount(cbin[right], weights=cnt[right], minlength=_BINS)
    rel = I._reliability_from_bins(counts, sums, hits)

    steps = len(_GRID)
    thr_labels = tuple(sorted(set(labels) | {_FALLBACK}))
    cells = np.zeros((len(thr_labels),) * 2 + (steps + 1,), dtype=np.int64)
    np.add.at(cells, (_positions(labelled["true_intent"], thr_labels), _positions(labelled["intent"], thr_labels),
                      labelled["threshold_step"].to_numpy(dtype=np.int64)), cnt)
    answered = (users["intent"] != _FALLBACK).to_numpy(dtype=bool)
    answered_steps = np.bincount(users["threshold_step"].to_numpy(dtype=np.int64)[answered],
                                 weights=users["messages"].to_numpy(dtype=np.int64)[answered],
                                 minlength=steps + 1).astype(np.int64)
    thr = I._thresholds_from_counts(_GRID, thr_labels, _FALLBACK, cells, answered_steps,
                                    int(users["messages"].sum()))
    return _summary_object(_FALLBACK, report, table, conf, pairs, rel, thr)


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    """``intents`` from the combined facts; {} when the dataset lacks ``intent`` or ``true_intent``."""
    if not (ctx.has("intent") and ctx.has("true_intent")):
        return {}
    own = facts["intents"]
    return {"intents": intents_section(own["labelled"], own["users"])}


_THRESHOLD_KEYS = ("threshold", "coverage", "accuracy", "weighted_f1", "in_scope_accuracy",
                   "out_of_scope_recall", "mcc")


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if value != value else value  # NaN -> None


def _summary_object(fallback_intent: str, report, table: pd.DataFrame, conf, pairs: pd.DataFrame, rel,
                    thr: pd.DataFrame) -> dict:
    """The JSON-ready object of :func:`intents_summary` from the computed parts (also used by
    :mod:`metrics.intents.facts`, which computes the same parts from counts)."""
    return {
        "fallback_intent": fallback_intent,
        "labelled_messages": int(report.labelled_count),
        "accuracy": _num(report.accuracy),
        "accuracy_interval": [_num(report.accuracy_low), _num(report.accuracy_high)],
        "macro_f1": _num(report.macro_f1),
        "weighted_f1": _num(report.weighted_f1),
        "mcc": _num(report.mcc),
        "per_intent": {
            str(r.intent): {"precision": _num(r.precision), "recall": _num(r.recall), "f1": _num(r.f1),
                            "support": int(r.support)}
            for r in table.sort_values("intent").itertuples(index=False)
        },
        "confusion": {"labels": list(conf.labels), "matrix": conf.counts.to_numpy().astype(int).tolist()},
        "top_confused_pairs": [
            {"true_intent": str(r.true_intent), "intent": str(r.intent), "count": int(r.count)}
            for r in pairs.itertuples(index=False)
        ],
        "expected_calibration_error": _num(rel.expected_calibration_error),
        "thresholds": [{k: _num(row[k]) for k in _THRESHOLD_KEYS} for _, row in thr.iterrows()],
    }
