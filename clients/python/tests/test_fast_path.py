"""The paths of a query result, each exercised on purpose (issue 19).

``query`` / ``query_arrow`` read the result whole over Arrow Flight; inside a
transaction they read it whole over ``PoolService.Query`` (_fast.py), where a small
result is one message (schema, batch, end marker) and one over the daemon's 1 MiB
message size several; ``query_batches`` streams. Each path: exact values just under and
just over 1 MiB, errors with their SQLSTATE, a deadline that expires mid-call,
concurrency (64 asyncio tasks, 8 threads) with parameters that echo back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pyarrow as pa
import pytest
from conftest import async_wait_until

import db_pool_rs._transaction as transaction
from db_pool_rs import DatabasePool, DbPoolError, PoolTimeoutError, QueryError, SyncDatabasePool

#: Rows of ~112 bytes each (int8, a 100-byte text and its offset), in one batch.
PADDED = "SELECT $1::int8 AS k, g AS n, repeat('x', 100) AS pad FROM generate_series(1, $2::int4) g"
ONE_BATCH = 65_536
#: Well under and just over the daemon's 1 MiB message size (ipc_chunks.rs COALESCE_BYTES).
UNDER, OVER = 8_000, 10_000
#: Fails with division by zero (22012) at row 50 000, after several MiB went out.
FAILS_LATE = "SELECT g, repeat('y', 100) AS pad, 1 / (50000 - g) AS x FROM generate_series(1, 100000) g"
#: Sends rows, then sleeps in the middle of the result.
SLEEPS_LATE = (
    "SELECT g, repeat('z', 100) AS pad, CASE WHEN g = 40000 THEN pg_sleep(5) END AS s "
    "FROM generate_series(1, 80000) g"
)


@pytest.fixture
def chunks_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The number of ``Query`` messages of each whole transaction result decoded."""
    seen: list[int] = []
    decode = transaction.decode

    def counting(chunks: Any) -> pa.Table:
        seen.append(len(chunks))
        return decode(chunks)

    monkeypatch.setattr(transaction, "decode", counting)
    yield seen


def _check_padded(table: Any, k: int, rows: int) -> None:
    assert table.num_rows == rows if isinstance(table, pa.Table) else table.height == rows
    columns = table.to_pydict() if isinstance(table, pa.Table) else table.to_dict(as_series=False)
    assert set(columns["k"]) == {k}
    assert columns["n"] == list(range(1, rows + 1))
    assert columns["pad"][-1] == "x" * 100


def test_results_just_under_and_over_1_mib(
    db: SyncDatabasePool, pg_pool: str, chunks_seen: list[int]
) -> None:
    small = db.query_arrow(pg_pool, PADDED, [1, UNDER], batch_size=ONE_BATCH)
    _check_padded(small, 1, UNDER)
    assert small.nbytes < 1 << 20
    large = db.query_arrow(pg_pool, PADDED, [2, OVER], batch_size=ONE_BATCH)
    _check_padded(large, 2, OVER)
    assert large.nbytes > 1 << 20
    _check_padded(db.query(pg_pool, PADDED, [3, OVER], batch_size=ONE_BATCH), 3, OVER)
    streamed = list(db.query_batches(pg_pool, PADDED, [4, OVER], batch_size=1000))
    _check_padded(pa.Table.from_batches(streamed), 4, OVER)
    assert len(streamed) == 10
    with db.transaction(pg_pool, read_only=True) as tx:
        _check_padded(tx.query_arrow(PADDED, [5, UNDER], batch_size=ONE_BATCH), 5, UNDER)
        _check_padded(tx.query(PADDED, [6, OVER], batch_size=ONE_BATCH), 6, OVER)
        _check_padded(pa.Table.from_batches(list(tx.query_batches(PADDED, [7, OVER]))), 7, OVER)
    # Under: schema, batch and end marker in one message (the end may trail in a second
    # when PostgreSQL's completion arrives a moment later); over: the batch fills one.
    assert len(chunks_seen) == 2 and chunks_seen[0] in (1, 2) and chunks_seen[1] >= 2, chunks_seen


