"""Helper process for tests/metrics/store/test_store.py (not a test module): one writer hammering a shared store.

Usage: python tests/metrics/store/store_writer.py DB_PATH WORKER WRITES GO_FILE

Connects, signals ``GO_FILE.ready<WORKER>``, waits for ``GO_FILE`` to exist (so
both writers start together), then does WRITES read-then-write transactions
through ``store.immediate``: read the counter, write counter + 1, and upsert one
row (through sqlite-utils) recording the counter value it saw, pausing 0.5 ms
between transactions. Prints the number of committed writes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from metrics import store  # noqa: E402


def main(path: str, worker: int, writes: int, go: str) -> int:
    db = store.connect(path, timeout_seconds=30)
    Path(f"{go}.ready{worker}").touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal within 60 s")
        time.sleep(0.002)
    done = 0
    for i in range(writes):
        with store.immediate(db):
            (value,) = db.execute("SELECT value FROM counters WHERE name = 'writes'").fetchone()
            db.conn.execute("UPDATE counters SET value = ? WHERE name = 'writes'", (value + 1,))
            db["writes"].upsert({"worker": worker, "i": i, "seq": value + 1, "note": f"w{worker}-{i}"},
                                pk=("worker", "i"))
        done += 1
        # A short pause between transactions, like a real session; without it one process can re-take the
        # lock for all its writes while the other sleeps in SQLite's busy handler, and nothing overlaps.
        time.sleep(0.0005)
    db.close()
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
