"""Identity on the client side, without a daemon: the token (``token=`` or
``$DBPOOL_TOKEN``) on every gRPC and Flight call, the mapping of UNAUTHENTICATED,
PERMISSION_DENIED and a tenant's quota to AuthenticationError, PermissionDeniedError and
QuotaExceededError over gRPC and over Flight, and a client certificate on both.

The Flight texts are what pyarrow makes of a stand-in server's status (it drops the
status details, so over Flight the quota's name and limit come from the message).
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from google.rpc import error_details_pb2, status_pb2
from pki import Pki
from pyarrow import flight
from stand_in import StandIn

from db_pool_rs import (
    AuthenticationError,
    DatabasePool,
    DbPoolError,
    InvalidArgumentError,
    PermissionDeniedError,
    PoolTimeoutError,
    PoolUnavailableError,
    QuotaExceededError,
    SyncDatabasePool,
)
from db_pool_rs._proto import pool_pb2
from db_pool_rs._status import from_flight_error, from_grpc_error, make_error

QUOTA_MESSAGE = "tenant `a` reached its quota max_concurrent_calls (4)"
DENIED_MESSAGE = "tenant `a` may only read pool `x`"
BEGIN = pool_pb2.BeginTransactionResponse(transaction_id="tx-1").SerializeToString()


def _details(code: grpc.StatusCode, message: str, reason: str, **metadata: str) -> bytes:
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="dbpool", metadata=metadata))
    return status.SerializeToString()


NO_DATA = "IOError: Server never sent a data message. Detail: Internal"


def _flight_text(prefix: str, code: str, msg: str, client: str = NO_DATA) -> str:
    return f"{prefix}, with message: {msg}. gRPC client debug context: {code}:{msg}. Client context: {client}"


@pytest.fixture(autouse=True)
def _no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBPOOL_TOKEN", raising=False)


# -- the mapping ------------------------------------------------------------------------


def test_status_codes_and_reasons_choose_the_classes() -> None:
    err = make_error(grpc.StatusCode.UNAUTHENTICATED, "missing credentials", {"reason": "UNAUTHENTICATED"})
    assert type(err) is AuthenticationError and err.message == "missing credentials"
    err = make_error(grpc.StatusCode.PERMISSION_DENIED, DENIED_MESSAGE, {"reason": "PERMISSION_DENIED"})
    assert type(err) is PermissionDeniedError and err.message == DENIED_MESSAGE
    # Code written when PERMISSION_DENIED raised AuthenticationError still catches it.
    assert isinstance(err, AuthenticationError)
    err = make_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "tenant `a` reached its quota",
        {"reason": "QUOTA_EXCEEDED", "quota": "calls_per_second", "limit": "10"},
    )
    assert type(err) is QuotaExceededError
    assert (err.quota, err.limit, err.code) == ("calls_per_second", 10, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert not isinstance(err, PoolTimeoutError)


def test_a_full_pool_is_still_a_timeout_not_a_quota() -> None:
    err = make_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "pool `p`: no free connection within 300 ms")
    assert type(err) is PoolTimeoutError
    # Another reason wins over a message that looks like a quota.
    err = make_error(grpc.StatusCode.RESOURCE_EXHAUSTED, QUOTA_MESSAGE, {"reason": "POOL_EXHAUSTED"})
    assert type(err) is PoolTimeoutError
    # Only RESOURCE_EXHAUSTED is a quota.
    assert type(make_error(grpc.StatusCode.INTERNAL, QUOTA_MESSAGE)) is DbPoolError


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailers


def test_grpc_errors_carry_the_quota_from_the_details() -> None:
    raw = _details(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "quota", "QUOTA_EXCEEDED", quota="max_concurrent_calls", limit="1"
    )
    err = from_grpc_error(
        _RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "over", (("grpc-status-details-bin", raw),))
    )
    assert type(err) is QuotaExceededError and (err.quota, err.limit) == ("max_concurrent_calls", 1)
    assert err.message == "over"
    assert err.metadata["reason"] == "QUOTA_EXCEEDED"


@pytest.mark.parametrize(
    "exc, cls, message",
    [
        (
            flight.FlightUnauthenticatedError(
                _flight_text("Flight returned unauthenticated error", "UNAUTHENTICATED", "no credentials")
            ),
            AuthenticationError,
            "no credentials",
        ),
        (
            flight.FlightUnauthorizedError(
                _flight_text("Flight returned unauthorized error", "PERMISSION_DENIED", DENIED_MESSAGE, "OK")
            ),
            PermissionDeniedError,
            DENIED_MESSAGE,
        ),
        # pyarrow raises these without a debug context when the channel says nothing more.
        (flight.FlightUnauthenticatedError("no credentials"), AuthenticationError, "no credentials"),
        (flight.FlightUnauthorizedError("not yours"), PermissionDeniedError, "not yours"),
    ],
)
def test_flight_auth_errors(exc: Exception, cls: type, message: str) -> None:
    err = from_flight_error(exc)
    assert type(err) is cls and err.message == message


def test_flight_quota_error_reads_quota_and_limit_from_the_message() -> None:
    text = _flight_text("gRPC returned resource exhausted error", "RESOURCE_EXHAUSTED", QUOTA_MESSAGE)
    err = from_flight_error(pa.ArrowInvalid(text))
    assert type(err) is QuotaExceededError and err.message == QUOTA_MESSAGE
    assert (err.quota, err.limit) == ("max_concurrent_calls", 4)
    rows = "tenant `a` reached its quota max_result_rows (1000)"
    err = from_flight_error(
        pa.ArrowInvalid(_flight_text("gRPC returned resource exhausted error", "RESOURCE_EXHAUSTED", rows))
    )
    assert (type(err), err.quota, err.limit) == (QuotaExceededError, "max_result_rows", 1000)


# -- the token ----------------------------------------------------------------------------


def test_the_token_reaches_every_sync_call(stand_in: StandIn) -> None:
    endpoint, handler = stand_in(replies={"BeginTransaction": BEGIN})
    table = pa.table({"a": [1, 2]})
    with SyncDatabasePool(endpoint, token="s3cret", timeout=5) as db:
        for call in (
            lambda: db.create_pool("p", "sqlite://p.db"),
            lambda: db.remove_pool("p"),
            lambda: db.pool_status("p"),
            lambda: db.execute_batch("p", ["SELECT 1"]),
            lambda: list(db.query_batches("p", "SELECT 1")),
            lambda: db.bulk_insert("p", "t", table),
        ):
            with pytest.raises(AuthenticationError, match="bad token"):
                call()
        tx = db.transaction("p")
        with pytest.raises(AuthenticationError):
            tx.query("SELECT 1")
        with pytest.raises(AuthenticationError):
            list(tx.query_batches("SELECT 1"))
        with pytest.raises(AuthenticationError):
            tx.rollback()
    methods = [m.rsplit("/", 1)[-1] for m, _ in handler.calls]
    assert methods == [
        "CreatePool", "RemovePool", "GetPoolStatus", "ExecuteBatch", "DoGet", "DoPut",
        "BeginTransaction", "Query", "Query", "Rollback",
    ]  # fmt: skip
    assert [md.get("authorization") for _, md in handler.calls] == ["Bearer s3cret"] * len(methods)


async def test_the_token_reaches_every_async_call(stand_in: StandIn) -> None:
    endpoint, handler = stand_in(replies={"BeginTransaction": BEGIN})
    async with DatabasePool(endpoint, token="t0k", timeout=5) as db:
        with pytest.raises(AuthenticationError):
            await db.list_pools()
        with pytest.raises(AuthenticationError):
            async for _ in db.query_batches("p", "SELECT 1"):
                pass
        with pytest.raises(AuthenticationError):
            await db.bulk_insert("p", "t", pa.table({"a": [1]}))
        tx = await db.transaction("p")
        with pytest.raises(AuthenticationError):
            await tx.query_arrow("SELECT 1")
        with pytest.raises(AuthenticationError):
            await tx.execute("DELETE FROM t")
    methods = [m.rsplit("/", 1)[-1] for m, _ in handler.calls]
    assert methods == ["ListPools", "DoGet", "DoPut", "BeginTransaction", "Query", "Execute"]
    assert {md.get("authorization") for _, md in handler.calls} == {"Bearer t0k"}


def _sent_token(endpoint: str, handler, **client) -> object:
    handler.calls.clear()
    with SyncDatabasePool(endpoint, timeout=5, **client) as db:
        with pytest.raises(AuthenticationError):
            db.list_pools()
        with pytest.raises(AuthenticationError):
            db.query("p", "SELECT 1")
    sent = [md.get("authorization") for _, md in handler.calls]
    assert len(sent) == 2 and sent[0] == sent[1], sent
    return sent[0]


def test_the_token_defaults_to_dbpool_token(recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, handler = recorder
    assert _sent_token(endpoint, handler) is None
    monkeypatch.setenv("DBPOOL_TOKEN", "from-env\n")
    assert _sent_token(endpoint, handler) == "Bearer from-env"
    assert _sent_token(endpoint, handler, token="given") == "Bearer given"
    # An explicit empty token sends none, whatever the environment says.
    assert _sent_token(endpoint, handler, token="") is None
    monkeypatch.setenv("DBPOOL_TOKEN", "   ")
    assert _sent_token(endpoint, handler) is None


def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("two words", "caf\u00e9", "a\nb"):
        with pytest.raises(InvalidArgumentError) as info:
            SyncDatabasePool("grpc://127.0.0.1:1", token=bad)
        assert bad not in str(info.value) and "token" in str(info.value)
    monkeypatch.setenv("DBPOOL_TOKEN", "tab\there")
    with pytest.raises(InvalidArgumentError, match="DBPOOL_TOKEN"):
        SyncDatabasePool("grpc://127.0.0.1:1")
    db = SyncDatabasePool("grpc://127.0.0.1:1", token="visible-nowhere")
    try:
        assert "visible-nowhere" not in repr(db)
    finally:
        db.close()


# -- refusals of a stand-in server, over gRPC and Flight ------------------------------------


REFUSALS = {
    "unauthenticated": (grpc.StatusCode.UNAUTHENTICATED, "missing credentials", {}, AuthenticationError),
    "denied": (grpc.StatusCode.PERMISSION_DENIED, DENIED_MESSAGE, {}, PermissionDeniedError),
    "quota": (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        QUOTA_MESSAGE,
        {"quota": "max_concurrent_calls", "limit": "4"},
        QuotaExceededError,
    ),
}
_REASONS = {"unauthenticated": "UNAUTHENTICATED", "denied": "PERMISSION_DENIED", "quota": "QUOTA_EXCEEDED"}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_refusals_map_the_same_on_every_path(stand_in: StandIn, refusal: str) -> None:
    code, message, metadata, cls = REFUSALS[refusal]
    details = _details(code, message, _REASONS[refusal], **metadata)
    endpoint, _ = stand_in(code=code, message=message, details=details)
    with SyncDatabasePool(endpoint, timeout=5) as db:
        for call in (
            lambda: db.execute("p", "DELETE FROM t"),  # gRPC
            lambda: db.query("p", "SELECT 1"),  # Flight DoGet
            lambda: db.bulk_insert("p", "t", pa.table({"a": [1]})),  # Flight DoPut
        ):
            with pytest.raises(DbPoolError) as info:
                call()
            assert type(info.value) is cls and info.value.message == message
            assert info.value.code is code
            if cls is QuotaExceededError:
                assert (info.value.quota, info.value.limit) == ("max_concurrent_calls", 4)


# -- mutual TLS --------------------------------------------------------------------------


def test_the_client_certificate_goes_on_grpc_and_flight(stand_in: StandIn, tmp_path: Path) -> None:
    """A stand-in that requires a client certificate: the handshake passes (the call
    reaches it and is refused as UNAUTHENTICATED) on both transports with one, and fails
    (UNAVAILABLE) without."""
    pki = Pki.create(tmp_path / "pki")
    server, client = pki.issue("stand-in", 1), pki.issue("orders", 2, client=True)
    tls = grpc.ssl_server_credentials(
        [(server.key.read_bytes(), server.cert.read_bytes())],
        root_certificates=pki.ca.cert.read_bytes(),
        require_client_auth=True,
    )
    endpoint, handler = stand_in(tls=tls)
    mtls = {"tls_root_certs": pki.ca.cert, "tls_cert_chain": client.cert, "tls_private_key": client.key}
    with SyncDatabasePool(endpoint, timeout=10, **mtls) as db:
        with pytest.raises(AuthenticationError, match="bad token"):
            db.list_pools()
        with pytest.raises(AuthenticationError, match="bad token"):
            db.query("p", "SELECT 1")
        with pytest.raises(AuthenticationError, match="bad token"):
            db.bulk_insert("p", "t", pa.table({"a": [1]}))
    assert [m.rsplit("/", 1)[-1] for m, _ in handler.calls] == ["ListPools", "DoGet", "DoPut"]
    with SyncDatabasePool(endpoint, timeout=10, tls_root_certs=pki.ca.cert) as anonymous:
        with pytest.raises(PoolUnavailableError):
            anonymous.list_pools()
        with pytest.raises(PoolUnavailableError):
            anonymous.query("p", "SELECT 1")
    assert len(handler.calls) == 3