async def test_results_just_under_and_over_1_mib_async(
    adb: DatabasePool, pg_pool: str, chunks_seen: list[int]
) -> None:
    _check_padded(await adb.query_arrow(pg_pool, PADDED, [5, UNDER], batch_size=ONE_BATCH), 5, UNDER)
    _check_padded(await adb.query(pg_pool, PADDED, [6, OVER], batch_size=ONE_BATCH), 6, OVER)
    batches = [b async for b in adb.query_batches(pg_pool, PADDED, [7, OVER], batch_size=1000)]
    _check_padded(pa.Table.from_batches(batches), 7, OVER)
    async with adb.transaction(pg_pool) as tx:
        _check_padded(await tx.query(PADDED, [8, UNDER], batch_size=ONE_BATCH), 8, UNDER)
        _check_padded(await tx.query_arrow(PADDED, [9, OVER], batch_size=ONE_BATCH), 9, OVER)
    assert len(chunks_seen) == 2 and chunks_seen[0] in (1, 2) and chunks_seen[1] >= 2, chunks_seen


def test_errors_and_sqlstate_on_each_path(db: SyncDatabasePool, pg_pool: str) -> None:
    for call in (db.query, db.query_arrow):
        with pytest.raises(QueryError) as info:
            call(pg_pool, "SELECT 1 / 0 AS x")
        assert info.value.sqlstate == "22012" and info.value.code is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(QueryError) as info:
            call(pg_pool, FAILS_LATE)
        assert info.value.sqlstate == "22012" and "division by zero" in info.value.message
        with pytest.raises(QueryError) as info:
            call(pg_pool, "SELECT * FROM no_such_table_here")
        assert info.value.sqlstate == "42P01"
    with pytest.raises(QueryError) as info:
        for _ in db.query_batches(pg_pool, FAILS_LATE):
            pass
    assert info.value.sqlstate == "22012"
    failing = (("SELECT 1 / 0 AS x", "22012"), (FAILS_LATE, "22012"), ("SELECT * FROM nope_t", "42P01"))
    for sql, sqlstate in failing:
        with db.transaction(pg_pool) as tx:
            with pytest.raises(QueryError) as info:
                tx.query_arrow(sql)
            assert info.value.sqlstate == sqlstate
            tx.rollback()
    assert db.query(pg_pool, "SELECT 2 AS two")["two"].to_list() == [2]


async def test_errors_and_sqlstate_on_each_path_async(adb: DatabasePool, pg_pool: str) -> None:
    for call in (adb.query, adb.query_arrow):
        with pytest.raises(QueryError) as info:
            await call(pg_pool, "SELECT 1 / 0 AS x")
        assert info.value.sqlstate == "22012"
        with pytest.raises(QueryError) as info:
            await call(pg_pool, FAILS_LATE)
        assert info.value.sqlstate == "22012"
    with pytest.raises(QueryError) as info:
        async for _ in adb.query_batches(pg_pool, FAILS_LATE):
            pass
    assert info.value.sqlstate == "22012"
    for sql in ("SELECT 1 / 0 AS x", FAILS_LATE):
        tx = await adb.transaction(pg_pool)
        with pytest.raises(QueryError) as info:
            await tx.query(sql)
        assert info.value.sqlstate == "22012"
        await tx.rollback()


# pg_sleep in SLEEPS_LATE: the statement must outlast the deadline, the thing under test.


def test_deadline_expires_mid_result(db: SyncDatabasePool, pg_pool: str) -> None:
    for call in (db.query, db.query_arrow, lambda *a, **k: list(db.query_batches(*a, **k))):
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as info:
            call(pg_pool, SLEEPS_LATE, timeout=1.0, batch_size=1000)
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 4.5
    with db.transaction(pg_pool) as tx:
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as info:
            tx.query_arrow(SLEEPS_LATE, timeout=1.0, batch_size=1000)
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 4.5
        tx.rollback()
    assert db.query(pg_pool, "SELECT 3 AS three")["three"].to_list() == [3]


