"""Intent recognition (NLU) performance: accuracy, per-intent quality, confusion, confidence,
threshold what-if, weekly drift and model A/B.

Input: the validated messages frame. Only **user** messages count. The predicted intent is
``intent`` (with its ``confidence``); the human label is ``true_intent``. The *labelled
subset* is the user messages whose ``true_intent`` is not missing.

Conventions shared by every function here
-----------------------------------------
* ``fallback_intent`` (keyword, default ``"nlu_fallback"``) names the out-of-scope /
  "I did not understand" intent, e.g. ``NO_NODES_DETECTED`` or ``oos``. A user message whose
  predicted ``intent`` is missing is treated as predicted ``fallback_intent`` (the bot gave
  no answer).
* A prediction is *correct* when the predicted intent equals ``true_intent`` (exact string
  match, also for the fallback: predicting the fallback on a truly out-of-scope message is
  correct).
* *Below the threshold* means ``confidence < threshold``. A missing confidence is never
  below any threshold (there is no score to compare), so it is kept as predicted.
* Applying a threshold ``t`` turns every prediction below ``t`` into ``fallback_intent``; a
  prediction at exactly ``t`` is kept (``>=`` keeps, as in the HINT3 paper's tables).
* Per-intent quality is by **true** intent for accuracy ("of the messages that really were
  X, the share recognised as X", i.e. recall) and follows scikit-learn's
  ``classification_report`` for precision / recall / F1.
* Missing columns raise :class:`~metrics.errors.InsufficientDataError`; bad options raise
  :class:`~metrics.errors.ConfigError` repeating the bad value. No function modifies its
  input. Results are sorted deterministically, so shuffling the input rows changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.core.periods import period_label, period_start
from metrics.errors import ConfigError, InsufficientDataError
from metrics.io.schema import has_timestamps
from metrics.core.stats import two_proportion_ztest, wilson_interval

__all__ = [
    "DEFAULT_FALLBACK_INTENT",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "MIN_LABELLED_MESSAGES",
    "MESSAGE_COLUMNS",
    "IntentReport",
    "Confusion",
    "Reliability",
    "IntentDrift",
    "ModelComparison",
    "has_intent_labels",
    "suggest_fallback_intent",
    "labelled_messages",
    "apply_labels",
    "intent_report",
    "per_intent_table",
    "confusion",
    "pair_messages",
    "top_confused_pairs",
    "false_positives",
    "false_negatives",
    "confidence_histogram",
    "reliability_curve",
    "threshold_table",
    "escalation_rate",
    "intent_drift",
    "model_comparison",
]

DEFAULT_FALLBACK_INTENT = "nlu_fallback"
#: The seed's rule of thumb: escalate when confidence drops below 60 %.
DEFAULT_THRESHOLD = 0.6
#: 0.00, 0.05, ..., 1.00 (rounded so that 0.3 is exactly 0.3).
DEFAULT_THRESHOLDS = tuple(round(i / 20, 10) for i in range(21))
#: Below this many labelled messages the accuracy shown is unreliable.
MIN_LABELLED_MESSAGES = 30
#: Common names of the fallback / out-of-scope intent, in the order they are suggested.
FALLBACK_CANDIDATES = ("nlu_fallback", "NO_NODES_DETECTED", "oos", "out_of_scope", "Default Fallback Intent",
                       "fallback", "None")
#: Columns of every message list returned here (false positives, drill-down, ...).
MESSAGE_COLUMNS = ("conversation_id", "row", "timestamp", "text", "true_intent", "intent", "confidence")

_PER_INTENT_COLUMNS = ("intent", "precision", "recall", "f1", "support", "predicted_count",
                       "correct_count", "confused_with")


# --------------------------------------------------------------------------- helpers


def _check_fallback(fallback_intent) -> str:
    if not isinstance(fallback_intent, str) or not fallback_intent.strip():
        raise ConfigError(f"fallback_intent must be a non-empty intent name, got {fallback_intent!r}")
    return fallback_intent


def _check_threshold(threshold, *, name="threshold") -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number between 0 and 1, got {threshold!r}") from None
    if isinstance(threshold, bool) or not (0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be a number between 0 and 1, got {threshold!r}")
    return value


def _check_positive_int(value, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _require(messages: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in messages.columns]
    if missing:
        raise InsufficientDataError(
            f"intent metrics need {_columns_in_words(missing)}, which the data does not have: "
            + _WHY.get(tuple(missing), "map a predicted-intent column to 'intent' and a human label to "
                                      "'true_intent'") + ".")


#: What each missing column set means for the user (the message reaches the pages: plain words, no lists).
_WHY = {("true_intent",): "label a sample of user messages with the right intent (on the Audit page), upload a "
                          "labels file, or map a human-label column to 'true_intent'",
        ("intent",): "map the bot's predicted-intent column to 'intent'"}


def _columns_in_words(columns) -> str:
    """``['intent', 'true_intent']`` -> ``"an 'intent' column and a 'true_intent' column"``."""
    return " and ".join(f"{'an' if c[0] in 'aeiou' else 'a'} '{c}' column" for c in columns)


def _predictions(frame: pd.DataFrame, fallback: str) -> np.ndarray:
    """Predicted intents as an object array of str, missing -> fallback."""
    return frame["intent"].astype(object).where(frame["intent"].notna(), fallback).astype(str).to_numpy(dtype=object)


def _confidences(frame: pd.DataFrame) -> np.ndarray:
    if "confidence" not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame["confidence"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _bin_edges(bins: int) -> np.ndarray:
    # Rounded so that an edge such as 0.3 is exactly the float 0.3 (linspace gives 0.30000000000000004).
    return np.round(np.linspace(0.0, 1.0, bins + 1), 12)


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each value: [edge_i, edge_i+1), the last bin closed on the right (1.0 is in it)."""
    return np.clip(np.searchsorted(_bin_edges(bins), values, side="right") - 1, 0, bins - 1)


def _message_list(frame: pd.DataFrame, fallback: str) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in MESSAGE_COLUMNS:
        if col == "intent":
            out[col] = pd.Series(_predictions(frame, fallback), index=frame.index, dtype="str")
        elif col == "confidence":
            out[col] = _confidences(frame)
        elif col in frame.columns:
            out[col] = frame[col]
        elif col == "timestamp":
            out[col] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        else:
            out[col] = pd.Series(pd.NA, index=frame.index, dtype="str")
    return out


def _sort_messages(frame: pd.DataFrame, by=(), ascending=()) -> pd.DataFrame:
    # A listing order (by the caller's columns, then conversation and source row), not the conversation
    # order of metrics.core.order: the lists are sorted by confidence or intent first, and a message's
    # time does not decide where it is listed.
    keys = list(by) + ["conversation_id", "row"]
    asc = list(ascending) + [True, True]
    return frame.sort_values(keys, ascending=asc, kind="stable", na_position="last").reset_index(drop=True)


# --------------------------------------------------------------------------- integer-coded labels
#
# Speed (issue 10): at 1M messages, filtering the whole frame and handing object arrays of
# strings to scikit-learn (which sorts them again on every call) dominated the page. The
# helpers below filter column by column, turn intents into integer codes once (pd.factorize
# works on the arrow strings directly) and compute every count-based measure from one
# confusion matrix (np.bincount). The formulas are scikit-learn's, step for step, on the
# same integer counts and the same (sorted) label order, so the floats are identical; the
# tests compare them with scikit-learn on random frames.


def _user_mask(messages: pd.DataFrame) -> np.ndarray:
    """Boolean array: the user messages (every row when there is no ``speaker`` column)."""
    if "speaker" in messages.columns:
        return messages["speaker"].eq("user").fillna(False).to_numpy(dtype=bool)
    return np.ones(len(messages), dtype=bool)


def _rows(messages: pd.DataFrame, mask: np.ndarray, columns) -> pd.DataFrame:
    """The masked rows of only the given columns that exist (cheaper than filtering every column)."""
    return messages.loc[mask, [c for c in columns if c in messages.columns]]


