"""CSV injection: every CSV Chatlens exports escapes cells starting with = + - @ (and tab / CR).

Export paths found (grep for to_csv / download_button / download_csv / to_csv_bytes in metrics/ ui/
pages/ app.py):

* ``metrics/io/export.py``: ``escape_formulas`` and ``to_csv_bytes`` (every path below goes through it);
* ``ui/shell.py``: ``download_csv`` (every page's "Download ... (CSV)" button) and the problem list of
  ``show_error`` (``problems.csv``);
* ``ui/data_page.py``: the skipped-rows download after a skip-mode upload;
* ``ui/overview.py``: the weekly review CSV (``to_csv_bytes`` directly);
* ``ui/audit_view.py``: training examples and score exports (``download_csv``);
* ``metrics/audit/store.py``: ``export_scores_csv``; ``metrics/audit/cli.py``: ``audit-export --format csv``.

Non-CSV downloads (Markdown reports, the audit JSONL) are out of scope. No export bypasses
``to_csv_bytes`` today; ``test_no_csv_export_bypasses_to_csv_bytes`` keeps it so.

The page tests run every page of ``ui.shell.PAGES`` under AppTest on a dataset whose ids,
intents, channels, segments, topics, user ids and texts start with formula characters, capture
every download the page offers, and parse each CSV back.
"""

from __future__ import annotations

import csv
import io
import re

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
import streamlit
from hypothesis import given, settings
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from metrics import audit, store
from metrics.audit import store as audit_store
from metrics.audit import cli as cli_audit
from metrics.errors import ValidationError
from metrics.io.export import FORMULA_PREFIXES, escape_formulas, to_csv_bytes
from metrics.io.loaders import load_bytes
from ui import shell

SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"
HOSTILE_CELLS = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1",
                 "=cmd|' /C calc'!A0"]
#: A bare carriage return inside a cell (see test_a_carriage_return_cannot_start_a_new_row).
CR_CELLS = ["\r=1+1", "hello\r=1+1", "hi\r@SUM(A1)"]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def csv_violations(payload: bytes) -> list[tuple[int, int, str]]:
    """(line, column, cell) of every cell a spreadsheet would run: starts with a formula character and is
    not a plain number (numbers such as -3 are data, not formulas)."""
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8"), newline="")))
    return [(i, j, cell) for i, row in enumerate(rows) for j, cell in enumerate(row)
            if cell.startswith(FORMULA_PREFIXES) and not _is_number(cell)]


# --------------------------------------------------------------------------- metrics/io/export.py

def test_escape_formulas_golden():
    frame = pd.DataFrame({
        "text": pd.Series(HOSTILE_CELLS[:5] + ["\r=1+1", "ok", None, " =1+1"], dtype="str"),
        "n": [-1.5, 2, np.nan, -3, 0, 1, 2, 3, 4],
        "flag": [True, False, True, False, True, False, True, False, True],
        "=formula header": ["x"] * 9,
    })
    before = frame.copy()
    out = escape_formulas(frame)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    # each text cell starting with = + - @ tab CR gets a leading quote; a leading space is not a formula
    assert out["text"].tolist()[:7] == ["'" + c for c in HOSTILE_CELLS[:5] + ["\r=1+1"]] + ["ok"]
    assert pd.isna(out["text"].iloc[7]) and out["text"].iloc[8] == " =1+1"
    assert out["n"].tolist()[:2] == [-1.5, 2]  # numbers stay numbers
    assert list(out.columns) == ["text", "n", "flag", "'=formula header"]


def test_the_checker_can_fail():
    raw = pd.DataFrame({"t": HOSTILE_CELLS}).to_csv(index=False).encode()
    assert len(csv_violations(raw)) == len(HOSTILE_CELLS)
    assert csv_violations(to_csv_bytes(pd.DataFrame({"t": HOSTILE_CELLS}))) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "=", "+", "-", "@", "\t", " "]),
                          st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r"),
                                  max_size=12)),
                min_size=1, max_size=20),
       st.lists(st.floats(allow_nan=True, allow_infinity=False), min_size=1, max_size=20))
