"""bulk_insert over Flight DoPut against the real daemon, PostgreSQL and SQLite.

Every type the query path returns goes in as a Polars frame (NULLs included) and comes
back equal; the modes, all-or-nothing failures and a 200,000-row round trip are checked
with both clients.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from conftest import unique
from polars.testing import assert_frame_equal

from db_pool_rs import (
    DatabasePool,
    InvalidArgumentError,
    ParamTypeError,
    PoolNotFoundError,
    QueryError,
    SyncDatabasePool,
)

UTC = dt.timezone.utc
D = decimal.Decimal


def every_type_frame() -> pl.DataFrame:
    """One column per type the PostgreSQL query path returns, each with a NULL row."""
    return pl.DataFrame(
        {
            "id": pl.Series([1, 2, 3], dtype=pl.Int32),
            "i16": pl.Series([-32768, None, 7], dtype=pl.Int16),
            "i32": pl.Series([2**31 - 1, None, 0], dtype=pl.Int32),
            "i64": pl.Series([-(2**63), None, 1], dtype=pl.Int64),
            "f32": pl.Series([1.5, None, -0.25], dtype=pl.Float32),
            "f64": pl.Series([-2.25e100, None, 3.0], dtype=pl.Float64),
            "flag": pl.Series([True, None, False], dtype=pl.Boolean),
            "txt": pl.Series(["héllo wörld", None, ""], dtype=pl.String),
            "bin": pl.Series([b"\x00\xff\x10", None, b""], dtype=pl.Binary),
            "day": pl.Series([dt.date(2024, 2, 29), None, dt.date(1900, 1, 1)], dtype=pl.Date),
            "tod": pl.Series([dt.time(12, 34, 56, 789012), None, dt.time(0)], dtype=pl.Time),
            "ts": pl.Series(
                [dt.datetime(2024, 2, 29, 12, 34, 56, 789012), None, dt.datetime(1969, 12, 31, 23, 59, 59)],
                dtype=pl.Datetime("us"),
            ),
            "tstz": pl.Series(
                [
                    dt.datetime(2024, 2, 29, 10, 34, 56, 789012, tzinfo=UTC),
                    None,
                    dt.datetime(2000, 1, 1, tzinfo=UTC),
                ],
                dtype=pl.Datetime("us", "UTC"),
            ),
            "dur": pl.Series(
                [dt.timedelta(days=1, hours=2, microseconds=5), None, dt.timedelta(0)],
                dtype=pl.Duration("us"),
            ),
            "dec": pl.Series([D("-123456789.125"), None, D("0.001")], dtype=pl.Decimal(12, 3)),
            "ints": pl.Series([[1, None, 3], None, []], dtype=pl.List(pl.Int64)),
        }
    )


def _count(db: SyncDatabasePool, pool: str, table: str) -> int:
    return int(db.query(pool, f'SELECT count(*) AS n FROM "{table}"')["n"][0])


# -- PostgreSQL: types -----------------------------------------------------------------


def test_every_type_round_trips_postgres(db: SyncDatabasePool, pg_pool: str) -> None:
    df = every_type_frame()
    assert db.bulk_insert(pg_pool, "every_type", df, mode="create") == 3
    back = db.query(pg_pool, "SELECT * FROM every_type ORDER BY id")
    assert_frame_equal(back, df)
    # The columns were created with the matching PostgreSQL types.
    types = db.query(
        pg_pool,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'every_type' ORDER BY ordinal_position",
    )
    assert dict(types.iter_rows()) == {
        "id": "integer",
        "i16": "smallint",
        "i32": "integer",
        "i64": "bigint",
        "f32": "real",
        "f64": "double precision",
        "flag": "boolean",
        "txt": "text",
        "bin": "bytea",
        "day": "date",
        "tod": "time without time zone",
        "ts": "timestamp without time zone",
        "tstz": "timestamp with time zone",
        "dur": "interval",
        "dec": "numeric",
        "ints": "ARRAY",
    }


def test_newest_arrow_export_string_view_round_trips(db: SyncDatabasePool, pg_pool: str) -> None:
    """Polars' newest Arrow export (string_view, binary_view) is accepted as well."""
    df = every_type_frame()
    arrow = df.to_arrow(compat_level=pl.CompatLevel.newest())
    assert pa.types.is_string_view(arrow.schema.field("txt").type)
    assert db.bulk_insert(pg_pool, "views", arrow, mode="create") == 3
    assert_frame_equal(db.query(pg_pool, "SELECT * FROM views ORDER BY id"), df)


