"""Queries over ``PoolService.Query`` (an Arrow IPC stream in chunks) instead of Flight.

A transaction belongs to the gRPC connection that began it: the daemon refuses its id
on any other connection. The Flight client is a second connection, so the statements
of a transaction, queries included, go over the PoolService channel. The response
chunks are read as one Arrow IPC stream; :class:`IpcStream` has the interface of
:class:`~db_pool_rs._flight.FlightStream`, so :class:`~db_pool_rs._flight.BatchStream`
and the async batch iterator work on it unchanged.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Iterator
from typing import Any, Optional

import grpc
import grpc.aio
import pyarrow as pa

from ._params import to_params
from ._proto import pool_pb2
from ._requests import check_sql
from ._status import from_grpc_error, past_deadline
from .errors import DbPoolError


def query_request(
    pool_id: str, sql: str, params: Any, batch_size: Optional[int], transaction_id: str
) -> pool_pb2.QueryRequest:
    """A ``QueryRequest`` for an Arrow IPC result inside a transaction."""
    return pool_pb2.QueryRequest(
        pool_id=pool_id,
        sql=check_sql(sql),
        params=to_params(params),
        batch_size=batch_size or 0,
        transaction_id=transaction_id,
    )


class _ChunkFile(io.RawIOBase):
    """A readable file over the ``arrow_ipc`` chunks ``next_chunk`` returns (None: end).

    An error of the call is kept in ``error`` so the reader can raise it instead of
    whatever pyarrow makes of a failed read.
    """

    def __init__(self, next_chunk: Callable[[], Optional[bytes]]) -> None:
        super().__init__()
        self._next_chunk = next_chunk
        self._buf = memoryview(b"")
        self.error: Optional[BaseException] = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                chunk = self._next_chunk()
            except BaseException as e:
                self.error = e
                raise
            if chunk is None:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class IpcStream:
    """One ``Query`` call's result as record batches, read as they arrive."""

    def __init__(
        self,
        next_chunk: Callable[[], Optional[bytes]],
        cancel: Callable[[], Any],
        deadline: Optional[float],
    ) -> None:
        self._file = _ChunkFile(next_chunk)
        self._cancel = cancel
        self._deadline = deadline
        self._started = time.monotonic()
        # Reads the schema, the first chunk: a refused query raises here.
        self._reader = self._guard(lambda: pa.ipc.open_stream(self._file))

    def _guard(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except DbPoolError:
            raise
        except Exception as e:
            raise self._mapped(e) from None

    def _mapped(self, e: BaseException) -> DbPoolError:
        cause = self._file.error or e
        if isinstance(cause, grpc.RpcError):
            error = from_grpc_error(cause)
        elif isinstance(cause, DbPoolError):
            error = cause
        else:
            error = DbPoolError(f"reading the query result failed: {cause}", grpc.StatusCode.INTERNAL)
        return past_deadline(error, self._deadline, self._started, time.monotonic())

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the result."""
        return self._reader.schema

    def read_all(self) -> pa.Table:
        """Reads every remaining batch into one table."""
        return self._guard(self._reader.read_all)

    def next_batch(self) -> Optional[pa.RecordBatch]:
        """Reads the next record batch, or returns None at the end of the stream."""

        def read() -> Optional[pa.RecordBatch]:
            try:
                return self._reader.read_next_batch()
            except StopIteration:
                return None

        return self._guard(read)

    def cancel(self) -> None:
        """Cancels the call (the server stops producing batches)."""
        self._cancel()


def _chunk_of(response: Any) -> bytes:
    if response.WhichOneof("payload") != "arrow_ipc":
        raise DbPoolError("the daemon sent rows instead of Arrow IPC", grpc.StatusCode.INTERNAL)
    return bytes(response.arrow_ipc)


def open_sync(call: Any, deadline: Optional[float]) -> IpcStream:
    """Reads a blocking ``stub.Query(...)`` response iterator."""
    responses: Iterator[Any] = iter(call)

    def next_chunk() -> Optional[bytes]:
        response = next(responses, None)
        return None if response is None else _chunk_of(response)

    return IpcStream(next_chunk, call.cancel, deadline)


def open_async(call: Any, loop: asyncio.AbstractEventLoop, deadline: Optional[float]) -> IpcStream:
    """Reads a ``grpc.aio`` Query call from a worker thread (never from the loop itself):
    each read waits for the loop to fetch the next message."""

    def next_chunk() -> Optional[bytes]:
        response = asyncio.run_coroutine_threadsafe(call.read(), loop).result()
        return None if response is grpc.aio.EOF else _chunk_of(response)

    def cancel() -> None:
        loop.call_soon_threadsafe(call.cancel)

    return IpcStream(next_chunk, cancel, deadline)
