"""The daemon's Arrow Flight SQL endpoint, driven by the stock ADBC Flight SQL driver.

``adbc-driver-flightsql`` (the Go driver, as shipped on PyPI) talks to the same port as
db_pool_rs; the pool is picked by the ``x-dbpool-pool`` call header, set through the
driver's ``adbc.flight.sql.rpc.call_header.<name>`` database option. Every test runs on
PostgreSQL and SQLite, each in a throwaway database of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import polars as pl
import pyarrow as pa
import pytest
from conftest import unique
from google.rpc import error_details_pb2, status_pb2
from polars.testing import assert_frame_equal

from db_pool_rs import SyncDatabasePool

#: The driver option that turns into the ``x-dbpool-pool`` header on every call.
POOL_OPTION = adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + "x-dbpool-pool"


@dataclass
class Backend:
    """A pool to run Flight SQL against, and the dialect details the tests need."""

    kind: str
    pool_id: str

    @property
    def pg(self) -> bool:
        return self.kind == "pg"

    def placeholder(self, n: int) -> str:
        return f"${n}" if self.pg else "?"


@pytest.fixture(params=["pg", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Backend:
    fixture = "pg_pool" if request.param == "pg" else "sqlite_pool"
    return Backend(request.param, request.getfixturevalue(fixture))


@contextlib.contextmanager
def connect(endpoint: str, pool_id: Optional[str], autocommit: bool = False) -> Iterator[Any]:
    """An ADBC DBAPI connection to the daemon, on ``pool_id`` (None: no header)."""
    db_kwargs = {POOL_OPTION: pool_id} if pool_id is not None else {}
    conn = flight_sql.connect(endpoint, db_kwargs=db_kwargs, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


def run(conn: Any, sql: str, parameters: Any = None) -> pa.Table:
    """Executes a query on a fresh cursor and returns the whole result."""
    with conn.cursor() as cur:
        cur.execute(sql, parameters=parameters)
        return cur.fetch_arrow_table()


def update(conn: Any, sql: str, parameters: Any = None) -> None:
    """Runs a statement that returns no rows.

    DBAPI ``execute`` goes through ExecuteQuery, whose FlightInfo has no row count, so
    ``rowcount`` is -1 there (as with any Flight SQL server); ``executemany`` and
    ``execute_update`` report it.
    """
    with conn.cursor() as cur:
        cur.execute(sql, parameters=parameters)


def _count(db: SyncDatabasePool, pool: str, table: str) -> int:
    return int(db.query(pool, f"SELECT count(*) AS n FROM {table}")["n"][0])


# -- queries -------------------------------------------------------------------------------


def test_execute_and_fetch_arrow_table(daemon: str, backend: Backend, db: SyncDatabasePool) -> None:
    db.execute(backend.pool_id, "CREATE TABLE people (id INTEGER, name TEXT, score REAL)")
    ph = ", ".join(backend.placeholder(i) for i in (1, 2, 3))
    for row in ([1, "ada", 1.5], [2, "grace", None], [3, None, -2.25]):
        db.execute(backend.pool_id, f"INSERT INTO people VALUES ({ph})", row)
    with connect(daemon, backend.pool_id) as conn:
        table = run(conn, "SELECT id, name, score FROM people ORDER BY id")
        assert table.num_rows == 3
        int_type = pa.int32() if backend.pg else pa.int64()
        float_type = pa.float32() if backend.pg else pa.float64()
        assert table.schema.types == [int_type, pa.utf8(), float_type]
        assert table.to_pydict() == {
            "id": [1, 2, 3],
            "name": ["ada", "grace", None],
            "score": [1.5, None, -2.25],
        }
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM people WHERE id = 2")
            assert cur.fetchone() == ("grace",)
            assert cur.description[0][0] == "name"


def test_typed_expressions_postgres(daemon: str, pg_pool: str) -> None:
    with connect(daemon, pg_pool) as conn:
        table = run(
            conn,
            "SELECT 1::int2 AS a, 2::int8 AS b, true AS c, 'x'::text AS d, 1.25::numeric(5,2) AS e, "
            "DATE '2024-02-29' AS f, NULL::int4 AS g",
        )
        assert table.schema.types == [
            pa.int16(),
            pa.int64(),
            pa.bool_(),
            pa.utf8(),
            pa.decimal128(5, 2),
            pa.date32(),
            pa.int32(),
        ]
        row = table.to_pylist()[0]
        assert row["a"] == 1 and row["b"] == 2 and row["c"] is True and row["g"] is None
        assert str(row["e"]) == "1.25" and row["f"].isoformat() == "2024-02-29"


def test_polars_read_database(daemon: str, backend: Backend) -> None:
    with connect(daemon, backend.pool_id) as conn:
        df = pl.read_database("SELECT 7 AS seven, 'x' AS s", connection=conn)
    seven_type = pl.Int32 if backend.pg else pl.Int64
    assert_frame_equal(df, pl.DataFrame({"seven": pl.Series([7], dtype=seven_type), "s": ["x"]}))


def test_prepared_statement_parameters(daemon: str, backend: Backend) -> None:
    with connect(daemon, backend.pool_id) as conn:
        if backend.pg:
            table = run(conn, "SELECT $1::int + 1 AS v", parameters=(41,))
            assert table.schema.types == [pa.int32()]
            both = run(conn, "SELECT $1::text || $2::text AS s", parameters=("a", "b"))
        else:
            table = run(conn, "SELECT ? + 1 AS v", parameters=(41,))
            assert table.schema.types == [pa.int64()]
            both = run(conn, "SELECT ? || ? AS s", parameters=("a", "b"))
        assert table.column("v").to_pylist() == [42]
        assert both.column("s").to_pylist() == ["ab"]


def test_executemany_inserts_every_row(daemon: str, backend: Backend, db: SyncDatabasePool) -> None:
    db.execute(backend.pool_id, "CREATE TABLE nums (n INTEGER)")
    with connect(daemon, backend.pool_id, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO nums VALUES ({backend.placeholder(1)})", [(1,), (2,), (3,)])
        assert cur.rowcount == 3
        cur.adbc_statement.set_sql_query("DELETE FROM nums WHERE n > 1")
        assert cur.adbc_statement.execute_update() == 2
    assert db.query(backend.pool_id, "SELECT n FROM nums ORDER BY n")["n"].to_list() == [1]


# -- where a statement runs ------------------------------------------------------------------


def test_flight_info_runs_nothing_and_reading_its_endpoint_runs_it_once(
    daemon: str, backend: Backend, db: SyncDatabasePool
) -> None:
    """``adbc_execute_partitions`` is GetFlightInfo alone: a statement that writes has not
    run until its endpoint is read (DoGet), and then it runs once. The FlightInfo has no
    schema: the stream carries it."""
    db.execute(backend.pool_id, "CREATE TABLE staged (id INTEGER)")
    insert = f"INSERT INTO staged VALUES ({backend.placeholder(1)})"
    with connect(daemon, backend.pool_id, autocommit=True) as conn, conn.cursor() as cur:
        partitions, schema = cur.adbc_execute_partitions(insert, parameters=(1,))
        assert len(partitions) == 1
        assert schema is None
        assert _count(db, backend.pool_id, "staged") == 0
        cur.adbc_read_partition(partitions[0])
        assert cur.fetchall() == []
    assert _count(db, backend.pool_id, "staged") == 1


def test_an_unprepared_statement_runs_once(daemon: str, backend: Backend, db: SyncDatabasePool) -> None:
    """ExecuteQuery of a statement never prepared (CommandStatementQuery): the driver reads
    the FlightInfo's endpoint before returning, so the write is done, once, and its
    RETURNING rows come back."""
    db.execute(backend.pool_id, "CREATE TABLE once (id INTEGER)")
    with connect(daemon, backend.pool_id, autocommit=True) as conn, conn.cursor() as cur:
        stmt = cur.adbc_statement
        stmt.set_sql_query("INSERT INTO once VALUES (7) RETURNING id")
        handle, _ = stmt.execute_query()
        table = pa.RecordBatchReader._import_from_c(handle.address).read_all()
    assert table.column(0).to_pylist() == [7]
    assert _count(db, backend.pool_id, "once") == 1


# -- ingest and metadata ---------------------------------------------------------------------


def test_ingest_then_read_back(daemon: str, backend: Backend, db: SyncDatabasePool) -> None:
    frame = pl.DataFrame(
        {
            "id": pl.Series([1, 2, 3], dtype=pl.Int64),
            "name": ["a", None, "c"],
            "score": [0.5, 1.5, None],
            "ok": [True, False, None],
        }
    )
    with connect(daemon, backend.pool_id, autocommit=True) as conn:
        with conn.cursor() as cur:
            assert cur.adbc_ingest("ingested", frame.to_arrow(), mode="create") == 3
            more = pa.table({"id": pa.array([4], pa.int64()), "name": ["d"], "score": [2.0], "ok": [True]})
            assert cur.adbc_ingest("ingested", more, mode="append") == 1
        back = run(conn, "SELECT * FROM ingested ORDER BY id")
    assert back.num_rows == 4
    assert back.column("id").to_pylist() == [1, 2, 3, 4]
    assert back.column("name").to_pylist() == ["a", None, "c", "d"]
    assert back.column("score").to_pylist() == [0.5, 1.5, None, 2.0]
    assert back.schema.field("id").type == pa.int64()
    # The sidecar's own client sees the same rows.
    assert _count(db, backend.pool_id, "ingested") == 4
    expected = pl.concat([frame, pl.from_arrow(more)])  # type: ignore[list-item]
    assert_frame_equal(db.query(backend.pool_id, "SELECT * FROM ingested ORDER BY id"), expected)


def test_ingest_replace_and_create_append(
    daemon: str, backend: Backend, db: SyncDatabasePool, tmp_path: Path
) -> None:
    pool = backend.pool_id
    if not backend.pg:
        # One connection: a replaced table is seen the same way by every later call
        # (test_bulk_insert.py checks what several pooled SQLite connections see).
        pool = unique("lite1")
        db.create_pool(pool, f"sqlite://{tmp_path.name}/one.db", max_connections=1)
    try:
        first = pa.table({"a": pa.array([1, 2], pa.int64())})
        with connect(daemon, pool, autocommit=True) as conn:
            with conn.cursor() as cur:
                assert cur.adbc_ingest("modes", first, mode="create_append") == 2
                assert cur.adbc_ingest("modes", first, mode="create_append") == 2
                with pytest.raises(adbc_driver_manager.Error, match="already exists"):
                    cur.adbc_ingest("modes", first, mode="create")
                assert cur.adbc_ingest("modes", pa.table({"b": ["x"]}), mode="replace") == 1
            assert run(conn, "SELECT * FROM modes").to_pylist() == [{"b": "x"}]
        assert db.query(pool, "SELECT * FROM modes").to_dicts() == [{"b": "x"}]
    finally:
        if pool != backend.pool_id:
            db.remove_pool(pool)


def _find_table(objects: list[dict], table: str) -> tuple[dict, dict, dict]:
    """(catalog, db_schema, table) of the first table with this name in adbc_get_objects."""
    for catalog in objects:
        for schema in catalog["catalog_db_schemas"] or []:
            for entry in schema["db_schema_tables"] or []:
                if entry["table_name"] == table:
                    return catalog, schema, entry
    raise AssertionError(f"table {table!r} not in adbc_get_objects(): {objects}")


def test_get_objects_and_table_schema(daemon: str, backend: Backend) -> None:
    data = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "label": pa.array(["x"], pa.utf8()),
            "amount": pa.array([1.5], pa.float64()),
        }
    )
    with connect(daemon, backend.pool_id, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.adbc_ingest("described", data, mode="create")
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        _, db_schema, entry = _find_table(objects, "described")
        if backend.pg:
            assert db_schema["db_schema_name"] == "public"
        assert entry["table_type"] == "TABLE"
        columns = [(c["column_name"], c["ordinal_position"]) for c in entry["table_columns"]]
        assert columns == [("id", 1), ("label", 2), ("amount", 3)]
        # Filtered by name, only this table comes back.
        filtered = conn.adbc_get_objects(depth="tables", table_name_filter="describ%").read_all().to_pylist()
        names = [
            t["table_name"]
            for c in filtered
            for s in c["catalog_db_schemas"] or []
            for t in s["db_schema_tables"] or []
        ]
        assert names == ["described"]
        schema = conn.adbc_get_table_schema("described")
        assert schema.names == ["id", "label", "amount"]
        assert schema.types == [pa.int64(), pa.utf8(), pa.float64()]


# -- transactions ------------------------------------------------------------------------------


def test_commit_and_rollback(daemon: str, backend: Backend, db: SyncDatabasePool) -> None:
    db.execute(backend.pool_id, "CREATE TABLE ledger (id INTEGER)")
    insert = f"INSERT INTO ledger VALUES ({backend.placeholder(1)})"
    with connect(daemon, backend.pool_id, autocommit=False) as conn:
        update(conn, insert, (1,))
        assert run(conn, "SELECT count(*) AS n FROM ledger").column(0).to_pylist() == [1]
        assert _count(db, backend.pool_id, "ledger") == 0  # not visible outside yet
        conn.rollback()
        assert run(conn, "SELECT count(*) AS n FROM ledger").column(0).to_pylist() == [0]
        assert _count(db, backend.pool_id, "ledger") == 0

        update(conn, insert, (2,))
        conn.commit()
        assert run(conn, "SELECT count(*) AS n FROM ledger").column(0).to_pylist() == [1]
    assert db.query(backend.pool_id, "SELECT id FROM ledger")["id"].to_list() == [2]


def test_closing_an_uncommitted_session_rolls_back(
    daemon: str, backend: Backend, db: SyncDatabasePool
) -> None:
    db.execute(backend.pool_id, "CREATE TABLE abandoned (id INTEGER)")
    with connect(daemon, backend.pool_id, autocommit=False) as conn:
        update(conn, "INSERT INTO abandoned VALUES (1)")
    assert _count(db, backend.pool_id, "abandoned") == 0


# -- errors -----------------------------------------------------------------------------------


def _sqlstate_from_details(error: adbc_driver_manager.Error) -> Optional[str]:
    """The SQLSTATE of the daemon's google.rpc.ErrorInfo, as the driver passed it on."""
    for key, value in error.details or []:
        if key in (b"grpc-status-details-bin", "grpc-status-details-bin"):
            raw = value if isinstance(value, bytes) else value.encode()
            # The driver hands over the details of the status (not always the wrapper).
            for parse in (_error_info_of_status, _error_info):
                found = parse(raw)
                if found:
                    return found
    return None


