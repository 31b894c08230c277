"""Two reviewers saving audit scores while a 1M-message ``ingest`` runs on the same store: nothing is lost.

The upload holds the write lock for its whole save (one ``BEGIN IMMEDIATE`` transaction); the reviewers'
saves wait under the busy timeout and go through before or after it. Each writer keeps saving until the
upload has finished *and* it has made at least 1,000 saves, so their saves span the whole upload.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metrics import store
from metrics.audit import store as audit_store
from metrics.audit import CRITERIA
from test_audit_store import _dataset, _round

ROOT = Path(__file__).resolve().parents[3]
CONVERSATIONS = 1000

_WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from metrics import store
from metrics.audit import store as audit_store
from metrics.audit import CRITERIA
path, reviewer, flags = sys.argv[1], sys.argv[2], sys.argv[3]
db = store.connect(path, timeout_seconds=120)
Path(flags + ".ready." + reviewer).touch()
first = last = None
i = 0
while i < 1000 or not Path(flags + ".ingested").exists():
    scores = {c: (i + k) % 5 + 1 for k, c in enumerate(CRITERIA)}
    saved = audit_store.save_score(db, round_id=1, conversation_id=f"c{i % 1000}", reviewer=reviewer,
                                   scores=scores, note=f"{reviewer}-{i}",
                                   labels=[{"message_key": f"m{i % 1000}u", "verdict": "no", "true_intent": reviewer}])
    assert saved.changed, i
    first = first or time.time()
    last = time.time()
    i += 1
    time.sleep(0.002)  # like a person: lets the other writers in between transactions
db.close()
print(i, first, last)
"""


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:
    from data.generate import generate, write_csv

    path = tmp_path_factory.mktemp("million") / "m1.csv"
    write_csv(generate(seed=7, n_conversations=100_000), path)  # 996,785 messages after test traffic
    return path


def test_two_reviewers_lose_no_save_while_a_million_messages_are_ingested(tmp_path, million):
    path = tmp_path / "shared.db"
    db = store.connect(path)
    rid = _round(db, _dataset(db, n=CONVERSATIONS), [f"c{i}" for i in range(CONVERSATIONS)], overlap=1.0)
    db.close()
    flags = str(tmp_path / "flag")
    started = time.time()
    upload = subprocess.Popen([sys.executable, "-m", "metrics", "ingest", str(million), "--db", str(path),
                               "--dataset", "big", "--format", "json"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who, flags, str(ROOT)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in ("ann", "ben")]
    out, err = upload.communicate(timeout=900)
    ingested = time.time()
    Path(flags + ".ingested").touch()
    assert upload.returncode == 0, err
    report = json.loads(out)
    assert (report["new"], report["messages"], report["conversations"]) == (996_785, 996_785, 98_500)
    results = [w.communicate(timeout=600) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [e for _, e in results]
    saves = {}
    for who, (text, _) in zip(("ann", "ben"), results):
        count, first, last = text.split()
        saves[who] = int(count)
        assert saves[who] >= 1000
        assert float(first) < ingested and float(last) >= ingested - 1  # the saves span the upload
    assert started < ingested

    db = store.connect(path)
    scores = audit_store.load_scores(db, rid)
    assert len(scores) == 2 * CONVERSATIONS
    for who, n in saves.items():
        mine = scores[scores["reviewer"] == who].set_index("conversation_id")
        for k in range(CONVERSATIONS):  # every conversation holds that reviewer's last save of it
            last = max(i for i in range(k, n, CONVERSATIONS))
            assert mine.loc[f"c{k}", "note"] == f"{who}-{last}"
            assert mine.loc[f"c{k}", list(CRITERIA)].tolist() == [(last + j) % 5 + 1 for j in range(len(CRITERIA))]
    # every save left exactly one history row: none was lost or merged
    assert db.conn.execute("SELECT count(*) FROM audit_score_history").fetchone()[0] == sum(saves.values())
    assert store.find_dataset(db, "big").message_count == 996_785
    db.close()
