"""Whole-result queries over ``PoolService.Query`` on the client's own gRPC channel.

``query`` and ``query_arrow`` read the whole result, so they need no Arrow Flight stream:
the daemon encodes a ``Query`` result as one Arrow IPC stream and sends everything that
is ready at once in one message (crates/dbpool-server/src/ipc_chunks.rs), so a small
result is a single message — schema, batch and end marker — that pyarrow decodes in
place. A large result keeps streaming over the same call, up to 1 MiB per message. Nothing runs twice and nothing switches connections; the
asyncio client awaits the messages on its loop (``grpc.aio``) instead of a worker thread.

The responses are read as raw bytes: a ``QueryResponse`` carrying ``arrow_ipc`` is the
field's tag, its length and the bytes, which are copied once into aligned Arrow memory
(no protobuf object in between); pyarrow and Polars then share that memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import grpc
import pyarrow as pa

from ._proto import pool_pb2
from .errors import DbPoolError

#: The method both clients call for whole-result queries.
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


DO_GET_METHOD = "/arrow.flight.protocol.FlightService/DoGet"


def do_get_method(channel: Any) -> Any:
    """Flight ``DoGet`` on ``channel``: an encoded ``Ticket`` in, raw ``FlightData`` out."""
    return channel.unary_stream(DO_GET_METHOD, request_serializer=None, response_deserializer=None)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def flight_ticket(ticket: bytes) -> bytes:
    """An encoded ``arrow.flight.protocol.Ticket`` (its one field: the ticket bytes)."""
    return b"\x0a" + _varint(len(ticket)) + ticket


def _fields(raw: bytes) -> dict[int, memoryview]:
    view = memoryview(raw)
    n, i, out = len(raw), 0, {}
    while i < n:
        key, shift = 0, 0
        while True:
            byte = raw[i]
            i += 1
            key |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        length, shift = 0, 0
        while True:
            byte = raw[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if key & 7 == 2:
            out[key >> 3] = view[i : i + length]
            i += length
    return out


def flight_chunk(raw: bytes) -> Optional[pa.Buffer]:
    """One ``FlightData`` as a framed IPC message in aligned memory (None: no message)."""
    fields = _fields(raw)
    header = fields.get(2)
    if header is None or len(header) == 0:
        return None
    body = fields.get(1000, memoryview(b""))
    padded = (len(header) + 7) // 8 * 8
    buffer = pa.allocate_buffer(8 + padded + len(body))
    out = memoryview(buffer).cast("B")
    out[:4] = b"\xff\xff\xff\xff"
    out[4:8] = padded.to_bytes(4, "little")
    out[8 : 8 + len(header)] = header
    out[8 + len(header) : 8 + padded] = bytes(padded - len(header))
    out[8 + padded :] = body
    return buffer


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


def read_sync(method: Any, request: Any, deadline: Optional[float], metadata: Any, to_chunk: Any = None) -> list[pa.Buffer]:
    """Runs the query with a blocking ``method`` (see :func:`query_method`); its chunks.

    A failed call raises its ``grpc.RpcError``.
    """
    call = method(request, timeout=deadline, metadata=metadata)
    try:
        if to_chunk is not None:
            return [c for c in map(to_chunk, call) if c is not None]
        return [ipc_chunk(raw) for raw in call]
    except BaseException:
        call.cancel()
        raise


async def read_async(
    method: Any, request: Any, deadline: Optional[float], metadata: Any, to_chunk: Any = None
) -> list[pa.Buffer]:
    """Runs the query with a ``grpc.aio`` ``method`` on the running loop; its chunks.

    A failed call raises its ``grpc.aio.AioRpcError``; a cancelled task cancels the call.
    """
    call = method(request, timeout=deadline, metadata=metadata)
    chunks: list[pa.Buffer] = []
    try:
        async for raw in call:
            c = (to_chunk or ipc_chunk)(raw)
            if c is not None:
                chunks.append(c)
    except BaseException:
        call.cancel()
        raise
    return chunks
