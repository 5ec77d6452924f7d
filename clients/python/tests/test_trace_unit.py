"""Calls carry the caller's W3C trace context (`traceparent`) on gRPC and Flight.

A stand-in gRPC server records the metadata of every call and refuses it; the test checks
that the `traceparent` names the active OpenTelemetry span as the parent.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span

from db_pool_rs import AuthenticationError, DatabasePool, SyncDatabasePool

# A local provider: starting a span makes it current without touching global state.
_tracer = TracerProvider().get_tracer("db_pool_rs.tests")


def _assert_child_of(span: Span, metadata: dict) -> None:
    version, trace_id, parent_id, _flags = metadata["traceparent"].split("-")
    context = span.get_span_context()
    assert version == "00"
    assert trace_id == format(context.trace_id, "032x")
    assert parent_id == format(context.span_id, "016x")


def test_sync_calls_send_the_trace_context(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, token="t", timeout=5) as db, _tracer.start_as_current_span("op") as span:
        with pytest.raises(AuthenticationError):
            db.list_pools()
        with pytest.raises(AuthenticationError):
            db.query("default", "SELECT 1")
        with pytest.raises(AuthenticationError):
            db.bulk_insert("default", "t", pa.table({"id": [1]}))
    assert [m for m, _ in handler.calls] == [
        "/dbpool.v1.PoolService/ListPools",
        "/arrow.flight.protocol.FlightService/DoGet",
        "/arrow.flight.protocol.FlightService/DoPut",
    ]
    for _, metadata in handler.calls:
        assert metadata["authorization"] == "Bearer t"
        _assert_child_of(span, metadata)


async def test_async_calls_send_the_trace_context(recorder) -> None:
    endpoint, handler = recorder
    async with DatabasePool(endpoint, timeout=5) as db:
        with _tracer.start_as_current_span("op") as span:
            with pytest.raises(AuthenticationError):
                await db.execute("default", "SELECT 1")
            with pytest.raises(AuthenticationError):
                await db.query_arrow("default", "SELECT 1")  # runs in a worker thread
    assert len(handler.calls) == 2
    for _, metadata in handler.calls:
        _assert_child_of(span, metadata)


def test_each_call_carries_its_own_span(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, timeout=5) as db:
        spans = []
        for name in ("first", "second"):
            with _tracer.start_as_current_span(name) as span, pytest.raises(AuthenticationError):
                db.metrics()
            spans.append(span)
    for span, (_, metadata) in zip(spans, handler.calls):
        _assert_child_of(span, metadata)


def test_propagate_trace_false_sends_no_trace_context(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, token="t", timeout=5, propagate_trace=False) as db:
        with _tracer.start_as_current_span("op"):
            with pytest.raises(AuthenticationError):
                db.list_pools()
            with pytest.raises(AuthenticationError):
                db.query("default", "SELECT 1")
    assert len(handler.calls) == 2
    for _, metadata in handler.calls:
        assert "traceparent" not in metadata
        assert metadata["authorization"] == "Bearer t"


async def test_async_propagate_trace_false_sends_no_trace_context(recorder) -> None:
    endpoint, handler = recorder
    async with DatabasePool(endpoint, timeout=5, propagate_trace=False) as db:
        with _tracer.start_as_current_span("op"):
            with pytest.raises(AuthenticationError):
                await db.execute("default", "SELECT 1")
            with pytest.raises(AuthenticationError):
                await db.query_arrow("default", "SELECT 1")
    assert [("traceparent" in md) for _, md in handler.calls] == [False, False]


def test_no_active_span_sends_no_trace_context(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, timeout=5) as db:
        with pytest.raises(AuthenticationError):
            db.list_pools()
        with pytest.raises(AuthenticationError):
            db.query("default", "SELECT 1")
    assert [("traceparent" in md) for _, md in handler.calls] == [False, False]
