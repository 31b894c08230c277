"""Where users drop off: the turn of abandonment and the last bot message before it.

A conversation is abandoned when :func:`metrics.outcomes.classify_outcomes` says so (the
abandonment mode and time-out come from :class:`metrics.outcomes.OutcomeRules`).

Definitions
-----------
Abandonment turn
    The user turns the abandoned conversation had (how far the user got before leaving);
    0 means the user never wrote.
Last bot message before drop-off
    The text of the last ``bot`` message of the abandoned conversation, with surrounding
    white space removed and inner runs of white space collapsed. Abandoned conversations
    without a bot message are left out of this view.
``abandonment_rate`` of a bot message
    Abandoned conversations that ended on that bot message / decided (not in_progress)
    conversations whose last bot message was that text: how often the message is the last
    thing users read before leaving.
"""

from __future__ import annotations

import pandas as pd

from metrics.errors import ConfigError
from metrics.outcomes import OutcomeRules, _by_value, outcome_table

__all__ = ["abandonment_table", "abandonment_turns", "last_bot_messages"]


def _clean(text: pd.Series) -> pd.Series:
    # Once per distinct text: most conversations end on one of a few hundred bot messages.
    cleaned = _by_value(text.astype("str"), lambda u: u.str.strip().str.replace(r"\s+", " ", regex=True).array)
    return pd.Series(cleaned, index=text.index, dtype="str")


def abandonment_table(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                      rules: OutcomeRules | None = None) -> pd.DataFrame:
    """One row per abandoned conversation (for drill-down).

    Columns: ``conversation_id``, ``turn`` (its user turns), ``last_bot_text`` (cleaned; NA
    when the bot never wrote), ``rule`` (the abandonment rule that fired). Rollup order.
    Empty input or no abandonment: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "a"], "speaker": ["user", "bot", "bot"],
    ...     "text": ["price?", "Plans start at $5.", "  Want a   demo? "], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-03 10:01"], utc=True)})
    >>> abandonment_table(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-04")).values.tolist()
    [['a', 1, 'Want a demo?', 'silence_after_bot_question']]
    """
    table = outcome_table(messages, rollup, rules=rules)
    out = table.loc[table["outcome"].eq("abandoned"), ["conversation_id", "user_turns", "last_bot_text", "rule"]]
    out = out.rename(columns={"user_turns": "turn"}).reset_index(drop=True)
    out["last_bot_text"] = _clean(out["last_bot_text"])
    out["turn"] = out["turn"].astype("int64")
    return out


def abandonment_turns(messages: pd.DataFrame, rollup: pd.DataFrame, *,
                      rules: OutcomeRules | None = None) -> pd.DataFrame:
    """Histogram of the abandonment turn: abandoned conversations at 0, 1, 2, ... user turns.

    Columns: ``turn`` (every value from 0 to the maximum), ``abandoned_count``,
    ``share_rate`` (of abandoned conversations). No abandonment: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b", "b"], "speaker": ["bot", "user", "bot"],
    ...     "text": ["Hi, how can I help?", "prices", "Which plan?"], "row": [1, 2, 3],
    ...     "timestamp": pd.Series([pd.NaT] * 3, dtype="datetime64[ns, UTC]")})
    >>> abandonment_turns(m, conversation_rollup(m))["abandoned_count"].tolist()
    [1, 1]
    """
    table = abandonment_table(messages, rollup, rules=rules)
    if len(table) == 0:
        return pd.DataFrame({"turn": pd.Series([], dtype="int64"), "abandoned_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64")})
    counts = table["turn"].value_counts().reindex(range(0, int(table["turn"].max()) + 1), fill_value=0)
    out = pd.DataFrame({"turn": counts.index.astype("int64"), "abandoned_count": counts.to_numpy().astype("int64")})
    out["share_rate"] = out["abandoned_count"] / len(table)
    return out


def last_bot_messages(messages: pd.DataFrame, rollup: pd.DataFrame, *, rules: OutcomeRules | None = None,
                      top: int = 10) -> pd.DataFrame:
    """The ``top`` bot messages most often read last before an abandonment.

    Columns: ``text``, ``abandoned_count`` (abandoned conversations whose last bot message
    is ``text``), ``share_rate`` (of abandoned conversations with a bot message),
    ``ending_count`` (decided conversations whose last bot message is ``text``),
    ``abandonment_rate`` (``abandoned_count / ending_count``). Sorted by
    ``abandoned_count`` (largest first), then text. No abandonment: empty frame.
    ``top < 1`` raises ConfigError.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b", "c", "c"],
    ...     "speaker": ["user", "bot", "user", "bot", "user", "bot"],
    ...     "text": ["x", "Your email?", "y", "Your email?", "z", "Done."],
    ...     "goal_achieved": [None, None, True, True, None, None], "row": [1, 2, 3, 4, 5, 6],
    ...     "timestamp": pd.Series([pd.NaT] * 6, dtype="datetime64[ns, UTC]")})
    >>> m["goal_achieved"] = m["goal_achieved"].astype("boolean")
    >>> last_bot_messages(m, conversation_rollup(m)).values.tolist()
    [['Your email?', 1, 1.0, 2, 0.5]]
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a whole number >= 1, got {top!r}")
    cols = ["text", "abandoned_count", "share_rate", "ending_count", "abandonment_rate"]
    table = outcome_table(messages, rollup, rules=rules)
    table = table[table["outcome"].ne("in_progress") & table["last_bot_text"].notna()].copy()
    table["text"] = _clean(table["last_bot_text"])
    abandoned = table[table["outcome"].eq("abandoned")]
    if len(abandoned) == 0:
        return pd.DataFrame({"text": pd.Series([], dtype="str"), "abandoned_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64"),
                             "ending_count": pd.Series([], dtype="int64"),
                             "abandonment_rate": pd.Series([], dtype="float64")})
    counts = abandoned["text"].value_counts()
    out = pd.DataFrame({"text": pd.Series(counts.index, dtype="str"),
                        "abandoned_count": counts.to_numpy().astype("int64")})
    out["share_rate"] = out["abandoned_count"] / len(abandoned)
    out["ending_count"] = out["text"].map(table["text"].value_counts()).astype("int64")
    out["abandonment_rate"] = out["abandoned_count"] / out["ending_count"]
    out = out.sort_values(["abandoned_count", "text"], ascending=[False, True], kind="stable").head(top)
    return out[cols].reset_index(drop=True)
