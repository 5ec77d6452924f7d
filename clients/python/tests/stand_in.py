"""A stand-in gRPC server for unit tests: records the metadata of every call and refuses
it with UNAUTHENTICATED ("bad token"), as an authenticating daemon would."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest


class Recorder(grpc.GenericRpcHandler):
    """Records (method, metadata) of every call, then refuses it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def service(self, details):
        method = details.method

        def refuse(_request, context):
            self.calls.append((method, dict(context.invocation_metadata())))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")

        if method.endswith("/DoGet"):
            return grpc.unary_stream_rpc_method_handler(refuse)
        if method.endswith("/DoPut"):
            return grpc.stream_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
def recorder() -> Iterator[tuple[str, Recorder]]:
    """The stand-in server's endpoint and its recorder."""
    handler = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"grpc://127.0.0.1:{port}", handler
    server.stop(None)
