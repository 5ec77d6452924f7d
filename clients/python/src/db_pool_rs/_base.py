"""State shared by the sync and async clients: endpoint, auth and trace metadata, the
Flight side and the sans-io core.

Both clients hold one gRPC channel (PoolService calls) and one FlightClient (queries)
pointing at the same port.
"""

from __future__ import annotations

from typing import Any, Optional

import grpc

from ._auth import bearer, resolve_token
from ._core import Core
from ._endpoint import Endpoint, PemSource, TlsFiles, parse_endpoint
from .errors import InvalidArgumentError
from ._flight import FlightQueries
from ._trace import trace_headers

#: Options of the PoolService channel: transactions read query results over it (a
#: record batch can be larger than gRPC's default 4 MiB receive limit), so it accepts
#: what the daemon's default ``server.limits.max_message_bytes`` lets it send.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


class ClientBase:
    """Endpoint, per-call metadata and default timeout, plus the Flight side."""

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        propagate_trace: bool = True,
        tls_root_certs: Optional[PemSource] = None,
        tls_cert_chain: Optional[PemSource] = None,
        tls_private_key: Optional[PemSource] = None,
    ) -> None:
        self._endpoint: Endpoint = parse_endpoint(endpoint)
        self._tls = TlsFiles.load(tls_root_certs, tls_cert_chain, tls_private_key)
        if self._tls.given and not self._endpoint.tls:
            raise InvalidArgumentError(
                f"TLS options need a TLS endpoint (grpcs://, https://), not {self._endpoint.url!r}",
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        self._propagate_trace = propagate_trace
        # The same header on every PoolService call (metadata) and every Flight call
        # (FlightCallOptions headers: DoGet, DoPut), transactions and fast paths included.
        auth = bearer(resolve_token(token))
        self._auth_metadata: tuple[tuple[str, str], ...] = (("authorization", auth),) if auth else ()
        headers: list[tuple[bytes, bytes]] = [(b"authorization", auth.encode())] if auth else []
        self._flight = FlightQueries(
            self._endpoint.flight_location,
            headers,
            propagate_trace,
            self._tls.flight_options(),
            self._endpoint.channel_options,
        )
        self._core = Core(timeout, self._flight)
        self._connect()

    def _connect(self) -> None:
        """Opens what the client keeps for its life; the blocking client's channel."""

    #: Options of this client's channel on top of CHANNEL_OPTIONS.
    _channel_options: tuple[tuple[str, Any], ...] = ()

    def _open_channel(self, channels: Any) -> Any:
        """A channel to the daemon from ``grpc`` or ``grpc.aio`` (``channels``)."""
        target = self._endpoint.grpc_target
        options = CHANNEL_OPTIONS + self._endpoint.channel_options + list(self._channel_options)
        if self._endpoint.tls:
            return channels.secure_channel(target, self._tls.grpc_credentials(), options)
        return channels.insecure_channel(target, options)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata of one call: the token, plus the current trace context."""
        if not self._propagate_trace:
            return self._auth_metadata
        return self._auth_metadata + tuple(trace_headers())

    @property
    def endpoint(self) -> str:
        """The daemon's address as ``grpc://host:port`` (or ``grpcs://``, ``unix:/path``)."""
        return self._endpoint.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"
