"""One number, one definition: a metric tile's label means one computation on one slice everywhere.

Every page is visited with AppTest (through app.py, so the shell's links resolve) on the built-in sample and on
each real export in ../shared/data; every ``st.metric`` tile's label and value is collected. The test fails when
one label shows two values, within a page or across pages, and lists every such label with where each value
was shown.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SHARED_DATA

PAGES = ["app.py", "pages/2_Engagement.py", "pages/3_Outcomes.py", "pages/4_Intents.py", "pages/5_Sentiment.py",
         "pages/6_Funnel.py", "pages/7_ROI.py", "pages/8_Audit.py", "pages/9_Improvement.py",
         "pages/10_Topics.py", "pages/11_Conversations.py"]

EXPORTS = {
    "rasa": ("rasa_tracker_customer_support", "trackers.jsonl"),
    "twcs": ("twcs_sample", "twcs.csv"),
    "hint3": ("hint3", "dataset", "v1", "test", "sofmattress_test.csv"),
}


def _copilot() -> tuple[str, ...] | None:
    found = sorted((SHARED_DATA / "copilot_studio_transcripts").rglob("conversationtranscripts.json")) \
        if SHARED_DATA.exists() else []
    return found[0].relative_to(SHARED_DATA).parts if found else None


def _convai() -> tuple[str, ...] | None:
    found = sorted((SHARED_DATA / "convai2_wild" / "data").glob("*.json")) if SHARED_DATA.exists() else []
    return found[0].relative_to(SHARED_DATA).parts if found else None


def collect_tiles(dataset_id: int | None = None) -> dict[str, set[tuple[str, str]]]:
    """``{label: {(value, page), ...}}`` over every page's metric tiles for the active dataset."""
    tiles: dict[str, set[tuple[str, str]]] = defaultdict(set)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    if dataset_id is not None:
        at.query_params["dataset"] = str(dataset_id)
    for page in PAGES:
        if page != "app.py":
            at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        for tile in at.metric:
            tiles[tile.label].add((str(tile.value), page))
    return tiles


def disagreements(tiles: dict[str, set[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    """The labels shown with more than one value, with every (value, page)."""
    return {label: sorted(seen) for label, seen in tiles.items() if len({v for v, _ in seen}) > 1}


def test_disagreements_are_found():
    """The check itself: one label with two values is reported, the same value on two pages is not."""
    tiles = {"Escalation rate": {("20.5%", "app.py"), ("16.7%", "pages/3_Outcomes.py")},
             "Conversations": {("3,000", "app.py"), ("3,000", "pages/2_Engagement.py")}}
    assert disagreements(tiles) == {"Escalation rate": [("16.7%", "pages/3_Outcomes.py"), ("20.5%", "app.py")]}


def test_tiles_agree_on_the_sample(db_path):
    tiles = collect_tiles()
    assert len(tiles) >= 20  # the pages draw their tiles
    assert disagreements(tiles) == {}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", [*EXPORTS, "copilot", "convai"])
def test_tiles_agree_on_a_real_export(name, db_path):
    from conftest import shared_path
    from metrics import store
    from metrics.io.loaders import load_path

    parts = EXPORTS.get(name) or {"copilot": _copilot, "convai": _convai}[name]()
    if parts is None:
        pytest.skip(f"the {name} export is absent from ../shared/data")
    path = shared_path(*parts)
    db = store.connect(str(db_path))
    result = load_path(str(path), pseudonym_key=store.pseudonym_key(db))
    saved = store.save_messages(db, result.frame, dataset_name=name, source_format=result.format)
    db.close()
    tiles = collect_tiles(saved.dataset_id)
    assert tiles
    assert disagreements(tiles) == {}
