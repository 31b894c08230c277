"""From gaps to training data: a gap topic's messages as new-intent examples (CSV, Rasa NLU YAML), the
existing intent each gap topic is closest to, and pairs of intents that overlap (candidates to merge).

Intent examples
---------------
The examples of an existing intent are its user messages labelled by a human (``true_intent``) or, where
there is no label, predicted with ``confidence >= threshold`` (or without a confidence); the fallback intent
is never an intent to suggest. Texts are compared as word + character n-gram TF-IDF vectors (the topic
featurizer without LSA), L2-normalised; an intent's *centroid* is the normalised mean of its examples.

``nearest_intents``: for each gap topic, the intent whose centroid has the highest cosine with the gap
topic's centroid (``similarity``), NaN/missing without intents.

``overlapping_intents``: every pair of intents whose centroid cosine is at least ``min_similarity`` (0.5)
or whose confusion share is at least ``min_confusion`` (0.1): ``confusion_count`` counts labelled messages of
one intent predicted as the other (both directions), ``confusion_rate`` divides it by their labelled
messages. Ranked by confusion rate, then similarity.

Export formats
--------------
CSV: columns ``intent,text`` (cells a spreadsheet would run as formulas are escaped,
:func:`metrics.io.export.to_csv_bytes`). Rasa NLU YAML (format 3.1)::

    version: "3.1"
    nlu:
    - intent: name
      examples: |
        - text

Each text is made one clean line: line breaks (also U+0085, U+2028, U+2029), control characters and anything
else outside YAML's printable set (U+FFFE, U+FFFF, lone surrogates, the byte-order mark) become spaces
and runs of spaces one space; a text left empty is dropped, as is a repeat. Inside a literal block
(``|``) nothing else needs escaping for YAML. Rasa reads ``[text](entity)``, ``[text]{...}`` and
``[text][...]`` in an example as entity annotations: a space is put between ``]`` and ``(``/``{``/``[`` so the
text stays literal. Intent names are :func:`intent_name` slugs.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
from sklearn.preprocessing import normalize

from metrics.errors import ConfigError
from metrics.io.export import to_csv_bytes
from metrics.intents import DEFAULT_THRESHOLD, suggest_fallback_intent
from metrics.topics._text import Featurizer, clustering_key

__all__ = [
    "intent_examples",
    "nearest_intents",
    "overlapping_intents",
    "intent_name",
    "training_examples",
    "examples_csv",
    "rasa_nlu_yaml",
]

_FIT_TEXTS = 50_000
_SLUG = re.compile(r"[^a-z0-9]+")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
#: Everything YAML may not hold (outside its printable set), and the byte-order mark.
_CONTROL = re.compile("[^\t\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_ANNOTATION = re.compile(r"\](?=[(\[{])")
_SPACES = re.compile(r"[ \t]+")
_SAFE_INTENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def intent_examples(messages: pd.DataFrame, *, fallback_intent: str | None = None,
                    threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """The user messages that exemplify existing intents: columns ``intent``, ``text`` (one row per message;
    see the module docstring). No intent column: an empty frame.

    Examples
    --------
    >>> m = pd.DataFrame({"speaker": "user", "text": ["a", "b", "c"], "intent": ["x", "y", "nlu_fallback"],
    ...                   "confidence": [0.9, 0.2, 0.9]})
    >>> intent_examples(m).values.tolist()
    [['x', 'a']]
    """
    empty = pd.DataFrame({"intent": pd.Series([], dtype="str"), "text": pd.Series([], dtype="str")})
    if "text" not in messages.columns or len(messages) == 0:
        return empty
    fallback = fallback_intent if fallback_intent is not None else suggest_fallback_intent(messages)
    users = messages["speaker"].eq("user").fillna(False) if "speaker" in messages.columns else \
        pd.Series(True, index=messages.index)
    label = pd.Series(None, index=messages.index, dtype="str")
    if "intent" in messages.columns:
        conf = pd.to_numeric(messages["confidence"], errors="coerce") if "confidence" in messages.columns \
            else pd.Series(np.nan, index=messages.index)
        sure = conf.isna() | (conf >= threshold)
        label = messages["intent"].astype("str").where(sure)
    if "true_intent" in messages.columns:
        label = messages["true_intent"].astype("str").where(messages["true_intent"].notna(), label)
    keep = users & label.notna() & label.ne(fallback) & messages["text"].notna()
    if not keep.any():
        return empty
    return pd.DataFrame({"intent": label[keep].astype("str").to_numpy(),
                         "text": messages.loc[keep, "text"].astype("str").to_numpy()}).astype("str")


def _centroids(groups: list[str], texts: list[str], feat: Featurizer) -> tuple[list[str], np.ndarray]:
    x = normalize(feat.sparse(texts))
    names = sorted(set(groups))
    codes = {g: i for i, g in enumerate(names)}
    rows = np.array([codes[g] for g in groups])
    import scipy.sparse as sp

    onehot = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(names), len(rows)))
    sums = np.asarray((onehot @ x).todense())
    return names, normalize(sums)


def _featurizer(*text_lists) -> Featurizer | None:
    keys = sorted(set(k for texts in text_lists for k in clustering_key(pd.Series(texts, dtype="str")).dropna()))
    if len(keys) < 2:
        return None
    step = max(1, len(keys) // _FIT_TEXTS)
    return Featurizer().fit(keys[::step][:_FIT_TEXTS])


def nearest_intents(topics: pd.DataFrame, examples: pd.DataFrame) -> pd.DataFrame:
    """For each topic (``topics``: columns ``topic``, ``text``, one row per message of the topic), the
    nearest existing intent (``examples``: :func:`intent_examples`): columns ``topic``, ``nearest_intent``
    (missing without intents), ``similarity`` (cosine of the centroids, NaN without intents), one row per
    topic in ascending id order.

    Examples
    --------
    >>> ex = pd.DataFrame({"intent": ["refund", "refund", "greet"], "text": ["refund please", "my refund", "hello"]})
    >>> gaps = pd.DataFrame({"topic": [1, 1], "text": ["where is the refund", "refund status"]})
    >>> nearest_intents(gaps, ex)["nearest_intent"].tolist()
    ['refund']
    """
    ids = sorted(set(int(t) for t in topics["topic"])) if len(topics) else []
    out = pd.DataFrame({"topic": pd.Series(ids, dtype="int64"),
                        "nearest_intent": pd.Series([None] * len(ids), dtype="str"),
                        "similarity": pd.Series([np.nan] * len(ids), dtype="float64")})
    if not ids or len(examples) == 0:
        return out
    feat = _featurizer(examples["text"].tolist(), topics["text"].tolist())
    if feat is None:
        return out
    intents, centroids = _centroids(examples["intent"].tolist(), examples["text"].tolist(), feat)
    names, topic_centroids = _centroids([str(int(t)) for t in topics["topic"]], topics["text"].tolist(), feat)
    sims = topic_centroids @ centroids.T
    best = np.argmax(sims, axis=1)
    by_topic = {int(n): (intents[b], float(sims[i, b])) for i, (n, b) in enumerate(zip(names, best))}
    out["nearest_intent"] = pd.Series([by_topic[t][0] for t in ids], dtype="str")
    out["similarity"] = pd.Series([by_topic[t][1] for t in ids], dtype="float64")
    return out


def overlapping_intents(messages: pd.DataFrame, *, fallback_intent: str | None = None,
                        threshold: float = DEFAULT_THRESHOLD, min_similarity: float = 0.5,
                        min_confusion: float = 0.1) -> pd.DataFrame:
    """Pairs of intents that overlap (module docstring): columns ``intent_a``, ``intent_b`` (a < b),
    ``similarity``, ``confusion_count``, ``confusion_rate`` (NaN without labels), ``reason``. Empty (typed)
    without intents.

    Examples
    --------
    >>> m = pd.DataFrame({"speaker": "user", "intent": ["refund", "refund", "return", "greet"],
    ...                   "text": ["refund my order", "refund please", "return my order please", "hello there"]})
    >>> overlapping_intents(m, min_similarity=0.3)[["intent_a", "intent_b"]].values.tolist()
    [['refund', 'return']]
    """
    for name, value in (("min_similarity", min_similarity), ("min_confusion", min_confusion)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
    cols = {"intent_a": "str", "intent_b": "str", "similarity": "float64", "confusion_count": "int64",
            "confusion_rate": "float64", "reason": "str"}
    empty = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    examples = intent_examples(messages, fallback_intent=fallback_intent, threshold=threshold)
    if examples["intent"].nunique() < 2:
        return empty
    feat = _featurizer(examples["text"].tolist())
    if feat is None:
        return empty
    names, centroids = _centroids(examples["intent"].tolist(), examples["text"].tolist(), feat)
    sims = centroids @ centroids.T
    confusion = np.zeros((len(names), len(names)))
    support = np.zeros(len(names))
    labelled = False
    if {"intent", "true_intent"} <= set(messages.columns):
        users = messages["speaker"].eq("user").fillna(False) if "speaker" in messages.columns else \
            pd.Series(True, index=messages.index)
        pairs = messages.loc[users & messages["true_intent"].notna() & messages["intent"].notna(),
                             ["true_intent", "intent"]].astype("str")
        index = {n: i for i, n in enumerate(names)}
        pairs = pairs[pairs["true_intent"].isin(index) & pairs["intent"].isin(index)]
        if len(pairs):
            labelled = True
            t = pairs["true_intent"].map(index).to_numpy()
            p = pairs["intent"].map(index).to_numpy()
            np.add.at(confusion, (t, p), 1)
            support = np.bincount(t, minlength=len(names)).astype(float)
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            count = int(confusion[i, j] + confusion[j, i])
            den = support[i] + support[j]
            rate = count / den if labelled and den > 0 else np.nan
            similar = sims[i, j] >= min_similarity
            confused = not np.isnan(rate) and rate >= min_confusion and count > 0
            if similar or confused:
                reason = " and ".join(r for r, ok in (("similar examples", similar), ("confused", confused)) if ok)
                rows.append((names[i], names[j], float(sims[i, j]), count, rate, reason))
    if not rows:
        return empty
    out = pd.DataFrame(rows, columns=list(cols)).astype(cols)
    out = out.sort_values(["confusion_rate", "similarity", "intent_a", "intent_b"],
                          ascending=[False, False, True, True], na_position="last", kind="stable")
    return out.reset_index(drop=True)


def intent_name(label: str, *, prefix: str = "gap_") -> str:
    """A safe intent name from a topic label: ASCII letters, digits and ``_`` only, lower case, at most 60
    characters, starting with ``prefix`` (``gap_topic`` when nothing is left).

    Examples
    --------
    >>> intent_name("cancel subscription, refund"), intent_name('"¿Dónde está?"'), intent_name("!!!")
    ('gap_cancel_subscription_refund', 'gap_donde_esta', 'gap_topic')
    """
    text = unicodedata.normalize("NFKD", str(label)).encode("ascii", "ignore").decode("ascii").lower()
    slug = _SLUG.sub("_", text).strip("_")[:60 - len(prefix)].strip("_")
    return f"{prefix}{slug or 'topic'}"


def _clean_line(text) -> str:
    text = "" if text is None else str(text)
    text = _LINE_BREAKS.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    text = _ANNOTATION.sub("] ", text)
    return _SPACES.sub(" ", text).strip()


def training_examples(texts, *, intent: str, limit: int | None = None) -> pd.DataFrame:
    """Texts as training examples of ``intent``: columns ``intent``, ``text``; each text one clean line
    (module docstring), empty ones and repeats (by clustering key) dropped, first occurrence kept; at most
    ``limit`` rows.

    Examples
    --------
    >>> training_examples(["Where's my\\nrefund?", "where's my refund?", " ", "x"], intent="gap_refund").values.tolist()
    [['gap_refund', "Where's my refund?"], ['gap_refund', 'x']]
    """
    if not isinstance(intent, str) or not intent.strip() or _clean_line(intent) != intent.strip():
        raise ConfigError(f"intent must be a one-line name, got {intent!r}")
    lines = pd.Series([_clean_line(t) for t in texts], dtype="str")
    lines = lines[lines.str.len() > 0]
    keys = clustering_key(lines)
    lines = lines[~keys.duplicated()]
    if limit is not None:
        lines = lines.head(int(limit))
    return pd.DataFrame({"intent": pd.Series([intent.strip()] * len(lines), dtype="str"),
                         "text": lines.reset_index(drop=True).astype("str")})


def examples_csv(examples: pd.DataFrame) -> bytes:
    """The examples as CSV bytes (``intent,text``; formula cells escaped).

    Examples
    --------
    >>> examples_csv(pd.DataFrame({"intent": ["a"], "text": ["=1+1"]})).decode().splitlines()
    ['intent,text', "a,'=1+1"]
    """
    return to_csv_bytes(examples[["intent", "text"]])


def rasa_nlu_yaml(examples: pd.DataFrame) -> str:
    """The examples as Rasa NLU training data (YAML, format 3.1), one block per intent in order of first
    appearance (module docstring).

    Examples
    --------
    >>> print(rasa_nlu_yaml(pd.DataFrame({"intent": ["gap_x", "gap_x"], "text": ["a: b # c", "[x](y)"]})), end="")
    version: "3.1"
    nlu:
    - intent: gap_x
      examples: |
        - a: b # c
        - [x] (y)
    """
    lines = ['version: "3.1"', "nlu:"]
    if len(examples) == 0:
        return 'version: "3.1"\nnlu: []\n'
    for intent in pd.unique(examples["intent"].astype("str")):
        if not _SAFE_INTENT.fullmatch(intent):
            raise ConfigError(f"intent name {intent!r} is not a safe Rasa intent name (letters, digits, _ . -); "
                              f"use e.g. {intent_name(intent, prefix='')!r}")
        texts = training_examples(examples.loc[examples["intent"].astype("str") == intent, "text"],
                                  intent=intent)["text"]
        if len(texts) == 0:
            continue
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {t}" for t in texts)
    if len(lines) == 2:
        return 'version: "3.1"\nnlu: []\n'
    return "\n".join(lines) + "\n"
