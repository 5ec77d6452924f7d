"""Every exception class, raised by the real daemon over gRPC and over Arrow Flight."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from conftest import PG_URL, unique, wait_until

from db_pool_rs import (
    AuthenticationError,
    DatabasePool,
    DbPoolError,
    InvalidArgumentError,
    ParamTypeError,
    PermissionDeniedError,
    PoolExistsError,
    PoolNotFoundError,
    PoolTimeoutError,
    PoolUnavailableError,
    QueryError,
    QuotaExceededError,
    SyncDatabasePool,
    TransactionAbortedError,
)

UNREACHABLE_URL = "postgres://postgres@127.0.0.1:1/postgres"


def test_unknown_pool_sync(db: SyncDatabasePool) -> None:
    pool = unique("missing")
    for call in (
        lambda: db.query(pool, "SELECT 1"),
        lambda: list(db.query_batches(pool, "SELECT 1")),
        lambda: db.execute(pool, "SELECT 1"),
        lambda: db.execute_batch(pool, ["SELECT 1"]),
        lambda: db.pool_status(pool),
        lambda: db.remove_pool(pool),
    ):
        with pytest.raises(PoolNotFoundError) as info:
            call()
        assert info.value.code is grpc.StatusCode.NOT_FOUND
        assert pool in info.value.message


async def test_unknown_pool_async(adb: DatabasePool) -> None:
    pool = unique("missing")
    with pytest.raises(PoolNotFoundError, match=pool):
        await adb.query(pool, "SELECT 1")
    with pytest.raises(PoolNotFoundError, match=pool):
        async for _ in adb.query_batches(pool, "SELECT 1"):
            pass
    with pytest.raises(PoolNotFoundError, match=pool):
        await adb.execute(pool, "SELECT 1")
    with pytest.raises(PoolNotFoundError, match=pool):
        await adb.pool_status(pool)


def test_bad_sql_postgres(db: SyncDatabasePool, pg_pool: str) -> None:
    for call in (db.query, db.execute):
        with pytest.raises(QueryError) as info:
            call(pg_pool, "SELEC 1")
        assert info.value.sqlstate == "42601" and "syntax error" in info.value.message
        with pytest.raises(QueryError) as info:
            call(pg_pool, "SELECT * FROM no_such_table")
        assert info.value.sqlstate == "42P01" and "no_such_table" in info.value.message
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_bad_sql_async(adb: DatabasePool, pg_pool: str) -> None:
    with pytest.raises(QueryError) as info:
        await adb.query_arrow(pg_pool, "SELECT * FROM no_such_table")
    assert info.value.sqlstate == "42P01"
    with pytest.raises(QueryError) as info:
        await adb.execute(pg_pool, "SELEC 1")
    assert info.value.sqlstate == "42601"


def test_bad_sql_sqlite(db: SyncDatabasePool, sqlite_pool: str) -> None:
    for call in (db.query, db.execute):
        with pytest.raises(QueryError) as info:
            call(sqlite_pool, "SELECT * FROM no_such_table")
        # SQLite's primary result code SQLITE_ERROR stands in for a SQLSTATE.
        assert "no such table" in info.value.message and info.value.sqlstate == "1"
    with pytest.raises(QueryError) as info2:
        db.execute(sqlite_pool, "SELEC 1")
    assert "syntax error" in info2.value.message


def test_unreachable_database(db: SyncDatabasePool) -> None:
    pool = unique("down")
    info = db.create_pool(pool, UNREACHABLE_URL, lazy=True, acquire_timeout_ms=3000)
    try:
        assert info.pool_id == pool and info.backend == "postgresql"
        with pytest.raises(PoolUnavailableError) as err:
            db.query(pool, "SELECT 1")
        assert err.value.code is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(PoolUnavailableError):
            db.execute(pool, "SELECT 1")
    finally:
        db.remove_pool(pool)
    with pytest.raises(PoolUnavailableError):
        db.create_pool(unique("down"), UNREACHABLE_URL, acquire_timeout_ms=3000)


async def test_unreachable_database_async(adb: DatabasePool) -> None:
    pool = unique("down")
    await adb.create_pool(pool, UNREACHABLE_URL, lazy=True, acquire_timeout_ms=3000)
    try:
        with pytest.raises(PoolUnavailableError):
            await adb.query(pool, "SELECT 1")
    finally:
        await adb.remove_pool(pool)


def test_unreachable_daemon() -> None:
    with SyncDatabasePool("grpc://127.0.0.1:1", timeout=5) as dead:
        with pytest.raises(PoolUnavailableError):
            dead.list_pools()
        with pytest.raises(PoolUnavailableError):
            dead.query("default", "SELECT 1")


def test_invalid_arguments(db: SyncDatabasePool, sqlite_pool: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        db.create_pool(unique("bad"), "nosuchdb://x")
    assert type(info.value) is InvalidArgumentError
    with pytest.raises(InvalidArgumentError):
        db.create_pool("bad id with spaces!", "sqlite::memory:")
    with pytest.raises(InvalidArgumentError):
        db.create_pool(unique("bad"))  # neither url nor db_type
    with pytest.raises(InvalidArgumentError) as info:
        db.query(sqlite_pool, "SELECT ?", [1, 2])
    assert type(info.value) is InvalidArgumentError and info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(InvalidArgumentError) as info:
        db.execute(sqlite_pool, "SELECT ?, ?", [1])
    assert info.value.field == "params"
    with pytest.raises(ParamTypeError, match=r"params\[1\]"):
        db.query(sqlite_pool, "SELECT ?, ?", [1, object()])


def test_duplicate_pool(db: SyncDatabasePool, sqlite_pool: str) -> None:
    with pytest.raises(PoolExistsError) as info:
        db.create_pool(sqlite_pool, "sqlite::memory:")
    assert info.value.code is grpc.StatusCode.ALREADY_EXISTS and sqlite_pool in info.value.message


async def test_duplicate_pool_async(adb: DatabasePool, sqlite_pool: str) -> None:
    with pytest.raises(PoolExistsError):
        await adb.create_pool(sqlite_pool, "sqlite::memory:")


def test_transaction_aborted(db: SyncDatabasePool, pg_pool: str) -> None:
    sql = "DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '40001'; END $$"
    with pytest.raises(TransactionAbortedError) as info:
        db.execute(pg_pool, sql)
    assert info.value.sqlstate == "40001" and info.value.code is grpc.StatusCode.ABORTED
    assert isinstance(info.value, QueryError)
    db.execute(
        pg_pool,
        "CREATE FUNCTION deadlock() RETURNS int LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = '40P01'; END $$",
    )
    with pytest.raises(TransactionAbortedError) as info:
        db.query(pg_pool, "SELECT deadlock()")
    assert info.value.sqlstate == "40P01" and "simulated deadlock" in info.value.message


def test_authentication_failure(db: SyncDatabasePool) -> None:
    url = PG_URL.replace("postgres://postgres@", f"postgres://{unique('nosuchuser')}@")
    with pytest.raises(AuthenticationError) as info:
        db.create_pool(unique("auth"), url)
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED and "28000" in info.value.message


# pg_sleep below: statements that must outlast a deadline or timeout, the thing under
# test, not waits of the test.


def test_client_deadline(db: SyncDatabasePool, pg_pool: str) -> None:
    started = time.monotonic()
    with pytest.raises(PoolTimeoutError) as info:
        db.query(pg_pool, "SELECT pg_sleep(5)", timeout=0.5)
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(PoolTimeoutError):
        db.execute(pg_pool, "SELECT pg_sleep(5)", timeout=0.5)
    assert time.monotonic() - started < 4


async def test_client_deadline_async(adb: DatabasePool, pg_pool: str) -> None:
    with pytest.raises(PoolTimeoutError):
        await adb.query(pg_pool, "SELECT pg_sleep(5)", timeout=0.5)
    with pytest.raises(PoolTimeoutError):
        await adb.execute(pg_pool, "SELECT pg_sleep(5)", timeout=0.5)
    with pytest.raises(PoolTimeoutError):
        async for _ in adb.query_batches(pg_pool, "SELECT pg_sleep(5)", timeout=0.5):
            pass


def test_statement_timeout(db: SyncDatabasePool) -> None:
    pool = unique("slow")
    db.create_pool(pool, PG_URL, statement_timeout_ms=200)
    try:
        with pytest.raises(PoolTimeoutError) as info:
            db.query(pool, "SELECT pg_sleep(3)")
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert db.query(pool, "SELECT 7 AS x")["x"].to_list() == [7]
    finally:
        db.remove_pool(pool)


def _running(db: SyncDatabasePool, admin: str, sql: str) -> bool:
    """Whether ``sql`` runs on the PostgreSQL server right now."""
    active = "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query = $1"
    return db.query(admin, active, [sql])["n"][0] > 0


def test_pool_exhausted(db: SyncDatabasePool, pg_admin: str) -> None:
    pool = unique("tiny")
    db.create_pool(pool, PG_URL, max_connections=1, acquire_timeout_ms=300)
    holding = f"SELECT pg_sleep(2) -- {pool}"
    holder = threading.Thread(target=lambda: db.query(pool, holding))
    holder.start()
    try:
        # Its statement running, not merely a connection in use (a health check uses one).
        wait_until(lambda: _running(db, pg_admin, holding), "the holder's statement to run")
        with pytest.raises(PoolTimeoutError) as info:
            db.query(pool, "SELECT 1")
        assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(PoolTimeoutError):
            db.execute(pool, "SELECT 1")
    finally:
        holder.join()
        status = db.pool_status(pool)
        db.remove_pool(pool)
    assert status.acquire_timeouts_total >= 2


def test_errors_share_the_base_class() -> None:
    for cls in (
        PoolNotFoundError,
        PoolExistsError,
        InvalidArgumentError,
        QueryError,
        TransactionAbortedError,
        PoolUnavailableError,
        PoolTimeoutError,
        AuthenticationError,
        PermissionDeniedError,
        QuotaExceededError,
    ):
        assert issubclass(cls, DbPoolError)
