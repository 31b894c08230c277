"""Shared fixtures. One test file per feature; feature-specific fixtures stay in their file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("CHATLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))


# Scripts beside the tests, run on their own (benchmarks, the load test, corpus generators, a writer process the
# concurrency tests start): never collected, not even for doctests (``--doctest-modules`` imports modules).
collect_ignore = ["metrics/store/store_writer.py"]
collect_ignore_glob = ["benchmarks/*", "fixtures/*"]

# tests/ mirrors the code: metrics/<family>/, ui/, e2e/ (benchmarks/ is never collected). Tests share builders by
# module name (``from test_outcomes import ten_conversations``), so every test folder is importable.
for _folder in sorted({p.parent for p in Path(__file__).resolve().parent.rglob("test_*.py")} - {Path(__file__).resolve().parent}):
    if "fixtures" not in _folder.parts and str(_folder) not in sys.path:
        sys.path.append(str(_folder))


def shared_path(*parts: str) -> Path:
    """Path into ../shared/data; skips the calling test with a reason when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real export {path} is absent (../shared/data is not beside the project)")
    return path


@pytest.fixture
def shared_data():
    return shared_path


def messages_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a validated-format frame by hand (for golden fixtures).

    Each row needs conversation_id, speaker, text and optionally timestamp
    (any string pandas parses; naive means UTC) plus optional canonical fields.
    """
    frame = pd.DataFrame(rows)
    for col in ("conversation_id", "speaker", "text"):
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), dtype="str")
    if "timestamp" in frame.columns:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="mixed").astype("datetime64[ns, UTC]")
    else:
        frame["timestamp"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for col in ("conversation_id", "speaker", "text", "message_id", "user_id", "channel", "intent",
                "true_intent", "event", "model_version", "outcome", "escalation_reason", "thumbs",
                "topic", "segment", "utm_source", "utm_campaign"):
        if col in frame.columns:
            frame[col] = frame[col].astype("str").where(frame[col].notna(), None).astype("str")
    for col in ("is_test", "goal_achieved", "survey_solved", "converted"):
        if col in frame.columns:
            frame[col] = frame[col].astype("boolean")
    for col in ("confidence", "rating", "conversion_value"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
    frame["row"] = range(1, len(frame) + 1)
    frame = frame.sort_values(["conversation_id", "timestamp", "row"], kind="stable").reset_index(drop=True)
    return frame


@pytest.fixture
def make_messages():
    return messages_frame


@pytest.fixture
def memory_db():
    """An in-memory sqlite-utils Database with the Chatlens tables."""
    from metrics import store

    db = store.connect(":memory:")
    yield db
    db.close()


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    """A fresh on-disk store, also set as CHATLENS_DB for code under test."""
    path = tmp_path / "chatlens.db"
    monkeypatch.setenv("CHATLENS_DB", str(path))
    return path


# --------------------------------------------------------------------------- pages under AppTest
def apptest_rerun(at):
    """Run ``at`` (an AppTest) again and assert the page raised no exception; returns ``at``."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def apptest_page(path: str, *, timeout: float = 120):
    """The page ``path`` (e.g. ``"pages/2_Engagement.py"``) under AppTest as in a real session: start from
    app.py and switch, so the shell's sidebar page links resolve. Asserts the page raised no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.switch_page(path)
    return apptest_rerun(at)


def apptest_metric(at, label: str):
    """The page's ``st.metric`` labelled ``label`` (asserts it is there, listing the labels otherwise)."""
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return found[0]


# --------------------------------------------------------------------------- Hypothesis profiles
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# --------------------------------------------------------------------------- fuzzing readers
#: Examples per fuzz test (env ``CHATLENS_FUZZ_EXAMPLES``; raise it for a long run).
FUZZ_EXAMPLES = int(os.environ.get("CHATLENS_FUZZ_EXAMPLES", 100))


def fuzz_json(scalars, keys):
    """JSON-like values for fuzzing a reader: ``scalars`` nested in lists and in dicts keyed by ``keys``."""
    from hypothesis import strategies as st

    return st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(keys, c, max_size=6)),
                        max_leaves=30)


def only_chatlens_errors(call) -> None:
    """Run ``call()``: a typed Chatlens error is fine (bad input), any other exception fails the test."""
    from metrics.errors import ChatlensError

    try:
        call()
    except ChatlensError:
        pass


# --------------------------------------------------------------------------- end-to-end (streamlit run + chromium)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run app.py` on loopback with its own store; stopped by the fixture."""

    def __init__(self, db_path: Path):
        import subprocess
        import sys

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, CHATLENS_DB=str(db_path))
        self.log = open(db_path.parent / "streamlit.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(self.port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 60.0) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early: {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("streamlit did not become healthy in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) for e2e tests")
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 1400, "height": 1000}}


@pytest.fixture
def streamlit_server(tmp_path):
    """A fresh server (fresh store) per test: deep links are tested on a freshly started server."""
    server = StreamlitServer(tmp_path / "e2e.db")
    yield server
    server.stop()


def wait_idle(page, timeout: float = 60000) -> None:
    """Wait until Streamlit has finished running the script (status widget gone, app rendered)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def drill_count(at, title_start: str) -> int:
    """The number in a drill-down heading '**<title> ...: N conversation(s)**' (asserts it is there)."""
    heads = [m.value for m in at.markdown if m.value.startswith(f"**{title_start}")]
    assert heads, f"no drill-down list {title_start!r}: {[m.value for m in at.markdown]}"
    return int(heads[0].rsplit(": ", 1)[1].split(" ")[0].replace(",", ""))
