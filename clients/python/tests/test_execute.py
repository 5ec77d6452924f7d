"""execute and execute_batch: rows affected, transactions, per-statement outcomes."""

from __future__ import annotations

import grpc
import pytest

from db_pool_rs import DatabasePool, QueryError, StatementResult, SyncDatabasePool


def test_execute_counts_rows(db: SyncDatabasePool, pg_pool: str) -> None:
    assert db.execute(pg_pool, "CREATE TABLE e (id int PRIMARY KEY, v text)") == 0
    assert db.execute(pg_pool, "INSERT INTO e SELECT g, 'v' FROM generate_series(1, 25) g") == 25
    assert db.execute(pg_pool, "UPDATE e SET v = $1 WHERE id <= $2", ["w", 10]) == 10
    assert db.execute(pg_pool, "DELETE FROM e WHERE v = $1", ["v"]) == 15
    assert db.query(pg_pool, "SELECT count(*) AS n FROM e")["n"].to_list() == [10]


def test_batch_in_a_transaction(db: SyncDatabasePool, pg_pool: str) -> None:
    counts = db.execute_batch(
        pg_pool,
        [
            "CREATE TABLE b (id int PRIMARY KEY, v text)",
            ("INSERT INTO b VALUES ($1, $2), ($3, $4)", [1, "a", 2, "b"]),
            ("UPDATE b SET v = $1", ["z"]),
            ("DELETE FROM b WHERE id = $1", (2,)),
        ],
    )
    assert counts == [0, 2, 2, 1]
    assert db.query(pg_pool, "SELECT id, v FROM b").rows() == [(1, "z")]


def test_failed_transaction_rolls_everything_back(db: SyncDatabasePool, pg_pool: str) -> None:
    db.execute(pg_pool, "CREATE TABLE r (id int PRIMARY KEY)")
    with pytest.raises(QueryError) as info:
        db.execute_batch(
            pg_pool,
            [
                ("INSERT INTO r VALUES ($1)", [1]),
                ("INSERT INTO r VALUES ($1)", [2]),
                ("INSERT INTO r VALUES ($1)", [1]),
            ],
        )
    assert info.value.sqlstate == "23505"
    assert info.value.statement_index == 2
    assert db.query(pg_pool, "SELECT count(*) AS n FROM r")["n"].to_list() == [0]


def test_batch_without_transaction_reports_each_statement(db: SyncDatabasePool, pg_pool: str) -> None:
    db.execute(pg_pool, "CREATE TABLE n (id int PRIMARY KEY)")
    results = db.execute_batch(
        pg_pool,
        ["INSERT INTO n VALUES (1)", "INSERT INTO n VALUES (1)", ("INSERT INTO n VALUES ($1), ($2)", [2, 3])],
        transaction=False,
    )
    assert [type(r) for r in results] == [StatementResult] * 3
    assert results[0] == StatementResult(index=0, ok=True, rows_affected=1)
    assert (results[1].index, results[1].ok, results[1].code) == (1, False, "23505")
    assert "duplicate key" in (results[1].error or "")
    assert results[2] == StatementResult(index=2, ok=True, rows_affected=2)
    assert db.query(pg_pool, "SELECT id FROM n ORDER BY id")["id"].to_list() == [1, 2, 3]


def test_sqlite_batch(db: SyncDatabasePool, sqlite_pool: str) -> None:
    assert db.execute_batch(
        sqlite_pool,
        [
            "CREATE TABLE s (a INTEGER)",
            ("INSERT INTO s VALUES (?), (?)", [1, 2]),
            "DELETE FROM s WHERE a = 1",
        ],
    ) == [0, 2, 1]
    assert db.query(sqlite_pool, "SELECT a FROM s")["a"].to_list() == [2]


async def test_execute_async(adb: DatabasePool, pg_pool: str) -> None:
    assert await adb.execute_batch(
        pg_pool, ["CREATE TABLE a (x int)", ("INSERT INTO a VALUES ($1)", [5])]
    ) == [0, 1]
    assert await adb.execute(pg_pool, "UPDATE a SET x = x + $1", [1]) == 1
    results = await adb.execute_batch(pg_pool, ["SELECT 1/0"], transaction=False)
    assert results[0].ok is False and results[0].code == "22012"
    assert (await adb.query(pg_pool, "SELECT x FROM a"))["x"].to_list() == [6]


def test_bad_statement_shapes(db: SyncDatabasePool, sqlite_pool: str) -> None:
    from db_pool_rs import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"statements\[1\]"):
        db.execute_batch(sqlite_pool, ["SELECT 1", 42])
    with pytest.raises(InvalidArgumentError):
        db.execute_batch(sqlite_pool, "SELECT 1")
    with pytest.raises(InvalidArgumentError) as info:
        db.execute(sqlite_pool, None)  # type: ignore[arg-type]
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
