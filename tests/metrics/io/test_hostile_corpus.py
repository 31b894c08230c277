"""Every hostile file through the command line: exit 0 or 2, never a traceback, never a hang.

Issue "Hostile and messy real exports". The corpus is every file of ``tests/fixtures/bad``,
``tests/fixtures/hostile`` and ``tests/fixtures/hostile2`` plus the big cases
``tests/fixtures/hostile2/make_corpus2.py`` builds at test time (250 KB regex bombs, a 187 MB zip of
gzips, 50,000 zip members, a 500,000-column header, 5 MB cells, a 1,000,000-digit number ...). Each
runs through :data:`COMMAND` with a fresh ``--db``, refusing bad rows and with ``--skip-bad-rows``:

* exit status 0 or 2 within :data:`TIMEOUT` seconds, no "Traceback" on stdout or stderr;
* on 2: one line on stderr, naming the file, printable (no raw control or bidi characters echoed
  from the input) and short enough to read;
* on 0: stdout is one JSON object with the command's keys.

Speed: a subprocess per run costs ~1.4 s of interpreter start and imports (≈ 6 minutes for the
526 runs on 2 cores, before any slow case), so the runs go through ``metrics.cli.main(argv)`` in a pool of two
long-lived worker processes (:class:`WorkerPool`) that capture file descriptors 1 and 2 like a
subprocess would, print an escaping exception's traceback exactly as the interpreter does, and are
killed and replaced when a run exceeds its time-out. :func:`test_real_command_line` runs a sample
through the real ``python -m metrics`` as well.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

HOSTILE2 = FIXTURES / "hostile2"
sys.path.insert(0, str(HOSTILE2))
import make_corpus2  # noqa: E402  (the generator, next to the files it writes)

#: The command under test. "ingest" is being written; until ``python -m metrics ingest --help`` works this
#: harness runs "summary" (same loader, exit 0 / 2). Switch here, in this one place.
COMMAND = "ingest"
#: Keys the command's JSON must have on success.
REQUIRED_KEYS = {"ingest": {"dataset_id", "new", "duplicates", "skipped", "messages", "conversations"},
                 "summary": {"dataset"}}
#: Seconds a run may take.
TIMEOUT = 30.0
#: "A 250 KB pathological text loads in under 5 s".
PATHOLOGICAL_SECONDS = 5.0
#: An error line longer than this is not "a clear one-line message".
MAX_MESSAGE_CHARS = 1_000
#: Address-space limit of the workers (the machine is shared: a bomb must not take it down).
MEMORY_LIMIT = 8 * 1024 ** 3
CORPORA = ("bad", "hostile", "hostile2")
GENERATED = "generated"
MODES = ("refuse", "skip")


# --------------------------------------------------------------------------- the corpus

def committed_cases() -> list[str]:
    """'<corpus>/<file>' for every committed hostile file."""
    out = []
    for corpus in CORPORA:
        for path in sorted((FIXTURES / corpus).iterdir()):
            if path.is_file() and path.name not in make_corpus2.NOT_CASES and path.suffix != ".py":
                out.append(f"{corpus}/{path.name}")
    return out


def generated_cases() -> list[str]:
    return [f"{GENERATED}/{name}" for name in make_corpus2.generated_builders()]


def all_cases() -> list[str]:
    return committed_cases() + generated_cases()


def case_path(case: str, generated_dir: Path) -> Path:
    corpus, name = case.split("/", 1)
    return generated_dir / name if corpus == GENERATED else FIXTURES / corpus / name


def write_generated(cases, folder: Path) -> None:
    builders = make_corpus2.generated_builders()
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        corpus, name = case.split("/", 1)
        if corpus == GENERATED and not (folder / name).exists():
            (folder / name).write_bytes(builders[name]())


#: The options the issue gives the ingest command.
INGEST_OPTIONS = ("--db", "--dataset", "--skip-bad-rows", "--map", "--platform", "--max-expanded-bytes", "--format")
_HELP: dict[str, str] = {}


def command_help(command: str = COMMAND) -> str:
    """``python -m metrics COMMAND --help`` (asked once)."""
    if command not in _HELP:
        proc = subprocess.run([sys.executable, "-m", "metrics", command, "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        _HELP[command] = proc.stdout
    return _HELP[command]


def extra_args(name: str, command: str = COMMAND) -> list[str]:
    """The case's extra options, without those ``command`` does not have (test_the_command_has_its_options says
    which are missing)."""
    args, out = list(make_corpus2.EXTRA_ARGS.get(name, [])), []
    while args:
        flag = args.pop(0)
        value = args.pop(0) if args and not args[0].startswith("--") else None
        if flag not in command_help(command):
            continue
        out += [flag] + ([value] if value is not None else [])
    return out


def cli_argv(path: Path, db: Path, mode: str, command: str = COMMAND) -> list[str]:
    argv = [command, str(path)]
    if command == "ingest":
        argv += ["--db", str(db), "--dataset", "hostile corpus"]
    argv += ["--format", "json"] + (["--skip-bad-rows"] if mode == "skip" else []) + extra_args(path.name, command)
    return argv


# --------------------------------------------------------------------------- worker side (runs in the pool's processes)

def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def arm_hang_dump(dump: str | None, seconds: float):
    """Write every thread's stack to ``dump`` after ``seconds`` (a hung run is then killed: this says where it hung)."""
    import faulthandler

    if not dump:
        return None
    f = open(dump, "w")
    faulthandler.dump_traceback_later(seconds, exit=False, file=f)
    return f


