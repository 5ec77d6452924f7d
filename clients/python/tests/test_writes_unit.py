"""Unit tests of the bulk insert and transaction request building (no daemon needed)."""

from __future__ import annotations

import grpc
import polars as pl
import pyarrow as pa
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from pyarrow import flight

from db_pool_rs import (
    DbPoolError,
    InvalidArgumentError,
    ParamTypeError,
    PoolNotFoundError,
    SyncDatabasePool,
    Transaction,
    TransactionClosedError,
    TransactionNotFoundError,
)
from db_pool_rs._proto import flight_pb2, pool_pb2
from db_pool_rs._requests import (
    begin_transaction_request,
    bulk_insert_command,
    execute_request,
    insert_mode,
    isolation_level,
    query_ticket,
    to_arrow_table,
)
from db_pool_rs._status import from_flight_error, make_error, parse_status_details
from db_pool_rs._transaction import _not_found


def test_bulk_insert_command_is_an_any() -> None:
    raw = bulk_insert_command("pg", "sales.orders", "replace")
    wrapped = any_pb2.Any.FromString(raw)
    assert wrapped.type_url == "type.googleapis.com/dbpool.v1.BulkInsertCommand"
    command = flight_pb2.BulkInsertCommand.FromString(wrapped.value)
    assert (command.pool_id, command.table, command.mode) == (
        "pg",
        "sales.orders",
        flight_pb2.INSERT_MODE_REPLACE,
    )


@pytest.mark.parametrize(
    "mode, value",
    [
        ("append", flight_pb2.INSERT_MODE_APPEND_UNSPECIFIED),
        ("create", flight_pb2.INSERT_MODE_CREATE),
        ("REPLACE", flight_pb2.INSERT_MODE_REPLACE),
    ],
)
def test_insert_modes(mode: str, value: int) -> None:
    assert insert_mode(mode) == value


@pytest.mark.parametrize("mode", ["upsert", "", None, 1])
def test_bad_insert_modes(mode: object) -> None:
    with pytest.raises(InvalidArgumentError, match="mode must be one of"):
        insert_mode(mode)


@pytest.mark.parametrize("table", ["", "   ", None])
def test_bad_table_names(table: object) -> None:
    with pytest.raises(InvalidArgumentError, match="table"):
        bulk_insert_command("p", table, "append")  # type: ignore[arg-type]


def test_to_arrow_table_accepts_frames_tables_and_batches() -> None:
    df = pl.DataFrame({"a": [1, 2], "s": ["x", None]})
    for data in (df, df.lazy(), df.to_arrow(), df.to_arrow().to_batches()[0]):
        table = to_arrow_table(data)
        assert isinstance(table, pa.Table)
        assert table.column("a").to_pylist() == [1, 2]
    for bad in ({"a": [1]}, [1, 2], "a,b", None):
        with pytest.raises(ParamTypeError, match="data must be"):
            to_arrow_table(bad)


def test_polars_export_shares_the_buffers() -> None:
    df = pl.DataFrame({"a": list(range(1000))})
    table = to_arrow_table(df)
    assert (
        table.column("a").chunk(0).buffers()[1].address
        == df.to_arrow().column("a").chunk(0).buffers()[1].address
    )


@pytest.mark.parametrize(
    "name, value",
    [
        (None, pool_pb2.ISOLATION_LEVEL_DEFAULT_UNSPECIFIED),
        ("read_uncommitted", pool_pb2.ISOLATION_LEVEL_READ_UNCOMMITTED),
        ("read_committed", pool_pb2.ISOLATION_LEVEL_READ_COMMITTED),
        ("Repeatable Read", pool_pb2.ISOLATION_LEVEL_REPEATABLE_READ),
        ("SERIALIZABLE", pool_pb2.ISOLATION_LEVEL_SERIALIZABLE),
        ("read-committed", pool_pb2.ISOLATION_LEVEL_READ_COMMITTED),
    ],
)
def test_isolation_levels(name: object, value: int) -> None:
    assert isolation_level(name) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["snapshot", "", 3])
def test_bad_isolation_levels(name: object) -> None:
    with pytest.raises(InvalidArgumentError, match="isolation must be"):
        isolation_level(name)  # type: ignore[arg-type]


def test_begin_transaction_request() -> None:
    request = begin_transaction_request("pg", "serializable", True, 300)
    assert request == pool_pb2.BeginTransactionRequest(
        pool_id="pg", isolation=pool_pb2.ISOLATION_LEVEL_SERIALIZABLE, read_only=True, idle_timeout_ms=300
    )
    assert begin_transaction_request("pg", None, False, None).idle_timeout_ms == 0
    for bad in (0, -5, 1.5, True, "300"):
        with pytest.raises(InvalidArgumentError, match="idle_timeout_ms"):
            begin_transaction_request("pg", None, False, bad)  # type: ignore[arg-type]


def test_requests_carry_the_transaction_id() -> None:
    ticket = flight_pb2.QueryTicket.FromString(query_ticket("pg", "SELECT 1", [1], 10, "tx-1"))
    assert (ticket.pool_id, ticket.transaction_id, ticket.batch_size) == ("pg", "tx-1", 10)
    assert execute_request("pg", "DELETE FROM t", None, "tx-1").transaction_id == "tx-1"
    assert execute_request("pg", "DELETE FROM t", None).transaction_id == ""


def _details(message: str, reason: str) -> bytes:
    status = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="dbpool"))
    return status.SerializeToString()


TX_MESSAGE = "transaction `abc` not found (it may have been rolled back after its idle timeout)"


def test_transaction_not_found_over_grpc_and_flight() -> None:
    code, message, metadata = parse_status_details(_details(TX_MESSAGE, "TRANSACTION_NOT_FOUND"))
    assert code is not None
    error = make_error(code, message, metadata)
    assert isinstance(error, TransactionNotFoundError) and not isinstance(error, PoolNotFoundError)
    # pyarrow drops the details: the message tells.
    text = (
        f"Flight returned not found error, with message: {TX_MESSAGE}. "
        f"gRPC client debug context: NOT_FOUND:{TX_MESSAGE}. Client context: OK"
    )
    error = from_flight_error(flight.FlightError(text))
    assert isinstance(error, TransactionNotFoundError) and error.message == TX_MESSAGE
    # A pool that is not found stays a PoolNotFoundError.
    assert type(make_error(grpc.StatusCode.NOT_FOUND, "pool `tx` not found")) is PoolNotFoundError


def test_not_found_inside_a_transaction_names_the_timeout() -> None:
    wrapped = _not_found(PoolNotFoundError("gone", grpc.StatusCode.NOT_FOUND), "t1")
    assert isinstance(wrapped, TransactionNotFoundError)
    assert "t1" in wrapped.message and "idle timeout" in wrapped.message
    same = TransactionNotFoundError(TX_MESSAGE, grpc.StatusCode.NOT_FOUND)
    assert _not_found(same, "abc") is same
    other = DbPoolError("boom", grpc.StatusCode.INTERNAL)
    assert _not_found(other, "t1") is other


def test_unbegun_and_ended_transactions_refuse_calls() -> None:
    client = SyncDatabasePool("grpc://127.0.0.1:1")
    try:
        tx = Transaction(client, "pg")
        with pytest.raises(TransactionClosedError, match="not begun"):
            tx.execute("SELECT 1")
        tx._state, tx._id = "committed", "t1"
        with pytest.raises(TransactionClosedError, match="committed"):
            tx.query("SELECT 1")
        with pytest.raises(TransactionClosedError, match="already begun"):
            tx.begin()
        assert "committed" in repr(tx)
    finally:
        client.close()
