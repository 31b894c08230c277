"""End to end: hostile text (HTML/JS, Markdown, Streamlit-sensitive) is shown literally and never runs.

A CSV whose texts, conversation ids, intents, channels, segments and topics hold ``<script>``,
``<img onerror>``, Markdown links, ``:material/home:``, ``$x$``, ``**bold**`` and ``<br>`` is
uploaded through the real file uploader and saved; then every page of ``ui.shell.PAGES`` that
exists is opened from the sidebar in the same browser session. Any ``alert`` fails the test
(``page.on("dialog")``), no page may contain an element the payloads would create (a script, an
``img src=x``, a ``javascript:`` link), and the Data page's conversation browser shows every
message text literally. Each page is screenshot to tests/screenshots/literal_<page>.png.
"""

from __future__ import annotations

import csv
import io
import sys

import pytest

from conftest import FIXTURES, ROOT, screenshot, wait_idle
from ui.shell import PAGES

sys.path.insert(0, str(FIXTURES / "hostile"))
from make_corpus import LITERAL_TEXTS  # noqa: E402

pytestmark = pytest.mark.e2e

FIRST = "#1 <b>conv</b> **one**"  # sorts first, so the browser opens it
#: The dataset name typed on the Data page and the uploaded file's name: shown on many pages.
DATASET_NAME = ":material/home: **ds** <img src=x onerror=alert('xss-name')> $x$ [ds](javascript:alert(1))"
FILE_NAME = "hostile **file** $f$ <b>b<b>.csv"
#: An extra column (ignored by Chatlens, so named in a notice) and an unknown speaker (named in an error).
EXTRA_COLUMN = "**extra** :material/home: <b>col</b>"
BAD_SPEAKER = "**robot** :material/warning: [x](javascript:alert('xss-error')) $z$"
CONVERSATIONS = [
    (FIRST, "[intent](javascript:alert('xss-intent'))", "<img src=x onerror=alert('xss-channel')>", "**segment**",
     ":material/home: topic"),
    ("$x$ conv two", "**bold_intent**", ":red[web]", "<br>", "$y$"),
    ("<script>alert('xss-id')</script>", "greet", "web", "smb", "inquiry"),
]


def _upload_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["conversation_id", "timestamp", "speaker", "text", "intent", "channel", "segment", "topic",
                     EXTRA_COLUMN])
    minute = 0
    for n, (cid, intent, channel, segment, topic) in enumerate(CONVERSATIONS):
        texts = LITERAL_TEXTS if cid == FIRST else LITERAL_TEXTS[:2]
        for i, text in enumerate(texts):
            minute += 1
            speaker = "user" if i % 2 == 0 else "bot"
            writer.writerow([cid, f"2024-05-0{n + 1}T10:{minute:02d}:00Z", speaker, text,
                             intent if speaker == "user" else "", channel, segment, topic, "x"])
    return buf.getvalue().encode("utf-8")


_INJECTED = """() => ({
    scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('xss')).length,
    images: document.querySelectorAll('img[src="x"]').length,
    jsLinks: [...document.querySelectorAll('a[href]')].filter(
        a => a.getAttribute('href').trim().toLowerCase().startsWith('javascript')).length,
    onerror: document.querySelectorAll('[onerror]').length,
})"""
#: Hostile values rendered as Markdown/HTML instead of text (not script execution). An element counts only when
#: a hostile value holds the markup that would make exactly it: ``**t**``/``<b>t</b>`` for bold, ``[t](`` for a
#: link, ``$t$`` for KaTeX, ``:material/t:`` for an icon. The app's own constants (the Topics page's ``topic``
#: icon in the navigation, a bold **intent** in a help notice) are not findings.
_RENDERED = """(values) => {
    const hits = [];
    const made = (el, t) => {
        if (el.tagName === 'STRONG' || el.tagName === 'B')
            return values.some(v => v.includes('**' + t + '**') || v.includes('<b>' + t));
        if (el.tagName === 'A') return values.some(v => v.includes('[' + t + ']('));
        if (el.tagName === 'SPAN' && el.dataset.testid === 'stIconMaterial')
            return values.some(v => v.includes(':material/' + t + ':'));
        return values.some(v => v.includes('$' + t + '$'));
    };
    for (const el of document.querySelectorAll('strong, b, .katex, a, span[data-testid="stIconMaterial"]')) {
        const t = (el.textContent || '').trim();
        if (t && t.length > 1 && made(el, t)) hits.push(el.tagName + ':' + t);
    }
    return hits;
}"""


def _full_screenshot(page, name: str):
    """Screenshot the whole page: Streamlit scrolls inside its main container, so grow the viewport to fit it."""
    size = page.viewport_size
    height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]') "
                           "|| document.body; return m.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 80, 16000))})
    page.wait_for_timeout(400)
    path = screenshot(page, name)
    page.set_viewport_size(size)
    return path