def _error_info_of_status(raw: bytes) -> Optional[str]:
    try:
        status = status_pb2.Status.FromString(raw)
    except Exception:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and "sqlstate" in info.metadata:
            return info.metadata["sqlstate"]
    return None


def _error_info(raw: bytes) -> Optional[str]:
    from google.protobuf import any_pb2

    try:
        wrapped = any_pb2.Any.FromString(raw)
        info = error_details_pb2.ErrorInfo()
        return info.metadata.get("sqlstate") if wrapped.Unpack(info) else None
    except Exception:
        return None


def test_bad_sql_is_a_programming_error_with_the_sqlstate(daemon: str, backend: Backend) -> None:
    sqlstate = "42601" if backend.pg else "1"
    with connect(daemon, backend.pool_id) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
            cur.execute("SELEC 1")
    message = str(e.value)
    assert "INVALID_ARGUMENT" in message
    assert f"(SQLSTATE {sqlstate})" in message
    assert "SELEC" in message
    assert _sqlstate_from_details(e.value) == sqlstate


def test_unknown_table_names_the_table(daemon: str, backend: Backend) -> None:
    with connect(daemon, backend.pool_id) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="no_such_table"):
            cur.execute("SELECT * FROM no_such_table")


def test_unknown_pool_in_the_header(daemon: str) -> None:
    with pytest.raises(adbc_driver_manager.Error) as e:
        # autocommit off: the driver begins a transaction while connecting.
        with connect(daemon, "no_such_pool_x1") as conn:
            run(conn, "SELECT 1")
    assert "no_such_pool_x1" in str(e.value)
    assert "NotFound" in str(e.value) or "NOT_FOUND" in str(e.value)
    with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
        with connect(daemon, "no_such_pool_x2", autocommit=True) as conn:
            run(conn, "SELECT 1")
    assert "pool `no_such_pool_x2` not found" in str(e.value)
    assert "NOT_FOUND" in str(e.value)


def test_without_the_header_the_default_pool_answers(daemon: str, db: SyncDatabasePool) -> None:
    assert any(p.pool_id == "default" for p in db.list_pools())
    with connect(daemon, None, autocommit=True) as conn:
        version = run(conn, "SELECT sqlite_version() AS v").column("v").to_pylist()[0]
        info = conn.adbc_get_info()
    assert version.startswith("3.")
    assert info["vendor_name"] == "dbpool"
