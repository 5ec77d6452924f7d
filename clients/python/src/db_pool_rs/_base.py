"""State shared by the sync and async clients: endpoint, auth and trace metadata, timeouts,
Flight.

Both clients hold one gRPC channel (PoolService calls) and one FlightClient (queries)
pointing at the same port.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, Union

import polars as pl
import pyarrow as pa

from ._endpoint import Endpoint, parse_endpoint
from ._flight import FlightQueries
from ._requests import query_ticket
from ._trace import trace_headers

#: Query results of ``query``: an eager frame, or a lazy one with ``lazy=True``.
Frame = Union[pl.DataFrame, pl.LazyFrame]


def _major(version: str) -> int:
    return int(version.split(".")[0])


#: Whether ``query`` asks the daemon for text as Arrow string views (``Utf8View``):
#: Polars keeps strings as views and adopts such columns without a copy. Needs pyarrow 16
#: and Polars 1; ``query_arrow`` and ``query_batches`` keep plain ``utf8``.
STRING_VIEWS = _major(pa.__version__) >= 16 and _major(pl.__version__) >= 1


#: Options of the PoolService channel: transactions read query results over it (a
#: record batch can be larger than gRPC's default 4 MiB receive limit), so it accepts
#: what the daemon's default ``server.limits.max_message_bytes`` lets it send.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def to_polars(table: pa.Table, lazy: bool) -> Frame:
    """Wraps an Arrow table in Polars without copying the column buffers."""
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy() if lazy else frame


class ClientBase:
    """Endpoint, per-call metadata and default timeout, plus the Flight side."""

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        propagate_trace: bool = True,
    ) -> None:
        self._endpoint: Endpoint = parse_endpoint(endpoint)
        self._timeout = timeout
        self._propagate_trace = propagate_trace
        auth = f"Bearer {token}" if token else None
        self._auth_metadata: tuple[tuple[str, str], ...] = (("authorization", auth),) if auth else ()
        headers: list[tuple[bytes, bytes]] = [(b"authorization", auth.encode())] if auth else []
        self._flight = FlightQueries(self._endpoint.flight_location, headers, propagate_trace)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata of one call: the token, plus the current trace context."""
        if not self._propagate_trace:
            return self._auth_metadata
        return self._auth_metadata + tuple(trace_headers())

    @property
    def endpoint(self) -> str:
        """The daemon's address as ``grpc://host:port`` (or ``grpcs://``)."""
        scheme = "grpcs" if self._endpoint.tls else "grpc"
        return f"{scheme}://{self._endpoint.grpc_target}"

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return self._timeout if timeout is None else timeout

    def _ticket(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]],
        batch_size: Optional[int],
        string_view: bool = False,
    ) -> bytes:
        return query_ticket(pool_id, sql, params, batch_size, string_view=string_view)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"
