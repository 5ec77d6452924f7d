"""Unit tests of the gRPC / Flight error -> exception mapping (no daemon needed).

The Flight messages are the exact text pyarrow produces for each gRPC code (checked
against a server sending each code); the integration tests in test_errors.py cover the
real daemon.
"""

from __future__ import annotations

import grpc
import pyarrow as pa
import pytest
from google.rpc import error_details_pb2, status_pb2
from pyarrow import flight

from db_pool_rs import (
    AuthenticationError,
    DbPoolError,
    InvalidArgumentError,
    PermissionDeniedError,
    PoolExistsError,
    PoolNotFoundError,
    PoolTimeoutError,
    PoolUnavailableError,
    QueryError,
    TransactionAbortedError,
)
from db_pool_rs._status import from_flight_error, make_error, parse_status_details


def _details(code: grpc.StatusCode, message: str, **metadata: str) -> bytes:
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason="DATABASE", domain="dbpool", metadata=metadata)
    status.details.add().Pack(info)
    return status.SerializeToString()


def _flight_text(prefix: str, code: str, msg: str) -> str:
    return (
        f"{prefix}, with message: {msg}. gRPC client debug context: {code}:{msg}. "
        "Client context: IOError: Server never sent a data message. Detail: Internal"
    )


def test_status_details_are_decoded() -> None:
    raw = _details(grpc.StatusCode.INVALID_ARGUMENT, "relation missing", sqlstate="42P01")
    code, message, metadata = parse_status_details(raw)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert message == "relation missing"
    assert metadata == {"sqlstate": "42P01", "reason": "DATABASE"}
    assert parse_status_details(b"\xff\xff not a proto") == (None, "", {})
    assert parse_status_details(None) == (None, "", {})


@pytest.mark.parametrize(
    "code, sqlstate, cls",
    [
        (grpc.StatusCode.NOT_FOUND, None, PoolNotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, None, PoolExistsError),
        (grpc.StatusCode.INVALID_ARGUMENT, None, InvalidArgumentError),
        (grpc.StatusCode.INVALID_ARGUMENT, "42601", QueryError),
        (grpc.StatusCode.FAILED_PRECONDITION, "23505", QueryError),
        (grpc.StatusCode.ABORTED, "40001", TransactionAbortedError),
        (grpc.StatusCode.UNAVAILABLE, None, PoolUnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, None, PoolTimeoutError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, PoolTimeoutError),
        (grpc.StatusCode.UNAUTHENTICATED, None, AuthenticationError),
        (grpc.StatusCode.PERMISSION_DENIED, None, PermissionDeniedError),
        (grpc.StatusCode.INTERNAL, None, DbPoolError),
        (grpc.StatusCode.UNIMPLEMENTED, None, DbPoolError),
    ],
)
def test_codes_choose_classes(code, sqlstate, cls) -> None:
    err = make_error(code, "m", {"sqlstate": sqlstate} if sqlstate else {})
    assert type(err) is cls
    assert (err.code, err.sqlstate, err.message) == (code, sqlstate, "m")


def test_sqlstate_falls_back_to_the_message() -> None:
    err = make_error(grpc.StatusCode.INVALID_ARGUMENT, 'syntax error at "x" (SQLSTATE 42601)')
    assert type(err) is QueryError and err.sqlstate == "42601"


