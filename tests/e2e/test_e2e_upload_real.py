"""End to end, as a user would: each real export of ../shared/data is uploaded through the Data page's file
uploader in headless chromium, saved as a new dataset, and then every page (app.py and every pages/*.py) is
opened through its sidebar link in the same browser session, with that dataset selected.

One fresh ``streamlit run`` (fresh temporary CHATLENS_DB) per export. On every page, in its first view, then
with every collapsed expander opened and every tab shown, the test collects (and asserts once per export, so
the failure message is the whole to-do list, one line per page, kind and verbatim snippet):

* **exception**: an ``stException`` element, or "Something went wrong on this page" (the page guard's line);
* **error box**: any error box (``st.error``), except the product's deliberate red verdicts on the data
  (:data:`DATA_VERDICTS`: "Breached alerts (...)" on the Overview, "Serious quality problem: ..." on Sentiment),
  which are data, not a failure of the page (their text is still checked for tokens and ``--``);
* **notice**: any alert (info, warning, success, error) whose text contains ``--`` (CLI syntax such as
  ``--map``); also any alert that tells the user to "pass" a keyword argument (``name=True``);
* **text**: a visible token ``None``, ``null``, ``nan``, ``NaN`` (and pandas' ``NaT``, ``<NA>``: the same bug);
* **dataset**: the sidebar's dataset selector does not show the uploaded dataset (the page would be checking
  another dataset's numbers), or the upload was not saved / the page has no sidebar link.

Text tokens: case-sensitive, whole tokens only (not inside a word or a hyphenated word: "nano", "Nonexistent",
"nullable", "non-null", "null_rate" are fine), after removing invisible joiners (U+2060, which ``ui.fmt.literal``
puts in escaped text). English prose is allowed: "None of ..." and "null hypothesis". Where they are looked for:
all visible text of the main area and the sidebar, including metric tiles, captions, alerts, headings, widget
labels and shown values, inputs' values, ``st.table`` cells and chart SVG text (axes, legends, titles). Not looked
for: raw data grids (``st.dataframe``/``st.data_editor``: a canvas, and the Data page's preview legitimately
shows the file's own values), and the *text body* of a transcript bubble (the last text block of an
``stChatMessage``, i.e. what the user or bot wrote): a chat message that says "None of them work" is data, so
a body is a problem only when its whole text is the token alone ("None", "nan": a missing value rendered).
The bubble's meta line (speaker · time · intent · sentiment · event) is checked like any other text. Text that
came from the file but is shown elsewhere than a transcript body (a notice "SessionInfo outcomes: None 4", an
intent or topic label) counts: the page presents it as a value, and the reader cannot tell it from a missing one.
Not seen by the test: charts drawn on a canvas, tooltips (hover only), and grids' cells; the screenshots are for
those (and for layout: blank charts, squashed axes, overlapping labels).

Screenshots (the first view of each page): tests/screenshots/upload_real_<export>_<page>.png; look at them
after a change. The convai export is data_intermediate.json (291 dialogs) to keep the run short.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import ROOT, StreamlitServer, screenshot, shared_path, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

EXPORTS = {
    "rasa": ("rasa_tracker_customer_support", "trackers.jsonl"),
    "copilot": ("copilot_studio_transcripts", "demos", "misc", "Copilot-Studio-Advanced-Analytics", "examples",
                "conversationtranscripts.json"),
    "convai": ("convai2_wild", "data", "data_intermediate.json"),
    "twcs": ("twcs_sample", "twcs.csv"),
    "hint3": ("hint3", "dataset", "v1", "test", "sofmattress_test.csv"),
}

#: Milliseconds to wait for a page run (real data, two cores shared with other test runs).
RUN_MS = 120_000

#: A visible token that reads as a missing value (case-sensitive, whole token, not in a hyphenated word).
TOKEN = re.compile(r"(?<![\w-])(None|null|nan|NaN|NaT|<NA>)(?![\w-])")
#: English prose that contains a token legitimately.
PROSE = re.compile(r"\bNone of\b|\bnull hypothes[ie]s\b")
#: Invisible characters removed before matching (word joiner, zero-width space/joiners, soft hyphen, BOM).
INVISIBLE = re.compile("[\u2060\u200b\u200c\u200d\u00ad\ufeff]")
#: Error boxes that are the product's verdict on the data, by design red (a breached alert rule, the sentiment
#: guide's "serious quality problem"), not a failure of the page; their text is still checked like any other.
DATA_VERDICTS = re.compile(r"^(?:notifications_active )?Breached alerts \(|^Serious quality problem: ")
#: A notice written for the CLI: an option ``--x`` or "pass x=True".
CLI_NOTICE = re.compile(r"--|\bpass\s+\w+=\w+")


def page_files() -> list[Path]:
    """app.py, then pages/*.py by their numeric prefix (Streamlit's order)."""
    def order(p: Path):
        head = p.stem.split("_", 1)[0]
        return (int(head) if head.isdigit() else 10**6, p.stem)

    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"), key=order)]


def url_path(path: Path) -> str:
    """The URL path Streamlit gives a page file: pages/1_Data.py -> "Data", app.py -> ""."""
    if path.name == "app.py":
        return ""
    head, _, rest = path.stem.partition("_")
    return rest if head.isdigit() and rest else path.stem


def page_label(path: Path) -> str:
    return url_path(path) or "Overview"


# ----------------------------------------------------------------------------------------------- in the page
#: Everything the checks need from the page, as plain data: visible text nodes (with where they are), transcript
#: bodies, input values, alerts, error boxes and exceptions.
_COLLECT_JS = r"""() => {
  const roots = [...document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebar"]')];
  const skip = '[data-testid="stDataFrame"], [data-testid="stDataFrameResizable"], [data-testid="stFileUploader"]';
  const shown = el => el && el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true});
  const clip = (s, n = 300) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);
  const where = el => {
    const owner = el.closest('[data-testid]:not([data-testid="stMarkdownContainer"])') || el;
    const id = owner.getAttribute('data-testid') || owner.tagName;
    if (el.closest('svg')) {  // chart text: name the axis/legend (vega's aria-label) it belongs to
      const described = el.closest('[aria-label]');
      return {testid: id, context: '', chart: described ? clip(described.getAttribute('aria-label'), 160) : ''};
    }
    return {testid: id, context: clip(owner.innerText || owner.textContent, 4000)};
  };
  const bodies = new Set();
  for (const chat of document.querySelectorAll('[data-testid="stChatMessage"]')) {
    const blocks = chat.querySelectorAll('[data-testid="stText"], [data-testid="stMarkdown"]');
    if (blocks.length) bodies.add(blocks[blocks.length - 1]);
  }
  const out = {texts: [], bodies: [], inputs: [], alerts: [], errors: [], exceptions: []};
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (!el || !node.nodeValue.trim() || el.closest(skip) || !shown(el)) continue;
      if (['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(el.tagName)) continue;
      const body = [...bodies].find(b => b.contains(el));
      if (body) continue;
      out.texts.push({text: node.nodeValue, ...where(el)});
    }
    for (const input of root.querySelectorAll('input, textarea')) {
      if (['file', 'checkbox', 'radio', 'hidden', 'range'].includes(input.type) || input.closest(skip)) continue;
      if (!shown(input) || !input.value) continue;
      const label = input.closest('[data-testid]');
      out.inputs.push({text: input.value, testid: (label ? label.getAttribute('data-testid') : 'input') + ' value',
                       context: '', input: clip(input.getAttribute('aria-label') || '(no label)', 120)});
    }
  }
  for (const body of bodies) if (shown(body)) out.bodies.push({text: body.innerText, testid: 'stChatMessage body',
                                                                context: clip(body.innerText)});
  for (const a of document.querySelectorAll('[data-testid="stAlert"], [data-testid="stToast"]'))
    if (shown(a)) out.alerts.push(clip(a.innerText, 1000));
  for (const e of document.querySelectorAll('[data-testid="stAlertContentError"]'))
    if (shown(e)) out.errors.push(clip(e.innerText));
  for (const e of document.querySelectorAll('[data-testid="stException"]')) out.exceptions.push(clip(e.innerText));
  return out;
}"""


def _clean(text: str) -> str:
    return INVISIBLE.sub("", text).replace("\u00a0", " ")


def _around(token: str, text: str, context: str, width: int = 90) -> str:
    """The snippet to report: the element's text around the token (the text node alone when the element's
    text does not hold it, e.g. chart SVG text)."""
    context = _clean(context)
    for m in TOKEN.finditer(context):
        if m.group(1) == token and text.strip() in context:
            a, b = max(0, m.start() - width), min(len(context), m.end() + width)
            return ("…" if a else "") + context[a:b] + ("…" if b < len(context) else "")
    return text.strip()


def problems_in(found: dict) -> list[tuple[str, str]]:
    """(kind, snippet) for everything wrong in one :data:`_COLLECT_JS` result."""
    out: list[tuple[str, str]] = []
    for text in found["exceptions"]:
        out.append(("exception", text))
    for text in found["errors"]:
        if not DATA_VERDICTS.search(_clean(text)):
            out.append(("error box", text))
    for text in found["alerts"]:
        clean = _clean(text)
        if "Something went wrong on this page" in clean:
            out.append(("exception", clean))
        if CLI_NOTICE.search(clean):
            out.append(("notice in CLI syntax", clean))
    for item in found["texts"] + found["inputs"]:
        text = _clean(item["text"])
        prose = [m.span() for m in PROSE.finditer(text)]
        for m in TOKEN.finditer(text):
            if any(a <= m.start() < b for a, b in prose):
                continue
            snippet = _around(m.group(1), text, item["context"])
            if item.get("chart"):
                snippet = f"{snippet} (chart: {item['chart']})"
            if item.get("input"):
                snippet = f"{item['input']}: {text.strip()}"
            out.append((f"text {m.group(1)!r} in {item['testid']}", snippet))
    for item in found["bodies"]:
        text = _clean(item["text"]).strip()
        if TOKEN.fullmatch(text):
            out.append((f"transcript message {text!r}", "a chat bubble whose whole text is the token"))
    return out


# ----------------------------------------------------------------------------------------------- driving
def _settle(page) -> None:
    """Wait for the script run, a heading in the main area, and the charts to be drawn."""
    wait_idle(page, timeout=RUN_MS)
    page.get_by_test_id("stMain").locator("h1").first.wait_for(timeout=RUN_MS)
    wait_idle(page, timeout=RUN_MS)
    _charts_drawn(page)


def _charts_drawn(page) -> None:
    """Give each visible chart a moment to get its svg/canvas (vega-lite draws after the run)."""
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')]"
            ".filter(c => c.checkVisibility()).every(c => c.querySelector('svg, canvas'))", timeout=10_000)
    except Exception:  # noqa: BLE001  (a chart that never draws shows in the screenshot)
        pass
    page.wait_for_timeout(300)


def _shot(page, name: str) -> None:
    """A screenshot of the whole page. Streamlit scrolls inside its main container, so a full-page screenshot
    alone stops at the viewport: the viewport is made as tall as the content (at most 12,000 px), then reset."""
    size = page.viewport_size
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stAppViewContainer', 'stSidebarContent', 'stAppScrollToBottomContainer']
             .map(id => document.querySelector(`[data-testid="${id}"]`)).filter(Boolean).map(e => e.scrollHeight),
             document.body.scrollHeight)""")
    tall = min(max(height, size["height"]), 12_000)
    if tall > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": tall})
        page.wait_for_timeout(400)
        _charts_drawn(page)
    screenshot(page, name)
    if tall > size["height"]:
        page.set_viewport_size(size)


def _sidebar_dataset(page) -> str:
    """The dataset the sidebar's selector shows (a combobox: its value is the input's)."""
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Dataset")
    try:
        return box.first.input_value(timeout=5_000)
    except Exception:  # noqa: BLE001
        return "(no dataset selector in the sidebar)"


def _open_page(page, base_url: str, path: Path) -> str | None:
    """Open ``path`` through its sidebar link (the session, hence the chosen dataset, is kept). Returns a problem
    when the page has no sidebar link (then it is opened by URL: a new session)."""
    want = url_path(path)
    links = page.locator('[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]')
    links.first.wait_for(timeout=RUN_MS)
    index = page.evaluate(
        r"""(want) => [...document.querySelectorAll('[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]')]
             .findIndex(a => (a.getAttribute('href') || '').replace(/^\.?\//, '').replace(/[?#].*$/, '') === want)""",
        want)
    if index >= 0:
        links.nth(index).click()
        page.wait_for_url(re.compile(re.escape(f"{base_url}/{want}") + r"/?([?#].*)?$"), timeout=RUN_MS)
        _settle(page)
        return None
    page.goto(f"{base_url}/{want}")
    _settle(page)
    return f"no sidebar link to {path.relative_to(ROOT)} (opened by URL)"


def _select_dataset(page, name: str) -> None:
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Dataset").first.click()
    page.get_by_role("option", name=name, exact=True).click()
    _settle(page)


def _views(page):
    """Yield after each further view of the page: every collapsed expander opened, then each tab shown."""
    main = page.get_by_test_id("stMain")
    closed = main.locator('[data-testid="stExpander"] details:not([open]) > summary')
    for _ in range(closed.count()):
        try:
            closed.first.click(timeout=5_000)
        except Exception:  # noqa: BLE001  (an expander that cannot be opened: its text stays unchecked)
            break
        page.wait_for_timeout(150)
    _charts_drawn(page)  # opening an expander is drawn by the browser alone: no script run to wait for
    yield "expanders opened"
    tabs = main.locator('[data-testid="stTabs"] [role="tab"]')
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        if tab.get_attribute("aria-selected") == "true" or not tab.is_visible():
            continue
        name = tab.inner_text().strip()
        tab.click()
        wait_idle(page, timeout=RUN_MS)
        _charts_drawn(page)
        yield f"tab {name!r}"


def _upload(page, base_url: str, export: str, path: Path, problems: list) -> str | None:
    """Upload ``path`` on the Data page and save it as a new dataset; returns the dataset's name (None when the
    upload or the save failed, with the reason in ``problems``)."""
    page.goto(f"{base_url}/Data")
    _settle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    try:
        page.wait_for_function(
            """() => document.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]')
                     || document.body.innerText.includes('Validation report')""", timeout=RUN_MS, polling=200)
    except Exception:  # noqa: BLE001
        problems.append(("Data (upload)", "upload", f"no validation report within {RUN_MS // 1000} s"))
    _settle(page)
    label = "Data (upload report)"
    for kind, snippet in problems_in(page.evaluate(_COLLECT_JS)):
        problems.append((label, kind, snippet))
    _shot(page, f"upload_real_{export}_Data_upload_report")
    save = page.get_by_role("button", name="Save dataset")
    if save.count() == 0:
        problems.append((label, "upload", "no 'Save dataset' button: the file was not accepted"))
        return None
    target = page.get_by_test_id("stMain").get_by_role("combobox", name="Add to")
    if target.count() and target.first.input_value() != "A new dataset":
        problems.append((label, "upload", f"'Add to' does not default to a new dataset: {target.first.input_value()!r}"))
    name = page.get_by_role("textbox", name="Dataset name").input_value()
    save.click()
    try:
        page.wait_for_function(
            """() => /new message\\(s\\)/.test(document.body.innerText)
                     || document.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]')""",
            timeout=RUN_MS, polling=200)
    except Exception:  # noqa: BLE001
        pass
    _settle(page)
    body = page.get_by_test_id("stMain").inner_text()
    if not re.search(r"new message\(s\)", body):
        for kind, snippet in problems_in(page.evaluate(_COLLECT_JS)):
            problems.append(("Data (save)", kind, snippet))
        problems.append(("Data (save)", "upload", f"'Save dataset' did not confirm a save of {name!r}"))
        return None
    return name


def _report(export: str, problems: list[tuple[str, str, str]]) -> str:
    seen: dict[tuple, int] = {}
    for p in problems:
        seen[p] = seen.get(p, 0) + 1
    lines = [f"{export}: {len(seen)} problem(s) on {len({p[0] for p in seen})} page(s):"]
    for (where, kind, snippet), n in seen.items():
        lines.append(f"  [{export} · {where}] {kind}: {snippet!r}" + (f" (×{n})" if n > 1 else ""))
    return "\n".join(lines)


@pytest.mark.parametrize("export", list(EXPORTS))
def test_an_uploaded_real_export_shows_cleanly_on_every_page(export, page, tmp_path):
    source = shared_path(*EXPORTS[export])
    started = time.monotonic()
    server = StreamlitServer(tmp_path / "e2e.db")
    problems: list[tuple[str, str, str]] = []
    try:
        name = _upload(page, server.url, export, source, problems)
        assert name is not None, _report(export, problems)
        timings = [f"upload+save {time.monotonic() - started:.0f} s"]
        for path in page_files():
            label = page_label(path)
            opened = time.monotonic()
            missing_link = _open_page(page, server.url, path)
            if missing_link:
                problems.append((label, "navigation", missing_link))
            shown = _sidebar_dataset(page)
            if name not in shown:
                problems.append((label, "dataset", f"the sidebar shows {shown!r}, not the uploaded {name!r}"))
                try:
                    _select_dataset(page, name)
                except Exception:  # noqa: BLE001  (recorded above; the page is checked as it is)
                    pass
            first = problems_in(page.evaluate(_COLLECT_JS))
            problems.extend((label, kind, snippet) for kind, snippet in first)
            _shot(page, f"upload_real_{export}_{label}")
            seen = set(first)
            for view in _views(page):  # only what the first view did not show, named after the view
                for kind, snippet in problems_in(page.evaluate(_COLLECT_JS)):
                    if (kind, snippet) not in seen:
                        seen.add((kind, snippet))
                        problems.append((f"{label} ({view})", kind, snippet))
            timings.append(f"{label} {time.monotonic() - opened:.1f} s")
        print(f"\n{export}: " + ", ".join(timings))
    finally:
        server.stop()
        print(f"\n{export}: {time.monotonic() - started:.0f} s")
    assert not problems, _report(export, problems)
