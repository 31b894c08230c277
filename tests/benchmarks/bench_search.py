"""Benchmark: full-text search (metrics.store.search, SQLite FTS5) over 1M messages vs a pandas ``str.contains`` scan.

Run: ``python tests/benchmarks/bench_search.py [n_conversations]`` (default 100,000 ≈ 1M messages). Not collected
by pytest. Prints the save / index build times, the time per search of 20 queries with both methods (and that
both find the same conversations), the delete time and the peak memory (tracemalloc, Python allocations; and
the process's max RSS).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from data.generate import generate  # noqa: E402
from metrics import store
from metrics.store import search
from metrics.io.loaders import load_path  # noqa: E402

QUERIES = ["cancel", "refund", "order", "password", "delivery", "human", "agent", "subscription", "invoice", "hello",
           "thanks", "broken", "payment", "shipping", "account", "cancel subscription", "refund order", "where is my",
           "xyzzy", "reset password"]


def pandas_search(messages: pd.DataFrame, query: str) -> set[str]:
    keep = None
    text = messages["text"].fillna("")
    for word in search.query_words(query):
        pattern = r"\b" + r"\W+".join(word.split()) + r"\b"
        hits = set(messages.loc[text.str.contains(pattern, case=False, regex=True), "conversation_id"])
        keep = hits if keep is None else keep & hits
    return keep or set()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "export.csv"
        generate(seed=7, n_conversations=n).to_csv(raw, index=False)
        frame = load_path(raw).frame  # validated, as an upload would be
        raw.unlink()
        print(f"generated and loaded {len(frame):,} messages / {frame['conversation_id'].nunique():,} conversations "
              f"in {time.perf_counter() - t:.1f} s")
        db = store.connect(Path(tmp) / "bench.db")
        t = time.perf_counter()
        saved = store.save_messages(db, frame, dataset_name="bench")
        print(f"save_messages: {time.perf_counter() - t:.1f} s")
        messages = store.load_messages(db, saved.dataset_id)
        del frame
        t = time.perf_counter()
        search.build_index(db, saved.dataset_id, messages)
        build = time.perf_counter() - t
        print(f"build_index: {build:.1f} s, store file {sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20:,.0f} MiB"
              " (messages + index)")
        # times first (no tracemalloc: it slows allocations), then the peak memory of each method in a second pass
        fts_times, pd_times, mismatches = [], [], 0
        for q in QUERIES:
            t = time.perf_counter()
            got = set(search.search(db, saved.dataset_id, q) or [])
            fts_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            expected = pandas_search(messages, q)
            pd_times.append(time.perf_counter() - t)
            mismatches += got != expected
            print(f"  {q!r:24} {len(got):>7,} conversations  fts {fts_times[-1] * 1000:7.1f} ms  "
                  f"pandas {pd_times[-1] * 1000:7.0f} ms  {'same' if got == expected else 'DIFFERENT'}")
        tracemalloc.start()
        for q in QUERIES:
            search.search(db, saved.dataset_id, q)
        _, peak_fts = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for q in QUERIES[:5]:
            pandas_search(messages, q)
        _, peak_pd = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        s = pd.Series(fts_times)
        p = pd.Series(pd_times)
        print(f"FTS5 search: mean {s.mean() * 1000:.1f} ms, median {s.median() * 1000:.1f} ms, max {s.max() * 1000:.1f} ms"
              f" per query; peak Python memory {peak_fts / 2**20:,.1f} MiB")
        print(f"pandas str.contains: mean {p.mean() * 1000:.0f} ms, median {p.median() * 1000:.0f} ms, max "
              f"{p.max() * 1000:.0f} ms per query; peak Python memory {peak_pd / 2**20:,.0f} MiB")
        print(f"queries with different results: {mismatches}")
        t = time.perf_counter()
        store.delete_dataset(db, saved.dataset_id)
        print(f"delete_dataset (index included): {time.perf_counter() - t:.1f} s")
        db.close()
    print(f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