async def test_deadline_expires_mid_result_async(adb: DatabasePool, pg_pool: str) -> None:
    for call in (adb.query, adb.query_arrow):
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as info:
            await call(pg_pool, SLEEPS_LATE, timeout=1.0, batch_size=1000)
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 4.5
    tx = await adb.transaction(pg_pool)
    started = time.monotonic()
    with pytest.raises(PoolTimeoutError) as info:
        await tx.query(SLEEPS_LATE, timeout=1.0, batch_size=1000)
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 4.5
    await tx.rollback()
    assert (await adb.query(pg_pool, "SELECT 4 AS four"))["four"].to_list() == [4]


async def test_cancelling_a_transaction_query_cancels_it(adb: DatabasePool, pg_pool: str) -> None:
    marker = f"cancel_me_{id(adb)}"
    sql = f"SELECT pg_sleep(30) -- {marker}"
    tx = await adb.transaction(pg_pool)
    task = asyncio.create_task(tx.query(sql))
    running = f"SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query = '{sql}'"

    async def count() -> int:
        return int((await adb.query(pg_pool, running))["n"][0])

    async def started() -> bool:
        return await count() == 1

    async def stopped() -> bool:
        return await count() == 0

    await async_wait_until(started, "the statement to run")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The call is cancelled, so the daemon drops the query and PostgreSQL stops it.
    await async_wait_until(stopped, "the cancelled statement to stop")
    await tx.rollback()


async def test_64_tasks_each_get_their_own_rows(adb: DatabasePool, pg_pool: str) -> None:
    async def one(i: int) -> None:
        rows = OVER if i % 16 == 0 else 1 + i  # a few results over 1 MiB, most small
        if i % 8 == 3:
            async with adb.transaction(pg_pool, read_only=True) as tx:
                _check_padded(await tx.query(PADDED, [i, rows], batch_size=ONE_BATCH), i, rows)
        elif i % 2:
            _check_padded(await adb.query(pg_pool, PADDED, [i, rows], batch_size=ONE_BATCH), i, rows)
        else:
            _check_padded(await adb.query_arrow(pg_pool, PADDED, [i, rows], batch_size=ONE_BATCH), i, rows)

    await asyncio.gather(*(one(i) for i in range(64)))


def test_8_threads_share_the_sync_client(db: SyncDatabasePool, pg_pool: str) -> None:
    start = threading.Barrier(8)

    def work(t: int) -> list[int]:
        start.wait()  # all eight threads call at once
        seen = []
        for j in range(12):
            k = t * 100 + j
            rows = OVER if j == 5 else 1 + j
            if j == 7:
                with db.transaction(pg_pool, read_only=True) as tx:
                    _check_padded(tx.query_arrow(PADDED, [k, rows], batch_size=ONE_BATCH), k, rows)
            elif j % 2:
                _check_padded(db.query(pg_pool, PADDED, [k, rows], batch_size=ONE_BATCH), k, rows)
            else:
                _check_padded(db.query_arrow(pg_pool, PADDED, [k, rows], batch_size=ONE_BATCH), k, rows)
            seen.append(k)
        return seen

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert results == [[t * 100 + j for j in range(12)] for t in range(8)]


def test_closed_client_refuses_queries(daemon: str) -> None:
    client = SyncDatabasePool(daemon, timeout=10)
    assert client.query("default", "SELECT 1 AS one")["one"].to_list() == [1]
    client.close()
    for call in (client.query, client.query_arrow):
        with pytest.raises(DbPoolError, match="closed") as info:
            call("default", "SELECT 1 AS one")
        assert info.value.code is grpc.StatusCode.CANCELLED
