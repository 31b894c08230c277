"""Scale benchmark: ingest N messages into a store, then ``summary --db --dataset`` per engine.

    python tests/benchmarks/benchmark_scale.py --messages 1000000
    python tests/benchmarks/benchmark_scale.py --messages 5000000 --engines local
    python tests/benchmarks/benchmark_scale.py --messages 1000000 --engines local,spark,memory

The generator streams: the export is written as CSV files (plus a Parquet twin for the baseline) of ``--chunk`` conversations (each chunk is
generated, written and dropped; conversation ids carry the chunk number so chunks never merge).
Each file is ingested by its own ``python -m metrics ingest`` process, so the ingest figure is the
largest peak RSS of one ingest (the store grows; each ingest's memory should not).

Every Chatlens step runs in a child process and reports its wall time and peak RSS
(``ru_maxrss`` of that child). The baseline runs in the same benchmark, also in a child: DuckDB
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
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

AVG_MESSAGES_PER_CONVERSATION = 10.1  # data.generate's sample: 29,948 messages / 2,955 conversations


def _measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run cmd under a fresh Python parent so its RUSAGE_CHILDREN peak is its own."""
    wrapper = ("import json,resource,subprocess,sys,time\n"
               "t=time.perf_counter();p=subprocess.run(sys.argv[1:],capture_output=True,text=True)\n"
               "w=time.perf_counter()-t\n"
               "print(json.dumps({'rc':p.returncode,'seconds':w,"
               "'peak_mb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024,"
               "'stderr':p.stderr[-3000:],'stdout':p.stdout[-200000:]}))")
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    out = json.loads(proc.stdout)
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
        ingest_s, ingest_peak = 0.0, 0.0
        for k, path in enumerate(files):
            got = _measured([sys.executable, "-m", "metrics", "ingest", str(path), "--db", str(db),
                             "--dataset", "scale", "--format", "json"])
            ingest_s += got["seconds"]
            ingest_peak = max(ingest_peak, got["peak_mb"])
            print(f"ingest {k + 1}/{len(files)}: {got['seconds']:.1f}s, {got['peak_mb']:.0f} MB", file=sys.stderr)
        figures["ingest_s"] = round(ingest_s, 1)
        figures["ingest_peak_rss_mb"] = round(ingest_peak)
    summaries = {}
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        cmd = [sys.executable, "-m", "metrics", "summary", "--db", str(db), "--dataset", "scale", "--format", "json"]
        if engine != "memory":
            cmd += ["--engine", engine]
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
