"""The token travels as `authorization: Bearer <token>` on gRPC and Flight calls.

The daemon does not check tokens yet, so a stand-in gRPC server records the metadata of
every call and refuses it with UNAUTHENTICATED, as an authenticating daemon would.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from db_pool_rs import AuthenticationError, DatabasePool, SyncDatabasePool


class _Recorder(grpc.GenericRpcHandler):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def service(self, details):
        method = details.method

        def refuse(_request, context):
            self.calls.append((method, dict(context.invocation_metadata())))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")

        if method.endswith("/DoGet"):
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
def recorder() -> Iterator[tuple[str, _Recorder]]:
    handler = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"grpc://127.0.0.1:{port}", handler
    server.stop(None)


def test_sync_calls_send_the_token(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, token="s3cret", timeout=5) as db:
        with pytest.raises(AuthenticationError, match="bad token"):
            db.list_pools()
        with pytest.raises(AuthenticationError, match="bad token"):
            db.query("default", "SELECT 1")
    assert [m for m, _ in handler.calls] == [
        "/dbpool.v1.PoolService/ListPools",
        "/arrow.flight.protocol.FlightService/DoGet",
    ]
    assert all(md.get("authorization") == "Bearer s3cret" for _, md in handler.calls)


async def test_async_calls_send_the_token(recorder) -> None:
    endpoint, handler = recorder
    async with DatabasePool(endpoint, token="t0k", timeout=5) as db:
        with pytest.raises(AuthenticationError):
            await db.execute("default", "SELECT 1")
        with pytest.raises(AuthenticationError):
            await db.query_arrow("default", "SELECT 1")
    assert [md.get("authorization") for _, md in handler.calls] == ["Bearer t0k", "Bearer t0k"]


def test_no_token_no_header(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, timeout=5) as db, pytest.raises(AuthenticationError):
        db.metrics()
    assert "authorization" not in handler.calls[0][1]