def disarm_hang_dump(f) -> None:
    import faulthandler

    if f is not None:
        faulthandler.cancel_dump_traceback_later()
        f.close()


def hang_summary(dump: str | Path | None, limit: int = 4) -> str:
    """Where a faulthandler dump's busiest Chatlens thread was: its innermost frame (any library), then its innermost
    Chatlens frames, e.g. 'pandas/io/parsers/readers.py:626 in _read | metrics/io/readers.py:723 in _read_delimited < ...'."""
    try:
        text = Path(dump).read_text(errors="replace") if dump else ""
    except OSError:
        return ""
    best: tuple[list[str], str] = ([], "")
    for block in text.split("\n\n"):
        frames, innermost = [], ""
        for line in block.splitlines():
            line = line.strip()
            if not (line.startswith('File "') and " in " in line):
                continue
            path = line.split('"')[1]
            lineno = line.split(", line ")[1].split(" ")[0]
            func = line.rsplit(" in ", 1)[1]
            short = path.split("site-packages/", 1)[1] if "site-packages/" in path else Path(path).name
            for top in ("metrics", "ui", "pages"):
                if path.startswith(f"{ROOT}/{top}/"):
                    short = path[len(f"{ROOT}/"):]
                    frames.append(f"{short}:{lineno} in {func}")
            innermost = innermost or f"{short}:{lineno} in {func}"
        if len(frames) > len(best[0]):
            best = (frames, innermost)
    frames, innermost = best
    if not frames:
        return ""
    head = "" if innermost == frames[0] else f"{innermost} | "
    return head + " < ".join(frames[:limit])


def run_cli(argv: list[str], dump: str | None = None) -> dict:
    """``python -m metrics ARGV`` in this process: file descriptors 1 and 2 captured, an escaping exception printed
    as the interpreter prints it, ``SystemExit`` turned into its status. ``dump``: where to write the stacks if the
    run is still going a little before :data:`TIMEOUT`."""
    import traceback

    from metrics.cli import main

    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    start = time.perf_counter()
    armed = arm_hang_dump(dump, TIMEOUT - 1.5)
    try:
        try:
            code = main(argv)
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001  (what the interpreter would print)
            traceback.print_exc()
            code = 1
        elapsed = time.perf_counter() - start
    finally:
        disarm_hang_dump(armed)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)

    def text(f):
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    return {"code": code, "stdout": text(out), "stderr": text(err), "elapsed": elapsed}


