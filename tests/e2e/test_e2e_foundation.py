"""End to end: `streamlit run` + Debian chromium. Upload through the real file uploader, deep-link on a fresh server."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_upload_then_deep_link(streamlit_server, page, tmp_path):
    # 1. Deep link straight to a second page on a freshly started server (app.py never ran).
    page.goto(f"{streamlit_server.url}/Data")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_role("heading", name="Data").first.wait_for()
    nav = page.get_by_test_id("stSidebar")
    assert nav.get_by_role("link", name="Overview").count() == 1
    shot = screenshot(page, "foundation_deep_link_data")
    assert shot.stat().st_size > 10_000

    # 2. Upload a CSV through the real uploader.
    upload = tmp_path / "upload.csv"
    upload.write_bytes(b"session_id,role,message,created_at\n"
                       b"s1,customer,<script>alert(1)</script> where is **my** order?,2024-05-01T10:00:00Z\n"
                       b"s1,assistant,It ships today.,2024-05-01T10:00:03Z\n")
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(upload))
    wait_idle(page)
    page.get_by_text("Validation report").wait_for(timeout=30000)
    page.get_by_role("button", name="Save dataset").click()
    wait_idle(page)
    page.get_by_text("2 new message(s), 0 already present").wait_for(timeout=30000)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "foundation_after_upload")

    # 3. The uploaded conversation renders its text literally in the browser.
    bubble = page.get_by_test_id("stChatMessage").get_by_text("<script>alert(1)</script> where is **my** order?")
    bubble.first.wait_for(timeout=30000)
    assert page.get_by_test_id("stSidebar").get_by_text("upload").count() >= 1  # the new dataset is active

    # 4. The home page from the sidebar link.
    nav.get_by_role("link", name="Overview").click()
    wait_idle(page)
    page.get_by_role("heading", name="Overview").first.wait_for()
    screenshot(page, "foundation_overview")
