"""Parses the daemon's endpoint into a gRPC target and an Arrow Flight location.

Accepted forms: ``grpc://host:port`` (also ``grpc+tcp://`` and ``http://``), the TLS
forms ``grpcs://``, ``grpc+tls://`` and ``https://``, a bare ``host:port``, and a Unix
domain socket ``unix:/path/dbpool.sock`` (also ``unix:///path`` and ``grpc+unix:///path``).
Without an argument the endpoint comes from ``DBPOOL_ENDPOINT`` or is
``grpc://127.0.0.1:50051``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union
from urllib.parse import urlsplit

import grpc

from .errors import InvalidArgumentError

DEFAULT_ENDPOINT = "grpc://127.0.0.1:50051"
ENDPOINT_ENV = "DBPOOL_ENDPOINT"
_PLAIN = {"grpc", "grpc+tcp", "http"}
_TLS = {"grpcs", "grpc+tls", "https"}
#: Prefixes of a Unix domain socket, longest first (``unix:///p`` before ``unix:/p``).
_UNIX = ("grpc+unix://", "unix://", "unix:")


@dataclass(frozen=True)
class Endpoint:
    """Where the daemon listens: one port serves gRPC and Arrow Flight."""

    host: str
    port: int
    tls: bool = False
    unix_path: Optional[str] = None
    """The socket's absolute path when the daemon listens on a Unix domain socket."""

    @property
    def grpc_target(self) -> str:
        """The target string for ``grpc.insecure_channel`` / ``grpc.secure_channel``."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def flight_location(self) -> str:
        """The location string for ``pyarrow.flight.FlightClient``."""
        if self.unix_path is not None:
            return f"grpc+unix://{self.unix_path}"
        scheme = "grpc+tls" if self.tls else "grpc+tcp"
        return f"{scheme}://{self.grpc_target}"

    @property
    def channel_options(self) -> list[tuple[str, str]]:
        """gRPC channel options the endpoint needs. Over a Unix socket gRPC C-core sends
        the socket's path as ``:authority``, which the daemon's HTTP/2 server refuses as
        malformed (RST_STREAM PROTOCOL_ERROR): send ``localhost`` instead."""
        return [("grpc.default_authority", "localhost")] if self.unix_path is not None else []

    @property
    def url(self) -> str:
        """The endpoint as ``grpc://host:port``, ``grpcs://host:port`` or ``unix:/path``."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        return f"{'grpcs' if self.tls else 'grpc'}://{self.grpc_target}"


def parse_endpoint(endpoint: Optional[str] = None) -> Endpoint:
    """Parses ``endpoint`` (or ``$DBPOOL_ENDPOINT``, or the default) into an Endpoint."""
    raw = endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    for prefix in _UNIX:
        if raw.startswith(prefix):
            return _unix(raw, raw[len(prefix) :])
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


def _unix(raw: str, path: str) -> Endpoint:
    """A Unix-socket endpoint; a relative path is taken from the current directory."""
    if not path or "\0" in path:
        raise InvalidArgumentError(
            f"endpoint {raw!r}: expected unix:/path/to/dbpool.sock", grpc.StatusCode.INVALID_ARGUMENT
        )
    return Endpoint("", 0, False, os.path.abspath(path))


PemSource = Union[bytes, str, "os.PathLike[str]"]
"""PEM data as bytes, or the path of a PEM file."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM material for TLS to the daemon: the CA that signed its certificate (else the
    system's roots) and, for mutual TLS, the client's certificate chain and key."""

    root_certs: Optional[bytes] = None
    cert_chain: Optional[bytes] = None
    private_key: Optional[bytes] = None

    @staticmethod
    def load(
        root_certs: Optional[PemSource], cert_chain: Optional[PemSource], private_key: Optional[PemSource]
    ) -> "TlsFiles":
        """Reads the paths among the arguments; a certificate needs its key and back."""
        if (cert_chain is None) != (private_key is None):
            raise InvalidArgumentError(
                "tls_cert_chain and tls_private_key go together (mutual TLS needs both)",
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        return TlsFiles(_pem(root_certs), _pem(cert_chain), _pem(private_key))

    @property
    def given(self) -> bool:
        """Whether any TLS material was given."""
        return any(v is not None for v in (self.root_certs, self.cert_chain, self.private_key))

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        """Credentials of a ``grpc.secure_channel``."""
        return grpc.ssl_channel_credentials(self.root_certs, self.private_key, self.cert_chain)

    def flight_options(self) -> dict[str, bytes]:
        """Keyword arguments of ``pyarrow.flight.FlightClient``."""
        out = {}
        if self.root_certs is not None:
            out["tls_root_certs"] = self.root_certs
        if self.cert_chain is not None and self.private_key is not None:
            out["cert_chain"] = self.cert_chain
            out["private_key"] = self.private_key
        return out


def _pem(source: Optional[PemSource]) -> Optional[bytes]:
    if source is None or isinstance(source, bytes):
        return source
    try:
        with open(source, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {source!s}: {e}", grpc.StatusCode.INVALID_ARGUMENT) from None
