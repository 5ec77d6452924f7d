"""Workload 5: small queries from Python — the db_pool_rs clients against direct drivers.

One row by primary key (``SELECT id, a, b, c FROM <table> WHERE id = $1``), as fast as
the callers can go for ``--duration`` seconds:

* asyncio, 1/16/64 tasks: ``DatabasePool.query`` (a Polars frame) against an asyncpg
  pool of the daemon pool's size (``fetch``);
* threads, 1/8: ``SyncDatabasePool.query`` (one client shared by the threads) against
  ``polars.read_database`` over psycopg, and ``SyncDatabasePool.query_arrow`` against
  psycopg ``fetchall`` (prepared), one psycopg connection per thread.

Every point runs in a fresh interpreter (``--worker``); within a repetition the tools of
one comparison run back to back, so a ratio compares the same machine state. Each query
checks that its row is the one asked for. Prints one JSON object: per point the median
over repetitions of QPS, p50 and p99 (ms), and the median of the per-repetition ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable

#: (comparison, tool under test, reference tool, kind)
PAIRS = (
    ("async_query", "dbpool_async_query", "asyncpg", "tasks"),
    ("sync_query", "dbpool_sync_query", "polars_psycopg", "threads"),
    ("sync_arrow", "dbpool_sync_arrow", "psycopg_fetchall", "threads"),
)


def summarize(latencies: list[float], seconds: float, errors: int) -> dict:
    lat = sorted(latencies)
    n = len(lat)

    def pct(p: float) -> float:
        return round(lat[min(n - 1, int(p * n))] * 1e3, 3) if n else float("nan")

    qps = round(n / seconds, 1)
    return {"queries": n, "errors": errors, "qps": qps, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


# -- asyncio ------------------------------------------------------------------------------


async def run_async(tool: str, conc: int, args: argparse.Namespace) -> dict:
    sql = f"SELECT id, a, b, c FROM {args.table} WHERE id = $1"
    if tool == "dbpool_async_query":
        from db_pool_rs import DatabasePool

        client = DatabasePool(args.endpoint)

        async def one(i: int) -> int:
            return (await client.query(args.pool, sql, [i]))["id"][0]

        async def close() -> None:
            await client.close()
    elif tool == "asyncpg":
        import asyncpg

        pool = await asyncpg.create_pool(args.pg_url, min_size=args.pool_size, max_size=args.pool_size)

        async def one(i: int) -> int:
            return (await pool.fetch(sql, i))[0]["id"]

        async def close() -> None:
            await pool.close()
    else:
        raise SystemExit(f"unknown async tool {tool}")

    latencies: list[float] = []
    errors = 0
    measuring = False

    async def task(seed: int, stop: float) -> None:
        nonlocal errors
        rng = random.Random(seed)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            i = rng.randint(1, args.rows)
            try:
                got = await one(i)
                if got != i:
                    raise AssertionError(f"asked for id {i}, got {got}")
            except Exception:
                errors += 1
                if errors == 1:
                    raise
                continue
            if measuring:
                latencies.append(time.perf_counter() - t0)

    await one(1)  # connect outside the timer
    await asyncio.gather(*(task(s, time.perf_counter() + args.warmup) for s in range(conc)))
    measuring = True
    started = time.perf_counter()
    await asyncio.gather(*(task(1000 + s, started + args.duration) for s in range(conc)))
    seconds = time.perf_counter() - started
    await close()
    return summarize(latencies, seconds, errors)


# -- threads ------------------------------------------------------------------------------


def run_threads(tool: str, conc: int, args: argparse.Namespace) -> dict:
    sql = f"SELECT id, a, b, c FROM {args.table} WHERE id = $1"
    psql = sql.replace("$1", "%s")
    close: Callable[[], None] = lambda: None  # noqa: E731
    if tool in ("dbpool_sync_query", "dbpool_sync_arrow"):
        from db_pool_rs import SyncDatabasePool

        client = SyncDatabasePool(args.endpoint)
        close = client.close
        if tool == "dbpool_sync_query":

            def make() -> Callable[[int], Any]:
                return lambda i: client.query(args.pool, sql, [i])["id"][0]
        else:

            def make() -> Callable[[int], Any]:
                return lambda i: client.query_arrow(args.pool, sql, [i]).column(0)[0].as_py()
    elif tool in ("polars_psycopg", "psycopg_fetchall"):
        import polars as pl
        import psycopg

        conns: list[Any] = []
        lock = threading.Lock()

        def connect() -> Any:
            conn = psycopg.connect(args.pg_url, autocommit=True)
            with lock:
                conns.append(conn)
            return conn

        def close() -> None:
            for c in conns:
                c.close()

        if tool == "polars_psycopg":

            def make() -> Callable[[int], Any]:
                conn = connect()
                return lambda i: pl.read_database(psql, conn, execute_options={"params": (i,)})["id"][0]
        else:

            def make() -> Callable[[int], Any]:
                conn = connect()

                def one(i: int) -> Any:
                    with conn.cursor() as cur:
                        cur.execute(psql, (i,), prepare=True)
                        return cur.fetchall()[0][0]

                return one
    else:
        raise SystemExit(f"unknown thread tool {tool}")

    results: list[list[float]] = [[] for _ in range(conc)]
    errors = [0] * conc
    window: dict[str, float] = {}

    def open_window() -> None:  # once every thread has connected
        now = time.perf_counter()
        window.update(warm=now + args.warmup, stop=now + args.warmup + args.duration)

    connected = threading.Barrier(conc, action=open_window)

    failures: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            one = make()
            one(1)  # connect outside the timer
        except BaseException as e:
            failures.append(e)
            connected.abort()  # the others stop waiting (BrokenBarrierError)
            return
        rng = random.Random(k)
        try:
            connected.wait()
        except threading.BrokenBarrierError:
            return
        while time.perf_counter() < window["warm"]:
            one(rng.randint(1, args.rows))
        stop = window["stop"]
        out = results[k]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            i = rng.randint(1, args.rows)
            try:
                got = one(i)
                if got != i:
                    raise AssertionError(f"asked for id {i}, got {got}")
            except Exception:
                errors[k] += 1
                continue
            out.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    seconds = max(time.perf_counter(), window["stop"]) - window["warm"]
    close()
    return summarize([x for r in results for x in r], seconds, sum(errors))


# -- driver -------------------------------------------------------------------------------


def worker(spec: str, args: argparse.Namespace) -> dict:
    tool, conc_text = spec.split(":")
    conc = int(conc_text)
    kind = next(k for _, a, b, k in PAIRS if tool in (a, b))
    r = asyncio.run(run_async(tool, conc, args)) if kind == "tasks" else run_threads(tool, conc, args)
    return {"tool": tool, "concurrency": conc, **r}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool", default="pg", help="the daemon's pool id")
    p.add_argument("--pool-size", type=int, default=20, help="connections of the asyncpg pool")
    p.add_argument("--pg-url", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--rows", type=int, required=True, help="ids run from 1 to this")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--tasks", default="1 16 64")
    p.add_argument("--threads", default="1 8")
    p.add_argument("--only", default="", help="comma-separated comparisons (default: all)")
    p.add_argument("--worker", help="internal: run one tool:concurrency point and print JSON")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return

    only = set(filter(None, args.only.split(",")))
    runs: dict = {}
    for rep in range(args.reps):
        for name, tool, ref, kind in PAIRS:
            if only and name not in only:
                continue
            for conc in map(int, (args.tasks if kind == "tasks" else args.threads).split()):
                pair = (tool, ref) if rep % 2 == 0 else (ref, tool)  # alternate who goes first
                for t in pair:
                    cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", f"{t}:{conc}"]
                    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if proc.returncode != 0:
                        tail = proc.stderr.strip().splitlines()[-1:]
                        print(f"  {t} x{conc}: failed: {tail}", file=sys.stderr)
                        r = {"error": "failed"}
                    else:
                        r = json.loads(proc.stdout)
                        print(
                            f"  rep {rep + 1} {t:20s} x{conc:<3d} {r['qps']:9.1f} qps"
                            f"  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
                    runs.setdefault(name, {}).setdefault(str(conc), {}).setdefault(t, []).append(r)
    out: dict = {}
    for name, tool, ref, _ in PAIRS:
        for conc, tools in runs.get(name, {}).items():
            point: dict = {}
            for t, rs in tools.items():
                ok = [r for r in rs if "qps" in r]
                if not ok:
                    point[t] = {"error": "failed"}
                    continue
                point[t] = {k: statistics.median(r[k] for r in ok) for k in ("qps", "p50_ms", "p99_ms")}
                point[t]["errors"] = sum(r["errors"] for r in ok)
                point[t]["runs"] = rs
            pairs = list(zip(tools.get(tool, []), tools.get(ref, [])))
            ratios = [a["qps"] / b["qps"] for a, b in pairs if "qps" in a and "qps" in b and b["qps"]]
            point["qps_ratio"] = round(statistics.median(ratios), 3) if ratios else None
            point["compares"] = f"{tool} / {ref}"
            out.setdefault(name, {})[conc] = point
    print(json.dumps(out))


if __name__ == "__main__":
    main()
