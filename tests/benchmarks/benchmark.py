"""Chatlens benchmark: 1M messages, every figure as a ratio to a bare pandas baseline in the same run.

    python tests/benchmarks/benchmark.py                      # 100k conversations (~1M messages)
    python tests/benchmarks/benchmark.py --conversations 20000 --repeat 1

Times are the best of ``--repeat`` runs, measured in this process, each step
beside its baseline. Peak memory is measured per step in a forked child
(``ru_maxrss`` minus the child's RSS before the step), so steps do not hide in
each other's high-water mark. Not a test: speed is measured here, never
asserted in the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from metrics.io.loaders import configure_arrow_memory, load_bytes  # noqa: E402
from metrics.core.rollup import conversation_rollup  # noqa: E402


def _rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_in_child(fn) -> float:
    """Run fn() in a forked child; return its peak RSS growth in MB."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        before = _rss_kb()
        fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.write(write, str(max(peak - before, 0)).encode())
        os._exit(0)
    os.close(write)
    data = os.read(read, 64)
    os.waitpid(pid, 0)
    return int(data or b"0") / 1024


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def make_input(n_conversations: int, folder: Path, *, free_text: float = 0.0) -> Path:
    """The generated export (seed 7), written once per size and ``free_text`` share (data.generate)."""
    from data.generate import generate, write_csv

    suffix = f"_free{round(free_text * 100)}" if free_text else ""
    path = folder / f"bench_{n_conversations}{suffix}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        frame = generate(seed=7, n_conversations=n_conversations, free_text=free_text)
        write_csv(frame, path)
        print(f"generated {len(frame):,} messages in {time.perf_counter() - t0:.1f}s -> {path}", file=sys.stderr)
    return path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--free-text", type=float, default=0.0,
                        help="share of user messages in the users' own words (data.generate's free_text)")
    parser.add_argument("--workdir", default=None, help="where to keep the generated CSV (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    configure_arrow_memory()  # as the app and the CLI do once per process
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="chatlens-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = make_input(args.conversations, folder, free_text=args.free_text)
    data = path.read_bytes()

    def baseline():
        frame = pd.read_csv(path)
        frame.groupby("conversation_id").agg(n=("text", "size"), first=("timestamp", "min"),
                                             last=("timestamp", "max"))
        return frame

    def chatlens_load():
        return load_bytes(data, path.name)

    def chatlens_all():
        result = load_bytes(data, path.name)
        conversation_rollup(result.frame)
        return result

    loaded = chatlens_load().frame
    messages = len(loaded)
    frame_mb = loaded.memory_usage(deep=True).sum() / 1e6
    t_base = best_time(baseline, args.repeat)
    t_load = best_time(chatlens_load, args.repeat)
    t_rollup = best_time(lambda: conversation_rollup(loaded), args.repeat)
    t_all = best_time(chatlens_all, args.repeat)
    m_base = peak_in_child(baseline)
    m_all = peak_in_child(chatlens_all)
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"pandas {pd.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "messages": messages,
        "conversations": int(loaded["conversation_id"].nunique()),
        "file_mb": round(len(data) / 1e6, 1),
        "loaded_frame_mb": round(frame_mb, 1),
        "baseline_read_csv_groupby_s": round(t_base, 2),
        "load_validate_s": round(t_load, 2),
        "rollup_s": round(t_rollup, 2),
        "load_validate_rollup_s": round(t_all, 2),
        "time_ratio_vs_baseline": round(t_all / t_base, 2),
        "baseline_peak_rss_mb": round(m_base, 1),
        "chatlens_peak_rss_mb": round(m_all, 1),
        "memory_ratio_vs_baseline": round(m_all / m_base, 2) if m_base else None,
        "peak_rss_over_loaded_frame": round(m_all / frame_mb, 2) if frame_mb else None,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return figures


if __name__ == "__main__":
    main()
