"""Pool management: create, list, status, metrics, remove; sync and async."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PG_URL, unique

from db_pool_rs import DatabasePool, PoolInfo, PoolNotFoundError, SyncDatabasePool


def test_pool_lifecycle_sync(db: SyncDatabasePool, tmp_path: Path) -> None:
    pool = unique("life")
    info = db.create_pool(pool, f"sqlite://{tmp_path.name}/l.db", max_connections=3, batch_size=500)
    assert isinstance(info, PoolInfo)
    assert (info.pool_id, info.backend) == (pool, "sqlite")
    assert info.options.max_connections == 3 and info.options.batch_size == 500
    assert pool in [p.pool_id for p in db.list_pools()]
    db.query(pool, "SELECT 1")
    db.execute(pool, "CREATE TABLE x (a INTEGER)")
    status = db.pool_status(pool)
    assert status.pool_id == pool and status.max_connections == 3 and status.healthy
    assert status.queries_total == 1 and status.executes_total == 1
    metrics = db.metrics(pool)
    assert [p.pool_id for p in metrics.pools] == [pool]
    assert metrics.pools[0].queries_total == 1
    assert {p.pool_id for p in db.metrics().pools} >= {pool, "default"}
    db.remove_pool(pool)
    assert pool not in [p.pool_id for p in db.list_pools()]
    with pytest.raises(PoolNotFoundError):
        db.pool_status(pool)


def test_password_is_redacted(db: SyncDatabasePool) -> None:
    pool = unique("redact")
    url = PG_URL.replace("postgres://postgres@", "postgres://postgres:s3cr3t@")
    info = db.create_pool(pool, url, lazy=True)
    try:
        assert "s3cr3t" not in info.redacted_url and "***" in info.redacted_url
        listed = next(p for p in db.list_pools() if p.pool_id == pool)
        assert "s3cr3t" not in listed.redacted_url
    finally:
        db.remove_pool(pool)


def test_pool_from_fields(db: SyncDatabasePool) -> None:
    pool = unique("fields")
    info = db.create_pool(
        pool, db_type="postgresql", host="127.0.0.1", port=5432, database="postgres", username="postgres"
    )
    try:
        assert info.backend == "postgresql"
        assert db.query(pool, "SELECT current_database() AS d")["d"].to_list() == ["postgres"]
    finally:
        db.remove_pool(pool)


async def test_pool_lifecycle_async(adb: DatabasePool, tmp_path: Path) -> None:
    pool = unique("alife")
    info = await adb.create_pool(pool, f"sqlite://{tmp_path.name}/a.db")
    assert info.pool_id == pool
    assert pool in [p.pool_id for p in await adb.list_pools()]
    await adb.query(pool, "SELECT 1")
    assert (await adb.pool_status(pool)).queries_total == 1
    assert (await adb.metrics(pool)).pools[0].pool_id == pool
    await adb.remove_pool(pool)
    with pytest.raises(PoolNotFoundError):
        await adb.remove_pool(pool)


def test_token_is_accepted(daemon: str) -> None:
    with SyncDatabasePool(daemon, token="not-checked-yet") as client:
        assert client.query("default", "SELECT 'ok' AS s")["s"].to_list() == ["ok"]
        assert "default" in [p.pool_id for p in client.list_pools()]


def test_pool_options_round_trip(db: SyncDatabasePool) -> None:
    pool = unique("opts")
    info = db.create_pool(
        pool,
        PG_URL,
        max_waiters=7,
        breaker_threshold=3,
        breaker_cooldown_ms=900,
        statement_cache_size=0,
        prepared_statements="unnamed",
        lazy=True,
    )
    try:
        o = info.options
        assert (o.max_waiters, o.breaker_threshold, o.breaker_cooldown_ms) == (7, 3, 900)
        assert o.statement_cache_size == 0  # 0 is kept: caching off, not "the default"
        assert o.prepared_statements == "unnamed"
        assert db.query(pool, "SELECT $1::int8 AS one", [1])["one"].to_list() == [1]
        listed = [p for p in db.list_pools() if p.pool_id == pool]
        assert listed[0].options.prepared_statements == "unnamed"
        default = db.create_pool(unique("opts"), PG_URL, lazy=True)
        assert default.options.statement_cache_size == 256
        assert default.options.prepared_statements == "auto"
        db.remove_pool(default.pool_id)
    finally:
        db.remove_pool(pool)
