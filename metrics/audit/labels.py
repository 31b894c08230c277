"""Reviewer intent labels as ``true_intent`` for the Intents page.

On the Audit page a reviewer answers "intent correct?" (yes / no / unsure) for each user
message and, after "no", gives the correct intent. :func:`metrics.audit.store.intent_labels` turns those answers
(table ``audit_labels``, see :mod:`metrics.audit.store`) into one ``true_intent`` per message.

Resolution rule (several reviewers may label the same message)
--------------------------------------------------------------
1. A **"no" with a typed intent** wins: when several reviewers said "no" and named an intent,
   the latest one (by ``saved_at``; on an exact tie the reviewer name that sorts first) gives
   the label. A reviewer who spotted a mistake and named the fix is the strongest signal.
2. Otherwise a **"yes"** labels the message with the intent the bot predicted when the
   reviewer confirmed it (``predicted_intent``; the latest "yes" when several).
3. Otherwise (only "unsure", or "no" without an intent) the message gets **no** label.
"""

from __future__ import annotations

import pandas as pd

from metrics.errors import ConfigError

__all__ = ["resolve_labels"]

_COLUMNS = ["message_key", "true_intent"]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"message_key": pd.Series([], dtype="str"), "true_intent": pd.Series([], dtype="str")})


def resolve_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Apply the module's resolution rule to raw label rows.

    ``labels`` has ``message_key, reviewer, verdict, true_intent, predicted_intent, saved_at``
    (:func:`metrics.audit.store.load_labels`). Returns ``message_key, true_intent`` (``str``),
    one row per labelled message, sorted by message_key; empty input gives an empty frame
    with those columns. The input is not modified.

    Examples
    --------
    >>> raw = pd.DataFrame({"message_key": ["m1", "m1", "m2", "m3"], "reviewer": ["ann", "ben", "ann", "ann"],
    ...     "verdict": ["yes", "no", "yes", "unsure"], "true_intent": [None, "refund", None, None],
    ...     "predicted_intent": ["billing", "billing", "greet", "greet"],
    ...     "saved_at": ["2026-08-03T10:00Z", "2026-08-03T09:00Z", "2026-08-03T10:00Z", "2026-08-03T10:00Z"]})
    >>> resolve_labels(raw).values.tolist()
    [['m1', 'refund'], ['m2', 'greet']]
    """
    needed = ["message_key", "reviewer", "verdict", "true_intent", "predicted_intent", "saved_at"]
    missing = [c for c in needed if c not in labels.columns]
    if missing:
        raise ConfigError(f"label rows need the columns {needed}, missing {missing!r}")
    if len(labels) == 0:
        return _empty()
    work = labels[needed].copy()
    for column in needed:
        work[column] = work[column].astype("str")
    work["true_intent"] = work["true_intent"].str.strip().replace("", pd.NA)
    # latest first; on a tie the reviewer that sorts first
    work = work.sort_values(["saved_at", "reviewer"], ascending=[False, True], kind="stable", na_position="last")
    typed_no = work[work["verdict"].eq("no") & work["true_intent"].notna()]
    chosen = typed_no.drop_duplicates("message_key", keep="first").set_index("message_key")["true_intent"]
    yes = work[work["verdict"].eq("yes") & work["predicted_intent"].notna()
               & ~work["message_key"].isin(chosen.index)]
    confirmed = yes.drop_duplicates("message_key", keep="first").set_index("message_key")["predicted_intent"]
    out = pd.concat([chosen, confirmed]).rename("true_intent").rename_axis("message_key").reset_index()
    out = out.sort_values("message_key", kind="stable").reset_index(drop=True)
    return out.astype({"message_key": "str", "true_intent": "str"})[_COLUMNS]
