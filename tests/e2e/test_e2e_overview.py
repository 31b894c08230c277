"""End to end: the home page's executive and operational views, and the Improvement page, in chromium."""

from __future__ import annotations

import pytest

from conftest import screenshot, wait_idle

pytestmark = pytest.mark.e2e


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def test_overview_both_views_and_improvement(streamlit_server, page):
    page.set_viewport_size({"width": 1400, "height": 3000})          # Streamlit scrolls inside the app: a tall
    page.goto(streamlit_server.url)                                  # viewport shows the whole page
    wait_idle(page)
    _no_exception(page)
    page.get_by_role("heading", name="Key metrics").first.wait_for(timeout=60000)
    page.get_by_role("heading", name="Weekly review").first.wait_for(timeout=60000)   # the page's last section
    wait_idle(page)
    page.get_by_text("Resolution rate · last week").first.wait_for()
    tiles = page.get_by_test_id("stMetric")
    assert tiles.count() >= 8 + 4                                    # 8 KPI tiles + the 4-figure business strip
    page.wait_for_timeout(1500)                                      # sparklines and the editor draw late
    shot = screenshot(page, "overview_executive")
    assert shot.stat().st_size > 20_000

    # Switch to the operational view with the segmented control.
    page.get_by_test_id("stButtonGroup").get_by_text("Operational", exact=True).click()
    wait_idle(page)
    _no_exception(page)
    page.get_by_text("Top escalation reasons").wait_for(timeout=60000)
    links = page.get_by_test_id("stPageLink")
    assert links.count() >= 10
    hrefs = page.locator('[data-testid="stPageLink-NavLink"]').evaluate_all(
        "els => els.map(e => e.getAttribute('href') || '')")
    assert any("Outcomes" in h and "reason=" in h for h in hrefs)     # an item links to its page and filter
    page.wait_for_timeout(1000)
    screenshot(page, "overview_operational")

    # The improvement loop page from the sidebar.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Improvement loop").click() \
        if page.get_by_test_id("stSidebarNav").count() else \
        page.get_by_test_id("stSidebar").get_by_role("link", name="Improvement loop").click()
    wait_idle(page)
    _no_exception(page)
    page.get_by_role("heading", name="Improvement backlog").first.wait_for(timeout=60000)

    # Log the sample's model switch (nlu-v2 from 2026-09-21) and see its before/after.
    form = page.get_by_test_id("stForm")
    date = form.get_by_test_id("stDateInput")                         # a react-aria field: one spinbutton per part
    for part, value in (("year", "2026"), ("month", "09"), ("day", "21")):
        date.get_by_role("spinbutton", name=f"{part}, Went live on").click()
        page.keyboard.type(value, delay=30)
    form.get_by_label("Change (short title)").fill("Deploy nlu-v2")
    form.get_by_label("Why").fill("billing and refund were confused")
    metric = form.get_by_test_id("stSelectbox").nth(1).locator("input")
    metric.click()
    metric.fill("Intent accuracy")
    metric.press("Enter")
    form.get_by_role("button", name="Add to the change log").click()
    wait_idle(page)
    _no_exception(page)
    page.get_by_text("Added “Deploy nlu-v2” to the change log.").wait_for(timeout=60000)
    print(page.get_by_text("cannot be attributed").all_inner_texts()); screenshot(page, "debug_improvement")
    assert page.get_by_text("cannot be attributed").count() == 0      # 14 days of data on each side, no other change
    chart = page.get_by_test_id("stVegaLiteChart").first
    chart.locator("svg.marks").wait_for(timeout=60000)
    page.wait_for_timeout(1000)
    screenshot(page, "improvement_page")