def test_other_units_and_zones_are_normalised(db: SyncDatabasePool, pg_pool: str) -> None:
    """ns timestamps/durations are truncated to µs; a non-UTC zone keeps the instant."""
    paris = dt.datetime(2024, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)
    df = pl.DataFrame(
        {
            "id": [1],
            "ts_ns": pl.Series([dt.datetime(2024, 1, 2, 3, 4, 5, 678901)], dtype=pl.Datetime("ns")),
            "tz_paris": pl.Series([paris], dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone(
                "Europe/Paris"
            ),
            "dur_ms": pl.Series([dt.timedelta(milliseconds=1500)], dtype=pl.Duration("ms")),
            "u8": pl.Series([255], dtype=pl.UInt8),
        }
    )
    assert db.bulk_insert(pg_pool, "units", df, mode="create") == 1
    back = db.query(pg_pool, "SELECT * FROM units")
    assert back.schema["ts_ns"] == pl.Datetime("us")
    assert back["ts_ns"][0] == dt.datetime(2024, 1, 2, 3, 4, 5, 678901)
    assert back.schema["tz_paris"] == pl.Datetime("us", "UTC")
    assert back["tz_paris"][0] == paris
    assert back["dur_ms"][0] == dt.timedelta(milliseconds=1500)
    assert back.schema["u8"] == pl.Int16 and back["u8"][0] == 255


def test_pyarrow_table_and_record_batch(db: SyncDatabasePool, pg_pool: str) -> None:
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "name": pa.array(["a", None], pa.utf8())})
    assert db.bulk_insert(pg_pool, "arrow_in", table, mode="create") == 2
    batch = pa.record_batch({"id": pa.array([3], pa.int64()), "name": pa.array(["c"], pa.utf8())})
    assert db.bulk_insert(pg_pool, "arrow_in", batch) == 1
    back = db.query_arrow(pg_pool, "SELECT * FROM arrow_in ORDER BY id")
    assert back.to_pydict() == {"id": [1, 2, 3], "name": ["a", None, "c"]}


# -- PostgreSQL: modes and failures ------------------------------------------------------


def test_modes_create_append_replace(db: SyncDatabasePool, pg_pool: str) -> None:
    first = pl.DataFrame({"id": [1, 2], "name": ["a", "b"]})
    assert db.bulk_insert(pg_pool, "modes", first, mode="create") == 2
    # create again: the table exists -> the database refuses, nothing changes.
    with pytest.raises(QueryError) as e:
        db.bulk_insert(pg_pool, "modes", first, mode="create")
    assert e.value.sqlstate == "42P07"
    assert _count(db, pg_pool, "modes") == 2
    # append adds rows (default mode).
    assert db.bulk_insert(pg_pool, "modes", pl.DataFrame({"id": [3], "name": ["c"]})) == 1
    assert db.query(pg_pool, "SELECT id FROM modes ORDER BY id")["id"].to_list() == [1, 2, 3]
    # replace drops the table and creates it from the new schema.
    other = pl.DataFrame({"x": [1.5], "y": [True]})
    assert db.bulk_insert(pg_pool, "modes", other, mode="replace") == 1
    assert_frame_equal(db.query(pg_pool, "SELECT * FROM modes"), other)
    # replace also creates a missing table.
    assert db.bulk_insert(pg_pool, "fresh", other, mode="replace") == 1
    assert _count(db, pg_pool, "fresh") == 1


def test_append_to_a_missing_table_fails(db: SyncDatabasePool, pg_pool: str) -> None:
    with pytest.raises(QueryError) as e:
        db.bulk_insert(pg_pool, "nowhere", pl.DataFrame({"a": [1]}))
    assert e.value.sqlstate == "42P01"


