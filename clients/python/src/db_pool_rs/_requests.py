"""Builds the protobuf requests shared by the sync and async clients, and reads replies.

Keeping this in one place means :class:`~db_pool_rs.SyncDatabasePool` and
:class:`~db_pool_rs.DatabasePool` differ only in how they wait.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import grpc

from ._params import to_params
from ._proto import flight_pb2, pool_pb2
from ._status import make_error
from .errors import InvalidArgumentError
from .models import StatementResult

#: A statement of ``execute_batch``: plain SQL, or SQL with its parameters.
StatementLike = Union[str, Tuple[str, Optional[Sequence[Any]]]]


def _invalid(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, grpc.StatusCode.INVALID_ARGUMENT)


def check_sql(sql: Any, what: str = "sql") -> str:
    """Rejects non-string SQL early, with a clear message."""
    if not isinstance(sql, str):
        raise _invalid(f"{what} must be a str, not {type(sql).__name__}")
    return sql


def create_pool_request(
    pool_id: str,
    *,
    url: Optional[str] = None,
    db_type: Optional[str] = None,
    host: Optional[str] = None,
    port: Optional[int] = None,
    database: Optional[str] = None,
    username: Optional[str] = None,
    password: Optional[str] = None,
    max_connections: Optional[int] = None,
    min_connections: Optional[int] = None,
    acquire_timeout_ms: Optional[int] = None,
    idle_timeout_ms: Optional[int] = None,
    max_lifetime_ms: Optional[int] = None,
    statement_timeout_ms: Optional[int] = None,
    batch_size: Optional[int] = None,
    lazy: bool = False,
) -> pool_pb2.CreatePoolRequest:
    """Builds a CreatePoolRequest; None leaves a field to the server's default."""
    options = pool_pb2.PoolOptions(
        max_connections=max_connections or 0,
        min_connections=min_connections or 0,
        acquire_timeout_ms=acquire_timeout_ms or 0,
        idle_timeout_ms=idle_timeout_ms or 0,
        max_lifetime_ms=max_lifetime_ms or 0,
        statement_timeout_ms=statement_timeout_ms or 0,
        batch_size=batch_size or 0,
    )
    return pool_pb2.CreatePoolRequest(
        pool_id=pool_id,
        url=url or "",
        db_type=db_type or "",
        host=host or "",
        port=port or 0,
        database=database or "",
        username=username or "",
        password=password or "",
        options=options,
        lazy=lazy,
    )


def query_ticket(
    pool_id: str, sql: str, params: Optional[Iterable[Any]], batch_size: Optional[int] = None
) -> bytes:
    """Encodes the Flight ticket (a ``dbpool.v1.QueryTicket``) of a query."""
    ticket = flight_pb2.QueryTicket(
        pool_id=pool_id, sql=check_sql(sql), params=to_params(params), batch_size=batch_size or 0
    )
    return ticket.SerializeToString()


def execute_request(pool_id: str, sql: str, params: Optional[Iterable[Any]]) -> pool_pb2.ExecuteRequest:
    """Builds an ExecuteRequest."""
    return pool_pb2.ExecuteRequest(pool_id=pool_id, sql=check_sql(sql), params=to_params(params))


def _statement(item: StatementLike, index: int) -> pool_pb2.Statement:
    if isinstance(item, str):
        return pool_pb2.Statement(sql=item)
    if isinstance(item, tuple) and len(item) == 2:
        sql, params = item
        try:
            converted = to_params(params)
        except InvalidArgumentError as e:
            raise type(e)(f"statements[{index}].{e.message}", e.code) from None
        return pool_pb2.Statement(sql=check_sql(sql, f"statements[{index}] sql"), params=converted)
    raise _invalid(
        f"statements[{index}] must be a str or a (sql, params) tuple, not {type(item).__name__}"
    )


def execute_batch_request(
    pool_id: str, statements: Iterable[StatementLike], transaction: bool
) -> pool_pb2.ExecuteBatchRequest:
    """Builds an ExecuteBatchRequest from ``str`` or ``(sql, params)`` items."""
    if isinstance(statements, (str, bytes)):
        raise _invalid("statements must be a list of statements, not a single string")
    return pool_pb2.ExecuteBatchRequest(
        pool_id=pool_id,
        statements=[_statement(s, i) for i, s in enumerate(statements)],
        transaction=transaction,
    )


def batch_results(
    reply: pool_pb2.ExecuteBatchResponse, transaction: bool
) -> Union[List[int], List[StatementResult]]:
    """Rows affected per statement (transaction) or one StatementResult per statement."""
    results = sorted((StatementResult.from_proto(r) for r in reply.results), key=lambda r: r.index)
    if not transaction:
        return results
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:  # the server reports a failed transaction as an error status
        raise make_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"statement {failed.index} failed: {failed.error}",
            {"sqlstate": failed.code} if failed.code else {},
        )
    return [r.rows_affected for r in results]
