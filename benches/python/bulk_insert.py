"""Workload 4: insert a Polars frame into PostgreSQL with db_pool_rs, ADBC and psql COPY.

The frame (id, i, f, t, ts, flag; about 10 % NULLs in i and t) is built once. Every run
truncates the target table first (not timed), then appends: db_pool_rs `bulk_insert`
(Flight DoPut, COPY binary in the daemon), ADBC `adbc_ingest(mode="append")`, and
`\\copy … FROM file CSV` through psql from a CSV written beforehand (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import polars as pl

DDL = "CREATE TABLE IF NOT EXISTS {t} (id bigint, i integer, f double precision, t text, ts timestamptz, flag boolean)"


def frame(n: int) -> pl.DataFrame:
    idx = pl.int_range(0, n, dtype=pl.Int64, eager=True)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return pl.DataFrame({"id": idx}).with_columns(
        i=pl.when(pl.col("id") % 10 == 0).then(None).otherwise(pl.col("id") % 100_000).cast(pl.Int32),
        f=pl.col("id").cast(pl.Float64) * 0.5,
        t=pl.when(pl.col("id") % 10 == 3).then(None).otherwise(pl.format("row-{}", pl.col("id"))),
        ts=pl.lit(start).dt.replace_time_zone("UTC") + pl.duration(seconds=pl.col("id")),
        flag=pl.col("id") % 2 == 0,
    )


def psql(url: str, sql: str) -> None:
    subprocess.run(
        ["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, stdout=subprocess.DEVNULL
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool", default="pg")
    p.add_argument("--pg-url", required=True)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()

    import adbc_driver_postgresql.dbapi as adbc
    from db_pool_rs import SyncDatabasePool

    df = frame(args.rows)
    table = df.to_arrow()
    db = SyncDatabasePool(args.endpoint)
    tmp = tempfile.mkdtemp(prefix="dbpool-bench-")
    csv = os.path.join(tmp, "rows.csv")
    df.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S%z")).write_csv(csv, null_value="")

    def run_dbpool(t: str) -> None:
        assert db.bulk_insert(args.pool, t, df) == args.rows

    def run_adbc(t: str) -> None:
        with adbc.connect(args.pg_url) as conn, conn.cursor() as cur:
            cur.adbc_ingest(t, table, mode="append")
            conn.commit()

    def run_copy(t: str) -> None:
        psql(args.pg_url, f"\\copy {t} FROM '{csv}' (FORMAT csv, HEADER true)")

    tools = {"db_pool_rs": run_dbpool, "adbc": run_adbc, "copy_csv_psql": run_copy}
    out = {}
    for name in tools:
        out[name] = {"runs": []}
    for rep in range(args.reps):
        for name, fn in tools.items():  # interleaved, so drift in machine load hits all alike
            t = f"bench_ins_{name}"
            psql(args.pg_url, "SET client_min_messages = warning; " + DDL.format(t=t) + f"; TRUNCATE {t}")
            t0 = time.perf_counter()
            fn(t)
            s = time.perf_counter() - t0
            out[name]["runs"].append(s)
            print(f"  insert {name} rep {rep + 1}/{args.reps}: {s:.2f} s", file=sys.stderr, flush=True)
    for name in tools:
        out[name]["seconds"] = statistics.median(out[name]["runs"])
        out[name]["rows_per_s"] = args.rows / out[name]["seconds"]
    out["rows"] = args.rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
