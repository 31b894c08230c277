"""Sentiment scoring benchmark on the 1M-message generator (data.generate, seed 7, 100k conversations).

    python tests/benchmarks/benchmark_sentiment.py [--conversations 100000] [--repeat 5]

Each repetition times a bare VADER loop over the distinct texts, then each scorer set-up, in the
same process; the table gives wall and CPU seconds (this process + workers) and the median ratio
to the bare loop. Not a test: speed is measured here, never asserted in the suite.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd  # noqa: E402
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from metrics import store  # noqa: E402
from metrics.sentiment import SentimentScorer, score_messages  # noqa: E402
from metrics.sentiment.cache import StoreCache  # noqa: E402

NAMES = ["bare VADER loop (distinct texts)", "scorer, 2 processes, no cache", "scorer, 1 process, no cache",
         "scorer, 2 processes, cold store cache", "scorer, 1 process, cold store cache", "scorer, warm store cache"]


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn) -> tuple[float, float]:
    gc.collect()
    c, t = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t, cpu() - c


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    from data.generate import generate

    frame = generate(seed=7, n_conversations=args.conversations)
    frame = pd.DataFrame({"text": frame["text"].astype("str")})
    uniques = frame["text"].dropna().unique().tolist()
    print(f"messages {len(frame):,}, distinct texts {len(uniques):,}, cpus {os.cpu_count()}", flush=True)

    def bare():
        analyzer = SentimentIntensityAnalyzer()
        return [analyzer.polarity_scores(t)["compound"] for t in uniques]

    tmp = tempfile.mkdtemp(prefix="chatlens-sentbench-")
    wall = {k: [] for k in NAMES}
    cpus = {k: [] for k in NAMES}
    for rep in range(args.repeat):
        def run(name, fn):
            w, c = timed(fn)
            wall[name].append(w)
            cpus[name].append(c)

        run(NAMES[0], bare)
        run(NAMES[1], lambda: score_messages(frame, scorer=SentimentScorer(processes=2)))
        run(NAMES[2], lambda: score_messages(frame, scorer=SentimentScorer(processes=1)))
        for name, procs in ((NAMES[3], 2), (NAMES[4], 1)):
            db = store.connect(os.path.join(tmp, f"c{rep}_{procs}.db"))
            run(name, lambda: score_messages(frame, scorer=SentimentScorer(processes=procs), cache=StoreCache(db)))
            db.close()
        db = store.connect(os.path.join(tmp, f"c{rep}_2.db"))
        scorer = SentimentScorer()
        run(NAMES[5], lambda: score_messages(frame, scorer=scorer, cache=StoreCache(db)))
        assert scorer.last_stats.scored_count == 0 and scorer.last_stats.cached_count == len(uniques)
        db.close()
        print(rep, f"load {os.getloadavg()[0]:.1f}", {k[:28]: round(v[-1], 3) for k, v in wall.items()}, flush=True)

    print(f"\n{'':40s} {'wall s (median)':>16s} {'x bare (median)':>16s} {'CPU s':>8s} {'CPU x bare':>11s}")
    for k in NAMES:
        ratio = statistics.median(w / b for w, b in zip(wall[k], wall[NAMES[0]]))
        ratio_cpu = statistics.median(c / b for c, b in zip(cpus[k], cpus[NAMES[0]]))
        print(f"{k:40s} {statistics.median(wall[k]):16.3f} {ratio:16.2f} {statistics.median(cpus[k]):8.3f} "
              f"{ratio_cpu:11.2f}")


if __name__ == "__main__":
    main()
