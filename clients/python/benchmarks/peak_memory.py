"""Peak memory of a large query: shows that results reach Polars without extra copies.

Runs one query of ROWS rows x 4 fixed-width columns (generate_series on PostgreSQL) in a
fresh child process per mode, and compares the child's peak RSS growth with the size of
the data (``DataFrame.estimated_size()``):

* ``arrow``   - ``query_arrow``: the Arrow table as received over Flight.
* ``frame``   - ``query``: the same, wrapped by ``polars.from_arrow(rechunk=False)``.
  A ratio close to the ``arrow`` one means Polars did not copy the column buffers.
* ``batches`` - ``query_batches``: the stream consumed batch by batch; its peak stays
  near one batch however large the result.

Needs a running daemon (``DBPOOL_ENDPOINT``, default ``grpc://127.0.0.1:50051``) and
PostgreSQL (``DBPOOL_PG_URL``)::

    uv run python benchmarks/peak_memory.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import uuid

PG_URL = os.environ.get("DBPOOL_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SQL = (
    "SELECT g AS id, g * 0.5::float8 AS x, (g % 1000)::int4 AS bucket, "
    "timestamptz '2024-01-01' + g * interval '1 second' AS at "
    "FROM generate_series(1, $1::int8) AS g"
)
MODES = ("arrow", "frame", "batches")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(mode: str, pool: str, rows: int) -> dict:
    """Runs one mode in this process and returns its measurements."""
    import polars as pl

    from db_pool_rs import SyncDatabasePool

    with SyncDatabasePool() as db:
        db.query(pool, "SELECT 1")  # warm up the channel and the Flight client
        before = _rss_bytes()
        if mode == "batches":
            count, size = 0, 0
            for batch in db.query_batches(pool, SQL, [rows]):
                count += batch.num_rows
                size += batch.nbytes
        elif mode == "arrow":
            table = db.query_arrow(pool, SQL, [rows])
            count, size = table.num_rows, table.nbytes
        else:
            df = db.query(pool, SQL, [rows])
            assert isinstance(df, pl.DataFrame)
            count, size = df.height, int(df.estimated_size())
        growth = _peak_bytes() - before
    return {"mode": mode, "rows": count, "data_bytes": size, "peak_growth_bytes": growth}


def main() -> int:
    """Creates a temporary pool, measures every mode in a child process, prints a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.pool, args.rows)))
        return 0

    from db_pool_rs import SyncDatabasePool

    pool = f"bench_{uuid.uuid4().hex[:8]}"
    with SyncDatabasePool() as db:
        db.create_pool(pool, PG_URL, max_connections=2)
        try:
            results = []
            for mode in MODES:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--pool", pool, "--rows", str(args.rows)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results.append(json.loads(out))
        finally:
            db.remove_pool(pool)

    mib = 1024 * 1024
    print(f"{'mode':<8} {'rows':>10} {'data MiB':>10} {'peak RSS growth MiB':>20} {'ratio':>6}")
    for r in results:
        ratio = r["peak_growth_bytes"] / r["data_bytes"] if r["data_bytes"] else float("nan")
        print(
            f"{r['mode']:<8} {r['rows']:>10} {r['data_bytes'] / mib:>10.1f} "
            f"{r['peak_growth_bytes'] / mib:>20.1f} {ratio:>6.2f}"
        )
    print(
        "data MiB: frame.estimated_size() / table.nbytes / sum of batch.nbytes. A ratio near 1"
        " means one copy of the data (no copy into Polars); batches stay far below 1."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
