"""Runs queries over Arrow Flight ``DoGet`` and bulk inserts over ``DoPut`` with one
shared, thread-safe FlightClient.

The ticket is an encoded ``dbpool.v1.QueryTicket``. ``read_table`` collects the whole
stream; :class:`BatchStream` hands out record batches as they arrive so memory stays
bounded by one batch. ``bulk_insert`` streams a table's record batches to the daemon.
All are blocking; the async client runs them in threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Optional

import grpc
import pyarrow as pa
from pyarrow import flight

from ._proto import flight_pb2
from ._status import from_flight_error, past_deadline
from ._trace import trace_headers
from .errors import DbPoolError

_FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
#: Rows per record batch a bulk insert sends (larger table chunks are split).
BULK_CHUNK_ROWS = 65_536


class FlightQueries:
    """Owns the FlightClient of a pool client; safe to share between threads."""

    def __init__(
        self,
        location: str,
        headers: list[tuple[bytes, bytes]],
        propagate_trace: bool = True,
        tls: Optional[dict[str, bytes]] = None,
        channel_options: Optional[list[tuple[str, str]]] = None,
    ) -> None:
        self._location = location
        self._tls = tls or {}
        self._channel_options = channel_options or []
        self._headers = headers
        self._propagate_trace = propagate_trace
        self._lock = threading.Lock()
        self._client: Optional[flight.FlightClient] = None
        self._closed = False

    def _get_client(self) -> flight.FlightClient:
        with self._lock:
            if self._closed:
                raise DbPoolError("the client is closed", grpc.StatusCode.CANCELLED)
            if self._client is None:
                self._client = flight.FlightClient(self._location, generic_options=self._channel_options, **self._tls)
            return self._client

    def _options(self, timeout: Optional[float]) -> flight.FlightCallOptions:
        headers = self._headers
        if self._propagate_trace:
            headers = headers + [(k.encode(), v.encode()) for k, v in trace_headers()]
        return flight.FlightCallOptions(timeout=timeout, headers=headers)

    def open(self, ticket: bytes, timeout: Optional[float]) -> FlightStream:
        """Starts a DoGet; raises the mapped error if the server refuses the query."""
        client = self._get_client()
        started = time.monotonic()
        try:
            reader = client.do_get(flight.Ticket(ticket), self._options(timeout))
        except _FLIGHT_ERRORS as e:
            raise _mapped(e, timeout, started) from None
        return FlightStream(reader, timeout, started)

    def read_table(self, ticket: bytes, timeout: Optional[float]) -> pa.Table:
        """Runs the query and returns the whole result as one Arrow table."""
        return self.open(ticket, timeout).read_all()

    def bulk_insert(
        self, command: bytes, table: pa.Table, timeout: Optional[float], chunk_rows: int = BULK_CHUNK_ROWS
    ) -> int:
        """Streams ``table`` with a DoPut whose descriptor command is ``command``.

        Returns ``rows_inserted`` of the daemon's one ``BulkInsertResult``. The daemon
        writes all rows or none.
        """
        client = self._get_client()
        started = time.monotonic()
        descriptor = flight.FlightDescriptor.for_command(command)
        try:
            writer, reader = client.do_put(descriptor, table.schema, self._options(timeout))
        except _FLIGHT_ERRORS as e:
            raise _mapped(e, timeout, started) from None
        try:
            for batch in table.to_batches(max_chunksize=chunk_rows):
                writer.write_batch(batch)
            writer.done_writing()
            metadata = reader.read()
        except _FLIGHT_ERRORS as e:
            # The daemon may refuse the call while batches are still going out; the
            # call's status (the real reason) is then what close() raises.
            error = _mapped(e, timeout, started)
            try:
                writer.close()
            except _FLIGHT_ERRORS as closing:
                error = _mapped(closing, timeout, started)
            except Exception:
                pass
            raise error from None
        try:
            writer.close()
        except _FLIGHT_ERRORS as e:
            raise _mapped(e, timeout, started) from None
        if metadata is None:
            raise DbPoolError("the daemon sent no BulkInsertResult", grpc.StatusCode.INTERNAL)
        return int(flight_pb2.BulkInsertResult.FromString(metadata.to_pybytes()).rows_inserted)

    def close(self) -> None:
        """Closes the FlightClient; later queries raise DbPoolError."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _mapped(error: Exception, deadline: Optional[float], started: float) -> DbPoolError:
    return past_deadline(from_flight_error(error), deadline, started, time.monotonic())


class FlightStream:
    """One DoGet response stream, with the deadline it runs under (for error mapping)."""

    def __init__(self, reader: flight.FlightStreamReader, deadline: Optional[float], started: float) -> None:
        self.reader = reader
        self._deadline = deadline
        self._started = started

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the result."""
        return self.reader.schema

    def read_all(self) -> pa.Table:
        """Reads every remaining batch into one table."""
        try:
            return self.reader.read_all()
        except _FLIGHT_ERRORS as e:
            raise _mapped(e, self._deadline, self._started) from None

    def next_batch(self) -> Optional[pa.RecordBatch]:
        """Reads the next record batch, or returns None at the end of the stream."""
        try:
            chunk = self.reader.read_chunk()
        except StopIteration:
            return None
        except _FLIGHT_ERRORS as e:
            raise _mapped(e, self._deadline, self._started) from None
        return chunk.data

    def cancel(self) -> None:
        """Cancels the call (the server stops producing batches)."""
        self.reader.cancel()


class BatchStream:
    """A blocking iterator of the record batches of one query, in server order.

    Use it in a ``for`` loop or a ``with`` block; leaving early (``close()``) cancels
    the server-side stream.
    """

    def __init__(self, stream: FlightStream) -> None:
        self._stream = stream
        self._done = False

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the result, known before the first batch."""
        return self._stream.schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._done:
            raise StopIteration
        try:
            batch = self._stream.next_batch()
        except BaseException:
            self._done = True
            raise
        if batch is None:
            self._done = True
            raise StopIteration
        return batch

    def close(self) -> None:
        """Stops reading; cancels the call if the stream has not ended yet."""
        if not self._done:
            self._done = True
            self._stream.cancel()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
