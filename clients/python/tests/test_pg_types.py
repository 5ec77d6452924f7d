"""PostgreSQL result types: Arrow types, Polars dtypes and exact values, NULLs included."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import polars as pl
import pyarrow as pa

from db_pool_rs import DatabasePool, SyncDatabasePool

UTC = dt.timezone.utc
U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")

# column, PostgreSQL type, literal, Arrow type, Polars dtype, Python value
COLUMNS = [
    ("c_bool", "bool", "true", pa.bool_(), pl.Boolean, True),
    ("c_int2", "int2", "-32768", pa.int16(), pl.Int16, -32768),
    ("c_int4", "int4", "2147483647", pa.int32(), pl.Int32, 2147483647),
    ("c_int8", "int8", "-9223372036854775808", pa.int64(), pl.Int64, -(2**63)),
    ("c_float4", "float4", "1.5", pa.float32(), pl.Float32, 1.5),
    ("c_float8", "float8", "-2.25e100", pa.float64(), pl.Float64, -2.25e100),
    (
        "c_numeric",
        "numeric(12,3)",
        "-123456789.125",
        pa.decimal128(12, 3),
        pl.Decimal(12, 3),
        decimal.Decimal("-123456789.125"),
    ),
    ("c_text", "text", "'héllo wörld'", pa.utf8(), pl.String, "héllo wörld"),
    ("c_varchar", "varchar(20)", "'abc'", pa.utf8(), pl.String, "abc"),
    ("c_bytea", "bytea", "'\\x00ff10'::bytea", pa.binary(), pl.Binary, b"\x00\xff\x10"),
    ("c_date", "date", "'2024-02-29'", pa.date32(), pl.Date, dt.date(2024, 2, 29)),
    ("c_time", "time", "'12:34:56.789012'", pa.time64("us"), pl.Time, dt.time(12, 34, 56, 789012)),
    (
        "c_ts",
        "timestamp",
        "'2024-02-29 12:34:56.789012'",
        pa.timestamp("us"),
        pl.Datetime("us"),
        dt.datetime(2024, 2, 29, 12, 34, 56, 789012),
    ),
    (
        "c_tstz",
        "timestamptz",
        "'2024-02-29 12:34:56.789012+02'",
        pa.timestamp("us", tz="UTC"),
        pl.Datetime("us", "UTC"),
        dt.datetime(2024, 2, 29, 10, 34, 56, 789012, tzinfo=UTC),
    ),
    (
        "c_interval",
        "interval",
        "'1 day 02:03:04.5'",
        pa.duration("us"),
        pl.Duration("us"),
        dt.timedelta(days=1, hours=2, minutes=3, seconds=4.5),
    ),
    ("c_uuid", "uuid", f"'{U}'", pa.utf8(), pl.String, str(U)),
    ("c_json", "json", """'{"a": [1, 2]}'""", pa.utf8(), pl.String, '{"a": [1, 2]}'),
    ("c_jsonb", "jsonb", """'{"b":true}'""", pa.utf8(), pl.String, '{"b": true}'),
    ("c_int_arr", "int4[]", "'{1,NULL,3}'", pa.list_(pa.int32()), pl.List(pl.Int32), [1, None, 3]),
    ("c_text_arr", "text[]", """'{"a","b c"}'""", pa.list_(pa.utf8()), pl.List(pl.String), ["a", "b c"]),
]


def _create(db: SyncDatabasePool, pool: str) -> None:
    cols = ", ".join(f"{name} {ty}" for name, ty, *_ in COLUMNS)
    db.execute(pool, f"CREATE TABLE types (id int PRIMARY KEY, {cols})")
    names = ", ".join(c[0] for c in COLUMNS)
    values = ", ".join(c[2] for c in COLUMNS)
    assert db.execute(pool, f"INSERT INTO types (id, {names}) VALUES (1, {values})") == 1
    assert db.execute(pool, "INSERT INTO types (id) VALUES (2)") == 1


def _field(schema: pa.Schema, name: str) -> pa.DataType:
    return schema.field(name).type


def _check_arrow(table: pa.Table) -> None:
    assert table.num_rows == 2
    for name, _, _, arrow_type, _, _ in COLUMNS:
        got = _field(table.schema, name)
        # Lists may name their item field differently; compare the value type.
        if pa.types.is_list(arrow_type):
            assert pa.types.is_list(got) and got.value_type == arrow_type.value_type, name
        else:
            assert got == arrow_type, f"{name}: {got} != {arrow_type}"


def _check_frame(df: pl.DataFrame) -> None:
    expected_schema = {"id": pl.Int32, **{c[0]: c[4] for c in COLUMNS}}
    assert dict(df.schema) == expected_schema
    full, empty = df.rows(named=True)
    assert full == {"id": 1, **{c[0]: c[5] for c in COLUMNS}}
    assert empty == {"id": 2, **{c[0]: None for c in COLUMNS}}


def test_every_type_sync(db: SyncDatabasePool, pg_pool: str) -> None:
    _create(db, pg_pool)
    sql = "SELECT * FROM types ORDER BY id"
    _check_arrow(db.query_arrow(pg_pool, sql))
    _check_frame(db.query(pg_pool, sql))


async def test_every_type_async(adb: DatabasePool, db: SyncDatabasePool, pg_pool: str) -> None:
    _create(db, pg_pool)
    sql = "SELECT * FROM types ORDER BY id"
    _check_arrow(await adb.query_arrow(pg_pool, sql))
    _check_frame(await adb.query(pg_pool, sql))
    lazy = await adb.query(pg_pool, sql, lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    _check_frame(lazy.collect())


def test_expressions_and_unconstrained_numeric(db: SyncDatabasePool, pg_pool: str) -> None:
    df = db.query(
        pg_pool,
        "SELECT 1::numeric / 3 AS n, NULL::text AS t, now() - now() AS zero, "
        "'1 mon 2 days 03:00'::interval AS months",
    )
    # numeric without a declared precision becomes Decimal128(38, 10).
    assert df.schema["n"] == pl.Decimal(38, 10) and df["n"][0] == decimal.Decimal("0.3333333333")
    assert df.schema["t"] == pl.String and df["t"][0] is None
    assert df["zero"][0] == dt.timedelta(0)
    # A month counts as 30 days (Arrow durations have no calendar months).
    assert df["months"][0] == dt.timedelta(days=32, hours=3)
    # numeric(p, s) wider than Decimal128 arrives as exact text.
    wide = db.query(pg_pool, "SELECT 12345678901234567890123456789012345678901.25::numeric(50,2) AS w")
    assert wide.schema["w"] == pl.String
    assert wide["w"][0] == "12345678901234567890123456789012345678901.25"


def test_empty_result_keeps_the_schema(db: SyncDatabasePool, pg_pool: str) -> None:
    df = db.query(pg_pool, "SELECT 1::int8 AS a, 'x'::text AS b WHERE false")
    assert df.shape == (0, 2)
    assert dict(df.schema) == {"a": pl.Int64, "b": pl.String}
