"""One SyncDatabasePool shared by many threads; many concurrent async queries."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from db_pool_rs import DatabasePool, SyncDatabasePool


def test_threads_share_one_client(db: SyncDatabasePool, pg_pool: str, sqlite_pool: str) -> None:
    db.execute(sqlite_pool, "CREATE TABLE t (k INTEGER)")

    def work(i: int) -> tuple:
        df = db.query(pg_pool, "SELECT $1::int8 * g AS v FROM generate_series(1, 1000) g", [i])
        db.execute(sqlite_pool, "INSERT INTO t VALUES (?)", [i])
        total = sum(
            b.num_rows for b in db.query_batches(pg_pool, "SELECT g FROM generate_series(1, 20000) g")
        )
        return i, int(df["v"].sum()), total

    with ThreadPoolExecutor(8) as pool:
        results = sorted(pool.map(work, range(32)))
    assert results == [(i, i * 500500, 20000) for i in range(32)]
    assert db.query(sqlite_pool, "SELECT count(*) AS n, sum(k) AS s FROM t").row(0) == (32, sum(range(32)))


async def test_concurrent_async_queries(adb: DatabasePool, pg_pool: str) -> None:
    async def one(i: int) -> int:
        df = await adb.query(pg_pool, "SELECT $1::int8 + g AS v FROM generate_series(1, 100) g", [i])
        return int(df["v"].sum())

    sums = await asyncio.gather(*(one(i) for i in range(40)))
    assert sums == [100 * i + 5050 for i in range(40)]