def test_schema_mismatch_writes_nothing(db: SyncDatabasePool, pg_pool: str) -> None:
    db.execute(pg_pool, "CREATE TABLE target (id int8 PRIMARY KEY, name text NOT NULL)")
    db.execute(pg_pool, "INSERT INTO target VALUES (1, 'one')")
    # The frame names a column the table does not have.
    extra = pl.DataFrame({"id": [2, 3], "name": ["b", "c"], "missing_col": [1, 2]})
    with pytest.raises(InvalidArgumentError) as e:
        db.bulk_insert(pg_pool, "target", extra)
    assert "missing_col" in str(e.value)
    assert not isinstance(e.value, QueryError)
    # A type the column cannot take.
    wrong = pl.DataFrame({"id": [2], "name": [b"bytes"]})
    with pytest.raises(InvalidArgumentError, match="name"):
        db.bulk_insert(pg_pool, "target", wrong)
    # The frame leaves out a NOT NULL column: the database refuses the rows.
    with pytest.raises(QueryError) as e:
        db.bulk_insert(pg_pool, "target", pl.DataFrame({"id": [2, 3]}))
    assert e.value.sqlstate == "23502"
    # A duplicate key in the last of several batches rolls back the whole insert.
    many = pl.DataFrame({"id": [*range(2, 150_002), 1], "name": ["x"] * 150_001})
    with pytest.raises(QueryError) as e:
        db.bulk_insert(pg_pool, "target", many)
    assert e.value.sqlstate == "23505"
    assert db.query(pg_pool, "SELECT * FROM target").to_dicts() == [{"id": 1, "name": "one"}]


def test_bad_arguments_are_refused_before_sending(db: SyncDatabasePool, pg_pool: str) -> None:
    df = pl.DataFrame({"a": [1]})
    with pytest.raises(InvalidArgumentError, match="mode"):
        db.bulk_insert(pg_pool, "t", df, mode="upsert")
    with pytest.raises(InvalidArgumentError, match="table"):
        db.bulk_insert(pg_pool, "", df)
    with pytest.raises(ParamTypeError, match="list"):
        db.bulk_insert(pg_pool, "t", [{"a": 1}])  # type: ignore[arg-type]
    with pytest.raises(PoolNotFoundError, match="no_such_pool"):
        db.bulk_insert("no_such_pool", "t", df)


def test_empty_frame_creates_the_table(db: SyncDatabasePool, pg_pool: str) -> None:
    empty = pl.DataFrame(schema={"id": pl.Int64, "name": pl.String})
    assert db.bulk_insert(pg_pool, "empty", empty, mode="create") == 0
    back = db.query(pg_pool, "SELECT * FROM empty")
    assert back.shape == (0, 2) and dict(back.schema) == {"id": pl.Int64, "name": pl.String}


def test_schema_qualified_and_quoted_names(db: SyncDatabasePool, pg_pool: str) -> None:
    db.execute(pg_pool, "CREATE SCHEMA sales")
    df = pl.DataFrame({"id": [1, 2]})
    assert db.bulk_insert(pg_pool, "sales.Orders", df, mode="create") == 2
    assert _count(db, pg_pool, 'sales"."Orders') == 2


# -- PostgreSQL: volume, async ------------------------------------------------------------

ROWS = 200_000


def _big_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": pl.arange(0, ROWS, eager=True, dtype=pl.Int64),
            "val": pl.arange(0, ROWS, eager=True, dtype=pl.Int64) * 0.5,
            "label": pl.Series([f"row-{i}" for i in range(ROWS)]),
            "at": pl.datetime_range(
                dt.datetime(2024, 1, 1),
                dt.datetime(2024, 1, 1) + dt.timedelta(seconds=ROWS - 1),
                "1s",
                eager=True,
            ),
        }
    )


def test_200k_rows_round_trip(db: SyncDatabasePool, pg_pool: str) -> None:
    df = _big_frame()
    assert db.bulk_insert(pg_pool, "big", df, mode="create") == ROWS
    back = db.query(pg_pool, "SELECT * FROM big ORDER BY id")
    assert_frame_equal(back, df)


async def test_async_bulk_insert(adb: DatabasePool, pg_pool: str) -> None:
    df = _big_frame()
    assert await adb.bulk_insert(pg_pool, "big_async", df, "create") == ROWS
    assert await adb.bulk_insert(pg_pool, "big_async", df.head(10).lazy()) == 10
    back = await adb.query(pg_pool, "SELECT count(*) AS n, sum(val) AS s FROM big_async")
    assert back["n"][0] == ROWS + 10
    with pytest.raises(InvalidArgumentError):
        await adb.bulk_insert(pg_pool, "big_async", pl.DataFrame({"nope": [1]}))
    assert (await adb.query(pg_pool, "SELECT count(*) AS n FROM big_async"))["n"][0] == ROWS + 10


