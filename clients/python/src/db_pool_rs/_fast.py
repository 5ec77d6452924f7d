"""Whole query results of a transaction over ``PoolService.Query``, read natively.

A transaction's statements must use the gRPC channel that began it, so its ``query`` and
``query_arrow`` cannot use Arrow Flight. The daemon encodes a ``Query`` result as one
Arrow IPC stream and sends what is ready at once in one message of up to 1 MiB
(crates/dbpool-server/src/ipc_chunks.rs): a small result is a single message (schema,
batch, end marker), a larger one several. The blocking client reads them on the calling
thread, the asyncio client awaits them on its loop (``grpc.aio``), with no worker thread
and no protobuf object: a ``QueryResponse`` carrying ``arrow_ipc`` is the field's tag,
its length and the bytes, copied once into aligned Arrow memory that pyarrow and Polars
then share. (Queries outside a transaction use Arrow Flight: on this machine pyarrow's
C++ Flight client costs less CPU per call than grpcio; docs/performance.md, issue 19.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import grpc
import pyarrow as pa

from ._proto import pool_pb2
from .errors import DbPoolError

#: The method of whole transaction results.
QUERY_METHOD = "/dbpool.v1.PoolService/Query"
#: The tag of ``QueryResponse.arrow_ipc`` (field 1, length-delimited).
_ARROW_IPC_TAG = 0x0A

Chunk = Union[bytes, memoryview, pa.Buffer]


def query_method(channel: Any) -> Any:
    """``PoolService.Query`` on ``channel`` (``grpc`` or ``grpc.aio``), responses as raw bytes."""
    return channel.unary_stream(
        QUERY_METHOD,
        request_serializer=pool_pb2.QueryRequest.SerializeToString,
        response_deserializer=None,
        _registered_method=True,
    )


def _internal(message: str) -> DbPoolError:
    return DbPoolError(message, grpc.StatusCode.INTERNAL)


def _aligned(data: Any) -> pa.Buffer:
    # The payload sits a few bytes into the message, so its Arrow buffers would not be
    # 8-byte aligned and Polars would copy every column. One copy per message into
    # Arrow's own (64-byte aligned) memory keeps every later step zero-copy; the message
    # itself is freed as soon as it is copied.
    buffer = pa.allocate_buffer(len(data))
    memoryview(buffer).cast("B")[:] = data
    return buffer


def ipc_chunk(raw: bytes) -> pa.Buffer:
    """The ``arrow_ipc`` bytes of one encoded ``QueryResponse``, in aligned Arrow memory."""
    n = len(raw)
    if n >= 2 and raw[0] == _ARROW_IPC_TAG:
        length, shift, i = 0, 0, 1
        while i < n and shift < 64:
            byte = raw[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if byte < 0x80:
                if i + length == n:
                    return _aligned(memoryview(raw)[i:])
                break
            shift += 7
    # Anything else (another field, unknown fields): the protobuf decoder decides.
    try:
        response = pool_pb2.QueryResponse.FromString(raw)
    except Exception as e:
        raise _internal(f"the daemon sent an undecodable QueryResponse: {e}") from None
    if response.WhichOneof("payload") != "arrow_ipc":
        raise _internal("the daemon sent rows instead of Arrow IPC")
    return _aligned(response.arrow_ipc)


class _Chunks:
    """A read-only file over the chunks for pyarrow; reads inside one chunk are views.

    The daemon cuts its messages at IPC message boundaries, so pyarrow's reads (a
    message's header, then its body) never straddle two chunks; if one does, it is
    joined.
    """

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._chunks = list(chunks)
        self._index = 0
        self._pos = 0
        self.closed = False

    def read(self, n: int = -1) -> Chunk:
        out: list[Chunk] = []
        want = n if n >= 0 else None
        while self._index < len(self._chunks) and (want is None or want > 0):
            chunk = self._chunks[self._index]
            left = len(chunk) - self._pos
            take = left if want is None else min(want, left)
            out.append(memoryview(chunk)[self._pos : self._pos + take])
            self._pos += take
            if self._pos == len(chunk):
                self._index += 1
                self._pos = 0
            if want is not None:
                want -= take
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def decode(chunks: Sequence[Chunk]) -> pa.Table:
    """The Arrow table of a ``Query`` result's chunks (one IPC stream), sharing their memory."""
    if not chunks:
        raise _internal("the daemon ended the query without a result")
    source: Any = pa.BufferReader(chunks[0]) if len(chunks) == 1 else _Chunks(chunks)
    try:
        return pa.ipc.open_stream(source).read_all()
    except (pa.ArrowException, OSError, ValueError) as e:  # truncated reads are OSErrors
        raise _internal(f"reading the query result failed: {e}") from None


def read_sync(
    method: Any, request: pool_pb2.QueryRequest, deadline: Optional[float], metadata: Any
) -> list[pa.Buffer]:
    """Runs the query with a blocking ``method`` (see :func:`query_method`); its chunks.

    A failed call raises its ``grpc.RpcError``.
    """
    call = method(request, timeout=deadline, metadata=metadata)
    try:
        return [ipc_chunk(raw) for raw in call]
    except BaseException:
        call.cancel()
        raise


async def read_async(
    method: Any, request: pool_pb2.QueryRequest, deadline: Optional[float], metadata: Any
) -> list[pa.Buffer]:
    """Runs the query with a ``grpc.aio`` ``method`` on the running loop; its chunks.

    A failed call raises its ``grpc.aio.AioRpcError``; a cancelled task cancels the call.
    """
    call = method(request, timeout=deadline, metadata=metadata)
    chunks: list[pa.Buffer] = []
    try:
        async for raw in call:
            chunks.append(ipc_chunk(raw))
    except BaseException:
        call.cancel()
        raise
    return chunks