def _labelled_rows(messages: pd.DataFrame, columns=MESSAGE_COLUMNS) -> pd.DataFrame:
    """Labelled user messages, the given columns that exist, in input order."""
    mask = _user_mask(messages) & messages["true_intent"].notna().to_numpy(dtype=bool)
    return _rows(messages, mask, columns)


def _factorize_names(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for missing) and each code's name as ``str`` (what ``astype(str)`` gives)."""
    codes, uniques = pd.factorize(values)
    return codes, [str(u) for u in uniques]


def _recode(codes: np.ndarray, names: list[str], index: dict[str, int], missing: int = -1) -> np.ndarray:
    """Map factorize codes onto positions in a label list; code -1 (missing) becomes ``missing``."""
    lookup = np.array([index[n] for n in names] + [missing], dtype=np.int64)
    return lookup[codes]  # code -1 picks the last entry


@dataclass(frozen=True, eq=False)
class _Coded:
    """Labelled user messages as integer codes into ``labels`` (sorted, as sklearn's ``unique_labels``)."""

    labels: tuple[str, ...]
    true: np.ndarray
    pred: np.ndarray
    conf: np.ndarray

    def index(self, label: str) -> int:
        return self.labels.index(label)


def _coded(messages: pd.DataFrame, fallback: str, *, extra: tuple[str, ...] = ()) -> _Coded:
    """Codes of the labelled subset, in input order (every use here is order-free: counts only).

    ``labels`` is the sorted union of the true and predicted intents (missing prediction ->
    ``fallback``) plus ``extra``.
    """
    _require(messages, ("intent", "true_intent"))
    lab = _labelled_rows(messages, ("true_intent", "intent", "confidence"))
    t_codes, t_names = _factorize_names(lab["true_intent"])
    p_codes, p_names = _factorize_names(lab["intent"])
    has_missing = bool((p_codes < 0).any())
    labels = sorted(set(t_names) | set(p_names) | set(extra) | ({fallback} if has_missing else set()))
    index = {name: i for i, name in enumerate(labels)}
    true = _recode(t_codes, t_names, index)
    pred = _recode(p_codes, p_names, index, missing=index.get(fallback, -1))
    return _Coded(tuple(labels), true, pred, _confidences(lab))


def _matrix(true: np.ndarray, pred: np.ndarray, size: int) -> np.ndarray:
    """Confusion counts (int64), rows = true code, columns = predicted code."""
    return np.bincount(true * size + pred, minlength=size * size).reshape(size, size)


