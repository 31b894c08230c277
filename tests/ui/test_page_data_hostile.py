"""Every hostile file through the Data page (AppTest): never an exception, always a save or an error.

The corpus is that of ``tests/metrics/io/test_hostile_corpus.py`` (``tests/fixtures/bad``, ``hostile``, ``hostile2`` and the
big cases built at test time). For each file a fresh session opens the Data page, uploads the file with
"Refuse the file", and then:

* the validation report appears and "Save dataset" saves it ("N new message(s)"), or
* an error element is shown; the session then chooses "Skip bad rows", and again a save or an error follows.

``at.exception`` must stay empty throughout, and no script run may exceed :data:`RUN_TIMEOUT`.

About 1 s per file in a warm process, so the sessions run in two worker processes (``WorkerPool`` from
``test_hostile_corpus``), each with its own store (the sample is saved once per worker); a session that times
out leaves a script thread running, so its worker is replaced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import ROOT
from test_hostile_corpus import make_corpus2  # noqa: E402 (imported there from its folder)
from test_hostile_corpus import (CASES, WorkerPool, answer_and_exit, arm_hang_dump, case_path, disarm_hang_dump,
                                 hang_summary, selected_params, write_generated)

#: Seconds one AppTest script run may take (the upload's run includes parsing and validation).
RUN_TIMEOUT = 30.0
#: Seconds the parent waits for a whole file (open, upload, save, skip, save).
TASK_TIMEOUT = 150.0
_MIME = {".csv": "text/csv", ".tsv": "text/tab-separated-values", ".txt": "text/plain", ".json": "application/json",
         ".jsonl": "application/x-ndjson", ".gz": "application/gzip", ".zip": "application/zip"}


# --------------------------------------------------------------------------- worker side

_DUMP: dict = {}


def _go(run):
    """One AppTest script run, its stacks dumped to the task's file if it is still going near its time-out.

    AppTest's own time-out waits for the script thread to end, so a run still going 2 s after
    :data:`RUN_TIMEOUT` answers the task from a timer thread and ends this worker."""
    import threading

    armed = arm_hang_dump(_DUMP.get("path"), RUN_TIMEOUT - 1)

    def bail():
        record = dict(_DUMP.get("record", {}))
        record.update(harness_error=f"a script run was still going after {RUN_TIMEOUT + 2:.0f} s",
                      hang=hang_summary(_DUMP.get("path")), poisoned=True)
        answer_and_exit(record)

    timer = threading.Timer(RUN_TIMEOUT + 2, bail)
    timer.daemon = True
    timer.start()
    try:
        return run()
    finally:
        timer.cancel()
        disarm_hang_dump(armed)


def _texts(elements) -> list[str]:
    return [str(e.value)[:500] for e in elements]


def _step(at, record: dict, label: str) -> bool:
    """After a run: record exceptions and errors; True when the page raised."""
    record[f"{label}_exceptions"] = [str(e.value)[:2000] for e in at.exception]
    record[f"{label}_errors"] = _texts(at.error)
    return bool(record[f"{label}_exceptions"])


def _save(at, record: dict, label: str, dataset: str) -> None:
    """Click "Save dataset" when the page offers it; records the outcome under ``label``."""
    buttons = [b for b in at.button if b.key == "data_save"]
    record[f"{label}_report"] = any("Validation report" in m.value for m in at.markdown)
    if not buttons:
        record[f"{label}_outcome"] = "no save button"
        return
    if any(t.key == "data_name" for t in at.text_input):
        at.text_input(key="data_name").set_value(dataset)
    start = time.perf_counter()
    _go(at.button(key="data_save").click().run)
    record[f"{label}_save_s"] = time.perf_counter() - start
    if _step(at, record, f"{label}_save"):
        record[f"{label}_outcome"] = "exception"
        return
    saved = [s for s in _texts(at.success) if "new message(s)" in s]
    record[f"{label}_outcome"] = "saved" if saved else ("error" if record[f"{label}_save_errors"] else "nothing")
    record[f"{label}_success"] = saved


def run_data_page(path: str, name: str, db_dir: str, dataset: str, dump: str | None = None) -> dict:
    from streamlit.testing.v1 import AppTest

    _DUMP["path"] = dump
    os.environ["CHATLENS_DB"] = str(Path(db_dir) / f"worker-{os.getpid()}.db")
    # the Data page reads the same expanded-size setting as the CLI's --max-expanded-bytes default
    extra = make_corpus2.EXTRA_ARGS.get(name, [])
    if "--max-expanded-bytes" in extra:
        os.environ["CHATLENS_MAX_EXPANDED_BYTES"] = extra[extra.index("--max-expanded-bytes") + 1]
    else:
        os.environ.pop("CHATLENS_MAX_EXPANDED_BYTES", None)
    data = Path(path).read_bytes()
    mime = _MIME.get(Path(name).suffix, "application/octet-stream")
    record: dict = {}
    _DUMP["record"] = record
    start = time.perf_counter()
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "1_Data.py"), default_timeout=RUN_TIMEOUT)
        _go(at.run)
        record["open_s"] = time.perf_counter() - start
        if _step(at, record, "open"):
            record["refuse_outcome"] = "exception"
            return record
        t0 = time.perf_counter()
        _go(at.file_uploader(key="data_upload").set_value((name, data, mime)).run)
        record["upload_s"] = time.perf_counter() - t0
        if _step(at, record, "refuse"):
            record["refuse_outcome"] = "exception"
            return record
        if record["refuse_errors"]:
            record["refuse_outcome"] = "error"
            t1 = time.perf_counter()
            _go(at.radio(key="data_on_error").set_value("skip").run)
            record["skip_upload_s"] = time.perf_counter() - t1
            if _step(at, record, "skip"):
                record["skip_outcome"] = "exception"
                return record
            if record["skip_errors"]:
                record["skip_outcome"] = "error"
            else:
                _save(at, record, "skip", dataset + " (skip)")
        else:
            _save(at, record, "refuse", dataset)
    except Exception as exc:  # noqa: BLE001  (AppTest's time-out, or the harness itself)
        record["harness_error"] = f"{type(exc).__name__}: {exc}"[:1000]
        record["poisoned"] = True  # a script thread may still be running: replace this worker
        record["hang"] = hang_summary(dump)
    record["total_s"] = time.perf_counter() - start
    return record


TASKS = {"page": run_data_page}


# --------------------------------------------------------------------------- parent side

@pytest.fixture(scope="module")
def sessions(request, tmp_path_factory):
    wanted = selected_params(request, "case")
    base = tmp_path_factory.mktemp("page_hostile")
    write_generated(wanted, base / "generated")
    (base / "db").mkdir()
    tasks = [(case, "page", {"path": str(case_path(case, base / "generated")), "name": Path(case).name,
                             "db_dir": str(base / "db"), "dataset": f"hostile {i}",
                             "dump": str(base / "dumps" / f"{i}.txt")}, TASK_TIMEOUT)
             for i, case in enumerate(wanted)]
    (base / "dumps").mkdir()
    tasks.sort(key=lambda t: not t[0].startswith(("generated/", "hostile2/regex_")))
    start = time.monotonic()
    results = WorkerPool("test_page_data_hostile", base / "logs", max_rss_mb=2_500).map(tasks)
    wall = time.monotonic() - start
    upload = sorted(((r.get("upload_s", 0.0), k) for k, r in results.items()), reverse=True)[:8]
    print(f"\n{len(tasks)} Data page sessions in {wall:.1f} s on 2 workers; slowest uploads: "
          + ", ".join(f"{k} {s:.1f}s" for s, k in upload))
    return results


def _summary(record: dict) -> str:
    keep = {k: v for k, v in record.items() if k.endswith(("outcome", "errors", "exceptions", "_s", "harness_error"))
            and v not in ([], None)}
    return repr(keep)[:1500]


@pytest.mark.parametrize("case", CASES)
def test_data_page_shows_a_save_or_an_error_never_an_exception(sessions, case):
    record = sessions[case]
    assert not record.get("timeout"), f"{case}: the session gave no answer within {TASK_TIMEOUT:.0f} s"
    assert "died" not in record, f"{case}: the worker died (status {record['died']})"
    hang = f"; it was in {record['hang']}" if record.get("hang") else ""
    assert "harness_error" not in record, f"{case}: {record['harness_error']}{hang}"
    for stage in ("open", "refuse", "skip", "refuse_save", "skip_save"):
        assert not record.get(f"{stage}_exceptions"), f"{case}: exception on the page ({stage}): " \
                                                      f"{record[f'{stage}_exceptions'][0][:600]}"
    assert record.get("refuse_outcome") in ("saved", "error"), f"{case}: {_summary(record)}"
    if record["refuse_outcome"] == "error":
        assert record.get("skip_outcome") in ("saved", "error"), f"{case} (skip bad rows): {_summary(record)}"
