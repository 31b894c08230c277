"""metrics.report and ``python -m metrics report``: contents, self-containment, escaping, Markdown, PDF."""

from __future__ import annotations

import base64
import html as html_lib
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest

from conftest import ROOT, shared_path
from metrics import kpis
from metrics.improve.changelog import ChangeEntry
from metrics.report import build_report, find_chromium, html_to_pdf, md_text, render_html, render_markdown

SCREENSHOTS = ROOT / "tests" / "screenshots"
HOSTILE_NAME = 'Support <script>alert("x")</script> & co'
HOSTILE_REASON = "<img src=http://evil.example/x.png onerror=alert(1)> | *bold* [link](http://evil.example)"
HOSTILE_TITLE = "Rewrite <b>refund</b> flow | 100% $5 off"
LABELS = [k.label for k in kpis.CATALOGUE.values()]


def _cli(argv):
    from metrics import cli

    if "metrics.cli_report" not in cli.SUBCOMMANDS:  # until the lead registers it in metrics/cli.py
        cli.SUBCOMMANDS.append("metrics.cli_report")
    return cli.main(argv)


@pytest.fixture(scope="module")
def sample():
    """The built-in sample, scored, with one 2026-W44 escalation reason replaced by hostile text."""
    from metrics.io.loaders import load_path
    from metrics.core.rollup import conversation_rollup
    from metrics.sentiment import add_sentiment

    m = load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame
    reason = m["escalation_reason"].astype("str")
    late = m["timestamp"].ge(pd.Timestamp("2026-10-26", tz="UTC")).to_numpy(bool)
    target = m.loc[late & reason.eq("Sensitive topic detected").fillna(False).to_numpy(bool), "conversation_id"]
    hit = m["conversation_id"].isin(set(target)).to_numpy(bool) & reason.notna().to_numpy(bool)
    m = m.assign(escalation_reason=reason.where(~hit, HOSTILE_REASON).astype("str"))
    m = add_sentiment(m)
    return m, conversation_rollup(m)


@pytest.fixture(scope="module")
def reports(sample):
    m, r = sample
    change = ChangeEntry("2026-10-05", HOSTILE_TITLE, "response_rewrite", "escalation_rate", why="<i>too many</i>",
                         id=7)
    return {view: build_report(m, r, view=view, dataset_name=HOSTILE_NAME, changes=[change])
            for view in ("executive", "operational")}


@pytest.fixture(scope="module")
def pages(reports):
    return {view: render_html(rep) for view, rep in reports.items()}


# --------------------------------------------------------------------------- contents

