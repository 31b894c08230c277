"""Multi-user load: `streamlit run` on loopback, N concurrent headless-chromium sessions for S seconds.

    python tests/benchmarks/load_test.py                       # 10 sessions, 120 s (issue #10)
    python tests/benchmarks/load_test.py --sessions 3 --seconds 30

Not collected by pytest (the file name does not start with ``test_``). It

1. builds a fresh store with the built-in sample (the Data page's code path: ``load_bytes`` +
   ``save_messages``) and one audit round whose conversations are split between the auditor
   sessions (``load-1``, ``load-2``: no overlap, so every save is a new score row);
2. starts ``streamlit run app.py`` on 127.0.0.1 with that store (``conftest.StreamlitServer``);
3. drives ``--sessions`` Playwright contexts in one headless chromium. Each session loops until
   the deadline: it opens every page of ``ui.shell.PAGES`` from the sidebar, changes the Channel
   filter (sidebar) on the Engagement page, moves a slider (ROI input on even sessions, the Intents
   confidence threshold on odd ones) and, for the first ``--auditors`` sessions, saves audit scores
   on the Audit page (``--saves-per-visit`` conversations per visit);
4. stops by itself: no new step starts after ``--seconds``; a step still running then may finish
   within ``--grace`` seconds, after which everything is closed (the hard deadline).

Page-ready time: from the click to the moment the browser receives the end of the script run it
triggered (Streamlit's ``script_finished`` message on the websocket; a run cut short by a rerun
does not count), with the page's heading shown for a page visit. Errors: ``[data-testid="stException"]``
elements, browser console errors, page errors, steps that timed out (``--step-timeout``) and
saves the page did not confirm. Scores lost: reviews the browser saw confirmed ("Saved ...
(revision N)") that have no row in ``audit_scores``; a stored row whose score differs from the
last confirmed save is reported too. Requests to other hosts are answered locally (the app
should make none; they are listed, not counted as errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer  # noqa: E402

#: script_finished statuses of a run that completed (a run cut short by a rerun is not one)
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}

#: st.title of each page (the heading that tells the page is shown)
HEADINGS = {"app.py": "Overview", "pages/1_Data.py": "Data", "pages/2_Engagement.py": "Engagement",
            "pages/3_Outcomes.py": "Outcomes & escalations", "pages/4_Intents.py": "Intents",
            "pages/5_Sentiment.py": "Sentiment", "pages/6_Funnel.py": "Funnel",
            "pages/7_ROI.py": "Cost per outcome & ROI", "pages/8_Audit.py": "Audit",
            "pages/9_Improvement.py": "Improvement loop"}
ROUND = "load test"
CRITERIA_LABELS = ("Understood intent", "Accurate & helpful", "Tone", "Edge cases", "Overall")



@dataclass
class Stats:
    ready: dict = field(default_factory=dict)          # kind -> [seconds]
    exceptions: list = field(default_factory=list)     # (session, where, text)
    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    timeouts: list = field(default_factory=list)
    saves: list = field(default_factory=list)          # (reviewer, conversation_id, score) confirmed on screen
    external: list = field(default_factory=list)       # (session, url) of requests to other hosts
    unfinished: int = 0

    def add(self, kind: str, seconds: float) -> None:
        self.ready.setdefault(kind, []).append(seconds)


# --------------------------------------------------------------------------- store preparation

def prepare_store(db_path: Path, auditors: int, per_auditor: int) -> dict:
    """The sample dataset (same code path as an upload) and one audit round split between the auditors."""
    from metrics import audit, store
    from metrics.audit import store as audit_store
    from metrics.io.loaders import load_bytes
    from metrics.core.rollup import conversation_rollup
    from ui.shell import SAMPLE_NAME, SAMPLE_PATH

    db = store.connect(str(db_path))
    result = load_bytes(SAMPLE_PATH.read_bytes(), SAMPLE_PATH.name)
    saved = store.save_messages(db, result.frame, dataset_name=SAMPLE_NAME, source_format=result.format,
                                file_name=SAMPLE_PATH.name)
    reviewers = [f"load-{i + 1}" for i in range(auditors)]
    if reviewers:
        messages = store.load_messages(db, saved.dataset_id)
        candidates = audit.audit_candidates(messages, conversation_rollup(messages), score_sentiment=False)
        sample = audit.sample_conversations(candidates, n=per_auditor * len(reviewers), strategy="random", seed=10)
        assignments = audit.assign_reviewers(sample["conversation_id"].tolist(), reviewers, overlap_rate=0.0,
                                             seed=10)
        audit_store.create_round(db, name=ROUND, dataset_id=int(saved.dataset_id), strategy="random", seed=10,
                                 sample=sample, assignments=assignments, params={"purpose": "load test"})
    db.close()
    return {"dataset_id": saved.dataset_id, "messages": len(result.frame), "reviewers": reviewers}


def stored_scores(db_path: Path) -> dict[tuple[str, str], int]:
    """{(reviewer, conversation_id): overall score} of the round's stored reviews."""
    from metrics import store
    from metrics.audit import store as audit_store

    db = store.connect(str(db_path))
    try:
        rid = int(audit_store.get_round(db, ROUND)["id"])
        scores = audit_store.load_scores(db, rid)
    finally:
        db.close()
    return {(r, c): int(o) for r, c, o in zip(scores["reviewer"], scores["conversation_id"], scores["overall"])}