# -- SQLite -------------------------------------------------------------------------------


def test_every_type_round_trips_sqlite(db: SyncDatabasePool, sqlite_pool: str) -> None:
    """SQLite keeps values, not column types: integers come back Int64, floats Float64,
    dates/times/timestamps/decimals as their text, durations as microseconds."""
    df = every_type_frame().drop("ints")  # SQLite has no arrays
    assert db.bulk_insert(sqlite_pool, "every_type", df, mode="create") == 3
    back = db.query(sqlite_pool, "SELECT * FROM every_type ORDER BY id")
    expected = df.with_columns(
        pl.col("id", "i16", "i32").cast(pl.Int64),
        pl.col("f32").cast(pl.Float64),
        pl.col("day").dt.strftime("%Y-%m-%d"),
        pl.col("tod").dt.strftime("%H:%M:%S%.6f"),
        pl.col("ts", "tstz").dt.strftime("%Y-%m-%d %H:%M:%S%.6f"),
        pl.col("dur").dt.total_microseconds(),
        pl.col("dec").cast(pl.String),
    )
    assert_frame_equal(back, expected)


def test_sqlite_modes_and_mismatch(db: SyncDatabasePool, sqlite_pool: str) -> None:
    df = pl.DataFrame({"id": [1, 2], "name": ["a", "b"]})
    assert db.bulk_insert(sqlite_pool, "t", df, mode="create") == 2
    with pytest.raises(QueryError):
        db.bulk_insert(sqlite_pool, "t", df, mode="create")
    assert db.bulk_insert(sqlite_pool, "t", df) == 2
    assert _count(db, sqlite_pool, "t") == 4
    with pytest.raises(InvalidArgumentError, match="missing_col"):
        db.bulk_insert(sqlite_pool, "t", df.with_columns(missing_col=pl.lit(1)))
    assert _count(db, sqlite_pool, "t") == 4
    with pytest.raises(InvalidArgumentError, match="ints"):
        db.bulk_insert(sqlite_pool, "lists", pl.DataFrame({"ints": [[1, 2]]}), mode="create")
    assert db.bulk_insert(sqlite_pool, "t", df.head(1), mode="replace") == 1
    assert db.query(sqlite_pool, "SELECT * FROM t").to_dicts() == [{"id": 1, "name": "a"}]


def test_sqlite_200k_rows(db: SyncDatabasePool, sqlite_pool: str) -> None:
    df = _big_frame().drop("at")
    assert db.bulk_insert(sqlite_pool, "big", df, mode="create") == ROWS
    assert_frame_equal(db.query(sqlite_pool, "SELECT * FROM big ORDER BY id"), df)


def test_sqlite_replace_is_seen_by_every_pooled_connection(db: SyncDatabasePool, tmp_path: Path) -> None:
    """After `replace` changes a table's columns, every connection of the pool reads the
    new columns, not only the one that ran the insert.

    Two streams held open at once run on both connections of a two-connection pool.
    Whether a connection reports the old columns varies from pool to pool, so the check
    runs on several fresh pools, each replacing its table a few times.
    """
    failures = []
    for attempt in range(8):
        pool = unique("lite2")
        db.create_pool(pool, f"sqlite://{tmp_path.name}/two{attempt}.db", max_connections=2)
        try:

            def both_connections(pool: str = pool) -> list[tuple[list[str], list[dict]]]:
                with db.query_batches(pool, "SELECT * FROM modes", batch_size=1) as one:
                    with db.query_batches(pool, "SELECT * FROM modes", batch_size=1) as two:
                        return [(s.schema.names, next(iter(s)).to_pylist()) for s in (one, two)]

            db.bulk_insert(pool, "modes", pl.DataFrame({"c0": list(range(10))}), mode="create")
            for round_ in range(1, 4):
                both_connections()  # both connections have read the current table
                column = f"c{round_}"
                assert db.bulk_insert(pool, "modes", pl.DataFrame({column: [0, 1, 2]}), mode="replace") == 3
                got = both_connections()
                if got != [([column], [{column: 0}])] * 2:
                    failures.append(f"pool {attempt} round {round_}: expected column {column}, got {got}")
        finally:
            db.remove_pool(pool)
    assert not failures, "\n".join(failures)
