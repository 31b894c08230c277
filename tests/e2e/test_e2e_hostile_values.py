"""End to end: stored and reflected Markdown injection. Names that carry Markdown/HTML payloads (an image and
a "Session expired: sign in" link to another host, raw HTML, a bare URL) are stored through the store APIs
before the server starts: a dataset whose channel, topic, segment, escalation reason, intent and message texts
are payloads; a reviewer and an audit round; a change-log entry; a goal and an alert rule; a saved funnel.
Then every page (app.py and every file of pages/, in the sidebar or not) is opened with a payload in every
query parameter the pages read (``drill.linked``: ``?intent= ?reason= ?outcome= ?topic= ?channel= ?period=
?stage= ?bot_text=`` ... and the ROI page's link parameters).

The test fails when the browser makes any request to a host other than 127.0.0.1 (``page.on("request")``),
when an ``img[src*="127.0.0.2"]`` or a link off this server (``a[href]`` to 127.0.0.2 or any other host or
scheme, or a link built from an escaped payload; same-origin page links whose *query string* carries a payload
are the app's own filters) exists, or when a traceback is shown; it also checks that payloads are shown as the
text they are.
Screenshots: tests/screenshots/hostile_<page>.png.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import urllib.parse

import pytest

from conftest import ROOT, SCREENSHOTS, StreamlitServer, wait_idle
from ui.shell import PAGES, _url_path

pytestmark = pytest.mark.e2e

HOST = "127.0.0.2:9"
IMG = f"![x](http://{HOST}/img.png)"
LINK = f"[Session expired: sign in](http://{HOST}/login)"
HTML = f"<img src=http://{HOST}/a.png>"
BARE = f"http://{HOST}/bare"
PAYLOADS = (IMG, LINK, HTML, BARE)

CHANNELS = (IMG, BARE)
TOPICS = (LINK, HTML)
SEGMENTS = (HTML, IMG)
REASONS = (HTML, LINK, IMG)
INTENTS = (BARE, IMG, LINK)
BOT_TEXTS = (f"{LINK} How can I help?", f"Sure: {IMG}", f"{HTML} one moment")
DATASET = f"Hostile {LINK}"
REVIEWER = f"{LINK} reviewer"
ROUND = f"{IMG} round"
CHANGE = f"{LINK} change"
GOAL = f"{IMG} goal"
RULE = f"{LINK} rule"
FUNNEL = f"{BARE} funnel"
STAGES = (f"{LINK} stage", f"{IMG} stage")

#: The query parameters the pages read (``grep query_params ui pages``: drill.linked() for any column of a
#: drill-down frame, roi_params.from_query_params for the ROI link), each given a payload.
LINKED = {"intent": INTENTS[0], "reason": REASONS[0], "outcome": LINK, "topic": TOPICS[0], "channel": CHANNELS[0],
          "period": IMG, "stage": STAGES[0], "bot_text": BOT_TEXTS[0], "text": BOT_TEXTS[1], "segment": SEGMENTS[0],
          "group": HTML, "turn": BARE, "bucket": LINK, "user_turns": IMG, "message_count": HTML, "style": LINK,
          "metric": BARE, "sentiment": IMG, "label": LINK, "stars": HTML, "direction": BARE,
          "leads_monthly": LINK, "lead_conversion_rate": IMG, "platform_cost_monthly": BARE}

CONVERSATIONS = 60
START = dt.datetime(2026, 9, 7, 9, 0, tzinfo=dt.timezone.utc)  # a Monday; the data spans nine weeks


def _csv() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["conversation_id", "timestamp", "speaker", "text", "intent", "true_intent", "confidence", "channel",
                "segment", "topic", "escalation_reason", "event", "rating", "user_id"])
    for i in range(CONVERSATIONS):
        cid = f"c{i:03d}"
        t = START + dt.timedelta(days=i, hours=i % 9)
        intent, truth = INTENTS[i % 3], INTENTS[(i + (i % 4 == 0)) % 3]
        escalated = i % 2 == 0
        common = [CHANNELS[i % 2], SEGMENTS[i % 2], TOPICS[i % 2]]
        reason = REASONS[i % 3] if escalated else ""
        rows = [
            ("user", "Hi, I need help with my order", intent, truth, 0.4 + (i % 5) / 10, "inquiry"),
            ("bot", BOT_TEXTS[i % 3], "", "", "", "qualification" if i % 3 else ""),
            ("user", "This is terrible and useless, I hate it", intent, truth, 0.3, ""),
        ]
        if escalated:
            rows += [("bot", "Let me get a person.", "", "", "", "handoff"),
                     ("agent", f"Agent here about {BARE}", "", "", "", "")]
        for k, (speaker, text, it, tr, conf, event) in enumerate(rows):
            w.writerow([cid, (t + dt.timedelta(minutes=k)).isoformat(), speaker, text, it, tr, conf, *common,
                        reason, event, (i % 5) + 1 if k == len(rows) - 1 else "", f"u{i % 40}"])
    return buf.getvalue().encode("utf-8")


def seed(path) -> None:
    """The hostile names, stored through the store APIs (as the pages would store them)."""
    from metrics import audit, store
    from metrics.improve import alerts
    from metrics.audit import store as audit_store
    from metrics.improve import changelog
    from metrics.improve import goals
    from metrics.improve import store as goals_store
    from metrics import funnel as F
    from metrics.funnel import store as funnel_store
    from metrics.io.loaders import load_bytes

    db = store.connect(str(path))
    loaded = load_bytes(_csv(), "hostile.csv")
    dataset_id = store.save_messages(db, loaded.frame, dataset_name=DATASET, source_format=loaded.format,
                                     file_name="hostile.csv").dataset_id
    audit_store.add_reviewer(db, REVIEWER)
    ids = [f"c{i:03d}" for i in range(0, CONVERSATIONS, 6)]
    import pandas as pd

    round_id = audit_store.create_round(
        db, name=ROUND, dataset_id=int(dataset_id), strategy="random", seed=1,
        sample=pd.DataFrame({"position": range(1, len(ids) + 1), "conversation_id": ids}),
        assignments=audit.assign_reviewers(ids, [REVIEWER], overlap_rate=0.0), created_by=REVIEWER)
    for cid in ids[:6]:
        audit_store.save_score(db, round_id=round_id, conversation_id=cid, reviewer=REVIEWER,
                               scores={c: 2 for c in audit.CRITERIA}, note=LINK)
    goals_store.add_change(db, changelog.ChangeEntry(START.date() + dt.timedelta(days=30), CHANGE, "training_data",
                                                     "resolution_rate", why=IMG, detail=HTML))
    suggested = goals.suggested_goals()
    import dataclasses

    goals_store.save_goals(db, [dataclasses.replace(suggested[0], name=GOAL), *suggested[1:]])
    goals_store.save_alert_rules(db, [alerts.parse_rule("escalation_rate > 0.01", name=RULE)])
    funnel_store.save_funnel(db, FUNNEL, F.parse_stage_lines(
        f"{STAGES[0]}=event:inquiry\n{STAGES[1]}=event:qualification"))
    db.close()


@pytest.fixture
def hostile_server(tmp_path):
    path = tmp_path / "e2e.db"
    seed(path)
    server = StreamlitServer(path)
    yield server
    server.stop()


#: A link is a finding when it leaves this server (another host or scheme: ``http://127.0.0.2``, ``mailto:``,
#: ``javascript:``) or names the payload host outside its query string (``/…/127.0.0.2…``: a link built from an
#: escaped payload). The Overview's links to other pages carry the item they filter on in their *query string*
#: (``Intents?intent=<the intent, URL-encoded>``): same-origin, so not a finding.
_FOUND = """() => ({
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')).filter(h => {
        const u = new URL(h, location.href);
        return u.origin !== location.origin || (u.origin + u.pathname + u.hash).includes('127.0.0.2')
            || h.includes('\\u2060');
    }),
    images: [...document.querySelectorAll('img[src]')].map(i => i.getAttribute('src'))
        .filter(s => s.includes('127.0.0.2') || !(s.startsWith('data:') || s.startsWith('/')
                     || s.startsWith(location.origin))),
    exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText.slice(0, 300)),
    text: document.body.innerText.replaceAll('\\u2060', ''),
})"""


QUERY = urllib.parse.urlencode(LINKED, quote_via=urllib.parse.quote)


def _full_screenshot(page, name: str):
    size = page.viewport_size
    height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]') "
                           "|| document.body; return m.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 80, 16000))})
    page.wait_for_timeout(400)
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def _settle(page) -> None:
    wait_idle(page, timeout=120000)
    page.wait_for_timeout(800)
    wait_idle(page, timeout=120000)


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label`` (options are plain text)."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
    box.locator("input").click()
    page.get_by_role("option", name=option, exact=True).first.click()
    _settle(page)


#: Payloads each page must show as text (after its interactions), proving they were escaped, not dropped; each
#: of these pages shows at least one payload (a page not listed is only checked for links, images, requests
#: and tracebacks).
SHOWN = {
    "Data": [CHANNELS[0]],
    "Engagement": [],  # a drill-down heading names the linked value (which column links depends on the chart)
    "Outcomes & escalations": [],
    "Intents": [INTENTS[0]],
    "Sentiment": [BOT_TEXTS[0]],
    "Funnel": [STAGES[0], STAGES[1]],
    "ROI": [LINK],
    "Audit": [REVIEWER, ROUND, TOPICS[0]],
    "Improvement loop": [CHANGE],
    "Overview": [DATASET, INTENTS[0]],
}


def test_hostile_names_and_links_render_as_text_and_reach_no_other_host(hostile_server, page):
    outside: list[str] = []

    def on_request(request):
        parts = urllib.parse.urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
            outside.append(request.url)

    page.on("request", on_request)
    failures, missing = [], []
    labels = {path: label for path, label, _ in PAGES}
    files = ["app.py", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))]
    for path in files:
        label = labels.get(path, _url_path(path))
        page.goto(f"{hostile_server.url}/{_url_path(path)}?{QUERY}")
        _settle(page)
        if label == "Overview":
            page.locator('[data-testid="stButtonGroup"] button', has_text="Operational").first.click()
            _settle(page)
        elif label == "Audit":
            _pick(page, "Your name", REVIEWER)
            page.get_by_role("tab", name="Results").click()
            _settle(page)
        elif label == "Funnel":
            _pick(page, "Funnel", FUNNEL)
        name = "overview" if path == "app.py" else path.split("_", 1)[1][:-3].lower()
        _full_screenshot(page, f"hostile_{name}")
        found = page.evaluate(_FOUND)
        for kind in ("links", "images", "exceptions"):
            if found[kind]:
                failures.append(f"{label}: {kind} {found[kind][:5]}")
        if outside:
            failures.append(f"{label}: requests to other hosts {outside[:5]}")
            outside.clear()
        missing += [f"{label}: {value!r}" for value in SHOWN.get(label, []) if value not in found["text"]]
        if label in SHOWN and not any(value in found["text"] for value in PAYLOADS):
            missing.append(f"{label}: no payload at all")
    assert failures == [], "\n".join(failures)
    assert missing == [], "payloads not shown as text:\n" + "\n".join(missing)
