"""A separate labels file: human ``true_intent`` labels joined to the messages on ``message_id``.

Teams often label intents in a spreadsheet apart from the transcript export. :func:`read_labels`
reads such a file (any format :mod:`metrics.io.readers` reads; columns found by the usual synonyms:
``message_id``/``msg_id``, ``true_intent``/``label``) and returns ``message_key, true_intent`` rows
for :func:`metrics.intents.apply_labels` with ``keys=messages["message_id"]``.
"""

from __future__ import annotations

import pandas as pd

from metrics.errors import Problem, ValidationError
from metrics.io.readers import read_table
from metrics.io.validate import detect_mapping

__all__ = ["read_labels", "apply_label_file"]


def read_labels(data: bytes, file_name: str) -> pd.DataFrame:
    """Labels file -> DataFrame ``message_key, true_intent`` (one row per labelled message).

    Rows with an empty label are dropped and counted in ``frame.attrs["empty_labels"]``; a file
    without a message id or a label column raises :class:`ValidationError` naming the file.

    Examples
    --------
    >>> read_labels(b"msg_id,label\\nm1,billing\\nm2,\\n", "labels.csv").values.tolist()
    [['m1', 'billing']]
    """
    table = read_table(data, file_name)
    mapping = detect_mapping(table.frame.columns)
    missing = [c for c in ("message_id", "true_intent") if c not in mapping]
    if missing:
        raise ValidationError([Problem(table.file, None, None, None,
                                       f"the labels file has no {' or '.join(missing)} column (columns: "
                                       + ", ".join(map(str, list(table.frame.columns)[:12])) + ")",
                                       "give it a message_id column and a true_intent (or label) column")])
    ids = table.frame[mapping["message_id"]].astype("str").str.strip()
    labels = table.frame[mapping["true_intent"]].astype("str").str.strip()
    keep = ids.notna() & (ids != "") & labels.notna() & (labels != "")
    out = pd.DataFrame({"message_key": ids[keep].to_numpy(), "true_intent": labels[keep].to_numpy()})
    out.attrs["empty_labels"] = int((~keep).sum())
    return out


def apply_label_file(messages: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Overlay ``labels`` (from :func:`read_labels`) on ``messages`` by message id.

    Returns ``(messages with true_intent, matched_count)``; without a ``message_id`` column
    nothing can match and the messages come back unchanged with 0.
    """
    from metrics.intents import apply_labels

    if "message_id" not in messages.columns or len(labels) == 0:
        return messages.copy(), 0
    matched = int(messages["message_id"].isin(set(labels["message_key"])).sum())
    return apply_labels(messages, labels, keys=messages["message_id"].astype("str")), matched
