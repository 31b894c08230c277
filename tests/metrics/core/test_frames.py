"""metrics.core.frames.filter_rows equals pandas' boolean indexing, on every dtype of a validated frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics.core.frames import filter_rows


def _frame(n: int) -> pd.DataFrame:
    return messages_frame([{"conversation_id": f"c{i % 3}", "speaker": "user" if i % 2 else None,
                            "text": None if i == 4 else f"text {i} é", "timestamp": None if i == 2 else
                            f"2026-08-0{1 + i % 9}T10:00:00Z", "confidence": None if i == 1 else i / 10,
                            "is_test": None if i == 3 else bool(i % 2)} for i in range(n)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=12), st.booleans())
def test_filter_rows_equals_a_boolean_mask(keep, shuffled_index):
    frame = _frame(len(keep))
    if shuffled_index:
        frame.index = np.arange(len(frame))[::-1] * 10  # labels other than 0..n-1 are kept
    mask = np.array(keep, dtype=bool)
    before = frame.copy(deep=True)
    pd.testing.assert_frame_equal(filter_rows(frame, mask), frame[mask])
    pd.testing.assert_frame_equal(frame, before)  # not modified


def test_a_mask_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="2 values for 3 rows"):
        filter_rows(_frame(3), [True, False])
