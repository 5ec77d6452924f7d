"""Workload 3: the daemon's RSS while a large result streams through it.

Reads `SELECT g, md5(g::text), now() FROM generate_series(1, N)` with `query_batches`
(the client keeps one batch at a time), while a thread samples VmRSS of the daemon from
/proc/<pid>/status every 20 ms. Flat means the maximum stays near the idle baseline
whatever N is.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from db_pool_rs import SyncDatabasePool


def vm_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool", default="pg")
    p.add_argument("--pid", type=int, required=True, help="the daemon's pid")
    p.add_argument("--rows", type=int, nargs="+", default=[2_000_000])
    args = p.parse_args()

    db = SyncDatabasePool(args.endpoint)
    db.query(args.pool, "SELECT 1")
    out = []
    for n in args.rows:
        samples: list[float] = []
        stop = threading.Event()

        def sample(samples: list[float] = samples, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                samples.append(vm_rss_mb(args.pid))
                time.sleep(0.02)

        baseline = vm_rss_mb(args.pid)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.perf_counter()
        rows = 0
        for batch in db.query_batches(
            args.pool, "SELECT g, md5(g::text) AS h, now() AS ts FROM generate_series(1, $1::int8) g", [n]
        ):
            rows += batch.num_rows
        seconds = time.perf_counter() - t0
        stop.set()
        th.join()
        assert rows == n, (rows, n)
        r = {
            "rows": n,
            "seconds": seconds,
            "daemon_rss_baseline_mb": baseline,
            "daemon_rss_max_mb": max(samples),
            "daemon_rss_after_mb": vm_rss_mb(args.pid),
            "samples": len(samples),
        }
        print(
            f"  stream {n:,} rows: {seconds:.1f} s, daemon RSS {baseline:.0f} -> max {r['daemon_rss_max_mb']:.0f} MB",
            file=__import__("sys").stderr,
            flush=True,
        )
        out.append(r)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
