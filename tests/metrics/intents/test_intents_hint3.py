"""The published HINT3 tables (Arora et al., EMNLP 2020 Insights workshop) reproduced from the
shared predictions by metrics.intents.threshold_table.

HINT3's definitions (read off its README and confirmed by the reproduction below): at threshold t
a prediction whose score is below t becomes NO_NODES_DETECTED (a score equal to t is kept);
Accuracy and Weighted F1 (sklearn, average="weighted") are over every test sentence; Inscope
Accuracy is the accuracy on sentences whose label is not NO_NODES_DETECTED; OOS Recall is the
share of NO_NODES_DETECTED sentences predicted as NO_NODES_DETECTED; MCC is sklearn's
matthews_corrcoef. Each row of the preds CSV is one utterance (its own conversation).

The frames are built here with pandas using the loader's mapping (sentence->text,
label->true_intent, predicted_node->intent, predicted_node_score->confidence), so this test does
not depend on the loader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import classification_report

from conftest import SHARED_DATA, shared_path
from metrics import intents as I

pytestmark = pytest.mark.shared_data

OOS = "NO_NODES_DETECTED"
BOTS = ("curekart", "powerplay11")
COLUMNS = {"Accuracy": "accuracy", "Weighted F1": "weighted_f1", "Inscope Accuracy": "in_scope_accuracy",
           "OOS Recall": "out_of_scope_recall", "MCC": "mcc"}


def _cases() -> list:
    """Every results/*.csv of curekart or powerplay11 (full and subset) that has a preds/*.csv."""
    hint3 = SHARED_DATA / "hint3"
    if not (hint3 / "results").is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{hint3} is absent"))]
    names = sorted(p.stem for p in (hint3 / "results").glob("*.csv") if (hint3 / "preds" / p.name).exists())
    return [n for n in names if n.split("_")[1] in BOTS]


CASES = _cases()


def hint3_messages(name: str) -> pd.DataFrame:
    raw = pd.read_csv(shared_path("hint3", "preds", f"{name}.csv"))
    n = len(raw)
    return pd.DataFrame({
        "conversation_id": pd.Series([f"{name}-{i + 1}" for i in range(n)], dtype="str"),
        "timestamp": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"),
        "speaker": pd.Series(["user"] * n, dtype="str"),
        "text": raw["sentence"].astype("str"),
        "row": np.arange(1, n + 1),
        "intent": raw["predicted_node"].astype("str"),
        "confidence": raw["predicted_node_score"].astype(float),
        "true_intent": raw["label"].astype("str"),
    })


def test_every_system_is_covered():
    # 5 systems (bert, dialogflow, haptik, luis, rasa) x 2 bots x (full, subset) in the shared copy.
    if CASES and not isinstance(CASES[0], str):
        pytest.skip("HINT3 data absent")
    systems = {name.split("_")[0] for name in CASES}
    assert systems == {"bert", "dialogflow", "haptik", "luis", "rasa"}
    for system in systems:
        for bot in BOTS:
            assert f"{system}_{bot}" in CASES and f"{system}_{bot}_subset" in CASES


@pytest.mark.parametrize("name", CASES)
def test_published_table_reproduced(name):
    published = pd.read_csv(shared_path("hint3", "results", f"{name}.csv"))
    messages = hint3_messages(name)
    ours = I.threshold_table(messages, thresholds=published["Threshold"].tolist(), fallback_intent=OOS)
    assert ours["threshold"].tolist() == sorted(published["Threshold"].tolist())
    published = published.sort_values("Threshold").reset_index(drop=True)
    for theirs, mine in COLUMNS.items():
        np.testing.assert_allclose(ours[mine].to_numpy(), published[theirs].to_numpy(), rtol=0, atol=5e-7,
                                   err_msg=f"{name}: {theirs}")
    # Every sentence is one conversation: the escalation rate is the share below the threshold.
    below = [(messages["confidence"] < t).mean() for t in ours["threshold"]]
    np.testing.assert_allclose(ours["escalation_rate"], below, atol=1e-12)


@pytest.mark.parametrize("name", [c for c in CASES if isinstance(c, str) and c.startswith("rasa_")] or CASES[:1])
def test_per_intent_matches_classification_report(name):
    # Rasa's intent_report.json is sklearn's classification_report(output_dict=True).
    messages = hint3_messages(name)
    table = I.per_intent_table(messages, fallback_intent=OOS).set_index("intent")
    report = classification_report(messages["true_intent"].to_numpy(dtype=object),
                                   messages["intent"].to_numpy(dtype=object), output_dict=True, zero_division=0)
    labels = [k for k in report if k not in ("accuracy", "macro avg", "weighted avg", "micro avg")]
    assert sorted(table.index) == sorted(labels)
    for label in labels:
        got = table.loc[label]
        want = report[label]
        assert round(got["precision"], 6) == round(want["precision"], 6)
        assert round(got["recall"], 6) == round(want["recall"], 6)
        assert round(got["f1"], 6) == round(want["f1-score"], 6)
        assert got["support"] == want["support"]
    r = I.intent_report(messages, fallback_intent=OOS)
    assert round(r.macro_f1, 6) == round(report["macro avg"]["f1-score"], 6)
    assert round(r.weighted_f1, 6) == round(report["weighted avg"]["f1-score"], 6)
    assert round(r.accuracy, 6) == round(report["accuracy"], 6)