# --------------------------------------------------------------------------- one browser session

class Session:
    def __init__(self, index: int, browser, url: str, stats: Stats, deadline: float, args, reviewer: str | None):
        self.index, self.browser, self.url, self.stats = index, browser, url, stats
        self.deadline, self.args, self.reviewer = deadline, args, reviewer
        self.name = f"s{index + 1}"
        self.filtered = None   # the channel this session filters on, if any
        self.picked = None
        self.page = None
        self.served = 0
        self.current = None
        self.finished = 0        # script runs the browser saw finish
        self.finished_at = 0.0   # perf_counter() when the last one arrived

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def start(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1400, "height": 1600})
        await self.context.route(lambda url: not url.startswith(self.url), self._external)
        self.page = await self.context.new_page()
        self.page.set_default_timeout(self.args.step_timeout * 1000)
        self.page.on("console", self._console)
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        self.page.on("pageerror", lambda exc: self.stats.page_errors.append((self.name, str(exc)[:300])))
        self.page.on("requestfailed", lambda req: self._log(f"request failed: {req.url[:150]} {req.failure}"))

    def _console(self, msg) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
            self.stats.console_errors.append((self.name, msg.text[:300], where[:200]))

    def _frame(self, payload) -> None:
        """Count the script runs the browser saw finish (Streamlit's ``script_finished`` message)."""
        if not isinstance(payload, (bytes, bytearray)):
            return
        msg = ForwardMsg()
        try:
            msg.ParseFromString(bytes(payload))
        except Exception:  # noqa: BLE001 - not a ForwardMsg: ignore
            return
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished in FINISHED:
            self.finished += 1
            self.finished_at = time.perf_counter()

    async def _external(self, route) -> None:
        """A request leaving the machine (the app should make none): recorded, answered locally with
        an empty response so an offline machine does not turn it into a console error."""
        self.stats.external.append((self.name, route.request.url[:200]))
        await route.fulfill(status=204, body="")

    def _log(self, text: str) -> None:
        if self.args.verbose:
            print(f"{time.strftime('%H:%M:%S')} {self.name} {text}", file=sys.stderr, flush=True)

    async def _settled(self, before: int, heading: str | None) -> float:
        """Wait until a script run that finished after ``before`` runs reached the browser (its
        ``script_finished`` message) and ``heading`` is shown; return the perf_counter of that message."""
        deadline = time.monotonic() + self.args.step_timeout
        while self.finished <= before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no script run finished within {self.args.step_timeout:g} s")
            await asyncio.sleep(0.02)
        done_at = self.finished_at
        if heading:
            await self.page.get_by_role("heading", name=heading).first.wait_for(
                timeout=max(deadline - time.monotonic(), 1) * 1000)
        return done_at

    async def _step(self, kind: str, action, heading: str | None) -> bool:
        """Run ``action`` (a click ...), time it until the page is ready; record errors."""
        before, t0 = self.finished, time.perf_counter()
        self._log(f"{kind} {heading or ''} ...")
        try:
            await action()
            seconds = await self._settled(before, heading) - t0
        except Exception as exc:  # noqa: BLE001 - a timeout or a vanished element is a failed step
            self.stats.timeouts.append((self.name, kind, type(exc).__name__, str(exc).splitlines()[0][:200]))
            self._log(f"{kind} FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            if self.args.workdir and len(self.stats.timeouts) <= 5:
                shot = Path(self.args.workdir) / f"failed_{len(self.stats.timeouts)}_{self.name}.png"
                try:
                    await self.page.screenshot(path=str(shot), full_page=True)
                except Exception:  # noqa: BLE001 - a screenshot is only a diagnosis aid
                    pass
            return False
        self.stats.add(kind, seconds)
        self._log(f"{kind} {heading or ''} ready in {seconds:.2f} s")
        found = self.page.locator('[data-testid="stException"]')
        if await found.count():
            self.stats.exceptions.append((self.name, kind, (await found.first.inner_text())[:300]))
        return True

    async def open_first(self) -> None:
        """The first visit (a new document: the page clock and counters start at zero)."""
        t0 = time.perf_counter()
        try:
            await self.page.goto(self.url)
            done_at = await self._settled(0, "Overview")
        except Exception as exc:  # noqa: BLE001
            self.stats.timeouts.append((self.name, "first load", type(exc).__name__, str(exc).splitlines()[0][:200]))
            return
        self.stats.add("first load (new session)", done_at - t0)
        self.current = "app.py"

    async def visit(self, path: str) -> bool:
        heading = HEADINGS[path]
        link = self.page.get_by_test_id("stSidebar").get_by_role("link", name=self._label(path), exact=True)
        return await self._step("page", link.click, heading)

    @staticmethod
    def _label(path: str) -> str:
        from ui.shell import PAGES

        return next(label for p, label, _ in PAGES if p == path)

    async def change_filter(self) -> None:
        """Pick the first channel in the sidebar's Filters (or remove it again on the next lap)."""
        sidebar = self.page.get_by_test_id("stSidebar")
        expander = sidebar.get_by_test_id("stExpander").filter(has_text="Filters")
        if not await expander.get_by_test_id("stMultiSelect").first.is_visible():
            await expander.locator("summary").first.click()
        box = expander.get_by_test_id("stMultiSelect").filter(has_text="Channel")

        async def act():
            if self.filtered:  # remove the channel picked on the previous lap
                await box.get_by_role("button", name=f"Remove {self.filtered}", exact=True).click()
            else:
                opener = box.get_by_role("button", name="Open", exact=True)  # the combobox's chevron
                options = self.page.get_by_role("option").filter(has_not_text="Select all")
                for attempt in range(3):  # a click during the expander's animation can be lost
                    if await options.first.is_visible():
                        break
                    await opener.click()
                    try:
                        await options.first.wait_for(state="visible", timeout=3000)
                    except Exception:  # noqa: BLE001 - retried; the last failure is raised below
                        if attempt == 2:
                            raise
                name = (await options.nth(self.index % max(await options.count(), 1)).inner_text()).strip()
                await self.page.get_by_role("option", name=name, exact=True).click()
                self.picked = name
        if await self._step("filter change", act, None):
            self.filtered = None if self.filtered else self.picked
        await self.page.keyboard.press("Escape")

    async def move_slider(self, path: str) -> None:
        if path == "pages/7_ROI.py":
            slider = self.page.get_by_role("slider").first
            kind = "ROI slider (fragment)"
        else:
            slider = self.page.get_by_role("slider", name="Confidence threshold")
            kind = "Intents threshold slider"

        async def act():
            await slider.focus()
            await slider.press("ArrowRight" if (self.index + len(self.stats.ready.get(kind, []))) % 2 == 0
                               else "ArrowLeft")
        await self._step(kind, act, None)

    async def audit(self) -> None:
        page = self.page
        names = page.get_by_test_id("stSelectbox").filter(has_text="Your name")
        if await page.get_by_text(f"{self.reviewer}:", exact=False).count() == 0:
            async def pick():
                await names.click()
                await page.get_by_role("option", name=self.reviewer, exact=True).click()
            if not await self._step("audit: pick reviewer", pick, None):
                return
        for _ in range(self.args.saves_per_visit):
            if self.remaining() <= 0:
                return
            form = page.get_by_test_id("stForm").filter(has_text="Rubric")
            current = await page.get_by_test_id("stSelectbox").filter(has_text="Conversation").first.inner_text()
            score = 1 + (len(self.stats.saves) + self.index) % 5

            async def save():
                for label in CRITERIA_LABELS:
                    group = form.get_by_role("radiogroup", name=label, exact=True)
                    await group.locator('label[data-testid="stRadioOption"]').nth(score - 1).click()
                await form.get_by_role("button", name="Save review").click()
            if not await self._step("audit: save review", save, None):
                return
            ok = page.get_by_test_id("stAlertContentSuccess").filter(has_text="(revision ")
            try:  # the run has reached the browser; give it a moment to draw the message
                await ok.or_(page.get_by_test_id("stAlertContentError")).first.wait_for(timeout=5000)
            except Exception:  # noqa: BLE001 - reported below as not confirmed
                pass
            if await ok.count():
                text = await ok.first.inner_text()
                cid = text.split("Saved ", 1)[1].split(" (revision", 1)[0] if "Saved " in text else current
                self.stats.saves.append((self.reviewer, cid.strip(), score))
            else:
                errors = await page.get_by_test_id("stAlertContentError").all_inner_texts()
                self.stats.exceptions.append((self.name, "audit: save not confirmed", " | ".join(errors)[:300]))
            nxt = page.get_by_role("button", name="Next unreviewed")
            if not await self._step("audit: next conversation", nxt.click, None):
                return

    async def run(self, paths: list[str]) -> int:
        """Laps over every page until the deadline; returns the pages served."""
        await self.start()
        await self.open_first()
        # Sessions start their laps on different pages (so every page is under load from the start);
        # auditors start on the Audit page, so they save scores even when the server is slow.
        first = paths.index("pages/8_Audit.py") if self.reviewer and "pages/8_Audit.py" in paths \
            else self.index % len(paths)
        order = paths[first:] + paths[:first]
        lap = 0
        while self.remaining() > 0:
            for path in order:
                if self.remaining() <= 0:
                    break
                if path == self.current:  # already shown: a link to it would not run anything
                    continue
                if not await self.visit(path):
                    continue
                self.current = path
                self.served += 1
                if self.remaining() <= 0:
                    break
                if path == "pages/2_Engagement.py":
                    await self.change_filter()
                elif path == ("pages/7_ROI.py" if self.index % 2 == 0 else "pages/4_Intents.py"):
                    await self.move_slider(path)
                elif path == "pages/8_Audit.py" and self.reviewer:
                    await self.audit()
            lap += 1
        return self.served


# --------------------------------------------------------------------------- driver

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def drive(url: str, args, reviewers: list[str]) -> tuple[Stats, list[int]]:
    from playwright.async_api import async_playwright

    from ui.shell import PAGES

    paths = [p for p, _, _ in PAGES if (ROOT / p).exists()]
    stats = Stats()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        deadline = time.monotonic() + args.seconds
        sessions = [Session(i, browser, url, stats, deadline, args, reviewers[i] if i < len(reviewers) else None)
                    for i in range(args.sessions)]
        tasks = [asyncio.create_task(s.run(paths)) for s in sessions]
        done, pending = await asyncio.wait(tasks, timeout=args.seconds + args.grace)
        for task in pending:  # the hard deadline: steps still running are abandoned
            task.cancel()
            stats.unfinished += 1
        served = [s.served for s in sessions]
        for t in done:
            if t.exception():
                stats.timeouts.append(("session", "crashed", type(t.exception()).__name__,
                                       str(t.exception())[:200]))
        await asyncio.gather(*pending, return_exceptions=True)
        await browser.close()
    return stats, served


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120.0, help="no step starts after this")
    parser.add_argument("--auditors", type=int, default=2, help="sessions that save audit scores")
    parser.add_argument("--saves-per-visit", type=int, default=3)
    parser.add_argument("--step-timeout", type=float, default=60.0, help="a step slower than this is an error")
    parser.add_argument("--grace", type=float, default=60.0, help="after --seconds, wait this long for running steps")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--verbose", action="store_true", help="log every step to stderr")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.auditors = min(args.auditors, args.sessions)
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="chatlens-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "load.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is absent: apt-get install chromium")

    print(f"preparing {db_path} ...", file=sys.stderr, flush=True)
    info = prepare_store(db_path, args.auditors, per_auditor=400)
    server = StreamlitServer(db_path)
    print(f"server {server.url} (log {server.log.name}); {args.sessions} sessions for {args.seconds:g} s",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        stats, served = asyncio.run(drive(server.url, args, info["reviewers"]))
    finally:
        server.stop()
    wall = time.monotonic() - started
    load_after = os.getloadavg()
    rows = stored_scores(db_path)
    confirmed = {(rev, cid): score for rev, cid, score in stats.saves}  # the last confirmed save of each review
    lost = sorted(k for k in confirmed if k not in rows)
    wrong = sorted(k for k in confirmed if k in rows and rows[k] != confirmed[k])
    saved_by = {r: sum(1 for rev, _ in confirmed if rev == r) for r in info["reviewers"]}
    stored = {r: sum(1 for rev, _ in rows if rev == r) for r in info["reviewers"]}
    pages = stats.ready.get("page", [])
    errors = len(stats.exceptions) + len(stats.console_errors) + len(stats.page_errors) + len(stats.timeouts)
    fig = {"date": time.strftime("%Y-%m-%d %H:%M"), "sessions": args.sessions, "seconds": args.seconds,
           "wall_seconds": round(wall, 1), "messages": info["messages"],
           "machine": f"{os.cpu_count()} cores; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}",
           "pages_served": sum(served), "pages_served_per_session": served,
           "page_ready_p50_s": round(percentile(pages, 50), 2), "page_ready_p95_s": round(percentile(pages, 95), 2),
           "page_ready_max_s": round(max(pages), 2) if pages else None,
           "actions": {k: {"count": len(v), "p50_s": round(percentile(v, 50), 2), "p95_s": round(percentile(v, 95), 2)}
                       for k, v in sorted(stats.ready.items())},
           "errors": errors, "exceptions": stats.exceptions, "console_errors": stats.console_errors,
           "page_errors": stats.page_errors, "timeouts": stats.timeouts, "unfinished_at_hard_deadline": stats.unfinished,
           "external_requests": len(stats.external),
           "external_urls": sorted({u for _, u in stats.external}),
           "scores_saved": saved_by, "scores_stored": stored, "scores_lost": len(lost), "lost": lost,
           "scores_with_other_values": len(wrong), "wrong": wrong}
    width = 28
    print(f"\nChatlens load test · {fig['date']} · {args.sessions} sessions × {args.seconds:g} s "
          f"(wall {fig['wall_seconds']} s) on the sample ({info['messages']:,} messages); {fig['machine']}")
    print(f"{'pages served':<{width}} {fig['pages_served']} (per session {served})")
    print(f"{'page-ready p50 / p95 / max':<{width}} {fig['page_ready_p50_s']} / {fig['page_ready_p95_s']} / "
          f"{fig['page_ready_max_s']} s")
    for kind, row in fig["actions"].items():
        print(f"  {kind:<{width - 2}} n={row['count']:<4} p50 {row['p50_s']} s  p95 {row['p95_s']} s")
    print(f"{'errors':<{width}} {errors} (exceptions {len(stats.exceptions)}, console {len(stats.console_errors)}, "
          f"page errors {len(stats.page_errors)}, timeouts {len(stats.timeouts)})")
    for item in (stats.exceptions + stats.console_errors + stats.page_errors + stats.timeouts)[:15]:
        print(f"  - {item}")
    if stats.external:
        print(f"{'requests to other hosts':<{width}} {len(stats.external)} (answered locally, not errors): "
              f"{fig['external_urls'][:3]}")
    print(f"{'scores saved / stored / lost':<{width}} {sum(saved_by.values())} / {sum(stored.values())} / {len(lost)} "
          f"({saved_by} vs {stored}); stored with another value: {len(wrong)}")
    if stats.unfinished:
        print(f"{'sessions cut at the deadline':<{width}} {stats.unfinished}")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2, default=str))
    return fig


if __name__ == "__main__":
    main()
