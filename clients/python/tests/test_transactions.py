"""Interactive transactions against the real daemon, PostgreSQL and SQLite, sync and async.

What a transaction did is always checked through a separate query on the pool (another
connection), never through the transaction itself.
"""

from __future__ import annotations

import asyncio

import grpc
import polars as pl
import pyarrow as pa
import pytest
from conftest import async_wait_until, wait_until

from db_pool_rs import (
    AsyncTransaction,
    DatabasePool,
    InvalidArgumentError,
    PoolNotFoundError,
    QueryError,
    SyncDatabasePool,
    Transaction,
    TransactionClosedError,
    TransactionNotFoundError,
)
from db_pool_rs._proto import pool_pb2, pool_pb2_grpc


class Boom(Exception):
    """Raised inside transaction blocks."""


def _names(db: SyncDatabasePool, pool: str) -> list[str]:
    return db.query(pool, "SELECT name FROM items ORDER BY name")["name"].to_list()


@pytest.fixture
def pg_items(db: SyncDatabasePool, pg_pool: str) -> str:
    db.execute(pg_pool, "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE)")
    return pg_pool


@pytest.fixture
def lite_items(db: SyncDatabasePool, sqlite_pool: str) -> str:
    db.execute(sqlite_pool, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    return sqlite_pool


# -- sync ----------------------------------------------------------------------------------


def test_commit_at_the_end_of_the_block(db: SyncDatabasePool, pg_items: str) -> None:
    with db.transaction(pg_items) as tx:
        assert isinstance(tx, Transaction) and tx.active and tx.transaction_id
        assert tx.execute("INSERT INTO items (name) VALUES ($1), ($2)", ["a", "b"]) == 2
        # The transaction sees its own rows (queries on the connection that began it) ...
        df = tx.query("SELECT name FROM items ORDER BY name")
        assert isinstance(df, pl.DataFrame) and df["name"].to_list() == ["a", "b"]
        table = tx.query_arrow("SELECT count(*) AS n FROM items WHERE name = $1", ["a"])
        assert isinstance(table, pa.Table) and table.column("n").to_pylist() == [1]
        with tx.query_batches("SELECT name FROM items", batch_size=1) as stream:
            assert sum(b.num_rows for b in stream) == 2
        # ... the rest of the pool does not, until the commit.
        assert _names(db, pg_items) == []
    assert tx.state == "committed" and not tx.active
    assert _names(db, pg_items) == ["a", "b"]


def test_rollback_on_exception_reraises(db: SyncDatabasePool, pg_items: str) -> None:
    with pytest.raises(Boom):
        with db.transaction(pg_items) as tx:
            tx.execute("INSERT INTO items (name) VALUES ('doomed')")
            raise Boom()
    assert tx.state == "rolled back"
    assert _names(db, pg_items) == []


def test_database_error_inside_rolls_back(db: SyncDatabasePool, pg_items: str) -> None:
    db.execute(pg_items, "INSERT INTO items (name) VALUES ('dup')")
    with pytest.raises(QueryError) as e:
        with db.transaction(pg_items) as tx:
            tx.execute("INSERT INTO items (name) VALUES ('new')")
            tx.execute("INSERT INTO items (name) VALUES ('dup')")
    assert e.value.sqlstate == "23505"
    assert _names(db, pg_items) == ["dup"]


def test_explicit_commit_and_rollback(db: SyncDatabasePool, pg_items: str) -> None:
    tx = db.transaction(pg_items)
    tx.execute("INSERT INTO items (name) VALUES ('kept')")
    tx.commit()
    assert _names(db, pg_items) == ["kept"]
    with pytest.raises(TransactionClosedError, match="committed"):
        tx.execute("INSERT INTO items (name) VALUES ('late')")
    with pytest.raises(TransactionClosedError):
        tx.commit()

    tx = db.transaction(pg_items)
    tx.execute("INSERT INTO items (name) VALUES ('dropped')")
    tx.rollback()
    assert tx.state == "rolled back"
    assert _names(db, pg_items) == ["kept"]

    # commit() inside the block: the block's end does nothing more.
    with db.transaction(pg_items) as tx:
        tx.execute("INSERT INTO items (name) VALUES ('early')")
        tx.commit()
    assert _names(db, pg_items) == ["early", "kept"]


def test_concurrent_transactions_are_isolated(db: SyncDatabasePool, pg_items: str) -> None:
    one = db.transaction(pg_items)
    two = db.transaction(pg_items)
    assert one.transaction_id != two.transaction_id
    one.execute("INSERT INTO items (name) VALUES ('one')")
    two.execute("INSERT INTO items (name) VALUES ('two')")
    assert one.query("SELECT name FROM items")["name"].to_list() == ["one"]
    assert two.query("SELECT name FROM items")["name"].to_list() == ["two"]
    one.commit()
    # read committed: two now sees one's committed row, not the other way round.
    assert sorted(two.query("SELECT name FROM items")["name"].to_list()) == ["one", "two"]
    assert _names(db, pg_items) == ["one"]
    two.commit()
    assert _names(db, pg_items) == ["one", "two"]


def test_a_transaction_id_from_another_connection_is_not_found(
    daemon: str, db: SyncDatabasePool, pg_items: str
) -> None:
    """A transaction belongs to the gRPC connection that began it: another connection gets
    NOT_FOUND for the id, worded as for an id that never existed, and changes nothing."""
    with db.transaction(pg_items) as tx:
        tx.execute("INSERT INTO items (name) VALUES ('mine')")
        tx_id = tx.transaction_id
        assert tx_id
        unknown = "tx-" + "0" * 32
        # gRPC shares one connection among a process's channels to one target unless a
        # channel asks for its own subchannel pool: this one is a second connection.
        target = daemon.removeprefix("grpc://")
        with grpc.insecure_channel(target, [("grpc.use_local_subchannel_pool", 1)]) as channel:
            other = pool_pb2_grpc.PoolServiceStub(channel)

            def steal(transaction_id: str) -> grpc.RpcError:
                request = pool_pb2.ExecuteRequest(
                    transaction_id=transaction_id, sql="INSERT INTO items (name) VALUES ('theirs')"
                )
                with pytest.raises(grpc.RpcError) as e:
                    other.Execute(request, timeout=60)
                assert e.value.code() is grpc.StatusCode.NOT_FOUND
                return e.value

            foreign, never = steal(tx_id), steal(unknown)
            assert foreign.details().replace(tx_id, "ID") == never.details().replace(unknown, "ID")
            with pytest.raises(grpc.RpcError) as e:
                other.Commit(pool_pb2.EndTransactionRequest(transaction_id=tx_id), timeout=60)
            assert e.value.code() is grpc.StatusCode.NOT_FOUND
        # Still open on its own connection, with only its own row.
        assert tx.query("SELECT name FROM items")["name"].to_list() == ["mine"]
    assert _names(db, pg_items) == ["mine"]


def _reaped(db: SyncDatabasePool, pool: str) -> None:
    """Waits until the reaper rolled back the pool's idle transaction: its pinned
    connection is back (status calls do not touch the transaction)."""
    wait_until(lambda: db.pool_status(pool).in_use == 0, "the idle transaction rolled back")


async def _async_reaped(adb: DatabasePool, pool: str) -> None:
    async def back() -> bool:
        return (await adb.pool_status(pool)).in_use == 0

    await async_wait_until(back, "the idle transaction rolled back")


def test_idle_timeout_rolls_back(db: SyncDatabasePool, pg_items: str) -> None:
    tx = db.transaction(pg_items, idle_timeout_ms=300)
    tx.execute("INSERT INTO items (name) VALUES ('stale')")
    _reaped(db, pg_items)
    with pytest.raises(TransactionNotFoundError) as e:
        tx.commit()
    assert "idle timeout" in str(e.value) and tx.transaction_id in str(e.value)
    assert not isinstance(e.value, PoolNotFoundError)
    assert isinstance(e.value, LookupError)
    assert tx.state == "failed"
    assert _names(db, pg_items) == []
    # The same in a block: its end (the commit) raises.
    with pytest.raises(TransactionNotFoundError, match="idle timeout"):
        with db.transaction(pg_items, idle_timeout_ms=300) as tx:
            tx.execute("INSERT INTO items (name) VALUES ('stale')")
            _reaped(db, pg_items)
    # A query after the timeout says the same.
    tx = db.transaction(pg_items, idle_timeout_ms=300)
    _reaped(db, pg_items)
    with pytest.raises(TransactionNotFoundError, match="idle timeout"):
        tx.query("SELECT 1")
    with pytest.raises(TransactionNotFoundError):
        tx.execute("SELECT 1")
    assert _names(db, pg_items) == []


def test_a_running_statement_is_not_idle(db: SyncDatabasePool, pg_items: str) -> None:
    """The idle timeout counts time without a call: a statement running longer than it
    keeps the transaction alive, and the idle clock starts again when it ends."""
    tx = db.transaction(pg_items, idle_timeout_ms=500)
    tx.execute("INSERT INTO items (name) VALUES ('slow')")
    # pg_sleep: statements that run longer than the idle timeout, the thing under test.
    assert tx.query("SELECT 1 AS one FROM pg_sleep(1.2)")["one"].to_list() == [1]
    tx.execute("SELECT pg_sleep(1.2)")
    tx.commit()
    assert _names(db, pg_items) == ["slow"]


def test_isolation_and_read_only(db: SyncDatabasePool, pg_items: str) -> None:
    with db.transaction(pg_items, isolation="serializable") as tx:
        level = tx.query("SELECT current_setting('transaction_isolation') AS l")["l"][0]
        assert level == "serializable"
    with db.transaction(pg_items, isolation="REPEATABLE READ") as tx:
        assert tx.query("SHOW transaction_isolation")[0, 0] == "repeatable read"
    with pytest.raises(QueryError) as e:
        with db.transaction(pg_items, read_only=True) as tx:
            assert tx.query("SHOW transaction_read_only")[0, 0] == "on"
            tx.execute("INSERT INTO items (name) VALUES ('ro')")
    assert e.value.sqlstate == "25006"
    with pytest.raises(InvalidArgumentError, match="isolation"):
        db.transaction(pg_items, isolation="snapshot")
    with pytest.raises(InvalidArgumentError, match="idle_timeout_ms"):
        db.transaction(pg_items, idle_timeout_ms=-1)
    with pytest.raises(PoolNotFoundError):
        db.transaction("no_such_pool")
    assert _names(db, pg_items) == []


def test_sqlite_transactions(db: SyncDatabasePool, lite_items: str) -> None:
    with db.transaction(lite_items) as tx:
        tx.execute("INSERT INTO items (name) VALUES (?)", ["a"])
        assert tx.query("SELECT count(*) AS n FROM items")["n"][0] == 1
    assert _names(db, lite_items) == ["a"]
    with pytest.raises(Boom):
        with db.transaction(lite_items, isolation="serializable") as tx:
            tx.execute("INSERT INTO items (name) VALUES (?)", ["b"])
            raise Boom()
    assert _names(db, lite_items) == ["a"]
    # SQLite has only SERIALIZABLE.
    with pytest.raises(InvalidArgumentError, match=r"(?i)isolation"):
        db.transaction(lite_items, isolation="read_committed")
    tx = db.transaction(lite_items, idle_timeout_ms=300)
    tx.execute("INSERT INTO items (name) VALUES ('stale')")
    _reaped(db, lite_items)
    with pytest.raises(TransactionNotFoundError, match="idle timeout"):
        tx.commit()
    assert _names(db, lite_items) == ["a"]


# -- async ---------------------------------------------------------------------------------


async def test_async_commit_and_rollback(adb: DatabasePool, db: SyncDatabasePool, pg_items: str) -> None:
    async with adb.transaction(pg_items) as tx:
        assert isinstance(tx, AsyncTransaction)
        assert await tx.execute("INSERT INTO items (name) VALUES ($1)", ["a"]) == 1
        assert (await tx.query("SELECT name FROM items"))["name"].to_list() == ["a"]
        assert (await tx.query_arrow("SELECT count(*) AS n FROM items")).column("n").to_pylist() == [1]
        rows = [b.num_rows async for b in tx.query_batches("SELECT * FROM items")]
        assert sum(rows) == 1
        assert (await adb.query(pg_items, "SELECT count(*) AS n FROM items"))["n"][0] == 0
    assert tx.state == "committed"
    assert _names(db, pg_items) == ["a"]

    with pytest.raises(Boom):
        async with adb.transaction(pg_items, isolation="read_committed") as tx:
            await tx.execute("INSERT INTO items (name) VALUES ('doomed')")
            raise Boom()
    assert tx.state == "rolled back"
    assert _names(db, pg_items) == ["a"]

    tx = await adb.transaction(pg_items)
    await tx.execute("INSERT INTO items (name) VALUES ('explicit')")
    await tx.rollback()
    tx = await adb.transaction(pg_items)
    await tx.execute("INSERT INTO items (name) VALUES ('committed')")
    await tx.commit()
    with pytest.raises(TransactionClosedError):
        await tx.execute("SELECT 1")
    assert _names(db, pg_items) == ["a", "committed"]


class _Rendezvous:
    """Lets `parties` coroutines wait until all of them arrived (asyncio.Barrier is 3.11+)."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._all_here = asyncio.Event()

    async def wait(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._all_here.set()
        await self._all_here.wait()


async def test_async_concurrent_transactions(adb: DatabasePool, db: SyncDatabasePool, pg_items: str) -> None:
    inserted, read = _Rendezvous(2), _Rendezvous(2)

    async def work(name: str) -> list[str]:
        async with adb.transaction(pg_items) as tx:
            await tx.execute("INSERT INTO items (name) VALUES ($1)", [name])
            await inserted.wait()  # both rows are written and uncommitted here
            names = (await tx.query("SELECT name FROM items ORDER BY name"))["name"].to_list()
            await read.wait()  # neither commits before both have read
            return names

    seen = await asyncio.wait_for(asyncio.gather(work("x"), work("y")), timeout=30)
    assert seen == [["x"], ["y"]]
    assert _names(db, pg_items) == ["x", "y"]


async def test_async_idle_timeout(adb: DatabasePool, db: SyncDatabasePool, pg_items: str) -> None:
    with pytest.raises(TransactionNotFoundError, match="idle timeout"):
        async with adb.transaction(pg_items, idle_timeout_ms=300) as tx:
            await tx.execute("INSERT INTO items (name) VALUES ('stale')")
            await _async_reaped(adb, pg_items)
    assert tx.state == "failed"
    tx = await adb.transaction(pg_items, idle_timeout_ms=300)
    await _async_reaped(adb, pg_items)
    with pytest.raises(TransactionNotFoundError, match="idle timeout"):
        await tx.query("SELECT 1")
    assert _names(db, pg_items) == []


async def test_async_sqlite(adb: DatabasePool, db: SyncDatabasePool, lite_items: str) -> None:
    async with adb.transaction(lite_items) as tx:
        await tx.execute("INSERT INTO items (name) VALUES (?)", ["a"])
    with pytest.raises(Boom):
        async with adb.transaction(lite_items) as tx:
            await tx.execute("INSERT INTO items (name) VALUES (?)", ["b"])
            raise Boom()
    assert _names(db, lite_items) == ["a"]
