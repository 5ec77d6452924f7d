"""A stand-in gRPC server for unit tests: records the metadata of every call and refuses
it, by default with UNAUTHENTICATED ("bad token") as an authenticating daemon would; any
code, message and ``grpc-status-details-bin`` can be chosen (``stand_in`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Callable, Optional

import grpc
import pytest


class Recorder(grpc.GenericRpcHandler):
    """Records (method, metadata) of every call, then refuses it with ``code``,
    ``message`` and, when given, ``details`` (an encoded ``google.rpc.Status``). A unary
    method named in ``replies`` (``"BeginTransaction"``) answers those encoded bytes."""

    def __init__(
        self,
        code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED,
        message: str = "bad token",
        details: Optional[bytes] = None,
        replies: Optional[dict[str, bytes]] = None,
    ) -> None:
        self.calls: list[tuple[str, dict]] = []
        self._code = code
        self._message = message
        self._details = details
        self._replies = replies or {}

    def service(self, details):
        method = details.method

        def refuse(_request, context):
            self.calls.append((method, dict(context.invocation_metadata())))
            reply = self._replies.get(method.rsplit("/", 1)[-1])
            if reply is not None:
                return reply
            if self._details is not None:
                context.set_trailing_metadata((("grpc-status-details-bin", self._details),))
            context.abort(self._code, self._message)

        if method.endswith(("/DoGet", "/Query")):
            return grpc.unary_stream_rpc_method_handler(refuse)
        if method.endswith("/DoPut"):
            return grpc.stream_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


StandIn = Callable[..., tuple[str, Recorder]]
"""``stand_in(code=..., message=..., details=..., tls=...)``: starts a stand-in server and
returns its endpoint and recorder. ``tls``: ``grpc.ServerCredentials`` (grpcs:// then)."""


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    """Starts stand-in servers as the test asks; stops them at its end."""
    servers: list[grpc.Server] = []

    def start(tls: Optional[grpc.ServerCredentials] = None, **refusal) -> tuple[str, Recorder]:
        handler = Recorder(**refusal)
        server = grpc.server(futures.ThreadPoolExecutor(4))
        server.add_generic_rpc_handlers((handler,))
        if tls is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", tls)
        server.start()
        servers.append(server)
        return f"{'grpcs' if tls else 'grpc'}://127.0.0.1:{port}", handler

    yield start
    for server in servers:
        server.stop(None)


@pytest.fixture
def recorder(stand_in: StandIn) -> tuple[str, Recorder]:
    """The endpoint and recorder of a stand-in server refusing with UNAUTHENTICATED."""
    return stand_in()
