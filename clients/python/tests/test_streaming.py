"""Large results stream as several record batches, complete and in order."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from db_pool_rs import BatchStream, DatabasePool, QueryError, SyncDatabasePool

ROWS = 200_000
SQL = "SELECT g AS n, g * 2 AS twice, 'row ' || g AS label FROM generate_series(1, $1::int8) AS g ORDER BY g"


def _check(batches: list) -> None:
    assert len(batches) > 5, f"expected several batches, got {len(batches)}"
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    table = pa.Table.from_batches(batches)
    assert table.num_rows == ROWS
    n = table.column("n").to_pylist()
    assert n == list(range(1, ROWS + 1))
    assert table.column("twice").to_pylist()[-1] == 2 * ROWS
    assert table.column("label").to_pylist()[12345] == "row 12346"


def test_query_batches_sync(db: SyncDatabasePool, pg_pool: str) -> None:
    stream = db.query_batches(pg_pool, SQL, [ROWS])
    assert isinstance(stream, BatchStream)
    assert stream.schema.names == ["n", "twice", "label"]
    with stream:
        batches = list(stream)
    _check(batches)
    assert max(b.num_rows for b in batches) <= 8192


def test_batch_size_override(db: SyncDatabasePool, pg_pool: str) -> None:
    batches = list(db.query_batches(pg_pool, "SELECT g FROM generate_series(1, 1000) g", batch_size=100))
    assert [b.num_rows for b in batches] == [100] * 10


async def test_query_batches_async(adb: DatabasePool, pg_pool: str) -> None:
    batches = [b async for b in adb.query_batches(pg_pool, SQL, [ROWS])]
    _check(batches)


async def test_leaving_early_cancels(adb: DatabasePool, db: SyncDatabasePool, pg_pool: str) -> None:
    seen = 0
    async for batch in adb.query_batches(pg_pool, SQL, [ROWS]):
        seen += batch.num_rows
        break
    assert 0 < seen < ROWS
    with db.query_batches(pg_pool, SQL, [ROWS]) as stream:
        first = next(stream)
    assert first.column(0)[0].as_py() == 1
    # The pool is still healthy and serves the next query.
    assert (await adb.query(pg_pool, "SELECT 5 AS five"))["five"].to_list() == [5]


def test_full_query_of_large_result(db: SyncDatabasePool, pg_pool: str) -> None:
    df = db.query(pg_pool, SQL, [ROWS])
    assert df.height == ROWS and df["n"].sum() == ROWS * (ROWS + 1) // 2
    lazy = db.query(pg_pool, SQL, [ROWS], lazy=True)
    assert lazy.filter(pl.col("n") % 2 == 0).select(pl.len()).collect().item() == ROWS // 2


def test_error_in_the_middle_of_the_stream(db: SyncDatabasePool, pg_pool: str) -> None:
    sql = "SELECT 1 / (50000 - g) AS x FROM generate_series(1, 100000) g"
    with pytest.raises(QueryError) as info:
        for _ in db.query_batches(pg_pool, sql):
            pass
    assert info.value.sqlstate == "22012"