def test_to_csv_bytes_never_emits_a_live_formula_and_loses_nothing(cells, numbers):
    texts = [p + t for p, t in cells if not (p + t).startswith("'")]  # a text quote-first is left as written
    if not texts:
        return
    frame = pd.DataFrame({"text": pd.Series(texts, dtype="str"), "value": (numbers * 20)[:len(texts)]})
    payload = to_csv_bytes(frame)
    assert csv_violations(payload) == []
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8"), newline="")))[1:]
    # undoing the escape (one quote in front of a formula character) gives back every text exactly
    restored = [r[0][1:] if r[0].startswith("'") and r[0][1:].startswith(FORMULA_PREFIXES) else r[0] for r in rows]
    assert restored == texts


@pytest.mark.parametrize("cell", CR_CELLS)
def test_a_carriage_return_cannot_start_a_new_row(cell):
    payload = to_csv_bytes(pd.DataFrame({"text": [cell, "ok"], "n": [1, 2]}))
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8"), newline="")))
    assert len(rows) == 3, rows  # header + 2 records, the CR stays inside its cell
    assert csv_violations(payload) == []


# --------------------------------------------------------------------------- capturing downloads

@pytest.fixture
def downloads(monkeypatch) -> list[dict]:
    """Every st.download_button call (module function or container method): label, file name, mime, bytes."""
    calls: list[dict] = []
    real = DeltaGenerator.download_button

    def spy(self, label, data, file_name=None, mime=None, *args, **kwargs):
        payload = data() if callable(data) else data
        calls.append({"label": label, "file_name": file_name, "mime": mime,
                      "data": payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)})
        return real(self, label, data, file_name, mime, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    monkeypatch.setattr(streamlit, "download_button",
                        lambda *args, **kwargs: spy(streamlit._main, *args, **kwargs))
    return calls


def _describe(call: dict) -> str:
    rows = list(csv.reader(io.StringIO(call["data"].decode("utf-8"), newline="")))
    escaped = sum(cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@") for row in rows for cell in row)
    return f"{call['file_name']} ({len(rows) - 1} rows, {escaped} escaped cells)"


def _csv_calls(calls: list[dict]) -> list[dict]:
    return [c for c in calls if (c["mime"] == "text/csv" or str(c["file_name"]).endswith(".csv"))]


def _download_script():
    import pandas as pd

    from ui import shell

    shell.download_csv(pd.DataFrame({"text": ["=1+1", "+2", "-3+x", "@x", "ok"], "n": [-1, 2, 3, 4, 5]}),
                       label="Download", file_name="t.csv", key="t")


def test_shell_download_csv_escapes(downloads):
    at = AppTest.from_function(_download_script, default_timeout=30)
    at.run()
    assert not at.exception
    (call,) = _csv_calls(downloads)
    assert call["file_name"] == "t.csv"
    assert csv_violations(call["data"]) == []
    assert call["data"].decode().splitlines() == ["text,n", "'=1+1,-1", "'+2,2", "'-3+x,3", "'@x,4", "ok,5"]


def _show_error_script():
    from metrics.errors import ChatlensError
    from metrics.io.loaders import load_bytes
    from ui import shell

    bad = (b"conversation_id,speaker,text,confidence\n"
           b"=c1,=HYPERLINK(\"http://evil.example\"),hi,@0.5\n-c2,+robot,yo,=2\n")
    try:
        load_bytes(bad, "=evil.csv")
    except ChatlensError as exc:
        shell.show_error(exc)


def test_show_error_problem_list_escapes(downloads):
    with pytest.raises(ValidationError) as info:  # the same load the script does: values start with = + @
        load_bytes(b"conversation_id,speaker,text,confidence\n=c1,=HYPERLINK(\"http://evil.example\"),hi,@0.5\n"
                   b"-c2,+robot,yo,=2\n", "=evil.csv")
    assert {p.value for p in info.value.problems} >= {'=HYPERLINK("http://evil.example")', "+robot", "@0.5"}
    at = AppTest.from_function(_show_error_script, default_timeout=30)
    at.run()
    assert not at.exception
    (call,) = _csv_calls(downloads)
    assert call["file_name"] == "problems.csv"
    assert csv_violations(call["data"]) == []
    body = call["data"].decode()
    assert "'=evil.csv" in body and "'=HYPERLINK" in body and "'+robot" in body and "'@0.5" in body


# --------------------------------------------------------------------------- audit exports (store + CLI)

@pytest.fixture
def audit_db(tmp_path):
    db = store.connect(tmp_path / "audit.db")
    frame = load_bytes(b"conversation_id,speaker,text\n=c1,user,=1+1\n=c1,bot,ok\n@c2,user,hi\n", "a.csv").frame
    saved = store.save_messages(db, frame, dataset_name="=dataset")
    ids = ["=c1", "@c2"]
    round_id = audit_store.create_round(
        db, name="+round", dataset_id=saved.dataset_id, strategy="random", seed=1,
        sample=pd.DataFrame({"position": [1, 2], "conversation_id": ids}),
        assignments=audit.assign_reviewers(ids, ["=evil reviewer"], overlap_rate=0.0))
    for cid in ids:
        audit_store.save_score(db, round_id=round_id, conversation_id=cid, reviewer="=evil reviewer",
                               scores={c: 3 for c in audit.CRITERIA}, flags=["good_example"],
                               note="@SUM(1+1) and -1+2")
    yield db, tmp_path / "audit.db"
    db.close()


def test_audit_store_export_escapes(audit_db):
    db, _ = audit_db
    payload = audit_store.export_scores_csv(db)
    assert csv_violations(payload) == []
    frame = pd.read_csv(io.BytesIO(payload), dtype="str")
    assert frame["conversation_id"].tolist() == ["'=c1", "'@c2"]
    assert set(frame["reviewer"]) == {"'=evil reviewer"} and set(frame["round"]) == {"'+round"}
    assert set(frame["note"]) == {"'@SUM(1+1) and -1+2"}
    assert csv_violations(audit_store.export_scores_csv(db, round_name="+round")) == []


def test_cli_audit_export_escapes(audit_db, capfdbinary):
    db, path = audit_db
    assert csv_violations(cli_audit.export_payload(db, fmt="csv")) == []
    from metrics import cli

    assert cli.main(["audit-export", "--db", str(path), "--format", "csv"]) == 0
    out = capfdbinary.readouterr().out
    assert b"'=c1" in out and b"'=evil reviewer" in out
    assert csv_violations(out) == []


# --------------------------------------------------------------------------- every page

def _hostile_sample() -> pd.DataFrame:
    """The sample dataset with formula characters at the start of ids, labels and some texts."""
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent (generate it with python -m data.generate)")
    frame = load_bytes(SAMPLE.read_bytes(), SAMPLE.name).frame.copy()
    prefixes = np.array(["=", "+", "-", "@", ""])
    codes, uniques = pd.factorize(frame["conversation_id"])
    frame["conversation_id"] = pd.Series(prefixes[codes % 5], dtype="str") + frame["conversation_id"]
    for column, prefix in (("intent", "="), ("true_intent", "="), ("channel", "@"), ("segment", "+"),
                           ("topic", "-"), ("user_id", "-"), ("model_version", "@"), ("utm_campaign", "="),
                           ("escalation_reason", "=")):
        if column in frame.columns:
            frame[column] = (prefix + frame[column]).astype("str")
    every_tenth = np.arange(len(frame)) % 10 == 0
    frame.loc[every_tenth, "text"] = "=HYPERLINK(\"http://evil.example\") " + frame.loc[every_tenth, "text"]
    return frame


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "hostile.db"
    db = store.connect(path)
    frame = _hostile_sample()
    saved = store.save_messages(db, frame, dataset_name="=HYPERLINK(\"http://evil.example\")")
    ids = frame["conversation_id"].drop_duplicates().head(4).tolist()
    round_id = audit_store.create_round(
        db, name="=round", dataset_id=saved.dataset_id, strategy="random", seed=3,
        sample=pd.DataFrame({"position": range(1, 5), "conversation_id": ids}),
        assignments=audit.assign_reviewers(ids, ["=evil reviewer"], overlap_rate=0.0))
    for i, cid in enumerate(ids):
        audit_store.save_score(db, round_id=round_id, conversation_id=cid, reviewer="=evil reviewer",
                               scores={c: 1 + (i % 5) for c in audit.CRITERIA},
                               flags=["good_example"] if i % 2 else ["bad_example"], note="@SUM(1+1)")
    db.close()
    return path


def _existing_pages() -> list[str]:
    return [path for path, _, _ in shell.PAGES if (ROOT / path).exists()]


def _offers_csv(page: str) -> bool:
    """True when the page's own code (or its ui module) has a CSV download in its default view."""
    source = (ROOT / page).read_text()
    for module in re.findall(r"from ui import ([\w, ]+)", source):
        for name in module.split(","):
            path = ROOT / "ui" / f"{name.strip()}.py"
            if name.strip() != "shell" and path.exists():
                source += path.read_text()
    return "download_csv(" in source or "to_csv_bytes(" in source


@pytest.mark.parametrize("page", _existing_pages())
def test_every_csv_a_page_offers_is_escaped(page, hostile_store, monkeypatch, downloads):
    monkeypatch.setenv("CHATLENS_DB", str(hostile_store))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["audit_reviewer_name"] = "=evil reviewer"
    at.run()
    if page != "app.py":
        downloads.clear()  # only this page's downloads
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    csvs = _csv_calls(downloads)
    print(f"\n{page}: {len(csvs)} CSV download(s): " + ", ".join(_describe(c) for c in csvs))
    bad = {c["file_name"]: csv_violations(c["data"])[:3] for c in csvs if csv_violations(c["data"])}
    assert bad == {}, bad
    if _offers_csv(page) and page != "pages/1_Data.py":  # the Data page's CSV needs an upload: tested below
        assert csvs, f"{page} offers CSV downloads but none was rendered"
    for c in csvs:  # the hostile values really reached the export, escaped
        body = c["data"].decode("utf-8")
        assert not re.search(r"(^|,)(=HYPERLINK|@SUM|=cmd)", body, flags=re.M), c["file_name"]


def test_data_page_skipped_rows_download_escapes(db_path, downloads):
    at = AppTest.from_file(str(ROOT / "pages" / "1_Data.py"), default_timeout=120)
    at.run()
    at.radio(key="data_on_error").set_value("skip")
    upload = (b"conversation_id,speaker,text,confidence\n=c1,user,=1+1,0.5\n=c1,=HYPERLINK(\"x\"),@bad,0.5\n"
              b"-c2,user,+ok,-0.5\n")
    at.file_uploader(key="data_upload").set_value(("=evil.csv", upload, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    csvs = [c for c in _csv_calls(downloads) if c["file_name"] == "skipped_rows.csv"]
    assert csvs, [c["file_name"] for c in downloads]
    assert csv_violations(csvs[-1]["data"]) == []
    skipped = pd.read_csv(io.BytesIO(csvs[-1]["data"]), dtype="str")
    assert skipped[["file", "row", "column", "value"]].values.tolist() == [
        ["'=evil.csv", "2", "speaker", "'=HYPERLINK(\"x\")"],
        ["'=evil.csv", "3", "confidence", "'-0.5"]]


def test_no_csv_export_bypasses_to_csv_bytes():
    """Every download_button / to_csv call in the app feeds CSV through to_csv_bytes (or is not CSV); deferred
    downloads pass ``partial(to_csv_bytes, frame)``, written only when the button is clicked."""
    offenders = []
    for path in [ROOT / "app.py", *(ROOT / "ui").glob("*.py"), *(ROOT / "pages").glob("*.py"),
                 *(ROOT / "metrics").glob("**/*.py")]:
        text = path.read_text()
        for lineno, line in enumerate(text.splitlines(), start=1):
            rel = f"{path.relative_to(ROOT)}:{lineno}"
            if ".to_csv(" in line and path.name != "export.py":
                offenders.append(rel)
            if "download_button(" in line and "def download_button" not in line:
                call = " ".join(text.splitlines()[lineno - 1:lineno + 3])
                is_csv = "csv" in call.lower() and ".md" not in call and "jsonl" not in call.lower()
                if is_csv and "to_csv_bytes(" not in call and "partial(to_csv_bytes," not in call:
                    offenders.append(rel)
    assert offenders == [], offenders
