"""Topic discovery at scale: time and peak memory on ~1M messages, beside a plain scikit-learn baseline.

    python tests/benchmarks/bench_topics.py                       # 100k conversations (~1M messages)
    python tests/benchmarks/bench_topics.py --conversations 20000 --free-text 0.5 --workdir /tmp/bench

The export is the seeded generator's (``data.generate``, seed 7, written once per size into ``--workdir``);
``--free-text`` is the share of user messages in the users' own words (more distinct texts: the hard case).
Measured, each in a forked child (peak RSS growth over the child's start, as tests/benchmarks/benchmark.py does):

* ``chatlens``: :func:`metrics.topics.discover_topics` with the default options (automatic k; the featurizer
  fitted on a 50,000-distinct-text hash sample, spectral clustering on 5,000 of them, every distinct text then
  assigned in batches; one thread);
* ``baseline``: scikit-learn's ``TfidfVectorizer`` + ``KMeans`` (k = the k Chatlens chose, ``n_init="auto"``)
  fitted on the same 50,000-text sample, with no assignment of the other texts and no choice of k.

Not a test (its name does not start with ``test_``): figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmark import make_input  # noqa: E402  (tests/benchmarks/benchmark.py)


def _timed_in_child(fn) -> tuple[float, float, dict]:
    """(seconds, peak RSS growth in MB, what fn returned as a small dict plus ``process_peak_mb``, the child's
    whole peak RSS, the loaded frame included), all measured in one forked child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        import resource

        os.close(read)
        with open("/proc/self/statm") as fh:
            before = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        t0 = time.perf_counter()
        info = fn()
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.write(write, json.dumps({"s": seconds, "mb": max(peak - before, 0) / 1024, "rss_mb": peak / 1024,
                                    "info": info}).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while True:
        data = os.read(read, 65536)
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    out = json.loads(b"".join(chunks) or b"{}")
    info = dict(out.get("info", {}), process_peak_mb=round(out.get("rss_mb", float("nan"))))
    return out.get("s", float("nan")), out.get("mb", float("nan")), info


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--free-text", type=float, default=0.3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--unit", default="messages", choices=("messages", "first"))
    args = parser.parse_args(argv)

    import pandas as pd

    from metrics.io.loaders import configure_arrow_memory, load_bytes
    from metrics.topics import TopicOptions, discover_topics, topic_units
    from metrics.topics._text import distinct_texts

    configure_arrow_memory()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="chatlens-bench-topics-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = make_input(args.conversations, folder, free_text=args.free_text)
    frame = load_bytes(path.read_bytes(), path.name).frame
    options = TopicOptions(unit=args.unit)
    units = topic_units(frame, unit=args.unit)
    distinct = distinct_texts(units["text"])
    sample = list(distinct.keys[:options.fit_sample])

    def chatlens():
        model = discover_topics(frame, options=options)
        return {"k": model.n_topics, "method": model.method, "clustered": int(len(model.assignments))}

    t_ours, mb_ours, info = _timed_in_child(chatlens)
    k = int(info.get("k", 20))

    def baseline():
        from sklearn.cluster import KMeans
        from sklearn.feature_extraction.text import TfidfVectorizer

        x = TfidfVectorizer().fit_transform(sample)
        KMeans(n_clusters=k, n_init="auto", random_state=0).fit(x)
        return {"k": k}

    t_base, mb_base, _ = _timed_in_child(baseline)
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"pandas {pd.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "messages": int(len(frame)),
        "clustered_messages": int(len(units)),
        "distinct_texts": int(len(distinct)),
        "fit_sample": len(sample),
        "free_text": args.free_text,
        "chatlens_s": round(t_ours, 1),
        "chatlens_peak_mb": round(mb_ours),
        "chatlens_process_peak_mb": info.get("process_peak_mb"),
        "chatlens_k": k,
        "chatlens_method": info.get("method"),
        "baseline_tfidf_kmeans_s": round(t_base, 1),
        "baseline_peak_mb": round(mb_base),
    }
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":  # pragma: no cover
    main()
