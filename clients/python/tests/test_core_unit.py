"""Unit tests of the sans-io core (no daemon): the create_pool keywords, and plans driven
by both shells over scripted steps."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import grpc
import pytest

from db_pool_rs import (
    DatabasePool,
    DbPoolError,
    InvalidArgumentError,
    SyncDatabasePool,
    TransactionNotFoundError,
)
from db_pool_rs._options import POOL_OPTION_NAMES, CreatePoolArgs
from db_pool_rs._proto import pool_pb2
from db_pool_rs._requests import create_pool_request
from db_pool_rs._steps import Rpc, Step

NOWHERE = "grpc://127.0.0.1:1"


def test_create_pool_request_sends_the_options_given() -> None:
    request = create_pool_request(
        "p", "postgres://db/app", max_waiters=7, statement_cache_size=0, prepared_statements="unnamed"
    )
    o = request.options
    assert (o.max_waiters, o.max_connections) == (7, 0)  # None: the server's default
    assert o.HasField("statement_cache_size") and o.statement_cache_size == 0  # 0 is "off"
    assert o.prepared_statements == pool_pb2.PREPARED_STATEMENTS_UNNAMED
    assert not create_pool_request("p").options.HasField("statement_cache_size")
    fields = create_pool_request("p", db_type="postgresql", port=5433, settings={"a": "b"}, lazy=True)
    assert (fields.db_type, fields.port, fields.host, dict(fields.settings), fields.lazy) == (
        "postgresql",
        5433,
        "",
        {"a": "b"},
        True,
    )


def test_create_pool_refuses_unknown_keywords_and_modes() -> None:
    with pytest.raises(TypeError, match="max_conections"):
        create_pool_request("p", max_conections=3)  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentError, match="prepared_statements"):
        create_pool_request("p", prepared_statements="sometimes")


@pytest.mark.parametrize("client", [SyncDatabasePool, DatabasePool])
def test_create_pool_spells_out_every_keyword(client: type) -> None:
    params = inspect.signature(client.create_pool).parameters
    assert list(params) == ["self", "pool_id", "url", *CreatePoolArgs.__annotations__, "timeout"]
    assert all(name in params for name in POOL_OPTION_NAMES)
    assert params["lazy"].default is False and params["max_connections"].default is None
    assert params["max_connections"].kind is inspect.Parameter.KEYWORD_ONLY


def _scripted(replies: dict[str, Any]) -> Callable[[Step], Any]:
    """A ``_perform`` answering each Rpc by its method: a reply, or an exception to raise."""
    calls: list[str] = []

    def perform(step: Step) -> Any:
        assert isinstance(step, Rpc)
        calls.append(step.method)
        reply = replies[step.method]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    perform.calls = calls  # type: ignore[attr-defined]
    return perform


GONE = DbPoolError("transaction `t1` not found", grpc.StatusCode.NOT_FOUND)


def test_sync_shell_runs_the_transaction_plans() -> None:
    client = SyncDatabasePool(NOWHERE, timeout=5)
    try:
        perform = _scripted(
            {
                "BeginTransaction": pool_pb2.BeginTransactionResponse(transaction_id="t1"),
                "Execute": pool_pb2.ExecuteResponse(rows_affected=3),
                "Commit": GONE,
            }
        )
        client._perform = perform  # type: ignore[method-assign]
        tx = client.transaction("pg")
        assert tx.execute("UPDATE t SET a = 1") == 3
        with pytest.raises(TransactionNotFoundError, match="t1"):
            tx.commit()
        assert tx.state == "failed"
        assert perform.calls == ["BeginTransaction", "Execute", "Commit"]  # type: ignore[attr-defined]
    finally:
        client.close()


async def test_async_shell_runs_the_same_plans() -> None:
    client = DatabasePool(NOWHERE)
    try:
        perform = _scripted(
            {
                "BeginTransaction": pool_pb2.BeginTransactionResponse(transaction_id="t1"),
                "Rollback": pool_pb2.EndTransactionResponse(),
                "Execute": GONE,
            }
        )

        async def aperform(step: Step) -> Any:
            return perform(step)

        client._perform = aperform  # type: ignore[method-assign]
        with pytest.raises(ZeroDivisionError):
            async with client.transaction("pg") as tx:
                with pytest.raises(TransactionNotFoundError):
                    await tx.execute("SELECT 1")
                raise ZeroDivisionError
        assert tx.state == "rolled back"
        assert perform.calls == ["BeginTransaction", "Execute", "Rollback"]  # type: ignore[attr-defined]
    finally:
        await client.close()
