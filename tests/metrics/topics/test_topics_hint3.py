"""Topics and gaps against human labels: HINT3 (Arora et al., EMNLP 2020 Insights workshop), real queries to
three live bots, read at test time from ../shared/data/hint3 (skipped with the reason when absent).

Agreement: each v2 file is loaded by the Chatlens loader (``sentence`` -> text, ``label`` -> true_intent, one
conversation per row) and clustered with the true number of intents (``n_topics``; small talk kept, since
"hi" is an utterance to cluster here); NMI and ARI (scikit-learn) against the labels. Test files without
their out-of-scope rows (``NO_NODES_DETECTED`` is not an intent). The floors sit just below what was measured
(README "Topics and knowledge gaps").

Gaps: the preds files hold each test utterance's predicted intent and confidence from five NLU systems. Gap
topics are found with the default options (threshold 0.6); the messages of the three top-ranked gap topics
should be mostly truly out-of-scope: precision >= 0.70, and above the file's own out-of-scope share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from conftest import SHARED_DATA, shared_path
from metrics.io.loaders import load_path
from metrics.topics import TopicOptions, discover_topics, gap_report

pytestmark = pytest.mark.shared_data

OOS = "NO_NODES_DETECTED"
#: file -> (NMI floor, ARI floor); measured 0.680/0.362, 0.636/0.364, 0.796/0.440, 0.669/0.394, 0.528/0.163,
#: 0.709/0.208 (seed 0; character 2-4 grams).
AGREEMENT = {
    "train/sofmattress_train.csv": (0.65, 0.33),
    "train/curekart_train.csv": (0.60, 0.33),
    "train/powerplay11_train.csv": (0.77, 0.40),
    "test/sofmattress_test.csv": (0.64, 0.33),
    "test/curekart_test.csv": (0.49, 0.13),
    "test/powerplay11_test.csv": (0.68, 0.18),
}
MEAN_NMI_FLOOR = 0.64  # measured 0.670
PREDS = [f"{system}_{bot}" for system in ("bert", "dialogflow", "haptik", "luis", "rasa")
         for bot in ("curekart", "powerplay11")]


def _agreement(name: str) -> tuple[float, float]:
    frame = load_path(str(shared_path("hint3", "dataset", "v2", *name.split("/")))).frame
    frame = frame[frame["true_intent"] != OOS].reset_index(drop=True)
    k = frame["true_intent"].nunique()
    model = discover_topics(frame, options=TopicOptions(n_topics=k, skip_small_talk=False))
    joined = model.assignments.merge(frame[["conversation_id", "row", "true_intent"]], on=["conversation_id", "row"])
    assert len(joined) == len(frame) and model.n_topics == k
    return (normalized_mutual_info_score(joined["true_intent"], joined["topic"]),
            adjusted_rand_score(joined["true_intent"], joined["topic"]))


@pytest.fixture(scope="module")
def measured():
    if not (SHARED_DATA / "hint3").is_dir():
        pytest.skip(f"{SHARED_DATA / 'hint3'} is absent (HINT3 is read from ../shared/data at test time)")
    return {name: _agreement(name) for name in AGREEMENT}


@pytest.mark.parametrize("name", list(AGREEMENT))
def test_topics_agree_with_human_intents(measured, name):
    nmi, ari = measured[name]
    nmi_floor, ari_floor = AGREEMENT[name]
    print(f"{name}: NMI {nmi:.3f} ARI {ari:.3f}")
    assert nmi >= nmi_floor and ari >= ari_floor


def test_mean_nmi(measured):
    assert np.mean([nmi for nmi, _ in measured.values()]) >= MEAN_NMI_FLOOR


def _preds(name: str) -> pd.DataFrame:
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


@pytest.mark.parametrize("name", PREDS)
def test_out_of_scope_utterances_lead_the_gap_topics(name):
    messages = _preds(name)
    report = gap_report(messages)
    assert report.fallback_intent == OOS
    truth = messages.set_index("conversation_id")["true_intent"].eq(OOS)
    top = report.topics["topic"].head(3).tolist()
    top_messages = report.messages[report.messages["topic"].isin(top)]
    precision = float(truth.loc[top_messages["conversation_id"]].mean())
    base = float(truth.mean())
    print(f"{name}: top-3 gap topics precision {precision:.3f} (out-of-scope share {base:.3f})")
    assert precision >= 0.70 and precision > base + 0.05