TASKS = {"cli": run_cli}


_PROTO: list = []


def answer_and_exit(result: dict) -> None:
    """From any thread of a worker: answer the current task with ``result`` and end the worker at once (a task that
    cannot be interrupted, e.g. an AppTest run that joins its script thread whatever its time-out)."""
    _PROTO[0].write(json.dumps(result) + "\n")
    _PROTO[0].flush()
    os._exit(0)


def serve() -> None:
    """A worker: read one JSON task per line on stdin, answer one JSON line on the original stdout."""
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    _PROTO.append(proto)
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    _limit_memory()
    for line in sys.stdin:
        task = json.loads(line)
        module = __import__(task["module"])
        result = module.TASKS[task["kind"]](**task["args"])
        proto.write(json.dumps(result) + "\n")
        if result.get("poisoned"):  # a thread is still running a timed-out task: start afresh
            proto.flush()
            os._exit(0)


# --------------------------------------------------------------------------- parent side

class _Worker:
    def __init__(self, log: Path):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent),
                                                           os.environ.get("PYTHONPATH", "")]))
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", "import test_hostile_corpus as h; h.serve()"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, start_new_session=True)
        self.buf = b""

    def ask(self, task: dict, timeout: float) -> dict:
        start = time.monotonic()
        try:
            self.proc.stdin.write((json.dumps(task) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"died": self.proc.poll(), "wall": 0.0}
        deadline = start + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"timeout": True, "wall": time.monotonic() - start}
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.proc.wait()
                    return {"died": self.proc.returncode, "wall": time.monotonic() - start}
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        result = json.loads(line)
        result["wall"] = time.monotonic() - start
        return result

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # this worker's own process group only
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.log.close()