def _page_label(path: str) -> str:
    return next(label for p, label, _ in PAGES if p == path)


def test_hostile_text_is_literal_on_every_page(streamlit_server, page, tmp_path):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{streamlit_server.url}/Data")
    wait_idle(page)
    literal_violations = []

    def shown(where: str, locator, expected: str) -> None:
        text = locator.first.inner_text() if locator.count() else ""
        if expected not in text:
            literal_violations.append(f"{where}: {expected!r} shown as {text[:200]!r}")

    # 1. A refused file: the error names the bad value; it must be shown literally, and nothing may run.
    refused = tmp_path / "refused.csv"
    refused.write_text(f'conversation_id,speaker,text\nc1,"{BAD_SPEAKER}",hi\n', encoding="utf-8")
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(refused))
    wait_idle(page)
    page.get_by_text("The file was not loaded").wait_for(timeout=60000)
    assert page.evaluate(_INJECTED) == {"scripts": 0, "images": 0, "jsLinks": 0, "onerror": 0}
    shown("the refusal message (ui/shell.py show_error)", page.get_by_test_id("stAlert").filter(
        has_text="The file was not loaded"), BAD_SPEAKER)
    _full_screenshot(page, "literal_data_refused")

    # 2. The hostile file, saved under a hostile dataset name.
    upload = tmp_path / FILE_NAME
    upload.write_bytes(_upload_csv())
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(upload))
    wait_idle(page)
    page.get_by_text("Validation report").wait_for(timeout=60000)
    shown("the 'Ignored column' notice (ui/data_page.py st.info(notice))",
          page.get_by_test_id("stAlert").filter(has_text="Ignored 1 column"), EXTRA_COLUMN)
    page.get_by_label("Dataset name").fill(DATASET_NAME)
    page.get_by_label("Dataset name").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Save dataset").click()
    wait_idle(page)
    total = len(LITERAL_TEXTS) + 2 * 2
    page.get_by_text(f"{total} new message(s), 0 already present", exact=False).wait_for(timeout=60000)
    _full_screenshot(page, "literal_data_saved")
    saved_page = {"injected": page.evaluate(_INJECTED), "dialogs": list(dialogs)}
    shown("the save message (ui/data_page.py st.success(msg))",
          page.get_by_test_id("stAlert").filter(has_text="new message(s)"), DATASET_NAME)
    # the new dataset is active, and its name is shown literally in the sidebar selector
    sidebar = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.evaluate(
        "el => el.textContent + ' ' + [...el.querySelectorAll('input')]"
        ".map(i => i.value + ' ' + (i.getAttribute('aria-label') || '')).join(' ')")
    assert DATASET_NAME in sidebar, sidebar

    # The conversation browser shows every message text exactly as written.
    bubbles = page.get_by_test_id("stChatMessage")
    bubbles.first.wait_for(timeout=60000)
    for text in LITERAL_TEXTS:
        assert bubbles.get_by_text(text, exact=True).count() >= 1, text
    assert bubbles.count() == len(LITERAL_TEXTS)
    assert dialogs == []
    _full_screenshot(page, "literal_data_browser")

    hostile_values = [v for v in list(LITERAL_TEXTS) + [v for row in CONVERSATIONS for v in row]
                      + [DATASET_NAME, FILE_NAME] if any(c in v for c in "<*$:[")]
    findings, failures = {}, []
    pages = [p for p, _, _ in PAGES if (ROOT / p).exists()]
    for path in pages:
        label = _page_label(path)
        page.get_by_test_id("stSidebar").get_by_role("link", name=label, exact=True).first.click()
        wait_idle(page)
        page.wait_for_timeout(500)
        wait_idle(page)
        name = "overview" if path == "app.py" else path.split("_", 1)[1][:-3].lower()
        _full_screenshot(page, f"literal_{name}")
        if page.locator('[data-testid="stException"]').count():
            failures.append(f"{label}: a traceback is shown: "
                            + page.locator('[data-testid="stException"]').first.inner_text()[:300])
        injected = page.evaluate(_INJECTED)
        if injected != {"scripts": 0, "images": 0, "jsLinks": 0, "onerror": 0}:
            failures.append(f"{label}: injected elements {injected}")
        if dialogs:
            failures.append(f"{label}: a script ran: {dialogs}")
            dialogs.clear()
        rendered = page.evaluate(_RENDERED, hostile_values)
        if rendered:
            findings[label] = rendered
    print("\nhostile values rendered as Markdown/HTML (not literal):", findings or "none")
    print("shown as Markdown instead of literally:", literal_violations or "none")
    assert saved_page["injected"] == {"scripts": 0, "images": 0, "jsLinks": 0, "onerror": 0}, saved_page
    assert saved_page["dialogs"] == []
    assert failures == []
    assert literal_violations == [], literal_violations
    assert findings == {}, f"hostile values rendered as Markdown/HTML: {findings}"
