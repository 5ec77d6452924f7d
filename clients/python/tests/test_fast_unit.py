"""Unit tests of the whole-result reader (no daemon): raw responses to aligned Arrow
memory, several messages to one table, and what a broken response raises."""

from __future__ import annotations

import io

import grpc
import polars as pl
import pyarrow as pa
import pytest

from db_pool_rs import DbPoolError
from db_pool_rs._core import to_polars
from db_pool_rs._fast import decode, ipc_chunk
from db_pool_rs._proto import pool_pb2

TABLE = pa.table(
    {
        "n": pa.array(range(30_000), pa.int64()),
        "s": pa.array([None if i % 7 == 0 else f"row {i}" for i in range(30_000)]),
    }
)


def _ipc_messages(table: pa.Table, parts: int) -> list[bytes]:
    """``table`` as the chunks of one IPC stream: schema with the first batch, then a
    batch per chunk, the end marker with the last (as the daemon cuts them)."""
    sink = io.BytesIO()
    writer = pa.ipc.new_stream(sink, table.schema)
    chunks = []
    for batch in table.to_batches(max_chunksize=-(-table.num_rows // parts)):
        writer.write_batch(batch)
        chunks.append(sink.getvalue())
        sink.seek(0)
        sink.truncate()
    writer.close()
    chunks[-1] += sink.getvalue()
    return chunks


def _responses(chunks: list[bytes]) -> list[bytes]:
    return [pool_pb2.QueryResponse(arrow_ipc=c).SerializeToString() for c in chunks]


@pytest.mark.parametrize("parts", [1, 4])
def test_chunks_decode_to_the_table_in_aligned_shared_memory(parts: int) -> None:
    table = decode([ipc_chunk(r) for r in _responses(_ipc_messages(TABLE, parts))])
    assert table.equals(TABLE)
    data = table.column("n").chunks[0].buffers()[1]
    assert data.address % 8 == 0
    frame = to_polars(table, lazy=False)
    # Polars adopts the aligned column instead of copying it.
    assert frame.to_arrow().column("n").chunks[0].buffers()[1].address == data.address
    assert frame["s"].null_count() == table.column("s").null_count
    assert frame.equals(pl.from_arrow(TABLE))


def test_protobuf_forms_the_fast_slicing_does_not_take() -> None:
    (chunk,) = _ipc_messages(TABLE.slice(0, 10), 1)
    # The payload followed by an unknown field: the protobuf decoder reads it.
    odd = pool_pb2.QueryResponse(arrow_ipc=chunk).SerializeToString() + b"\x98\x01\x07"
    assert decode([ipc_chunk(odd)]).equals(TABLE.slice(0, 10))
    rows = pool_pb2.QueryResponse(rows=pool_pb2.RowBatch(columns=["n"])).SerializeToString()
    with pytest.raises(DbPoolError, match="rows instead of Arrow IPC") as info:
        ipc_chunk(rows)
    assert info.value.code is grpc.StatusCode.INTERNAL
    with pytest.raises(DbPoolError, match="undecodable"):
        ipc_chunk(b"\x0a\xff")


def test_missing_or_broken_results_raise_internal() -> None:
    with pytest.raises(DbPoolError, match="without a result") as info:
        decode([])
    assert info.value.code is grpc.StatusCode.INTERNAL
    (chunk,) = _ipc_messages(TABLE.slice(0, 10), 1)
    with pytest.raises(DbPoolError, match="reading the query result failed"):
        decode([ipc_chunk(pool_pb2.QueryResponse(arrow_ipc=chunk[:-40]).SerializeToString())])