def _present(matrix: np.ndarray) -> np.ndarray:
    """Sub-matrix of the labels that occur (as true or predicted): sklearn's label set."""
    keep = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    return matrix[np.ix_(keep, keep)]


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float64 with 0.0 where ``den == 0`` (sklearn's ``_prf_divide``, zero_division=0)."""
    den = np.asarray(den, dtype=np.float64).copy()
    zero = den == 0
    den[zero] = 1
    out = np.asarray(num, dtype=np.float64) / den
    out[zero] = 0.0
    return out


def _prf(matrix: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-label precision, recall, F1, support, predicted count and correct count.

    sklearn's ``precision_recall_fscore_support(..., zero_division=0)``: precision = tp / predicted,
    recall = tp / support, F1 = 2 tp / (support + predicted); zero denominators give 0.0.
    """
    tp = np.diagonal(matrix).copy()
    pred_sum = matrix.sum(axis=0)
    true_sum = matrix.sum(axis=1)
    f1 = _divide(2.0 * tp.astype(np.float64), 1.0 * true_sum.astype(np.float64) + pred_sum.astype(np.float64))
    return _divide(tp, pred_sum), _divide(tp, true_sum), f1, true_sum, pred_sum, tp


def _weighted_f1(matrix: np.ndarray) -> float:
    """``f1_score(average="weighted", zero_division=0)`` over the labels that occur."""
    _, _, f1, support, _, _ = _prf(_present(matrix))
    return float(np.average(f1, weights=support))


def _macro_f1(matrix: np.ndarray) -> float:
    """``f1_score(average="macro", zero_division=0)`` over the labels that occur."""
    return float(np.nanmean(_prf(_present(matrix))[2]))


def _mcc_counts(matrix: np.ndarray) -> float:
    """``matthews_corrcoef`` from confusion counts (sklearn's formula); 0.0 with a single label."""
    matrix = _present(matrix)
    if len(matrix) < 2:
        return 0.0
    t_sum = matrix.sum(axis=1, dtype=np.float64)
    p_sum = matrix.sum(axis=0, dtype=np.float64)
    n_correct = np.trace(matrix, dtype=np.float64)
    n_samples = p_sum.sum()
    cov_ytyp = n_correct * n_samples - np.dot(t_sum, p_sum)
    cov_ypyp = n_samples ** 2 - np.dot(p_sum, p_sum)
    cov_ytyt = n_samples ** 2 - np.dot(t_sum, t_sum)
    product = cov_ypyp * cov_ytyt
    if product == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(product))


def has_intent_labels(messages: pd.DataFrame) -> bool:
    """True when the frame has both ``intent`` and ``true_intent`` columns.

    Examples
    --------
    >>> has_intent_labels(pd.DataFrame({"intent": ["a"], "true_intent": ["a"]}))
    True
    >>> has_intent_labels(pd.DataFrame({"intent": ["a"]}))
    False
    """
    return "intent" in messages.columns and "true_intent" in messages.columns


def suggest_fallback_intent(messages: pd.DataFrame) -> str:
    """The first of :data:`FALLBACK_CANDIDATES` used as an ``intent`` or ``true_intent`` value.

    Falls back to :data:`DEFAULT_FALLBACK_INTENT` when none occurs (or the columns are absent).

    Examples
    --------
    >>> suggest_fallback_intent(pd.DataFrame({"intent": ["greet", "NO_NODES_DETECTED"]}))
    'NO_NODES_DETECTED'
    >>> suggest_fallback_intent(pd.DataFrame({"text": ["hi"]}))
    'nlu_fallback'
    """
    seen: set = set()
    for col in ("intent", "true_intent"):
        if col in messages.columns:
            seen.update(pd.factorize(messages[col])[1].tolist())  # distinct non-missing values
    for name in FALLBACK_CANDIDATES:
        if name in seen:
            return name
    return DEFAULT_FALLBACK_INTENT


def labelled_messages(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> pd.DataFrame:
    """The labelled subset as a message list with columns :data:`MESSAGE_COLUMNS`.

    Definition: user messages whose ``true_intent`` is not missing; ``intent`` missing is
    shown as ``fallback_intent``. Sorted by (conversation_id, row). Empty input gives an
    empty frame with the same columns. Raises InsufficientDataError without the
    ``intent`` / ``true_intent`` columns.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["c1", "c2"], "row": [1, 2], "speaker": ["user", "user"],
    ...                   "text": ["hi", "bye"], "intent": ["greet", None], "true_intent": ["greet", "bye"]})
    >>> labelled_messages(m)[["intent", "true_intent"]].values.tolist()
    [['greet', 'greet'], ['nlu_fallback', 'bye']]
    """
    fallback = _check_fallback(fallback_intent)
    _require(messages, ("intent", "true_intent"))
    return _sort_messages(_message_list(_labelled_rows(messages), fallback))


def apply_labels(messages: pd.DataFrame, labels: pd.DataFrame, *, keys: pd.Series) -> pd.DataFrame:
    """A copy of ``messages`` whose ``true_intent`` is overlaid with reviewer labels.

    ``labels`` has columns ``message_key`` and ``true_intent`` (for example the audit page's
    "intent correct?" answers); ``keys`` is the key of each message, aligned with
    ``messages`` (``metrics.store.message_keys(messages)``). A reviewer label replaces the
    export's label of the same message (the review is the later human judgement); labels with
    a missing ``true_intent`` or a key that matches no message are ignored; when a key has
    several labels the last row wins. ``true_intent`` is created when the frame had none.
    Empty ``labels`` returns an unchanged copy. The input is not modified.

    Examples
    --------
    >>> m = pd.DataFrame({"text": ["hi", "bye"], "intent": ["greet", "greet"], "true_intent": [None, "greet"]})
    >>> lab = pd.DataFrame({"message_key": ["k2"], "true_intent": ["bye"]})
    >>> apply_labels(m, lab, keys=pd.Series(["k1", "k2"]))["true_intent"].tolist()
    [nan, 'bye']
    """
    missing = [c for c in ("message_key", "true_intent") if c not in labels.columns]
    if missing:
        raise ConfigError(f"labels need the columns ['message_key', 'true_intent'], missing {missing!r}")
    if len(keys) != len(messages):
        raise ConfigError(f"keys must have one value per message ({len(messages)}), got {len(keys)!r}")
    out = messages.copy()
    if "true_intent" not in out.columns:
        out["true_intent"] = pd.Series(pd.NA, index=out.index, dtype="str")
    usable = labels[labels["true_intent"].notna()]
    if len(usable) == 0:
        return out
    latest = usable.drop_duplicates("message_key", keep="last").set_index("message_key")["true_intent"]
    reviewed = pd.Series(keys.to_numpy(), index=out.index).map(latest)
    out["true_intent"] = reviewed.where(reviewed.notna(), out["true_intent"]).astype(out["true_intent"].dtype)
    return out


def _labelled_arrays(messages, fallback):
    """(labelled message list, y_true, y_pred, confidence) with a deterministic order."""
    lab = labelled_messages(messages, fallback_intent=fallback)
    y_true = lab["true_intent"].astype(str).to_numpy(dtype=object)
    y_pred = lab["intent"].astype(str).to_numpy(dtype=object)
    return lab, y_true, y_pred, lab["confidence"].to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------- headline report


@dataclass(frozen=True)
class IntentReport:
    """Headline intent-recognition quality on the labelled subset.

    ``accuracy`` = ``correct_count / labelled_count``; ``accuracy_low`` / ``accuracy_high`` its
    Wilson 95 % interval; ``macro_f1`` the unweighted mean of per-intent F1; ``weighted_f1``
    the support-weighted mean; ``mcc`` Matthews' correlation (multi-class); ``label_count``
    the number of distinct intents among true and predicted labels. ``reliable`` is False
    under :data:`MIN_LABELLED_MESSAGES` labelled messages.
    """

    labelled_count: int
    correct_count: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    macro_f1: float
    weighted_f1: float
    mcc: float
    label_count: int
    fallback_intent: str
    reliable: bool


def intent_report(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT,
                  confidence_level: float = 0.95) -> IntentReport:
    """Accuracy (with Wilson interval), macro / weighted F1 and MCC of the raw predictions.

    The predictions are taken as recorded (no threshold applied; see :func:`threshold_table`
    for the what-if). F1 uses scikit-learn's ``f1_score`` with ``zero_division=0`` over the
    union of true and predicted intents; MCC is ``matthews_corrcoef`` (0.0 when only one
    class occurs).

    Empty labelled subset: counts 0, every rate NaN, ``reliable`` False.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4,
    ...     "intent": ["greet", "greet", "bye", "bye"], "true_intent": ["greet", "greet", "bye", "greet"]})
    >>> r = intent_report(m)
    >>> r.labelled_count, r.correct_count, r.accuracy
    (4, 3, 0.75)
    >>> round(r.macro_f1, 4), round(r.mcc, 4)
    (0.7333, 0.5774)
    """
    fallback = _check_fallback(fallback_intent)
    coded = _coded(messages, fallback)
    matrix = _matrix(coded.true, coded.pred, len(coded.labels))
    return _report_from_matrix(matrix, fallback, confidence_level)


def _report_from_matrix(matrix: np.ndarray, fallback: str, confidence_level: float = 0.95) -> IntentReport:
    """:class:`IntentReport` from the confusion counts over the sorted labels (:func:`_matrix`)."""
    n = int(matrix.sum())
    if n == 0:
        nan = math.nan
        return IntentReport(0, 0, nan, nan, nan, nan, nan, nan, 0, fallback, False)
    correct = int(np.trace(matrix))
    low, high = wilson_interval(correct, n, confidence=confidence_level)
    return IntentReport(
        labelled_count=n,
        correct_count=correct,
        accuracy=float(np.float64(correct) / n),  # sklearn's accuracy_score (the mean of the hits)
        accuracy_low=low,
        accuracy_high=high,
        macro_f1=_macro_f1(matrix),
        weighted_f1=_weighted_f1(matrix),
        mcc=_mcc_counts(matrix),
        label_count=len(matrix),
        fallback_intent=fallback,
        reliable=n >= MIN_LABELLED_MESSAGES,
    )


# --------------------------------------------------------------------------- per intent


def per_intent_table(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> pd.DataFrame:
    """Per-intent precision, recall, F1 and support, worst first.

    Columns: ``intent``; ``precision``, ``recall``, ``f1``, ``support`` exactly as
    ``sklearn.metrics.classification_report(y_true, y_pred, output_dict=True, zero_division=0)``
    (and therefore Rasa's ``intent_report.json``); ``predicted_count`` (messages predicted as
    the intent); ``correct_count``; ``confused_with``: up to two other intents this one was
    predicted as, most frequent first, formatted ``"b (3); c (1)"`` ("" when none), like
    Rasa's ``confused_with``.

    One row per intent in the union of true and predicted labels (an intent that is only
    ever predicted has support 0). Zero denominators give 0.0 (sklearn's ``zero_division=0``).
    Sorted worst first: ``f1`` ascending, then ``support`` descending, then ``intent``.
    Empty labelled subset: an empty frame with these columns.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "row": [1, 2, 3],
    ...     "speaker": ["user"] * 3, "text": ["x"] * 3,
    ...     "intent": ["greet", "bye", "bye"], "true_intent": ["greet", "greet", "bye"]})
    >>> per_intent_table(m)[["intent", "precision", "recall", "support", "confused_with"]].values.tolist()
    [['greet', 1.0, 0.5, 2, 'bye (1)'], ['bye', 0.5, 1.0, 1, '']]
    """
    fallback = _check_fallback(fallback_intent)
    coded = _coded(messages, fallback)
    return _per_intent_from_matrix(coded.labels, _matrix(coded.true, coded.pred, len(coded.labels)))


def _per_intent_from_matrix(labels: tuple[str, ...], matrix: np.ndarray) -> pd.DataFrame:
    """:func:`per_intent_table` from the confusion counts over the sorted ``labels``."""
    if int(matrix.sum()) == 0:
        return pd.DataFrame({
            "intent": pd.Series([], dtype="str"), "precision": pd.Series([], dtype=float),
            "recall": pd.Series([], dtype=float), "f1": pd.Series([], dtype=float),
            "support": pd.Series([], dtype="int64"), "predicted_count": pd.Series([], dtype="int64"),
            "correct_count": pd.Series([], dtype="int64"), "confused_with": pd.Series([], dtype="str")})
    precision, recall, f1, support, predicted, correct = _prf(matrix)
    rows = []
    for i, label in enumerate(labels):
        # The two most frequent wrong predictions of this true intent: count desc, then name.
        wrong = [(-int(matrix[i, j]), labels[j]) for j in np.flatnonzero(matrix[i]) if j != i]
        rows.append({
            "intent": label,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "predicted_count": int(predicted[i]),
            "correct_count": int(correct[i]),
            "confused_with": "; ".join(f"{p} ({-n})" for n, p in sorted(wrong)[:2]),
        })
    table = pd.DataFrame(rows)
    table["intent"] = table["intent"].astype("str")
    table["confused_with"] = table["confused_with"].astype("str")
    return table.sort_values(["f1", "support", "intent"], ascending=[True, False, True],
                             kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- confusion


@dataclass(frozen=True, eq=False)
class Confusion:
    """A confusion matrix. ``counts`` and ``rates`` are square frames, rows = true intent
    (index name ``true_intent``), columns = predicted intent (columns name ``intent``), both in
    ``labels`` order. ``rates`` is normalised by true label (each row sums to 1; a row with no
    true messages is all 0.0, as sklearn's ``normalize="true"``). ``folded`` lists the intents
    merged into ``other_label`` (empty when nothing was folded)."""

    labels: tuple[str, ...]
    counts: pd.DataFrame
    rates: pd.DataFrame
    folded: tuple[str, ...]
    other_label: str

    def long(self) -> pd.DataFrame:
        """Long form for charts: ``true_intent, intent, count, row_rate`` (one row per cell)."""
        counts = self.counts.stack().rename("count")
        rates = self.rates.stack().rename("row_rate")
        out = pd.concat([counts, rates], axis=1).reset_index()
        out.columns = ["true_intent", "intent", "count", "row_rate"]
        out["true_intent"] = out["true_intent"].astype("str")
        out["intent"] = out["intent"].astype("str")
        out["count"] = out["count"].astype("int64")
        return out


def confusion(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT,
              top_n: int | None = None, other_label: str = "other") -> Confusion:
    """Confusion matrix of true vs predicted intent on the labelled subset.

    Label order: by true support descending, then predicted count descending, then name.
    With ``top_n``, only the first ``top_n`` labels in that order are kept and every other
    intent (true or predicted) is folded into ``other_label`` (placed last), so the counts
    still sum to the labelled messages. ``other_label`` must not be a real intent name when
    folding happens (ConfigError). Counts equal ``sklearn.metrics.confusion_matrix``'s.

    Empty labelled subset: no labels, 0x0 frames.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4,
    ...     "intent": ["a", "b", "b", "c"], "true_intent": ["a", "a", "b", "c"]})
    >>> c = confusion(m)
    >>> c.labels, c.counts.values.tolist()
    (('a', 'b', 'c'), [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    >>> c.rates.loc["a"].tolist()
    [0.5, 0.5, 0.0]
    >>> confusion(m, top_n=1).counts.values.tolist()
    [[1, 1], [0, 2]]
    """
    fallback = _check_fallback(fallback_intent)
    if top_n is not None:
        top_n = _check_positive_int(top_n, name="top_n")
    coded = _coded(messages, fallback)
    return _confusion_from_matrix(coded.labels, _matrix(coded.true, coded.pred, len(coded.labels)),
                                  top_n=top_n, other_label=other_label)


def _confusion_from_matrix(sorted_labels: tuple[str, ...], counts_by_code: np.ndarray, *,
                           top_n: int | None, other_label: str) -> Confusion:
    """:func:`confusion` from the confusion counts over the sorted labels (:func:`_matrix`)."""
    size = len(sorted_labels)
    support = counts_by_code.sum(axis=1)
    predicted = counts_by_code.sum(axis=0)
    # sorted_labels is sorted, so position i is the name order of the tie-break.
    order = sorted(range(size), key=lambda i: (-int(support[i]), -int(predicted[i]), sorted_labels[i]))
    ordered = [sorted_labels[i] for i in order]
    folded: list[str] = []
    position = np.empty(size, dtype=np.int64)  # code -> row/column of the matrix
    position[order] = np.arange(size)
    if top_n is not None and len(ordered) > top_n:
        keep, folded = ordered[:top_n], sorted(ordered[top_n:])
        if other_label in sorted_labels:
            raise ConfigError(f"other_label {other_label!r} is also an intent name; choose another label")
        position = np.minimum(position, top_n)  # every folded intent goes to the last row/column
        ordered = keep + [other_label]
    labels = tuple(ordered)
    if len(labels) == 0:
        empty = pd.DataFrame(np.zeros((0, 0), dtype="int64"))
        empty.index.name, empty.columns.name = "true_intent", "intent"
        return Confusion((), empty, empty.astype(float), (), other_label)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (position[:, None], position[None, :]), counts_by_code)
    counts = pd.DataFrame(matrix, index=pd.Index(labels, name="true_intent"),
                          columns=pd.Index(labels, name="intent"))
    totals = matrix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates_arr = np.where(totals > 0, matrix / np.where(totals == 0, 1, totals), 0.0)
    rates = pd.DataFrame(rates_arr, index=counts.index.copy(), columns=counts.columns.copy())
    return Confusion(labels, counts, rates, tuple(folded), other_label)


def pair_messages(messages: pd.DataFrame, *, true_intent: str, intent: str,
                  fallback_intent: str = DEFAULT_FALLBACK_INTENT,
                  folded: tuple[str, ...] | list[str] = (), other_label: str = "other") -> pd.DataFrame:
    """Labelled messages whose (true, predicted) pair is one cell of the confusion matrix.

    ``true_intent`` / ``intent`` are the cell's row and column labels. When a label equals
    ``other_label`` and ``folded`` (from :attr:`Confusion.folded`) is not empty, the cell
    stands for every folded intent. Columns :data:`MESSAGE_COLUMNS`, sorted by
    (conversation_id, row). No match (or an empty subset) gives an empty frame.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "row": [1, 2, 3],
    ...     "speaker": ["user"] * 3, "text": ["hello", "ciao", "bye"],
    ...     "intent": ["greet", "bye", "bye"], "true_intent": ["greet", "greet", "bye"]})
    >>> pair_messages(m, true_intent="greet", intent="bye")["text"].tolist()
    ['ciao']
    """
    fallback = _check_fallback(fallback_intent)
    lab = labelled_messages(messages, fallback_intent=fallback)
    folded_set = set(folded)

    def matches(column: pd.Series, label: str) -> pd.Series:
        if label == other_label and folded_set:
            return column.isin(folded_set) | (column == other_label)
        return column == label

    hit = matches(lab["true_intent"], str(true_intent)) & matches(lab["intent"], str(intent))
    return lab[hit.fillna(False).astype(bool)].reset_index(drop=True)


def top_confused_pairs(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT,
                       limit: int = 10) -> pd.DataFrame:
    """The most frequent wrong (true -> predicted) pairs, ranked.

    Columns: ``rank`` (1 = most frequent), ``true_intent``, ``intent`` (predicted), ``count``,
    ``share_of_true`` = count / support of the true intent. Only pairs with
    ``true_intent != intent`` and count > 0; sorted by count descending, then true_intent,
    then intent; at most ``limit`` rows. No confusion (or no labels): an empty frame.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4,
    ...     "intent": ["b", "b", "a", "a"], "true_intent": ["a", "a", "a", "b"]})
    >>> top_confused_pairs(m).values.tolist()
    [[1, 'a', 'b', 2, 0.6666666666666666], [2, 'b', 'a', 1, 1.0]]
    """
    fallback = _check_fallback(fallback_intent)
    limit = _check_positive_int(limit, name="limit")
    coded = _coded(messages, fallback)
    return _top_pairs_from_matrix(coded.labels, _matrix(coded.true, coded.pred, len(coded.labels)), limit)


def _top_pairs_from_matrix(labels: tuple[str, ...], counts: np.ndarray, limit: int) -> pd.DataFrame:
    """:func:`top_confused_pairs` from the confusion counts over the sorted ``labels``."""
    support = counts.sum(axis=1)
    matrix = counts.copy()
    np.fill_diagonal(matrix, 0)  # only wrong pairs
    true_idx, pred_idx = np.nonzero(matrix)
    if len(true_idx) == 0:
        return pd.DataFrame({"rank": pd.Series([], dtype="int64"), "true_intent": pd.Series([], dtype="str"),
                             "intent": pd.Series([], dtype="str"), "count": pd.Series([], dtype="int64"),
                             "share_of_true": pd.Series([], dtype=float)})
    count = matrix[true_idx, pred_idx]
    # count descending, then true_intent, then intent (codes follow the sorted label names).
    pick = np.lexsort((pred_idx, true_idx, -count))[:limit]
    true_idx, pred_idx, count = true_idx[pick], pred_idx[pick], count[pick]
    names = np.array(labels, dtype=object)
    return pd.DataFrame({
        "rank": np.arange(1, len(pick) + 1, dtype="int64"),
        "true_intent": pd.Series(names[true_idx], dtype="str"),
        "intent": pd.Series(names[pred_idx], dtype="str"),
        "count": count.astype("int64"),
        "share_of_true": count / support[true_idx].astype(float),
    })


# --------------------------------------------------------------------------- error lists


def false_positives(messages: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD,
                    fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> pd.DataFrame:
    """Confident but wrong: the bot thought it understood and did not.

    Definition: labelled user messages with a predicted intent other than
    ``fallback_intent``, ``intent != true_intent``, and a confidence that is not below the
    threshold (``confidence >= threshold``, or missing: the bot answered without a score).
    Columns :data:`MESSAGE_COLUMNS`, most confident first (then conversation_id, row).
    None found or no labels: an empty frame.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "row": [1, 2, 3],
    ...     "speaker": ["user"] * 3, "text": ["x", "y", "z"], "confidence": [0.9, 0.3, 0.95],
    ...     "intent": ["bye", "bye", "greet"], "true_intent": ["greet", "greet", "greet"]})
    >>> false_positives(m)["text"].tolist()
    ['x']
    """
    fallback = _check_fallback(fallback_intent)
    t = _check_threshold(threshold)
    lab = labelled_messages(messages, fallback_intent=fallback)
    conf = lab["confidence"]
    hit = (lab["intent"] != fallback) & (lab["intent"] != lab["true_intent"]) & ~(conf < t)
    return _sort_messages(lab[hit.fillna(False).astype(bool)], by=["confidence"], ascending=[False])


def false_negatives(messages: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD,
                    fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> pd.DataFrame:
    """Missed: a real in-scope intent existed but the bot fell back or was below the threshold.

    Definition: labelled user messages with ``true_intent != fallback_intent`` whose
    prediction is ``fallback_intent`` (or missing) **or** has ``confidence < threshold``
    (even if the predicted intent happened to be right: the bot would not have answered).
    Column ``reason`` is ``"fallback"`` or ``"below_threshold"`` (fallback wins when both),
    after :data:`MESSAGE_COLUMNS`. Least confident first (NaN last), then conversation_id, row.
    None found or no labels: an empty frame.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "row": [1, 2, 3],
    ...     "speaker": ["user"] * 3, "text": ["x", "y", "z"], "confidence": [0.9, 0.3, 0.95],
    ...     "intent": ["nlu_fallback", "greet", "greet"], "true_intent": ["greet", "greet", "greet"]})
    >>> false_negatives(m)[["text", "reason"]].values.tolist()
    [['y', 'below_threshold'], ['x', 'fallback']]
    """
    fallback = _check_fallback(fallback_intent)
    t = _check_threshold(threshold)
    lab = labelled_messages(messages, fallback_intent=fallback)
    is_fallback = lab["intent"] == fallback
    below = lab["confidence"] < t
    hit = (lab["true_intent"] != fallback) & (is_fallback | below)
    out = lab[hit.fillna(False).astype(bool)].copy()
    out["reason"] = pd.Series(np.where(is_fallback[out.index], "fallback", "below_threshold"),
                              index=out.index, dtype="str")
    return _sort_messages(out, by=["confidence"], ascending=[True])


# --------------------------------------------------------------------------- confidence


def _check_bins(bins) -> int:
    return _check_positive_int(bins, name="bins")


def confidence_histogram(messages: pd.DataFrame, *, bins: int = 10,
                         fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> pd.DataFrame:
    """Counts of labelled messages per confidence bin, correct vs incorrect.

    Bins are ``bins`` equal-width intervals of [0, 1], each ``[left, right)`` except the last,
    which includes 1.0. Labelled messages without a confidence are left out.
    Columns: ``bin_left``, ``bin_right``, ``outcome`` (``"correct"`` / ``"incorrect"``),
    ``message_count``. Always ``2 * bins`` rows (zero counts included), ordered by bin then
    outcome. Empty input gives the same rows with zero counts.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "row": [1, 2, 3],
    ...     "speaker": ["user"] * 3, "text": ["x"] * 3, "confidence": [0.95, 1.0, 0.1],
    ...     "intent": ["a", "a", "a"], "true_intent": ["a", "b", "a"]})
    >>> h = confidence_histogram(m, bins=2)
    >>> h.values.tolist()
    [[0.0, 0.5, 'correct', 1], [0.0, 0.5, 'incorrect', 0], [0.5, 1.0, 'correct', 1], [0.5, 1.0, 'incorrect', 1]]
    """
    bins = _check_bins(bins)
    fallback = _check_fallback(fallback_intent)
    coded = _coded(messages, fallback)
    conf = coded.conf
    ok = ~np.isnan(conf)
    idx = _bin_index(conf[ok], bins)
    correct = (coded.true == coded.pred)[ok]
    edges = _bin_edges(bins)
    rows = []
    for b in range(bins):
        in_bin = idx == b
        for outcome, flag in (("correct", True), ("incorrect", False)):
            rows.append((float(edges[b]), float(edges[b + 1]), outcome, int((in_bin & (correct == flag)).sum())))
    out = pd.DataFrame(rows, columns=["bin_left", "bin_right", "outcome", "message_count"])
    out["outcome"] = out["outcome"].astype("str")
    out["message_count"] = out["message_count"].astype("int64")
    return out


@dataclass(frozen=True, eq=False)
class Reliability:
    """Reliability curve and calibration error.

    ``table`` columns: ``bin_left``, ``bin_right``, ``message_count``, ``mean_confidence``,
    ``accuracy``, ``gap`` (= accuracy - mean_confidence; negative means over-confident); a
    bin without messages has NaN for the three rates. ``expected_calibration_error`` =
    sum over bins of ``message_count / total * |accuracy - mean_confidence|`` (NaN when no
    labelled message has a confidence). ``message_count`` is that total.
    """

    table: pd.DataFrame
    expected_calibration_error: float
    message_count: int


def reliability_curve(messages: pd.DataFrame, *, bins: int = 10,
                      fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> Reliability:
    """Mean confidence vs accuracy per confidence bin, and the expected calibration error.

    Bins as in :func:`confidence_histogram`. Uses labelled messages with a confidence;
    correctness is of the raw prediction. Empty: ``bins`` rows with count 0 and NaN rates,
    ECE NaN.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4, "confidence": [0.9, 0.9, 0.2, 0.2],
    ...     "intent": ["a", "a", "a", "a"], "true_intent": ["a", "b", "a", "b"]})
    >>> r = reliability_curve(m, bins=2)
    >>> r.table["accuracy"].tolist(), round(r.expected_calibration_error, 6)
    ([0.5, 0.5], 0.35)
    """
    bins = _check_bins(bins)
    fallback = _check_fallback(fallback_intent)
    _, y_true, y_pred, conf = _labelled_arrays(messages, fallback)
    ok = ~np.isnan(conf)
    conf = conf[ok]
    correct = (y_true == y_pred)[ok].astype(float)
    idx = _bin_index(conf, bins)
    counts = np.array([int((idx == b).sum()) for b in range(bins)], dtype=np.int64)
    sums = np.array([conf[idx == b].sum() for b in range(bins)], dtype=np.float64)
    hits = np.array([correct[idx == b].sum() for b in range(bins)], dtype=np.float64)
    return _reliability_from_bins(counts, sums, hits)


def _reliability_from_bins(counts: np.ndarray, confidence_sums: np.ndarray, correct: np.ndarray) -> Reliability:
    """:class:`Reliability` from per-bin message counts, sums of confidence and correct counts
    (``len(counts)`` equal-width bins, :func:`_bin_index`)."""
    bins = len(counts)
    edges = _bin_edges(bins)
    total = int(np.sum(counts))
    rows, ece = [], 0.0
    for b in range(bins):
        n = int(counts[b])
        if n:
            # a bin's mean is its sum over its count (what ndarray.mean computes)
            mean_conf, acc = float(confidence_sums[b] / n), float(np.float64(correct[b]) / n)
            ece += n / total * abs(acc - mean_conf)
        else:
            mean_conf = acc = math.nan
        rows.append((float(edges[b]), float(edges[b + 1]), n, mean_conf, acc, acc - mean_conf))
    table = pd.DataFrame(rows, columns=["bin_left", "bin_right", "message_count", "mean_confidence",
                                        "accuracy", "gap"])
    table["message_count"] = table["message_count"].astype("int64")
    return Reliability(table, float(ece) if total else math.nan, total)


# --------------------------------------------------------------------------- thresholds


def _check_thresholds(thresholds) -> list[float]:
    if thresholds is None:
        return list(DEFAULT_THRESHOLDS)
    if isinstance(thresholds, (str, bytes)):
        raise ConfigError(f"thresholds must be a list of numbers between 0 and 1, got {thresholds!r}")
    values = [_check_threshold(t, name="each threshold") for t in thresholds]
    if not values:
        raise ConfigError(f"thresholds must not be empty, got {thresholds!r}")
    return sorted(set(values))


def _conversation_min_confidence(messages: pd.DataFrame) -> np.ndarray:
    """Lowest user-message confidence per conversation with >= 1 user message (NaN if none)."""
    users = _rows(messages, _user_mask(messages), ("conversation_id", "confidence"))
    if len(users) == 0:
        return np.zeros(0)
    if "conversation_id" in users.columns:
        conv, _ = pd.factorize(users["conversation_id"])  # integer keys group much faster than strings
    else:
        conv = np.arange(len(users))
    conf = pd.Series(_confidences(users))
    known = conv >= 0  # a missing conversation id belongs to no conversation (groupby drops NA keys)
    return conf[known].groupby(conv[known]).min().to_numpy(dtype=float)


def escalation_rate(messages: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Share of conversations that a confidence threshold would escalate.

    Definition: conversations with at least one user message whose ``confidence < threshold``,
    divided by the conversations having at least one user message. Labels are not needed.
    No such conversation (zero denominator): NaN.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "c"], "speaker": ["user", "user", "user", "bot"],
    ...                   "text": ["x"] * 4, "confidence": [0.9, 0.5, 0.7, 0.1]})
    >>> escalation_rate(m, threshold=0.6)
    0.5
    """
    t = _check_threshold(threshold)
    low = _conversation_min_confidence(messages)
    if len(low) == 0:
        return math.nan
    return float((low < t).sum() / len(low))


def threshold_table(messages: pd.DataFrame, *, thresholds=None,
                    fallback_intent: str = DEFAULT_FALLBACK_INTENT) -> pd.DataFrame:
    """What-if table: each threshold turns predictions below it into ``fallback_intent``.

    For each threshold ``t`` (default :data:`DEFAULT_THRESHOLDS`, 0.00 to 1.00 by 0.05), the
    *effective* intent is the prediction, or ``fallback_intent`` when ``confidence < t`` or the
    prediction is missing. Columns (one row per threshold, ascending):

    ``threshold``
    ``coverage``
        share of **all user messages** whose effective intent is not the fallback (answered).
    ``accuracy``
        labelled messages with effective intent == true_intent / labelled messages.
    ``weighted_f1``
        ``f1_score(true, effective, average="weighted", zero_division=0)``.
    ``in_scope_accuracy``
        the accuracy on labelled messages whose true intent is not the fallback.
    ``out_of_scope_recall``
        share of labelled messages whose true intent is the fallback that are effectively the fallback.
    ``mcc``
        ``matthews_corrcoef(true, effective)``.
    ``escalation_rate``
        :func:`escalation_rate` at ``t`` (conversation level, labels not needed).

    These reproduce the HINT3 published tables (Threshold, Accuracy, Weighted F1, Inscope
    Accuracy, OOS Recall, MCC) to machine precision. Zero denominators give NaN (no labels:
    the five label columns are NaN; no true out-of-scope message: out_of_scope_recall NaN).
    Requires ``intent``; ``true_intent`` is optional (label columns NaN without it).

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4, "confidence": [0.9, 0.5, 0.8, 0.3],
    ...     "intent": ["a", "a", "b", "b"], "true_intent": ["a", "a", "nlu_fallback", "nlu_fallback"]})
    >>> t = threshold_table(m, thresholds=[0.0, 0.6])
    >>> t[["threshold", "coverage", "accuracy", "in_scope_accuracy", "out_of_scope_recall"]].values.tolist()
    [[0.0, 1.0, 0.5, 1.0, 0.0], [0.6, 0.5, 0.5, 0.5, 0.5]]
    """
    fallback = _check_fallback(fallback_intent)
    grid = _check_thresholds(thresholds)
    _require(messages, ("intent",))
    users = _rows(messages, _user_mask(messages), ("intent", "confidence"))
    codes, names = _factorize_names(users["intent"])
    # Answered unless the prediction is the fallback or missing (then it is the fallback).
    answered = np.array([n != fallback for n in names] + [False], dtype=bool)[codes]
    all_conf = _confidences(users)
    if "true_intent" in messages.columns:
        coded = _coded(messages, fallback, extra=(fallback,))
    else:
        coded = _Coded((fallback,), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    size = len(coded.labels)
    low = _conversation_min_confidence(messages)
    # Counts per (true, predicted, threshold step) of the labelled messages and per (answered, step)
    # of every user message; every column below is computed from these counts.
    steps = len(grid)
    cells = np.bincount((coded.true * size + coded.pred) * (steps + 1) + _threshold_step(coded.conf, grid),
                        minlength=size * size * (steps + 1)).reshape(size, size, steps + 1)
    user_steps = np.bincount(_threshold_step(all_conf, grid)[answered], minlength=steps + 1)
    table = _thresholds_from_counts(grid, coded.labels, fallback, cells, user_steps, len(answered))
    table["escalation_rate"] = [float((low < t).sum() / len(low)) if len(low) else math.nan for t in grid]
    return table


def _threshold_step(conf: np.ndarray, grid: list[float]) -> np.ndarray:
    """Per confidence: how many thresholds of the ascending ``grid`` are at or below it, so it is
    below ``grid[j]`` exactly when its step is <= j. A missing confidence is never below any
    threshold: step ``len(grid)``."""
    conf = np.asarray(conf, dtype=float)
    step = np.searchsorted(np.asarray(grid, dtype=float), conf, side="right").astype(np.int64)
    step[np.isnan(conf)] = len(grid)
    return step


def _thresholds_from_counts(grid: list[float], labels: tuple[str, ...], fallback: str, cells: np.ndarray,
                            answered_steps: np.ndarray, user_count: int) -> pd.DataFrame:
    """The label and coverage columns of :func:`threshold_table` from counts.

    ``labels``: sorted, with ``fallback`` among them; ``cells[t, p, s]``: labelled messages of true
    label ``t``, predicted ``p`` and threshold step ``s`` (:func:`_threshold_step`);
    ``answered_steps[s]``: user messages predicted something other than the fallback, by step;
    ``user_count``: every user message.
    """
    fb = labels.index(fallback)
    size = len(labels)
    n = int(cells.sum())
    support = cells.sum(axis=(1, 2))
    in_scope = np.arange(size) != fb
    n_in, n_oos = int(support[in_scope].sum()), int(support[fb])
    rows = []
    for j, t in enumerate(grid):
        kept = answered_steps[j + 1:].sum()  # answered and not below t
        coverage = float(np.float64(kept) / user_count) if user_count else math.nan
        if n:
            # below t (step <= j): the prediction becomes the fallback
            matrix = cells[:, :, j + 1:].sum(axis=2)
            matrix[:, fb] += cells[:, :, :j + 1].sum(axis=(1, 2))
            hits = np.diagonal(matrix)
            acc = float(np.float64(hits.sum()) / n)
            wf1 = _weighted_f1(matrix)
            ins = float(np.float64(hits[in_scope].sum()) / n_in) if n_in else math.nan
            oos = float(np.float64(matrix[fb, fb]) / n_oos) if n_oos else math.nan
            mcc = _mcc_counts(matrix)
        else:
            acc = wf1 = ins = oos = mcc = math.nan
        rows.append((t, coverage, acc, wf1, ins, oos, mcc))
    return pd.DataFrame(rows, columns=["threshold", "coverage", "accuracy", "weighted_f1", "in_scope_accuracy",
                                       "out_of_scope_recall", "mcc"])


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True, eq=False)
class IntentDrift:
    """Week-by-week intent quality and mix (ISO weeks, UTC).

    ``weekly``: ``week`` (``"2024-W05"``), ``week_start`` (the Monday, UTC timestamp),
    ``message_count`` (user messages), ``labelled_count``, ``correct_count``, ``accuracy``
    (NaN without labels that week).
    ``mix``: ``week``, ``intent`` (predicted; missing -> fallback), ``message_count``,
    ``share`` (of that week's user messages); only non-zero cells.
    ``movers``: for each intent and measure, its largest move between two consecutive weeks:
    ``intent``, ``measure`` (``"share"`` or ``"accuracy"``), ``previous_week``, ``week`` (where
    it happened), ``before``, ``after``, ``change`` (after - before); sorted by ``|change|``
    descending, then intent, measure; at most ``limit`` rows.
    """

    weekly: pd.DataFrame
    mix: pd.DataFrame
    movers: pd.DataFrame


def _week_codes(ts: pd.Series) -> tuple[np.ndarray, list[str], pd.Series]:
    """(code of each message's ISO week (UTC, :mod:`metrics.core.periods`) into ``weeks``, ``weeks``
    sorted, each week's Monday).

    The week of a timestamp depends only on its day, so labels and starts are computed once per
    distinct day instead of once per message.
    """
    day_codes, days = pd.factorize(ts.dt.tz_convert("UTC").dt.normalize())
    days = pd.Series(days)
    label, start = period_label(days, "W"), period_start(days, "W")
    weeks = sorted(set(label))
    index = {w: i for i, w in enumerate(weeks)}
    day_week = np.array([index[w] for w in label], dtype=np.int64)
    monday = start.groupby(day_week).min().reset_index(drop=True)  # every week has a day: no gap
    return day_week[day_codes], weeks, monday


def intent_drift(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT,
                 min_support: int = 10, limit: int = 10) -> IntentDrift:
    """Accuracy and intent mix per ISO week, and the intents that moved most.

    Share moves: for every predicted intent, the share in each week with user messages (0
    when absent that week); the move is between consecutive weeks present in the data.
    Accuracy moves: per **true** intent, the share of its labelled messages predicted
    correctly, in weeks where it has at least ``min_support`` labelled messages; the move is
    between consecutive such weeks. User messages without a timestamp are left out.
    Labels are optional (without ``true_intent`` the accuracy columns are NaN and there are
    no accuracy movers).

    Raises InsufficientDataError without timestamps or without ``intent``. No user message
    with a timestamp: empty frames with the documented columns.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4,
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-08", "2024-01-09"], utc=True),
    ...     "intent": ["a", "a", "a", "b"], "true_intent": ["a", "a", "a", "a"]})
    >>> d = intent_drift(m, min_support=1)
    >>> d.weekly[["week", "accuracy"]].values.tolist()
    [['2024-W01', 1.0], ['2024-W02', 0.5]]
    >>> d.movers[["intent", "measure", "week", "change"]].values.tolist()[0]
    ['a', 'accuracy', '2024-W02', -0.5]
    """
    fallback = _check_fallback(fallback_intent)
    min_support = _check_positive_int(min_support, name="min_support")
    limit = _check_positive_int(limit, name="limit")
    _require(messages, ("intent",))
    if not has_timestamps(messages):
        raise InsufficientDataError("intent drift needs timestamps; this data has none")
    mask = _user_mask(messages) & messages["timestamp"].notna().to_numpy(dtype=bool)
    users = _rows(messages, mask, ("timestamp", "intent", "true_intent"))
    if len(users) == 0:
        return _empty_drift()
    # Integer codes for week, predicted and true intent; every count is a bincount over them.
    week, weeks, week_starts = _week_codes(users["timestamp"])
    n_weeks = len(weeks)
    p_codes, p_names = _factorize_names(users["intent"])
    intents = sorted(set(p_names) | ({fallback} if (p_codes < 0).any() else set()))
    index = {name: i for i, name in enumerate(intents)}
    pred = _recode(p_codes, p_names, index, missing=index.get(fallback, -1))
    if "true_intent" in users.columns:
        t_codes, t_names = _factorize_names(users["true_intent"])
    else:
        t_codes, t_names = np.full(len(users), -1, dtype=np.int64), []
    labelled = t_codes >= 0
    truths = sorted(set(t_names))
    truth = _recode(t_codes, t_names, {name: i for i, name in enumerate(truths)})
    truth_as_pred = _recode(t_codes, t_names, {name: index.get(name, -2) for name in t_names}, missing=-2)
    correct = labelled & (pred == truth_as_pred)

    message_count = np.bincount(week, minlength=n_weeks)
    labelled_count = np.bincount(week[labelled], minlength=n_weeks)
    correct_count = np.bincount(week[correct], minlength=n_weeks)
    has_labels = labelled_count > 0
    weekly = pd.DataFrame({
        "week": pd.Series(weeks, dtype="str"),
        "week_start": week_starts.astype("datetime64[ns, UTC]"),
        "message_count": message_count.astype("int64"),
        "labelled_count": labelled_count.astype("int64"),
        "correct_count": correct_count.astype("int64"),
        "accuracy": np.where(has_labels, correct_count / np.where(has_labels, labelled_count, 1), np.nan),
    })

    cells = np.bincount(week * len(intents) + pred, minlength=n_weeks * len(intents)).reshape(n_weeks, -1)
    share = cells / message_count[:, None].astype(float)  # 0.0 where an intent is absent that week
    w_idx, i_idx = np.nonzero(cells)  # row-major: week, then intent (both in sorted name order)
    mix = pd.DataFrame({
        "week": pd.Series(np.array(weeks, dtype=object)[w_idx], dtype="str"),
        "intent": pd.Series(np.array(intents, dtype=object)[i_idx], dtype="str"),
        "message_count": cells[w_idx, i_idx].astype("int64"),
        "share": share[w_idx, i_idx],
    })

    movers = []
    for i, intent in enumerate(intents):
        movers.extend(_largest_move(intent, "share", weeks, share[:, i]))
    if labelled.any():
        per_n = np.bincount(truth[labelled] * n_weeks + week[labelled],
                            minlength=len(truths) * n_weeks).reshape(len(truths), n_weeks)
        per_ok = np.bincount(truth[correct] * n_weeks + week[correct],
                             minlength=len(truths) * n_weeks).reshape(len(truths), n_weeks)
        for j, intent in enumerate(truths):
            enough = np.flatnonzero(per_n[j] >= min_support)
            if len(enough):
                movers.extend(_largest_move(intent, "accuracy", [weeks[w] for w in enough],
                                            per_ok[j, enough] / per_n[j, enough]))
    movers_frame = pd.DataFrame(movers, columns=["intent", "measure", "previous_week", "week", "before",
                                                 "after", "change"])
    for col in ("intent", "measure", "previous_week", "week"):
        movers_frame[col] = movers_frame[col].astype("str")
    for col in ("before", "after", "change"):
        movers_frame[col] = movers_frame[col].astype(float)
    if len(movers_frame):
        movers_frame = (movers_frame.assign(_abs=movers_frame["change"].abs())
                        .sort_values(["_abs", "intent", "measure"], ascending=[False, True, True], kind="stable")
                        .drop(columns="_abs").head(limit).reset_index(drop=True))
    return IntentDrift(weekly.reset_index(drop=True), mix.reset_index(drop=True), movers_frame)


def _empty_drift() -> IntentDrift:
    text = lambda: pd.Series([], dtype="str")  # noqa: E731
    ints = lambda: pd.Series([], dtype="int64")  # noqa: E731
    floats = lambda: pd.Series([], dtype=float)  # noqa: E731
    weekly = pd.DataFrame({"week": text(), "week_start": pd.Series([], dtype="datetime64[ns, UTC]"),
                           "message_count": ints(), "labelled_count": ints(), "correct_count": ints(),
                           "accuracy": floats()})
    mix = pd.DataFrame({"week": text(), "intent": text(), "message_count": ints(), "share": floats()})
    movers = pd.DataFrame({"intent": text(), "measure": text(), "previous_week": text(), "week": text(),
                           "before": floats(), "after": floats(), "change": floats()})
    return IntentDrift(weekly, mix, movers)


def _largest_move(intent: str, measure: str, weeks: list[str], values: np.ndarray) -> list[tuple]:
    if len(values) < 2:
        return []
    changes = np.diff(values)
    i = int(np.argmax(np.abs(changes)))  # first of equal moves: the earliest week
    if changes[i] == 0:
        return []
    return [(intent, measure, weeks[i], weeks[i + 1], float(values[i]), float(values[i + 1]), float(changes[i]))]


# --------------------------------------------------------------------------- model A/B


@dataclass(frozen=True, eq=False)
class ModelComparison:
    """Per-intent accuracy of each model against a baseline model.

    ``overall`` and ``per_intent`` share the columns: ``intent`` (``per_intent`` only; the
    true intent), ``baseline``, ``model``, ``baseline_support``, ``baseline_correct``,
    ``baseline_accuracy``, ``model_support``, ``model_correct``, ``model_accuracy``,
    ``difference`` (model - baseline accuracy), ``z``, ``p_value`` (pooled two-proportion
    z-test, two-sided), ``too_small`` (either support below ``min_support``: too small to
    judge, whatever the p-value says). ``models`` lists the model versions, baseline first.
    """

    models: tuple[str, ...]
    baseline: str
    min_support: int
    overall: pd.DataFrame
    per_intent: pd.DataFrame


_AB_COLUMNS = ("baseline", "model", "baseline_support", "baseline_correct", "baseline_accuracy",
               "model_support", "model_correct", "model_accuracy", "difference", "z", "p_value", "too_small")


def _ab_row(base_n, base_ok, mod_n, mod_ok, min_support):
    z, p = two_proportion_ztest(mod_ok, mod_n, base_ok, base_n)
    base_acc = base_ok / base_n if base_n else math.nan
    mod_acc = mod_ok / mod_n if mod_n else math.nan
    return (int(base_n), int(base_ok), base_acc, int(mod_n), int(mod_ok), mod_acc, mod_acc - base_acc, z, p,
            bool(base_n < min_support or mod_n < min_support))


def model_comparison(messages: pd.DataFrame, *, fallback_intent: str = DEFAULT_FALLBACK_INTENT,
                     baseline: str | None = None, min_support: int = 30) -> ModelComparison:
    """Model A/B: per-intent accuracy of every model version next to a baseline.

    Per-intent accuracy of a model = labelled messages of that true intent the model
    predicted correctly / labelled messages of that true intent it handled. ``baseline``
    defaults to the first model version in sorted order; every other version is compared
    with it. ``per_intent`` has one row per (model, true intent seen by either side), sorted
    by model, then ``p_value`` ascending (NaN last), then intent. An intent a side never saw
    has support 0, accuracy NaN, z / p_value NaN and ``too_small`` True.

    Raises InsufficientDataError without a ``model_version`` column or with fewer than two
    versions among labelled messages; ConfigError for an unknown ``baseline``.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": list("abcd"), "row": [1, 2, 3, 4],
    ...     "speaker": ["user"] * 4, "text": ["x"] * 4, "model_version": ["v1", "v1", "v2", "v2"],
    ...     "intent": ["a", "b", "a", "a"], "true_intent": ["a", "a", "a", "a"]})
    >>> c = model_comparison(m, min_support=2)
    >>> c.per_intent[["intent", "baseline_accuracy", "model_accuracy", "difference", "too_small"]].values.tolist()
    [['a', 0.5, 1.0, 0.5, False]]
    """
    fallback = _check_fallback(fallback_intent)
    min_support = _check_positive_int(min_support, name="min_support")
    _require(messages, ("intent", "true_intent", "model_version"))
    mask = (_user_mask(messages) & messages["true_intent"].notna().to_numpy(dtype=bool)
            & messages["model_version"].notna().to_numpy(dtype=bool))
    lab = _rows(messages, mask, ("model_version", "intent", "true_intent"))
    m_codes, m_names = _factorize_names(lab["model_version"])
    models = sorted(set(m_names))
    if len(models) < 2:
        raise InsufficientDataError(
            f"model A/B needs labelled messages from at least two model versions, got {models!r}")
    if baseline is None:
        baseline = models[0]
    if baseline not in models:
        raise ConfigError(f"baseline model {baseline!r} is not among the labelled model versions {models!r}")
    # Integer codes: (model, true intent) counts by bincount instead of a groupby on strings.
    t_codes, t_names = _factorize_names(lab["true_intent"])
    p_codes, p_names = _factorize_names(lab["intent"])
    intents = sorted(set(t_names))
    index = {name: i for i, name in enumerate(intents)}
    truth = _recode(t_codes, t_names, index)
    pred = _recode(p_codes, p_names, {name: index.get(name, -1) for name in p_names},
                   missing=index.get(fallback, -1))
    model = _recode(m_codes, m_names, {name: i for i, name in enumerate(models)})
    correct = pred == truth
    cells = len(models) * len(intents)
    n = np.bincount(model * len(intents) + truth, minlength=cells).reshape(len(models), len(intents))
    ok = np.bincount((model * len(intents) + truth)[correct], minlength=cells).reshape(len(models), len(intents))
    b = models.index(baseline)
    overall_rows, intent_rows = [], []
    for k, name in enumerate(models):
        if k == b:
            continue
        overall_rows.append((baseline, name) + _ab_row(n[b].sum(), ok[b].sum(), n[k].sum(), ok[k].sum(),
                                                       min_support))
        for i in np.flatnonzero(n[b] + n[k]):  # true intents seen by either side, in name order
            intent_rows.append((intents[i], baseline, name) + _ab_row(n[b, i], ok[b, i], n[k, i], ok[k, i],
                                                                      min_support))
    overall = _typed_ab(pd.DataFrame(overall_rows, columns=list(_AB_COLUMNS)))
    per_intent = _typed_ab(pd.DataFrame(intent_rows, columns=["intent", *_AB_COLUMNS]))
    per_intent = per_intent.sort_values(["model", "p_value", "intent"], na_position="last",
                                        kind="stable").reset_index(drop=True)
    ordered = (baseline,) + tuple(m for m in models if m != baseline)
    return ModelComparison(ordered, baseline, min_support, overall, per_intent)


def _typed_ab(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("intent", "baseline", "model"):
        if col in frame.columns:
            frame[col] = frame[col].astype("str")
    for col in ("baseline_support", "baseline_correct", "model_support", "model_correct"):
        frame[col] = frame[col].astype("int64")
    for col in ("baseline_accuracy", "model_accuracy", "difference", "z", "p_value"):
        frame[col] = frame[col].astype(float)
    frame["too_small"] = frame["too_small"].astype(bool)
    return frame