class WorkerPool:
    """``size`` worker processes running tasks of ``module.TASKS``; a task over its time-out kills its worker."""

    def __init__(self, module: str, log_dir: Path, size: int = 2, max_rss_mb: float = 1_500):
        self.module, self.log_dir, self.size, self.max_rss_mb = module, log_dir, size, max_rss_mb
        log_dir.mkdir(parents=True, exist_ok=True)

    def map(self, tasks: list[tuple[str, str, dict, float]]) -> dict[str, dict]:
        """tasks: (key, kind, args, timeout) -> {key: result}; slowest-first order is up to the caller."""
        pending = list(reversed(tasks))
        results: dict[str, dict] = {}
        lock = threading.Lock()

        def drive(slot: int) -> None:
            worker = None
            try:
                while True:
                    with lock:
                        if not pending:
                            return
                        key, kind, args, timeout = pending.pop()
                    if worker is None:
                        worker = _Worker(self.log_dir / f"worker{slot}.log")
                    result = worker.ask({"module": self.module, "kind": kind, "args": args}, timeout)
                    if result.get("timeout") and args.get("dump"):
                        result["hang"] = hang_summary(args["dump"])
                    if "timeout" in result or "died" in result or result.get("poisoned") \
                            or worker.rss_mb() > self.max_rss_mb:
                        worker.stop()
                        worker = None
                    results[key] = result
            finally:
                if worker is not None:
                    worker.stop()

        threads = [threading.Thread(target=drive, args=(i,), daemon=True) for i in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results


def selected_params(request, name: str) -> list:
    """The values of parameter ``name`` of the tests of the requesting module that this session will run."""
    seen = []
    for item in request.session.items:
        if getattr(item, "module", None) is request.module and hasattr(item, "callspec"):
            value = item.callspec.params.get(name)
            if value is not None and value not in seen:
                seen.append(value)
    return seen


# --------------------------------------------------------------------------- the runs

#: Cases known to be slow (they go first so the two workers finish together).
_SLOW_FIRST = ("generated/", "hostile2/regex_", "hostile2/zip_nested", "hostile2/gzip_nested")


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """(case, mode) -> the result of running it, for the cases this session selected (measured once)."""
    wanted = [(c, m) for c in selected_params(request, "case") for m in MODES]
    base = tmp_path_factory.mktemp("hostile_corpus")
    write_generated({c for c, _ in wanted}, base / "generated")
    tasks = []
    for i, (case, mode) in enumerate(wanted):
        argv = cli_argv(case_path(case, base / "generated"), base / "db" / f"{i}.db", mode)
        tasks.append((f"{case}|{mode}", "cli", {"argv": argv, "dump": str(base / "dumps" / f"{i}.txt")}, TIMEOUT))
    (base / "db").mkdir()
    (base / "dumps").mkdir()
    tasks.sort(key=lambda t: not t[0].startswith(_SLOW_FIRST))
    start = time.monotonic()
    results = WorkerPool("test_hostile_corpus", base / "logs").map(tasks)
    wall = time.monotonic() - start
    slow = sorted(((r.get("elapsed", r.get("wall", 0)), k) for k, r in results.items()), reverse=True)[:8]
    print(f"\n{len(tasks)} runs of {COMMAND} in {wall:.1f} s on 2 workers; slowest: "
          + ", ".join(f"{k} {s:.1f}s" for s, k in slow))
    return results


def _describe(result: dict) -> str:
    if result.get("timeout"):
        hang = f"; it was in {result['hang']}" if result.get("hang") else ""
        return f"no answer within {TIMEOUT:.0f} s (killed){hang}"
    if "died" in result:
        return f"the process died (status {result['died']})"
    tail = (result["stderr"].strip().splitlines() or [""])[-1]
    return f"exit {result['code']}: {tail[:300]}"


def check_exit(case: str, result: dict, command: str = COMMAND) -> None:
    assert not result.get("timeout"), f"{case}: {_describe(result)}"
    assert "died" not in result, f"{case}: {_describe(result)}"
    both = result["stdout"] + result["stderr"]
    assert "Traceback" not in both, f"{case}: traceback, last line: {_describe(result)}"
    assert result["code"] in (0, 2), f"{case}: {_describe(result)}"
    if result["code"] == 0:
        try:
            report = json.loads(result["stdout"])
        except ValueError as exc:
            raise AssertionError(f"{case}: exit 0 but stdout is not one JSON object ({exc})") from None
        assert isinstance(report, dict), f"{case}: exit 0 but the JSON is a {type(report).__name__}"
        missing = REQUIRED_KEYS[command] - set(report)
        assert not missing, f"{case}: exit 0 but the JSON lacks {sorted(missing)}"
        if command == "ingest":
            counts = {k: report[k] for k in ("new", "duplicates", "skipped", "messages", "conversations")}
            assert all(isinstance(v, int) and v >= 0 for v in counts.values()), f"{case}: counts {counts}"
            # a fresh store: the dataset holds exactly the new messages; refusing mode skips nothing
            assert counts["messages"] == counts["new"], f"{case}: counts {counts}"
            assert counts["conversations"] <= counts["messages"], f"{case}: counts {counts}"
            if case.endswith("(refuse)"):
                assert counts["skipped"] == 0, f"{case}: refusing bad rows but {counts['skipped']} skipped"


def check_message(case: str, result: dict) -> None:
    """On exit 2: one clear line naming the file."""
    if result.get("code") != 2:
        return
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, f"{case}: {len(lines)} lines on stderr: {result['stderr'][:500]!r}"
    line = lines[0]
    name = Path(case).name
    # a .gz is named by itself or by the file inside it (x.csv.gz -> x.csv)
    assert name in line or (name.endswith(".gz") and name[:-3] in line), \
        f"{case}: the message does not name the file: {line[:300]!r}"
    assert len(line) <= MAX_MESSAGE_CHARS, f"{case}: a {len(line):,}-character message: {line[:200]!r}..."
    bad = sorted({c for c in line if not c.isprintable() and c != "\t"})
    assert not bad, f"{case}: the message holds unprintable characters {bad!r}: {line[:300]!r}"


CASES = all_cases()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_exit_0_or_2_without_traceback(runs, case, mode):
    check_exit(f"{case} ({mode})", runs[f"{case}|{mode}"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_an_error_is_one_clear_line_naming_the_file(runs, case, mode):
    result = runs[f"{case}|{mode}"]
    if result.get("code") != 2:
        pytest.skip("not refused")
    check_message(case, result)


@pytest.mark.parametrize("case", [c for c in CASES if Path(c).name.startswith("big_regex_")])
def test_pathological_text_loads_in_under_5_s(runs, case):
    """250 KB regex bombs (the interpreter's start is not counted: the time is the command's own)."""
    result = runs[f"{case}|refuse"]
    seconds = result.get("elapsed", result.get("wall"))
    assert not result.get("timeout") and seconds < PATHOLOGICAL_SECONDS, \
        f"{case}: {_describe(result)} after {seconds:.1f} s (limit {PATHOLOGICAL_SECONDS:.0f} s)"


# --------------------------------------------------------------------------- the corpus itself

@pytest.mark.skipif(COMMAND != "ingest", reason="the harness runs another command")
def test_the_command_has_its_options():
    missing = [flag for flag in INGEST_OPTIONS if flag not in command_help("ingest")]
    assert not missing, f"python -m metrics ingest lacks {missing} (the cases using them run without)"


def test_corpus_has_at_least_120_files():
    committed = committed_cases()
    new = [c for c in committed if c.startswith("hostile2/")] + generated_cases()
    assert len(committed) + len(generated_cases()) >= 120, len(committed)
    assert len(new) >= 60, len(new)


def test_committed_files_match_their_generator_and_stay_small():
    cases = make_corpus2.small_cases()
    files = sorted(p.name for p in HOSTILE2.iterdir() if p.is_file() and p.name not in make_corpus2.NOT_CASES)
    assert files == sorted(cases), "run tests/fixtures/hostile2/make_corpus2.py"
    for name, data in cases.items():
        assert (HOSTILE2 / name).read_bytes() == data, f"{name} is stale: run make_corpus2.py"
        assert len(data) < 200_000, f"{name}: {len(data):,} bytes (generate it at test time instead)"
    assert sum(map(len, cases.values())) < 3_000_000
    older = {p.name for corpus in ("bad", "hostile") for p in (FIXTURES / corpus).iterdir()}
    assert not (set(cases) & older), "do not repeat the older corpora"
    assert set(make_corpus2.EXTRA_ARGS) <= set(cases) | set(make_corpus2.generated_builders())


# --------------------------------------------------------------------------- the real command line, on a sample

REAL_SAMPLE = ("bad/unknown_speaker.csv", "hostile/several_files.zip", "hostile2/zip_path_traversal.zip",
               "hostile2/ansi_escapes_everywhere.csv", "hostile2/json_10k_deep_array.json",
               "hostile2/timestamps_iso_then_out_of_range_epoch.csv", "hostile2/gzip_nested_1000.csv.gz",
               "hostile2/regex_email_letters_one_at.csv")


def _real(argv: list[str]) -> dict:
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "metrics", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"timeout": True, "wall": time.monotonic() - start}
    return {"code": proc.returncode, "stdout": out.decode("utf-8", "replace"),
            "stderr": err.decode("utf-8", "replace"), "wall": time.monotonic() - start}


def test_real_command_line(tmp_path):
    """The same checks through ``python -m metrics`` itself (two at a time), for a sample of the corpus."""
    jobs = [(c, m) for c in REAL_SAMPLE for m in MODES]
    results: dict = {}

    def work(chunk):
        for i, (case, mode) in chunk:
            results[(case, mode)] = _real(cli_argv(case_path(case, tmp_path), tmp_path / f"{i}.db", mode))

    numbered = list(enumerate(jobs))
    threads = [threading.Thread(target=work, args=(numbered[k::2],)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failures = []
    for (case, mode), result in results.items():
        try:
            check_exit(f"{case} ({mode})", result)
            check_message(case, result)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)
