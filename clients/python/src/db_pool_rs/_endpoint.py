"""Parses the daemon's endpoint into a gRPC target and an Arrow Flight location.

Accepted forms: ``grpc://host:port`` (also ``grpc+tcp://`` and ``http://``), the TLS
forms ``grpcs://``, ``grpc+tls://`` and ``https://``, and a bare ``host:port``.
Without an argument the endpoint comes from ``DBPOOL_ENDPOINT`` or is
``grpc://127.0.0.1:50051``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import grpc

from .errors import InvalidArgumentError

DEFAULT_ENDPOINT = "grpc://127.0.0.1:50051"
ENDPOINT_ENV = "DBPOOL_ENDPOINT"
_PLAIN = {"grpc", "grpc+tcp", "http"}
_TLS = {"grpcs", "grpc+tls", "https"}


@dataclass(frozen=True)
class Endpoint:
    """Where the daemon listens: one port serves gRPC and Arrow Flight."""

    host: str
    port: int
    tls: bool = False

    @property
    def grpc_target(self) -> str:
        """The target string for ``grpc.insecure_channel`` / ``grpc.secure_channel``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def flight_location(self) -> str:
        """The location string for ``pyarrow.flight.FlightClient``."""
        scheme = "grpc+tls" if self.tls else "grpc+tcp"
        return f"{scheme}://{self.grpc_target}"


def parse_endpoint(endpoint: Optional[str] = None) -> Endpoint:
    """Parses ``endpoint`` (or ``$DBPOOL_ENDPOINT``, or the default) into an Endpoint."""
    raw = endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    text = raw if "://" in raw else f"grpc://{raw}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _PLAIN | _TLS:
        raise InvalidArgumentError(
            f"endpoint {raw!r}: unsupported scheme {scheme!r} (use grpc:// or grpcs://)",
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    try:
        port = parts.port
    except ValueError as e:
        raise InvalidArgumentError(f"endpoint {raw!r}: {e}", grpc.StatusCode.INVALID_ARGUMENT) from None
    if not parts.hostname or port is None:
        raise InvalidArgumentError(
            f"endpoint {raw!r}: expected scheme://host:port", grpc.StatusCode.INVALID_ARGUMENT
        )
    return Endpoint(parts.hostname, port, scheme in _TLS)
