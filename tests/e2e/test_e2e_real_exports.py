"""Every page in a real browser on each real export of ../shared/data, loaded with ``python -m metrics ingest``.

Fails on any exception element, a traceback, or a server path on any page. Screenshots go to
tests/screenshots/real_<export>_<page>.png (looked at by hand after a change).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT, StreamlitServer, screenshot, shared_path, wait_idle
from test_e2e_labels import TRUNCATED

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

EXPORTS = {
    "rasa": ("rasa_tracker_customer_support", "trackers.jsonl"),
    "twcs": ("twcs_sample", "twcs.csv"),
    "convai": ("convai2_wild", "data", "data_volunteers.json"),
    "copilot": ("copilot_studio_transcripts", "demos", "misc", "Copilot-Studio-Advanced-Analytics", "examples",
                "conversationtranscripts.json"),
    "hint3": ("hint3", "dataset", "v1", "test", "sofmattress_test.csv"),
}
PAGES = ["", "Data", "Engagement", "Outcomes", "Intents", "Sentiment", "Funnel", "ROI", "Audit", "Improvement", "Topics", "Conversations"]


@pytest.mark.parametrize("export", list(EXPORTS))
def test_every_page_renders_on_a_real_export(export, page, tmp_path):
    path = shared_path(*EXPORTS[export])
    db = tmp_path / "real.db"
    done = subprocess.run([sys.executable, "-m", "metrics", "ingest", str(path), "--db", str(db), "--dataset", export,
                           "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    from metrics import store

    connection = store.connect(db)
    assert store.list_datasets(connection)["name"].tolist() == [export]
    connection.close()
    server = StreamlitServer(db)
    try:
        for name in PAGES:
            page.goto(f"{server.url}/{name}")
            wait_idle(page, timeout=120000)
            # the store holds only the real export (no sample is seeded into a store that has a dataset)
            page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.wait_for(timeout=120000)
            page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=120000)
            wait_idle(page, timeout=120000)
            body = page.locator("body").inner_text()
            screenshot(page, f"real_{export}_{name or 'Overview'}")
            assert page.locator('[data-testid="stException"]').count() == 0, (name, body[:2000])
            assert "Traceback" not in body and "Something went wrong on this page" not in body, (name, body[:2000])
            assert not re.search(r"/work/|site-packages|\.py\", line", body), name
            assert page.evaluate(TRUNCATED) == [], name      # no metric label is cut off
    finally:
        server.stop()