@pytest.mark.parametrize(
    "exc_type, prefix, code, cls",
    [
        (pa.ArrowKeyError, "Flight returned not found error", "NOT_FOUND", PoolNotFoundError),
        (pa.ArrowInvalid, "Flight returned invalid argument error", "INVALID_ARGUMENT", InvalidArgumentError),
        (
            pa.ArrowException,
            "Unknown: Flight returned already exists error",
            "ALREADY_EXISTS",
            PoolExistsError,
        ),
        (pa.ArrowInvalid, "gRPC returned resource exhausted error", "RESOURCE_EXHAUSTED", PoolTimeoutError),
        (flight.FlightInternalError, "gRPC returned aborted error", "ABORTED", TransactionAbortedError),
        (
            flight.FlightUnavailableError,
            "Flight returned unavailable error",
            "UNAVAILABLE",
            PoolUnavailableError,
        ),
        (flight.FlightTimedOutError, "Flight returned timeout error", "DEADLINE_EXCEEDED", PoolTimeoutError),
        (
            flight.FlightUnauthenticatedError,
            "Flight returned unauthenticated error",
            "UNAUTHENTICATED",
            AuthenticationError,
        ),
        (
            flight.FlightUnauthorizedError,
            "Flight returned unauthorized error",
            "PERMISSION_DENIED",
            PermissionDeniedError,
        ),
        (flight.FlightInternalError, "Flight returned internal error", "INTERNAL", DbPoolError),
    ],
)
def test_flight_errors_keep_their_grpc_code(exc_type, prefix, code, cls) -> None:
    err = from_flight_error(exc_type(_flight_text(prefix, code, "pool `x` not found")))
    assert type(err) is cls
    assert err.code is getattr(grpc.StatusCode, code)
    assert err.message == "pool `x` not found"


def test_flight_error_with_sqlstate_is_a_query_error() -> None:
    msg = 'relation "nope" does not exist (SQLSTATE 42P01)'
    err = from_flight_error(
        pa.ArrowInvalid(_flight_text("Flight returned invalid argument error", "INVALID_ARGUMENT", msg))
    )
    assert type(err) is QueryError and err.sqlstate == "42P01" and err.message == msg


def test_flight_error_without_debug_context_uses_prefix_then_class() -> None:
    err = from_flight_error(pa.ArrowInvalid("gRPC returned out-of-range error, with message: big"))
    assert err.code is grpc.StatusCode.OUT_OF_RANGE and err.message == "big"
    err = from_flight_error(flight.FlightUnavailableError("connection refused"))
    assert type(err) is PoolUnavailableError
    err = from_flight_error(pa.ArrowInvalid("Invalid IPC stream"))
    assert type(err) is DbPoolError and err.code is grpc.StatusCode.INTERNAL


def test_flight_extra_info_wins_when_present() -> None:
    exc = flight.FlightInternalError(
        "opaque", _details(grpc.StatusCode.ABORTED, "deadlock (SQLSTATE 40P01)", sqlstate="40P01")
    )
    err = from_flight_error(exc)
    assert type(err) is TransactionAbortedError and err.sqlstate == "40P01"


def test_older_grpc_debug_context_format() -> None:
    """pyarrow builds with older gRPC print the status as `{..., grpc_status:N, ...}`."""
    text = (
        "Flight returned not found error, with message: pool `zzz` not found. gRPC client "
        'debug context: UNKNOWN:Error received from peer ipv4:127.0.0.1:50999 {grpc_message:"pool '
        '`zzz` not found", grpc_status:5, created_time:"2026-11-27T12:00:28+00:00"}. Client '
        "context: IOError: Server never sent a data message. Detail: Internal"
    )
    err = from_flight_error(pa.ArrowKeyError(text))
    assert type(err) is PoolNotFoundError and err.message == "pool `zzz` not found"
    aborted = text.replace("Flight returned not found error", "gRPC returned aborted error")
    aborted = aborted.replace("grpc_status:5", "grpc_status:10").replace(
        "`zzz` not found", "x (SQLSTATE 40001)"
    )
    err = from_flight_error(flight.FlightInternalError(aborted))
    assert type(err) is TransactionAbortedError and err.sqlstate == "40001"


def test_server_side_deadline_is_reported_as_deadline() -> None:
    """tonic answers an expired grpc-timeout with CANCELLED "Timeout expired"."""
    from db_pool_rs._status import past_deadline

    cancelled = make_error(grpc.StatusCode.CANCELLED, "Timeout expired")
    err = past_deadline(cancelled, 0.5, started=10.0, now=10.49)
    assert type(err) is PoolTimeoutError and err.code is grpc.StatusCode.DEADLINE_EXCEEDED
    other = make_error(grpc.StatusCode.CANCELLED, "cancelled by client")
    assert past_deadline(other, 0.5, started=10.0, now=10.1) is other
    assert type(past_deadline(other, 0.5, started=10.0, now=10.6)) is PoolTimeoutError
    assert past_deadline(cancelled, None, started=10.0, now=99.0) is cancelled
