"""End to end: open the Intents page in chromium and click a confusion-matrix cell."""

from __future__ import annotations

import pytest

from conftest import screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_click_a_confusion_cell_lists_its_messages(streamlit_server, page):
    page.goto(f"{streamlit_server.url}/Intents")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_role("heading", name="Confusion matrix").wait_for()
    heatmap = page.get_by_test_id("stVegaLiteChart").first
    heatmap.scroll_into_view_if_needed()
    marks = heatmap.locator("svg.marks")
    marks.wait_for()
    page.get_by_text("No cell selected.").wait_for()
    # The diagonal cell at the top-left of the matrix: a true == predicted pair.
    box = marks.bounding_box()
    cells = heatmap.locator("svg.marks g.mark-rect path")
    assert cells.count() > 4
    cells.first.evaluate("e => e.scrollIntoView({block: 'center'})")  # not under the fixed header
    cells.first.click()
    wait_idle(page)
    page.get_by_text("No cell selected.").wait_for(state="detached", timeout=30000)
    drill = page.get_by_text("Messages labelled").first
    drill.wait_for(timeout=30000)
    drill.scroll_into_view_if_needed()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert box is not None
    screenshot(page, "intents_cell_drill_down")