def test_report_values_on_the_sample(reports, sample):
    rep = reports["executive"]
    m, r = sample
    assert (rep.period.current.label, rep.period.previous.label) == ("2026-W44", "2026-W43")
    assert (rep.mom.current.label, rep.mom.previous.label) == ("2026-10", "2026-09")
    assert rep.conversation_count == 239  # 2026-W44 (counted by hand in test_kpis)
    tiles = rep.tiles.set_index("name")
    assert tiles.index.tolist() == list(kpis.KPI_NAMES)
    table = kpis.kpi_table(m, r, spark_periods=0).set_index("name")
    for name in ("resolution_rate", "escalation_rate", "lead_conversion_rate", "total_conversations"):
        assert tiles.loc[name, "value_a"] == pytest.approx(table.loc[name, "value"])
        assert tiles.loc[name, "delta"] == pytest.approx(table.loc[name, "wow_delta"])
        assert tiles.loc[name, "mom_delta"] == pytest.approx(table.loc[name, "mom_delta"])
    # Bands of the guide's suggestions: resolution 55.1% < 60% is red, lead conversion 37.1% >= 25% green,
    # intent accuracy 94.2% in 85-95% amber, cost per outcome $14.50 in $2-$15 amber; no band: none.
    assert tiles["status"].to_dict() == {**{n: "none" for n in kpis.KPI_NAMES}, "resolution_rate": "red",
                                             "lead_conversion_rate": "green", "intent_accuracy": "amber",
                                             "cost_per_outcome": "amber"}
    assert tiles.loc["csat", "test"] == "Mann-Whitney U"
    assert tiles.loc["lead_conversion_rate", "significant"]  # 13/35 vs 4/31, p = 0.0246
    assert len(rep.trends["resolution_rate"]) == 13
    esc = rep.escalations.set_index("reason")
    assert esc.loc["Customer requested agent", "conversation_count"] == 19
    assert esc.loc["Customer requested agent", "previous_count"] == 32
    assert HOSTILE_REASON in esc.index
    assert rep.review.focus["subject"] == "Customer requested agent"
    assert rep.changes["title"].tolist() == [HOSTILE_TITLE]
    assert rep.chart_metrics() == ["resolution_rate", "lead_conversion_rate", "intent_accuracy", "cost_per_outcome",
                                   "escalation_rate", "containment_rate"]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.styles, self.text = [], [], [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


@pytest.mark.parametrize("view", ["executive", "operational"])
def test_html_is_self_contained_and_lists_every_kpi(pages, view):
    page = pages[view]
    c = _Collector()
    c.feed(page)
    assert not {"script", "link", "iframe", "object", "embed", "base", "frame"} & set(c.tags)
    for tag, key, value in c.attrs:
        if key in ("src", "href", "srcset", "action", "formaction", "poster", "data", "background"):
            assert not _REMOTE.match(value), (tag, key, value[:80])
        assert "url(" not in value.lower() or "http" not in value.lower()
    css = "".join(c.styles).lower()
    assert "@import" not in css and not re.search(r"url\(\s*['\"]?\s*(https?:)?//", css)
    images = [v for t, k, v in c.attrs if t == "img" and k == "src"]
    assert images and all(v.startswith("data:image/svg+xml;base64,") for v in images)
    for uri in images:  # inside each chart: no remote reference either (the xmlns names are not fetched)
        svg = base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")
        assert not re.search(r"(?:href|src)\s*=\s*[\"'](?:https?:)?//", svg)
    assert "default-src 'none'" in page  # the CSP forbids any fetch
    text = html_lib.unescape(" ".join(c.text))
    for label in LABELS:
        assert label in text, label
    assert len(images) == (6 if view == "executive" else 16)  # 15 trends + the reasons chart


def test_html_escapes_every_data_string(pages):
    for page in pages.values():
        assert "<script" not in page and "<img src=http" not in page and "<b>refund" not in page
        assert "Support &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in page
        assert "Rewrite &lt;b&gt;refund&lt;/b&gt; flow | 100% $5 off" in page
    assert html_lib.escape(HOSTILE_REASON, quote=True).replace("&#x27;", "&#39;") in pages["executive"]
    assert "&lt;i&gt;too many&lt;/i&gt;" in pages["operational"]


def test_markdown_is_real_markdown(reports):
    md = render_markdown(reports["operational"])
    assert md.startswith("# Weekly report: 2026-W44\n")
    assert "| Resolution rate | 55.1% | Off track | -0.9 pp: not significant, p = 0.851, two-proportion z-test" in md
    assert "| Cost per outcome | $14.50 | Watch |" in md
    assert "\\%" not in md and "\\$" not in md
    assert ("\\<img src=http://evil.example/x.png onerror=alert(1)\\> \\| \\*bold\\* "
            "\\[link\\](http://evil.example)") in md
    assert "### 2026-10-05: Rewrite \\<b\\>refund\\</b\\> flow \\| 100% $5 off" in md
    assert "Dataset **Support \\<script\\>alert(\"x\")\\</script\\> & co**" in md
    for label in LABELS:
        assert f"| {label}" in md, label
    # every table row has the header's number of cells (no | from the data splits a cell)
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        rows = block.strip().splitlines()
        cells = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(cells) == 1, rows[0]


def test_md_text_escapes_only_structure():
    assert md_text("Pro plan: $79/month, 20% off") == "Pro plan: $79/month, 20% off"
    assert md_text("a | b") == "a \\| b"
    assert md_text("# heading") == "\\# heading" and md_text("issue #5") == "issue #5"
    assert md_text("*x* _y_ [z] <w> `v`") == "\\*x\\* \\_y\\_ \\[z\\] \\<w\\> \\`v\\`"
    assert md_text("two\nlines") == "two lines"
    assert md_text("C:\\temp") == "C:\\temp" and md_text("a\\*b") == "a\\\\\\*b"


def test_range_period_and_no_complete_week(sample):
    m, r = sample
    rep = build_report(m, r, period="2026-10-01..2026-10-31")
    assert rep.title == "Period report: 2026-10-01..2026-10-31" and rep.mom is None
    assert rep.period.previous.label == "2026-08-31..2026-09-30"
    assert rep.conversation_count == 1133
    from metrics.errors import InsufficientDataError

    one_day = r[r["started_at"].lt(pd.Timestamp("2026-08-04", tz="UTC")).to_numpy(bool)]
    with pytest.raises(InsufficientDataError, match="FROM..TO"):
        build_report(m[m["conversation_id"].isin(one_day["conversation_id"]).to_numpy(bool)], one_day)


# --------------------------------------------------------------------------- PDF and pictures

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (apt-get install chromium)")


@needs_chromium
def test_pdf_from_the_same_html(pages, tmp_path):
    out = html_to_pdf(pages["executive"], tmp_path / "report.pdf")
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000
    if shutil.which("pdftoppm"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(out),
                        str(SCREENSHOTS / "report_pdf_page")], check=True, timeout=60)
        assert (SCREENSHOTS / "report_pdf_page-1.png").stat().st_size > 10_000
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True) if shutil.which("pdfinfo") else None
    if info is not None:
        assert "A4" in info.stdout


