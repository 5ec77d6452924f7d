"""SQLite pools: the embedded `default` pool, result types by declared type, NULLs."""

from __future__ import annotations

import polars as pl

from db_pool_rs import DatabasePool, SyncDatabasePool


def test_default_pool_is_an_embedded_sqlite(db: SyncDatabasePool) -> None:
    pools = {p.pool_id: p for p in db.list_pools()}
    assert pools["default"].backend == "sqlite"
    assert db.query("default", "SELECT 41 + 1 AS answer")["answer"].to_list() == [42]


def _fill(db: SyncDatabasePool, pool: str) -> None:
    db.execute(
        pool,
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, f BOOLEAN, d DATE, n NUMERIC, v VARCHAR(9))",
    )
    db.execute(
        pool,
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [-(2**63), 0.25, "ünïcode", b"\x00\x01", True, "2024-01-02", 1.5, "vv"],
    )
    db.execute(pool, "INSERT INTO t VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")


EXPECTED_SCHEMA = {
    "i": pl.Int64,
    "r": pl.Float64,
    "s": pl.String,
    "b": pl.Binary,
    "f": pl.Boolean,
    "d": pl.String,
    "n": pl.Float64,
    "v": pl.String,
}
EXPECTED_ROW = {
    "i": -(2**63),
    "r": 0.25,
    "s": "ünïcode",
    "b": b"\x00\x01",
    "f": True,
    "d": "2024-01-02",
    "n": 1.5,
    "v": "vv",
}


def test_declared_types_sync(db: SyncDatabasePool, sqlite_pool: str) -> None:
    _fill(db, sqlite_pool)
    df = db.query(sqlite_pool, "SELECT * FROM t ORDER BY i IS NULL")
    assert dict(df.schema) == EXPECTED_SCHEMA
    assert df.rows(named=True) == [EXPECTED_ROW, {k: None for k in EXPECTED_ROW}]


async def test_declared_types_async(adb: DatabasePool, db: SyncDatabasePool, sqlite_pool: str) -> None:
    _fill(db, sqlite_pool)
    df = await adb.query(sqlite_pool, "SELECT * FROM t ORDER BY i IS NULL")
    assert dict(df.schema) == EXPECTED_SCHEMA
    assert df.rows(named=True)[0] == EXPECTED_ROW


def test_expression_columns_take_the_type_of_their_values(db: SyncDatabasePool, sqlite_pool: str) -> None:
    df = db.query(sqlite_pool, "SELECT 1 AS i, 2.5 AS r, 'x' AS s, x'ff' AS b, NULL AS z")
    assert dict(df.schema)["i"] == pl.Int64
    assert (df["r"][0], df["s"][0], df["b"][0], df["z"][0]) == (2.5, "x", b"\xff", None)
