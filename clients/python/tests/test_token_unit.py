"""The token travels as `authorization: Bearer <token>` on gRPC and Flight calls.

A stand-in gRPC server records the metadata of every call and refuses it with
UNAUTHENTICATED, as the daemon with tenants does (tests/test_auth.py runs the real one).
"""

from __future__ import annotations

import pytest

from db_pool_rs import AuthenticationError, DatabasePool, SyncDatabasePool


def test_sync_calls_send_the_token(recorder) -> None:
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, token="s3cret", timeout=5) as db:
        with pytest.raises(AuthenticationError, match="bad token"):
            db.list_pools()
        with pytest.raises(AuthenticationError, match="bad token"):
            db.query("default", "SELECT 1")
    assert [m for m, _ in handler.calls] == [
        "/dbpool.v1.PoolService/ListPools",
        "/arrow.flight.protocol.FlightService/DoGet",
    ]
    assert all(md.get("authorization") == "Bearer s3cret" for _, md in handler.calls)


async def test_async_calls_send_the_token(recorder) -> None:
    endpoint, handler = recorder
    async with DatabasePool(endpoint, token="t0k", timeout=5) as db:
        with pytest.raises(AuthenticationError):
            await db.execute("default", "SELECT 1")
        with pytest.raises(AuthenticationError):
            await db.query_arrow("default", "SELECT 1")
    assert [md.get("authorization") for _, md in handler.calls] == ["Bearer t0k", "Bearer t0k"]


def test_no_token_no_header(recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBPOOL_TOKEN", raising=False)
    endpoint, handler = recorder
    with SyncDatabasePool(endpoint, timeout=5) as db, pytest.raises(AuthenticationError):
        db.metrics()
    assert "authorization" not in handler.calls[0][1]