@needs_chromium
@pytest.mark.e2e
def test_browser_screenshot_loads_nothing_remote(pages, tmp_path, browser):
    # pytest-playwright's browser (Debian chromium, the project's flags: tests/conftest.py); a second
    # sync_playwright() inside its running loop would fail
    page_file = tmp_path / "report.html"
    page_file.write_text(pages["operational"], encoding="utf-8")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        requests = []
        page.on("request", lambda req: requests.append(req.url))
        page.goto(page_file.as_uri())
        page.screenshot(path=str(SCREENSHOTS / "report_operational.png"), full_page=True)
        broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        tiles = page.locator(".tile").count()
    finally:
        context.close()
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert broken == 0 and tiles == len(LABELS)


# --------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    from data.generate import generate, write_csv

    return write_csv(generate(seed=3, n_conversations=400, weeks=6), tmp_path_factory.mktemp("export") / "bot.csv.gz")


def test_cli_report_stored_dataset_with_change_log(small_export, tmp_path, capsys):
    from metrics import store
    from metrics.improve import store as goals_store

    db_path = tmp_path / "store.db"
    assert _cli(["ingest", str(small_export), "--db", str(db_path), "--dataset", "Nova | EU"]) == 0
    db = store.connect(db_path)
    info = store.find_dataset(db, "Nova | EU")
    goals_store.add_change(db, ChangeEntry("2026-08-24", "New refund answers", "response_rewrite", "escalation_rate",
                                           why="refund confusion", dataset_id=info.id))
    db.close()
    capsys.readouterr()
    out = tmp_path / "weekly.md"
    assert _cli(["report", "--db", str(db_path), "--dataset", "Nova | EU", "--view", "operational",
                 "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    md = out.read_text(encoding="utf-8")
    assert md.startswith("# Weekly report: 2026-W37\n")
    assert "Dataset **Nova \\| EU**" in md
    assert "### 2026-08-24: New refund answers" in md and "- **Why:** refund confusion" in md
    assert "- **What happened:** Escalation rate went from" in md
    html_out = tmp_path / "weekly.html"
    assert _cli(["report", "--db", str(db_path), "--dataset", "Nova | EU", "--out", str(html_out)]) == 0
    page = html_out.read_text(encoding="utf-8")
    assert "New refund answers" in page and all(html_lib.escape(label) in page for label in LABELS)


def test_cli_report_errors(small_export, tmp_path, capsys, monkeypatch):
    assert _cli(["report", str(small_export), "--dataset", "x", "--format", "md"]) == 2
    assert "not both" in capsys.readouterr().err
    assert _cli(["report", str(small_export), "--period", "next-week", "--format", "md"]) == 2
    assert "last-week, last-month or FROM..TO" in capsys.readouterr().err
    assert _cli(["report", str(small_export), "--out", str(tmp_path / "r.docx")]) == 2
    assert "give --format html, pdf or md" in capsys.readouterr().err


def test_cli_report_missing_chromium_message(small_export, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CHATLENS_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on the PATH
    assert _cli(["report", str(small_export), "--out", str(tmp_path / "r.pdf")]) == 2  # pdf from the extension
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "install chromium" in err and "use --format html" in err
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.shared_data
def test_cli_report_real_export_html_and_pdf(tmp_path, capsys):
    twcs = shared_path("twcs_sample", "twcs.csv")
    out = tmp_path / "twcs.html"
    assert _cli(["report", str(twcs), "--skip-bad-rows", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Weekly report: 2017-W48" in page
    assert all(html_lib.escape(label) in page for label in LABELS)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page)
    rasa = shared_path("rasa_tracker_customer_support", "trackers.jsonl")
    # Five conversations on one day: no complete week, so the default period is refused with the way out ...
    assert _cli(["report", str(rasa), "--format", "md"]) == 2
    assert "FROM..TO" in capsys.readouterr().err
    # ... and the day as a range works.
    if find_chromium() is not None:
        pdf = tmp_path / "rasa.pdf"
        assert _cli(["report", str(rasa), "--period", "2025-04-19..2025-04-19", "--out", str(pdf)]) == 0
        assert pdf.read_bytes().startswith(b"%PDF-")


def test_the_report_lists_the_periods_top_knowledge_gaps(reports, sample):
    from metrics import topics
    from metrics.improve.compare import window_slice

    report = reports["executive"]
    assert 0 < len(report.gaps) <= 5
    # the same gap topics, in the same order, as metrics.topics.gap_report on the period's messages
    messages, _ = window_slice(sample[0], sample[1], report.period.current)
    expected = topics.gap_report(messages).topics.head(5)
    assert report.gaps["label"].tolist() == expected["label"].tolist()
    assert report.gaps["message_count"].tolist() == expected["message_count"].tolist()
    html = render_html(report)
    assert "Top knowledge gaps" in html and html_lib.escape(report.gaps["label"].iloc[0]) in html
    assert "## Top knowledge gaps" in render_markdown(report)
