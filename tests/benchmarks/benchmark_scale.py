"""Scale benchmark: ingest N messages into a store, then ``summary --db --dataset`` per engine.

    python tests/benchmarks/benchmark_scale.py --messages 1000000
    python tests/benchmarks/benchmark_scale.py --messages 5000000 --engines local
    python tests/benchmarks/benchmark_scale.py --messages 1000000 --engines local,spark,memory

The generator streams: the export is written as CSV files (plus a Parquet twin for the baseline) of ``--chunk`` conversations (each chunk is
generated, written and dropped; conversation ids carry the chunk number so chunks never merge).
The chunks are then concatenated (line by line) into one export, which one ``python -m metrics ingest``
loads: from ``CHATLENS_STREAM_MIN_BYTES`` (256 MiB) on, it streams (:mod:`metrics.io.stream`).

Every Chatlens step runs in a child process and reports its wall time and peak memory: the summed RSS of
that process and all its descendants (workers, Spark's JVM), sampled every 50 ms. The baseline runs in the same benchmark, also in a child: DuckDB
reading the same messages from Parquet with one GROUP BY per conversation, plus VADER over the
distinct user texts. Figures are printed as ratios to it. Not a test: nothing here is asserted.

Engines: ``local`` (the process pool over the store's buckets), ``spark`` (``local[2]``) and
``memory`` (today's whole-frame path: ``summary`` of the dataset without ``--engine``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

AVG_MESSAGES_PER_CONVERSATION = 10.1  # data.generate's sample: 29,948 messages / 2,955 conversations


def _measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run cmd; its wall time, and the peak of the summed RSS of it and all its descendants (the local
    engine's workers, Spark's JVM and Python workers), sampled every 50 ms."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
    root = psutil.Process(proc.pid)
    peak = 0
    out_parts: list[str] = []
    err_parts: list[str] = []
    import threading

    readers = [threading.Thread(target=lambda: out_parts.append(proc.stdout.read())),
               threading.Thread(target=lambda: err_parts.append(proc.stderr.read()))]
    for r in readers:
        r.start()
    while proc.poll() is None:
        total = 0
        try:
            for p in [root] + root.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    out = {"rc": proc.returncode, "seconds": wall, "peak_mb": peak / 2**20, "stdout": "".join(out_parts),
           "stderr": "".join(err_parts)[-3000:]}
    if out["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out['rc']}):\n{out['stderr']}")
    return out


def generate_chunks(messages: int, chunk: int, folder: Path) -> tuple[list[Path], int]:
    """Write the export as CSV files of ``chunk`` conversations (what ``ingest`` reads), each with a Parquet
    twin (what the baseline reads); returns the CSV files and the message count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data.generate import generate

    conversations = max(1, round(messages / AVG_MESSAGES_PER_CONVERSATION))
    files, total, i = [], 0, 0
    while conversations > 0:
        n = min(chunk, conversations)
        path = folder / f"part-{i:05d}.csv"
        if not path.exists():
            frame = generate(seed=1000 + i, n_conversations=n)
            frame["conversation_id"] = f"k{i}-" + frame["conversation_id"].astype(str)
            if "message_id" in frame.columns:
                frame["message_id"] = f"k{i}-" + frame["message_id"].astype(str)
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path.with_suffix(".parquet"),
                           compression="zstd")
            frame.to_csv(path, index=False)
            del frame
        total += pq.ParquetFile(path.with_suffix(".parquet")).metadata.num_rows
        files.append(path)
        conversations -= n
        i += 1
    return files, total


def _concatenate(files: list[Path], out: Path) -> None:
    """One export of every chunk (the header once), copied line by line: never in memory."""
    with open(out, "wb") as sink:
        for k, path in enumerate(files):
            with open(path, "rb") as source:
                header = source.readline()
                if k == 0:
                    sink.write(header)
                while True:
                    block = source.read(1 << 20)
                    if not block:
                        break
                    sink.write(block)


