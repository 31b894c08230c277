"""End to end: no metric tile's label or delta is cut off, on any page, at a laptop and a wide viewport.

A tile's label says which slice its number covers ("CSAT (mean rating) · last week" on the Overview,
"· period" elsewhere); a truncated label hides exactly that part. ``ui/chatlens.css`` makes labels wrap.
``TRUNCATED`` (also used by tests/e2e/test_e2e_real_exports.py) lists every label element whose text overflows.
"""

from __future__ import annotations

import pytest

from conftest import StreamlitServer, screenshot, wait_idle

pytestmark = pytest.mark.e2e

PAGES = ["", "Engagement", "Outcomes", "Intents", "Sentiment", "Funnel", "ROI", "Audit", "Improvement", "Topics",
         "Conversations"]
TRUNCATED = """() => [...document.querySelectorAll('[data-testid="stMetric"]')].flatMap(metric =>
    [...metric.querySelectorAll('*')].filter(e => !e.closest('[data-testid="stVegaLiteChart"], svg, canvas')
        && e.scrollWidth > e.clientWidth + 1)
        .map(e => e.textContent.trim() + ' [' + e.clientWidth + 'px of ' + e.scrollWidth + ']'))"""
LABELS = """() => [...document.querySelectorAll('[data-testid="stMetricLabel"]')].map(e => e.textContent.trim())"""


@pytest.mark.parametrize("width", [1100, 1400])
def test_no_metric_label_is_cut_off(page, tmp_path, width):
    server = StreamlitServer(tmp_path / "labels.db")
    try:
        page.set_viewport_size({"width": width, "height": 1000})
        seen = 0
        for name in PAGES:
            page.goto(f"{server.url}/{name}")
            wait_idle(page, timeout=120000)
            page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=120000)
            wait_idle(page, timeout=120000)
            seen += len(page.evaluate(LABELS))
            assert page.evaluate(TRUNCATED) == [], name or "Overview"
            if name in ("", "Sentiment") and width == 1100:
                screenshot(page, f"labels_{name or 'Overview'}_{width}")
        assert seen > 40  # the check looked at the sample's tiles (the Overview alone has a dozen)
    finally:
        server.stop()
