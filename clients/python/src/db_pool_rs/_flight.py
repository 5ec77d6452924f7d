"""Runs queries over Arrow Flight ``DoGet`` with one shared, thread-safe FlightClient.

The ticket is an encoded ``dbpool.v1.QueryTicket``. ``read_table`` collects the whole
stream; :class:`BatchStream` hands out record batches as they arrive so memory stays
bounded by one batch. Both are blocking; the async client runs them in threads.
"""

from __future__ import annotations

import threading
from typing import Iterator, List, Optional, Tuple

import grpc
import pyarrow as pa
import pyarrow.flight as flight

from ._status import from_flight_error
from .errors import DbPoolError

_FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)


class FlightQueries:
    """Owns the FlightClient of a pool client; safe to share between threads."""

    def __init__(self, location: str, headers: List[Tuple[bytes, bytes]]) -> None:
        self._location = location
        self._headers = headers
        self._lock = threading.Lock()
        self._client: Optional[flight.FlightClient] = None
        self._closed = False

    def _get_client(self) -> flight.FlightClient:
        with self._lock:
            if self._closed:
                raise DbPoolError("the client is closed", grpc.StatusCode.CANCELLED)
            if self._client is None:
                self._client = flight.FlightClient(self._location)
            return self._client

    def _options(self, timeout: Optional[float]) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(timeout=timeout, headers=self._headers)

    def open(self, ticket: bytes, timeout: Optional[float]) -> flight.FlightStreamReader:
        """Starts a DoGet; raises the mapped error if the server refuses the query."""
        client = self._get_client()
        try:
            return client.do_get(flight.Ticket(ticket), self._options(timeout))
        except _FLIGHT_ERRORS as e:
            raise from_flight_error(e) from None

    def read_table(self, ticket: bytes, timeout: Optional[float]) -> pa.Table:
        """Runs the query and returns the whole result as one Arrow table."""
        reader = self.open(ticket, timeout)
        try:
            return reader.read_all()
        except _FLIGHT_ERRORS as e:
            raise from_flight_error(e) from None

    def close(self) -> None:
        """Closes the FlightClient; later queries raise DbPoolError."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()


def next_batch(reader: flight.FlightStreamReader) -> Optional[pa.RecordBatch]:
    """Reads the next record batch, or returns None at the end of the stream."""
    try:
        chunk = reader.read_chunk()
    except StopIteration:
        return None
    except _FLIGHT_ERRORS as e:
        raise from_flight_error(e) from None
    return chunk.data


class BatchStream:
    """A blocking iterator of the record batches of one query, in server order.

    Use it in a ``for`` loop or a ``with`` block; leaving early (``close()``) cancels
    the server-side stream.
    """

    def __init__(self, reader: flight.FlightStreamReader) -> None:
        self._reader = reader
        self._done = False

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the result, known before the first batch."""
        return self._reader.schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._done:
            raise StopIteration
        try:
            batch = next_batch(self._reader)
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
            self._reader.cancel()

    def __enter__(self) -> "BatchStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