def baseline(files: list[Path]) -> dict:
    """DuckDB over the same Parquet: one GROUP BY per conversation, plus VADER over distinct user texts."""
    code = (
        "import duckdb,sys\n"
        "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer\n"
        "glob=sys.argv[1]\n"
        "con=duckdb.connect()\n"
        "con.execute(f\"SELECT conversation_id, count(*), min(timestamp), max(timestamp), "
        "sum(CASE WHEN speaker='user' THEN 1 ELSE 0 END) FROM read_parquet('{glob}') GROUP BY 1\").fetchall()\n"
        "texts=con.execute(f\"SELECT DISTINCT text FROM read_parquet('{glob}') WHERE speaker='user'\").fetchall()\n"
        "a=SentimentIntensityAnalyzer()\n"
        "s=0.0\n"
        "for (t,) in texts: s+=a.polarity_scores(t or '')['compound']\n"
        "print(len(texts))\n")
    glob = str(files[0].parent / "part-*.parquet")
    return _measured([sys.executable, "-c", code, glob])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="conversations per generated file")
    parser.add_argument("--engines", default="local,memory", help="comma-separated: local, spark, memory")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="chatlens-scale-"))
    (folder / "export").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files, total = generate_chunks(args.messages, args.chunk, folder / "export")
    print(f"generated {total:,} messages in {len(files)} files ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    db = folder / "scale.db"
    figures: dict = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"), "messages": total, "files": len(files)}
    base = baseline(files)
    figures["baseline_duckdb_vader_s"] = round(base["seconds"], 1)
    figures["baseline_peak_rss_mb"] = round(base["peak_mb"])
    print(f"baseline: {base['seconds']:.1f}s, {base['peak_mb']:.0f} MB", file=sys.stderr)

    if not db.exists():
        export = folder / "export.csv"
        if not export.exists():
            _concatenate(files, export)
        got = _measured([sys.executable, "-m", "metrics", "ingest", str(export), "--db", str(db),
                         "--dataset", "scale", "--format", "json"])
        figures["export_mb"] = round(export.stat().st_size / 1e6)
        figures["ingest_s"] = round(got["seconds"], 1)
        figures["ingest_peak_rss_mb"] = round(got["peak_mb"])
        figures["ingest_streamed"] = "ingest: part" in got["stderr"]
        print(f"ingest: {got['seconds']:.1f}s, {got['peak_mb']:.0f} MB", file=sys.stderr)
    summaries = {}
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        cmd = [sys.executable, "-m", "metrics", "summary", "--db", str(db), "--dataset", "scale", "--format", "json"]
        if engine != "memory":
            cmd += ["--engine", engine, "--recompute"]  # from the messages, not the facts a run before kept
        if engine == "local":
            cmd += ["--workers", str(args.workers)]
        got = _measured(cmd)
        summaries[engine] = json.loads(got["stdout"])
        figures[f"summary_{engine}_s"] = round(got["seconds"], 1)
        figures[f"summary_{engine}_peak_rss_mb"] = round(got["peak_mb"])
        figures[f"summary_{engine}_time_ratio"] = round(got["seconds"] / base["seconds"], 2)
        print(f"summary --engine {engine}: {got['seconds']:.1f}s, {got['peak_mb']:.0f} MB", file=sys.stderr)
    if "ingest_s" in figures and "summary_local_s" in figures:
        total_s = figures["ingest_s"] + figures["summary_local_s"]
        figures["ingest_plus_local_time_ratio"] = round(total_s / base["seconds"], 2)
    names = list(summaries)
    if len(names) > 1:
        first = summaries[names[0]]
        figures["engines_agree_on_kpis"] = all(
            json.dumps(summaries[n].get("kpis")) == json.dumps(first.get("kpis")) for n in names[1:])
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        width = max(len(k) for k in figures)
        for k, v in figures.items():
            print(f"{k:<{width}}  {v}")
    return figures


if __name__ == "__main__":
    main()
