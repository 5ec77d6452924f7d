"""Bind parameters of every supported Python type, round-tripped through real databases."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import polars as pl

from db_pool_rs import DatabasePool, SyncDatabasePool

UTC = dt.timezone.utc
U = uuid.UUID("12345678-1234-5678-1234-567812345678")
NAIVE = dt.datetime(2024, 2, 29, 12, 34, 56, 789012)
AWARE = dt.datetime(2024, 2, 29, 14, 34, 56, 789012, tzinfo=dt.timezone(dt.timedelta(hours=2)))

PG_TABLE = """CREATE TABLE p (
    id int, c_null int4, c_bool bool, c_int8 int8, c_int2 int2, c_float8 float8,
    c_text text, c_bytes bytea, c_bytearray bytea, c_memview bytea, c_ts timestamp,
    c_tstz timestamptz, c_date date, c_time time, c_numeric numeric(12,4), c_uuid uuid
)"""
PG_VALUES = [
    1,
    None,
    True,
    -(2**63),
    -7,
    0.1,
    'it\'s "quoted"',
    b"\x00\xffraw",
    bytearray(b"ba"),
    memoryview(b"mv"),
    NAIVE,
    AWARE,
    dt.date(1999, 12, 31),
    dt.time(23, 59, 58, 1),
    decimal.Decimal("-12345678.1234"),
    U,
]
PG_EXPECTED = {
    "id": 1,
    "c_null": None,
    "c_bool": True,
    "c_int8": -(2**63),
    "c_int2": -7,
    "c_float8": 0.1,
    "c_text": 'it\'s "quoted"',
    "c_bytes": b"\x00\xffraw",
    "c_bytearray": b"ba",
    "c_memview": b"mv",
    "c_ts": NAIVE,
    "c_tstz": AWARE.astimezone(UTC),
    "c_date": dt.date(1999, 12, 31),
    "c_time": dt.time(23, 59, 58, 1),
    "c_numeric": decimal.Decimal("-12345678.1234"),
    "c_uuid": str(U),
}
PG_INSERT = "INSERT INTO p VALUES (" + ", ".join(f"${i}" for i in range(1, 17)) + ")"


def test_every_param_type_postgres(db: SyncDatabasePool, pg_pool: str) -> None:
    db.execute(pg_pool, PG_TABLE)
    assert db.execute(pg_pool, PG_INSERT, PG_VALUES) == 1
    row = db.query(pg_pool, "SELECT * FROM p WHERE id = $1 AND c_uuid = $2", [1, U]).row(0, named=True)
    assert row == PG_EXPECTED


async def test_every_param_type_postgres_async(adb: DatabasePool, pg_pool: str) -> None:
    await adb.execute(pg_pool, PG_TABLE)
    assert await adb.execute(pg_pool, PG_INSERT, tuple(PG_VALUES)) == 1
    df = await adb.query(pg_pool, "SELECT * FROM p WHERE c_tstz = $1 AND c_ts = $2", [AWARE, NAIVE])
    assert df.row(0, named=True) == PG_EXPECTED


def test_params_in_select_expressions_postgres(db: SyncDatabasePool, pg_pool: str) -> None:
    df = db.query(
        pg_pool,
        "SELECT $1::int4 + 1 AS i, $2::float8 * 2 AS f, $3::text || '!' AS s, $4::bool AS b, "
        "$5::numeric(10,2) AS n, $6::date + 1 AS d",
        [41, 1.25, "hi", False, decimal.Decimal("1E+3"), dt.date(2024, 12, 31)],
    )
    assert df.row(0) == (42, 2.5, "hi!", False, decimal.Decimal("1000.00"), dt.date(2025, 1, 1))


def test_every_param_type_sqlite(db: SyncDatabasePool, sqlite_pool: str) -> None:
    df = db.query(
        sqlite_pool,
        "SELECT ? AS n, ? AS b, ? AS i, ? AS f, ? AS s, ? AS by, ? AS ba, ? AS mv, ? AS ts, "
        "? AS tz, ? AS d, ? AS dec, ? AS u, typeof(?) AS t",
        [
            None,
            True,
            2**62,
            -0.5,
            "ü",
            b"\x01",
            bytearray(b"\x02"),
            memoryview(b"\x03"),
            NAIVE,
            AWARE,
            dt.date(2024, 1, 2),
            decimal.Decimal("0.10"),
            U,
            1.0,
        ],
    )
    assert df.row(0, named=True) == {
        "n": None,
        "b": 1,
        "i": 2**62,
        "f": -0.5,
        "s": "ü",
        "by": b"\x01",
        "ba": b"\x02",
        "mv": b"\x03",
        "ts": "2024-02-29 12:34:56.789012",
        "tz": "2024-02-29 12:34:56.789012",
        "d": "2024-01-02",
        "dec": "0.10",
        "u": str(U),
        "t": "real",
    }
    assert df.schema["b"] == pl.Int64
