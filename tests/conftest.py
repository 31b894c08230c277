"""Shared fixtures. One test file per feature; feature-specific fixtures stay in their file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("CHATLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path into ../shared/data; skips the calling test with a reason when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real export {path} is absent (../shared/data is not beside the project)")
    return path


@pytest.fixture
def shared_data():
    return shared_path


def messages_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a validated-format frame by hand (for golden fixtures).

    Each row needs conversation_id, speaker, text and optionally timestamp
    (any string pandas parses; naive means UTC) plus optional canonical fields.
    """
    frame = pd.DataFrame(rows)
    for col in ("conversation_id", "speaker", "text"):
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), dtype="str")
    if "timestamp" in frame.columns:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="mixed").astype("datetime64[ns, UTC]")
    else:
        frame["timestamp"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for col in ("conversation_id", "speaker", "text", "message_id", "user_id", "channel", "intent",
                "true_intent", "event", "model_version", "outcome", "escalation_reason", "thumbs",
                "topic", "segment", "utm_source", "utm_campaign"):
        if col in frame.columns:
            frame[col] = frame[col].astype("str").where(frame[col].notna(), None).astype("str")
    for col in ("is_test", "goal_achieved", "survey_solved", "converted"):
        if col in frame.columns:
            frame[col] = frame[col].astype("boolean")
    for col in ("confidence", "rating", "conversion_value"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
    frame["row"] = range(1, len(frame) + 1)
    frame = frame.sort_values(["conversation_id", "timestamp", "row"], kind="stable").reset_index(drop=True)
    return frame


@pytest.fixture
def make_messages():
    return messages_frame


@pytest.fixture
def memory_db():
    """An in-memory sqlite-utils Database with the Chatlens tables."""
    from metrics import store

    db = store.connect(":memory:")
    yield db
    db.close()


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    """A fresh on-disk store, also set as CHATLENS_DB for code under test."""
    path = tmp_path / "chatlens.db"
    monkeypatch.setenv("CHATLENS_DB", str(path))
    return path
