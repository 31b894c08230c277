"""End to end: `streamlit run` + Debian chromium. Two browser contexts, as two reviewers, score the
same (overlapping) conversations at the same time; afterwards both sets of scores are in the
page's CSV export and in `python -m metrics audit-export`."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from conftest import screenshot, wait_idle

pytestmark = pytest.mark.e2e

ROUND = "e2e round"
N = 3
# every criterion gets the same score; the reviewers disagree on purpose (agreement is then measurable)
SCORES = {"Ann": 4, "Ben": 2}


def _reviewer_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 2600})
    page = context.new_page()
    page.goto(f"{url}/Audit")
    wait_idle(page)
    page.get_by_role("heading", name="Audit").first.wait_for()
    return context, page


def _add_reviewer(page, name: str) -> None:
    page.get_by_label("New reviewer").fill(name)
    page.get_by_role("button", name="Add reviewer").click()
    wait_idle(page)


def _pick_name(page, name: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text="Your name").click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_idle(page)


def _fill_rubric(page, score: int) -> None:
    """Score every criterion, answer the intent verdicts and write a note. Each answer reruns the page (it is
    kept as a draft until saved), so wait for the app to settle after each one."""
    from conftest import wait_idle

    for label in ("Understood intent", "Accurate & helpful", "Tone", "Edge cases", "Overall"):
        group = page.get_by_role("radiogroup", name=label, exact=True)
        group.locator('label[data-testid="stRadioOption"]').nth(score - 1).click()
        wait_idle(page)
    verdicts = page.get_by_role("radiogroup").filter(has_text="unsure")
    if verdicts.count():
        verdicts.first.locator('label[data-testid="stRadioOption"]').first.click()  # "yes"
        wait_idle(page)
    page.get_by_label("Note").fill(f"=reviewed with score {score}")
    page.get_by_label("Note").press("Tab")  # a text area sends its value when it loses focus
    wait_idle(page)


def _no_exception(*pages) -> None:
    for page in pages:
        assert page.locator('[data-testid="stException"]').count() == 0


def test_two_reviewers_score_overlapping_conversations_at_once(streamlit_server, browser, tmp_path):
    ctx_a, ann = _reviewer_page(browser, streamlit_server.url)
    _add_reviewer(ann, "Ben")
    _add_reviewer(ann, "Ann")
    _pick_name(ann, "Ann")  # adding a reviewer never switches who you are: pick yourself
    ann.get_by_role("tab", name="New round").click()
    ann.get_by_label("Round name").fill(ROUND)
    ann.get_by_role("spinbutton", name="Conversations", exact=True).fill(str(N))
    ann.get_by_role("spinbutton", name="Seed", exact=True).fill("20260803")
    ann.locator('input[type="range"][aria-label="Overlap (two reviewers)"]').focus()
    ann.keyboard.press("End")  # 100 %: both reviewers get every conversation
    ann.get_by_role("button", name="Create round").click()
    wait_idle(ann)
    ann.get_by_text(f"Round '{ROUND}' created").wait_for(timeout=30000)
    ann.get_by_role("tab", name="Review").click()
    ann.get_by_text(f"Ann: 0 of {N} reviewed").wait_for(timeout=30000)

    ctx_b, ben = _reviewer_page(browser, streamlit_server.url)
    _pick_name(ben, "Ben")
    ben.get_by_text(f"Ben: 0 of {N} reviewed").wait_for(timeout=30000)
    ben.get_by_role("button", name="Save review").wait_for()
    ben.get_by_role("radiogroup", name="Overall", exact=True).wait_for()
    wait_idle(ben)
    screenshot(ben, "audit_ben_queue")

    for k in range(N):
        for page, name in ((ann, "Ann"), (ben, "Ben")):
            _fill_rubric(page, SCORES[name])
        # both reviewers press Save at the same moment (no wait in between)
        ann.get_by_role("button", name="Save review").click()
        ben.get_by_role("button", name="Save review").click()
        for page, name in ((ann, "Ann"), (ben, "Ben")):
            wait_idle(page)
            page.get_by_text(f"{name}: {k + 1} of {N} reviewed").wait_for(timeout=30000)
            assert page.get_by_test_id("stAlertContentSuccess").filter(has_text="(revision 1)").count() == 1
        if k == 0:
            screenshot(ann, "audit_ann_after_first_save")
        _no_exception(ann, ben)
        if k < N - 1:
            for page in (ann, ben):
                page.get_by_role("button", name="Next unreviewed").click()
                wait_idle(page)

    # the page's export has both sets of scores
    ann.get_by_role("tab", name="Results").click()
    # rerun Ann's page (Ben may have saved after Ann's last run): switch the kappa weights to linear
    ann.get_by_role("radiogroup", name="Kappa weights").locator('label[data-testid="stRadioOption"]').nth(1).click()
    wait_idle(ann)
    button = ann.get_by_role("button", name=f"Export all scores (CSV, {2 * N} rows)")
    with ann.expect_download() as info:
        button.click()
    data = info.value.path().read_bytes()
    exported = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert sorted(exported["reviewer"].value_counts().items()) == [("Ann", N), ("Ben", N)]
    per = exported.groupby("reviewer")["conversation_id"].agg(set)
    assert per["Ann"] == per["Ben"] and len(per["Ann"]) == N  # the same (overlapping) conversations
    for name, score in SCORES.items():
        mine = exported[exported["reviewer"] == name]
        assert set(mine["overall"]) == {str(score)} and set(mine["tone"]) == {str(score)}
        assert set(mine["note"]) == {f"'=reviewed with score {score}"}  # formula escaped
    ann.get_by_role("heading", name="Reviewer agreement").wait_for()
    screenshot(ann, "audit_results")
    _no_exception(ann, ben)

    # ... and so does the CLI export of the server's store
    from metrics import store
    from metrics.audit.cli import export_payload

    db = store.connect(tmp_path / "e2e.db")  # the streamlit_server fixture's store (same tmp_path)
    cli_rows = pd.read_csv(io.BytesIO(export_payload(db, round_name=ROUND, fmt="csv")), dtype=str)
    # each reviewer answered "yes" for the first user message of each conversation: N labels reach the reader
    from metrics.audit.store import intent_labels

    assert len(intent_labels(db, 1)) == N
    db.close()
    assert len(cli_rows) == 2 * N and set(cli_rows["reviewer"]) == {"Ann", "Ben"}
    ctx_a.close()
    ctx_b.close()
