"""Saved funnels (metrics/funnel/store.py): save/list/load/copy/rename/delete, validation,
persistence across connections and two concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from metrics.funnel import store as fs
from metrics.errors import ConfigError, StoreError
from metrics.funnel import DEFAULT_LEAD_FUNNEL, Stage

TWO = [Stage("inquiry", "event:inquiry"), Stage("paid", "field:converted=true")]


def test_save_load_round_trip_and_listing(memory_db):
    fs.save_funnel(memory_db, "  Lead gen ", DEFAULT_LEAD_FUNNEL)
    fs.save_funnel(memory_db, "another", TWO)
    assert fs.load_funnel(memory_db, "Lead gen") == list(DEFAULT_LEAD_FUNNEL)
    listing = fs.list_funnels(memory_db)
    # sorted case-insensitively: "another" before "Lead gen"
    assert listing["name"].tolist() == ["another", "Lead gen"]
    assert listing["stage_count"].tolist() == [2, 4]
    assert listing["stages"].iloc[0] == "inquiry → paid"
    stored = memory_db.execute(f"SELECT stages FROM {fs.TABLE} WHERE name = ?", ["another"]).fetchone()[0]
    assert json.loads(stored) == [{"name": "inquiry", "rule": "event:inquiry"},
                                  {"name": "paid", "rule": "field:converted=true"}]


def test_overwrite_keeps_created_at(memory_db):
    fs.save_funnel(memory_db, "f", TWO)
    first = memory_db.execute(f"SELECT created_at FROM {fs.TABLE} WHERE name = 'f'").fetchone()[0]
    fs.save_funnel(memory_db, "f", TWO[:1])
    assert fs.load_funnel(memory_db, "f") == TWO[:1]
    assert memory_db.execute(f"SELECT created_at FROM {fs.TABLE} WHERE name = 'f'").fetchone()[0] == first
    with pytest.raises(ConfigError, match="a funnel named 'f' already exists"):
        fs.save_funnel(memory_db, "f", TWO, overwrite=False)
    assert len(fs.list_funnels(memory_db)) == 1


def test_copy_rename_delete(memory_db):
    fs.save_funnel(memory_db, "a", TWO)
    assert fs.copy_funnel(memory_db, "a", "b") == TWO
    assert fs.list_funnels(memory_db)["name"].tolist() == ["a", "b"]
    with pytest.raises(ConfigError, match="'b' already exists"):
        fs.copy_funnel(memory_db, "a", "b")
    fs.rename_funnel(memory_db, "b", "c")
    assert fs.list_funnels(memory_db)["name"].tolist() == ["a", "c"]
    with pytest.raises(ConfigError, match="'a' already exists"):
        fs.rename_funnel(memory_db, "c", "a")
    fs.rename_funnel(memory_db, "c", "C")  # a change of case only
    assert fs.funnel_exists(memory_db, "C") and not fs.funnel_exists(memory_db, "c")
    assert fs.delete_funnel(memory_db, "a") is True
    assert fs.delete_funnel(memory_db, "a") is False
    assert fs.list_funnels(memory_db)["name"].tolist() == ["C"]
    with pytest.raises(ConfigError, match=r"no saved funnel named 'zzz'; saved funnels: 'C'"):
        fs.load_funnel(memory_db, "zzz")
    with pytest.raises(ConfigError, match="no saved funnel named 'x'"):
        fs.copy_funnel(memory_db, "x", "y")
    with pytest.raises(ConfigError, match="no saved funnel named 'x'"):
        fs.rename_funnel(memory_db, "x", "y")


@pytest.mark.parametrize("name, fragment", [
    ("", "is empty"), ("   ", "is empty"), (None, "is empty"),
    ("x" * 81, "81 characters"), ("two\nlines", "line break"),
])
def test_bad_names(memory_db, name, fragment):
    with pytest.raises(ConfigError, match=fragment):
        fs.save_funnel(memory_db, name, TWO)
    assert len(fs.list_funnels(memory_db)) == 0


def test_bad_definitions_are_not_saved(memory_db):
    with pytest.raises(ConfigError, match="no stages"):
        fs.save_funnel(memory_db, "f", [])
    with pytest.raises(ConfigError, match="duplicate stage name"):
        fs.save_funnel(memory_db, "f", [Stage("a", "event:x"), Stage("a", "event:y")])
    with pytest.raises(ConfigError, match="invalid regex"):
        fs.save_funnel(memory_db, "f", ["a=user~("])
    assert len(fs.list_funnels(memory_db)) == 0


def test_unreadable_row_raises_store_error(memory_db):
    memory_db[fs.TABLE].insert({"name": "bad", "stages": "{not json", "created_at": "x", "updated_at": "x"})
    with pytest.raises(StoreError, match="saved funnel 'bad' is unreadable"):
        fs.load_funnel(memory_db, "bad")
    assert fs.list_funnels(memory_db)["stages"].tolist() == ["(unreadable)"]


def test_empty_store_lists_nothing(memory_db):
    listing = fs.list_funnels(memory_db)
    assert len(listing) == 0 and list(listing.columns) == ["name", "stage_count", "stages", "created_at",
                                                           "updated_at"]


def test_persists_across_connections(db_path):
    from metrics import store

    db = store.connect(str(db_path))
    fs.save_funnel(db, "kept", TWO)
    db.close()
    again = store.connect(str(db_path))
    assert fs.load_funnel(again, "kept") == TWO
    again.close()


_WRITER = """
import sys
from metrics import store
from metrics.funnel import store as fs
from metrics.funnel import Stage
db = store.connect(sys.argv[1])
for i in range(60):
    fs.save_funnel(db, f"{sys.argv[2]}-{i}", [Stage("s", f"event:e{i}")])
    fs.save_funnel(db, "shared", [Stage("s", f"event:{sys.argv[2]}{i}")])
"""


def test_two_concurrent_writers_lose_nothing(db_path):
    from metrics import store

    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), tag], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for tag in ("p", "q")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    db = store.connect(str(db_path))
    names = set(fs.list_funnels(db)["name"])
    # 60 own funnels per writer + the one both keep replacing
    assert len(names) == 121 and {"p-59", "q-0", "shared"} <= names
    assert fs.load_funnel(db, "shared")[0].rule.name in {"p59", "q59"}
    db.close()
