"""Named ROI scenarios in the store (metrics.roi.store)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from conftest import ROOT
from metrics.roi import store as roi_store
from metrics.errors import ConfigError, StoreError
from metrics.roi import RoiInputs

T1 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 1, 2, 9, 0, tzinfo=timezone.utc)


def test_the_table_exists_once_the_store_is_open(memory_db):
    table = memory_db[roi_store.TABLE]  # created by its migration step (tests/metrics/store/test_migrations.py)
    assert table.pks == ["name"]
    assert {c.name for c in table.columns} == {"name", "inputs", "source_dataset_id", "created_at", "updated_at"}


def test_save_and_load_round_trip(memory_db):
    inputs = RoiInputs(lead_conversion_rate=1 / 3, development_cost=36000, amortization_months=12)
    assert roi_store.save_scenario(memory_db, "  Q3 plan ", inputs, dataset_id=4, now=T1) == "Q3 plan"
    assert roi_store.load_scenario(memory_db, "Q3 plan") == inputs
    listing = roi_store.list_scenarios(memory_db)
    assert listing.to_dict("records") == [{"name": "Q3 plan", "source_dataset_id": 4,
                                           "created_at": "2026-01-01T09:00:00+00:00",
                                           "updated_at": "2026-01-01T09:00:00+00:00"}]


def test_saving_again_replaces_inputs_and_keeps_created_at(memory_db):
    roi_store.save_scenario(memory_db, "base", RoiInputs(), now=T1)
    roi_store.save_scenario(memory_db, "base", RoiInputs(leads_monthly=250), now=T2)
    assert roi_store.load_scenario(memory_db, "base").leads_monthly == 250.0
    row = roi_store.list_scenarios(memory_db).iloc[0]
    assert len(roi_store.list_scenarios(memory_db)) == 1
    assert row["created_at"] == "2026-01-01T09:00:00+00:00" and row["updated_at"] == "2026-01-02T09:00:00+00:00"


def test_list_is_sorted_and_empty_before_any_save(memory_db):
    empty = roi_store.list_scenarios(memory_db)
    assert empty.empty and list(empty.columns) == ["name", "source_dataset_id", "created_at", "updated_at"]
    for name in ("b", "a", "c"):
        roi_store.save_scenario(memory_db, name, RoiInputs())
    assert roi_store.list_scenarios(memory_db)["name"].tolist() == ["a", "b", "c"]
    both = roi_store.load_scenarios(memory_db, ["c", "a"])
    assert list(both) == ["c", "a"] and all(v == RoiInputs() for v in both.values())


def test_delete(memory_db):
    roi_store.save_scenario(memory_db, "gone", RoiInputs())
    assert roi_store.delete_scenario(memory_db, "gone") is True
    assert roi_store.delete_scenario(memory_db, "gone") is False
    with pytest.raises(ConfigError, match="'gone'"):
        roi_store.load_scenario(memory_db, "gone")


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 81])
def test_bad_names(memory_db, name):
    with pytest.raises(ConfigError):
        roi_store.save_scenario(memory_db, name, RoiInputs())


def test_bad_inputs_type(memory_db):
    with pytest.raises(ConfigError, match="dict"):
        roi_store.save_scenario(memory_db, "x", {"leads_monthly": 1})


def test_old_rows_missing_fields_take_defaults_and_corrupt_rows_raise(memory_db):
    stamp = "2026-01-01T00:00:00+00:00"
    memory_db[roi_store.TABLE].insert_all([
        {"name": "old", "inputs": json.dumps({"leads_monthly": 5, "retired_field": 1}), "created_at": stamp,
         "updated_at": stamp},
        {"name": "broken", "inputs": "{not json", "created_at": stamp, "updated_at": stamp},
        {"name": "bad", "inputs": json.dumps({"lead_conversion_rate": 7}), "created_at": stamp, "updated_at": stamp},
    ])
    assert roi_store.load_scenario(memory_db, "old") == RoiInputs(leads_monthly=5)
    with pytest.raises(StoreError, match="'broken'"):
        roi_store.load_scenario(memory_db, "broken")
    with pytest.raises(StoreError, match="got 7"):
        roi_store.load_scenario(memory_db, "bad")


def test_deleting_a_dataset_keeps_the_scenarios(memory_db, make_messages):
    from metrics import store

    frame = make_messages([{"conversation_id": "c1", "speaker": "user", "text": "hi",
                            "timestamp": "2024-01-01T10:00:00Z"}])
    saved = store.save_messages(memory_db, frame, dataset_name="d")
    dataset_id = int(store.list_datasets(memory_db)["id"].iloc[0])
    roi_store.save_scenario(memory_db, "from d", RoiInputs(leads_monthly=3), dataset_id=dataset_id)
    store.delete_dataset(memory_db, dataset_id)
    assert saved is not None and len(store.list_datasets(memory_db)) == 0
    assert roi_store.load_scenario(memory_db, "from d").leads_monthly == 3.0


_WRITER = """
import sys
from metrics import store
from metrics.roi import store as roi_store
from metrics.roi import RoiInputs
db = store.connect(sys.argv[1])
tag = sys.argv[2]
for k in range(int(sys.argv[3])):
    roi_store.save_scenario(db, f"{tag}-{k}", RoiInputs(leads_monthly=k))
    roi_store.save_scenario(db, "shared", RoiInputs(leads_monthly=k))
print("done")
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path):
    from metrics import store

    path = tmp_path / "s.db"
    db = store.connect(str(path))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag, "150"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("p", "q")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    names = set(roi_store.list_scenarios(db)["name"])
    assert names == {f"{t}-{k}" for t in "pq" for k in range(150)} | {"shared"}
    assert roi_store.load_scenario(db, "shared").leads_monthly == 149.0
    db.close()
