"""A separate labels file joined on message_id feeds the intent metrics."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import apptest_page, messages_frame
from metrics import intents
from metrics.errors import ValidationError
from metrics.io.labels import apply_label_file, read_labels


def test_read_labels_uses_synonyms_and_drops_empty_labels():
    labels = read_labels(b"msg_id,label\nm1,billing\nm2,\nm3,refund\n", "labels.csv")
    assert labels.values.tolist() == [["m1", "billing"], ["m3", "refund"]]
    assert labels.attrs["empty_labels"] == 1


def test_a_labels_file_without_ids_is_refused_with_the_file_named():
    with pytest.raises(ValidationError, match="no message_id column") as info:
        read_labels(b"text,label\nhi,greet\n", "bad_labels.csv")
    assert info.value.problems[0].file == "bad_labels.csv"


def test_labels_change_the_accuracy_as_computed_by_hand():
    m = messages_frame([
        dict(conversation_id="c1", message_id="m1", speaker="user", text="my bill", intent="billing", confidence=0.9),
        dict(conversation_id="c1", message_id="m2", speaker="user", text="refund me", intent="billing",
             confidence=0.8),
        dict(conversation_id="c2", message_id="m3", speaker="user", text="hi", intent="greet", confidence=0.95),
    ])
    before = m.copy()
    labels = read_labels(b"message_id,true_intent\nm1,billing\nm2,refund\nm9,greet\n", "l.csv")
    labelled, matched = apply_label_file(m, labels)
    pd.testing.assert_frame_equal(m, before)  # input untouched
    assert matched == 2  # m9 is not in the dataset
    report = intents.intent_report(labelled)
    # m1 billing->billing right, m2 refund->billing wrong: 1 of 2 labelled messages correct
    assert (report.labelled_count, report.correct_count) == (2, 1)
    assert report.accuracy == pytest.approx(0.5)


def test_intents_page_applies_an_uploaded_labels_file(db_path):
    at = apptest_page("pages/4_Intents.py")
    at.file_uploader(key="intents_labels_upload").set_value(
        ("labels.csv", b"message_id,true_intent\nmsg-0000001,billing\n", "text/csv")).run()
    assert not at.exception
    assert any("1 label(s) read" in c.value for c in at.caption)
