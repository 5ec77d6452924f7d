"""Workload 2: read a wide table into a Polars DataFrame with each tool; wall time and peak RSS.

Every (tool, repetition) runs in a fresh interpreter (`--worker`), so one tool's peak RSS
and allocator state never leak into the next. The frame's size is reported twice: Polars' estimated_size and the bytes of the frame's
Arrow buffers (what it really holds). The worker times only the read (imports and
connecting to the daemon are outside the timer, connecting to PostgreSQL is inside, as it
is for the user) and reports its own ru_maxrss before and after.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

TOOLS = ("db_pool_rs", "connectorx", "adbc", "psycopg", "copy_binary_psql")


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(tool: str, args: argparse.Namespace) -> dict:
    import polars as pl

    sql = f"SELECT * FROM {args.table}"
    if tool == "db_pool_rs":
        from db_pool_rs import SyncDatabasePool

        db = SyncDatabasePool(args.endpoint)
        db.query(args.pool, "SELECT 1")  # connect outside the timer, like a long-lived client
        before = rss_peak_mb()
        t0 = time.perf_counter()
        df = db.query(args.pool, sql)
    elif tool == "connectorx":
        import connectorx  # noqa: F401

        before = rss_peak_mb()
        t0 = time.perf_counter()
        df = pl.read_database_uri(sql, args.pg_url, engine="connectorx")
    elif tool == "adbc":
        import adbc_driver_postgresql.dbapi  # noqa: F401

        before = rss_peak_mb()
        t0 = time.perf_counter()
        df = pl.read_database_uri(sql, args.pg_url, engine="adbc")
    elif tool == "psycopg":
        import psycopg

        before = rss_peak_mb()
        t0 = time.perf_counter()
        with psycopg.connect(args.pg_url) as conn:
            df = pl.read_database(sql, conn)
    else:
        raise SystemExit(f"unknown tool {tool}")
    seconds = time.perf_counter() - t0
    peak = rss_peak_mb()
    # The frame's real size: the bytes of its Arrow buffers, exported without a copy
    # (after the peak was taken). Polars' estimated_size leaves out the 16-byte view
    # every string has in Polars' layout (2 x 16 MB for this table's text columns).
    buffers_mb = df.to_arrow().get_total_buffer_size() / 2**20
    return {
        "tool": tool,
        "seconds": seconds,
        "rows": df.height,
        "columns": df.width,
        "dtypes": [str(d) for d in df.dtypes],
        "estimated_size_mb": df.estimated_size() / 2**20,
        "buffers_mb": buffers_mb,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
    }


def copy_bound(args: argparse.Namespace) -> dict:
    """`COPY … TO STDOUT (FORMAT binary)` through psql into /dev/null: the wire's bound."""
    t0 = time.perf_counter()
    subprocess.run(
        ["psql", args.pg_url, "-q", "-c", f"COPY (SELECT * FROM {args.table}) TO STDOUT (FORMAT binary)"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return {"tool": "copy_binary_psql", "seconds": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool", default="pg")
    p.add_argument("--pg-url", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--worker", help="internal: run one read with this tool and print JSON")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return

    out = {}
    for tool in args.tools.split(","):
        runs = []
        for rep in range(args.reps):
            if tool == "copy_binary_psql":
                r = copy_bound(args)
            else:
                cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", tool]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(f"  {tool}: failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                    runs = None
                    break
                r = json.loads(proc.stdout)
            runs.append(r)
            print(
                f"  read {tool} rep {rep + 1}/{args.reps}: {r['seconds']:.2f} s", file=sys.stderr, flush=True
            )
        if not runs:
            out[tool] = {"error": "failed"}
            continue
        med = {"seconds": statistics.median(r["seconds"] for r in runs), "runs": runs}
        if "rss_peak_mb" in runs[0]:
            med["rss_peak_mb"] = statistics.median(r["rss_peak_mb"] for r in runs)
            med["rss_growth_mb"] = statistics.median(r["rss_peak_mb"] - r["rss_before_mb"] for r in runs)
            med["estimated_size_mb"] = runs[0]["estimated_size_mb"]
            med["buffers_mb"] = runs[0]["buffers_mb"]
            med["dtypes"] = runs[0]["dtypes"]
            med["rows"] = runs[0]["rows"]
        out[tool] = med
    print(json.dumps(out))


if __name__ == "__main__":
    main()
