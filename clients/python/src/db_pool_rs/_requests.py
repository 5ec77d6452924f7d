"""Builds the protobuf requests shared by the sync and async clients, and reads replies.

Keeping this in one place means :class:`~db_pool_rs.SyncDatabasePool` and
:class:`~db_pool_rs.DatabasePool` differ only in how they wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

import grpc
import polars as pl
import pyarrow as pa
from google.protobuf import any_pb2

from ._options import CONNECTION_NAMES, POOL_OPTION_NAMES, CreatePoolArgs, check_keywords
from ._params import to_params
from ._proto import flight_pb2, pool_pb2
from ._status import make_error
from .errors import InvalidArgumentError, ParamTypeError
from .models import StatementResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: A statement of ``execute_batch``: plain SQL, or SQL with its parameters.
StatementLike = Union[str, tuple[str, Optional[Sequence[Any]]]]


def _invalid(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, grpc.StatusCode.INVALID_ARGUMENT)


def check_sql(sql: Any, what: str = "sql") -> str:
    """Rejects non-string SQL early, with a clear message."""
    if not isinstance(sql, str):
        raise _invalid(f"{what} must be a str, not {type(sql).__name__}")
    return sql


#: ``prepared_statements`` names → ``dbpool.v1.PreparedStatements`` values.
_PREPARED_STATEMENTS = {
    "auto": pool_pb2.PREPARED_STATEMENTS_AUTO_UNSPECIFIED,
    "named": pool_pb2.PREPARED_STATEMENTS_NAMED,
    "unnamed": pool_pb2.PREPARED_STATEMENTS_UNNAMED,
}


def _prepared_statements(mode: Any) -> int:
    """``"auto"``, ``"named"`` or ``"unnamed"`` as the proto enum value."""
    if not isinstance(mode, str) or mode not in _PREPARED_STATEMENTS:
        raise _invalid(f"prepared_statements must be 'auto', 'named' or 'unnamed', not {mode!r}")
    return _PREPARED_STATEMENTS[mode]


#: ``reset_sessions`` names → ``dbpool.v1.ResetSessions`` values.
_RESET_SESSIONS = {
    "auto": pool_pb2.RESET_SESSIONS_AUTO_UNSPECIFIED,
    "always": pool_pb2.RESET_SESSIONS_ALWAYS,
}


def _reset_sessions(mode: Any) -> int:
    """``"auto"`` or ``"always"`` as the proto enum value."""
    if not isinstance(mode, str) or mode not in _RESET_SESSIONS:
        raise _invalid(f"reset_sessions must be 'auto' or 'always', not {mode!r}")
    return _RESET_SESSIONS[mode]


def _option(name: str, value: Any) -> Any:
    if name == "prepared_statements":
        return _prepared_statements(value)
    if name == "reset_sessions":
        return _reset_sessions(value)
    return value


def create_pool_request(
    pool_id: str, url: Optional[str] = None, **fields: Unpack[CreatePoolArgs]
) -> pool_pb2.CreatePoolRequest:
    """Builds a CreatePoolRequest; None leaves a field to the server's default.

    An option given as 0 is sent as 0: for ``statement_cache_size`` (a proto
    ``optional``) that means caching off, for the others the server's default.
    """
    check_keywords(fields)
    given: Mapping[str, Any] = fields
    options = pool_pb2.PoolOptions()
    for name in POOL_OPTION_NAMES:
        if given.get(name) is not None:
            setattr(options, name, _option(name, given[name]))
    connection = {name: given[name] for name in CONNECTION_NAMES if given.get(name)}
    return pool_pb2.CreatePoolRequest(
        pool_id=pool_id,
        url=url or "",
        options=options,
        backup_urls=list(given.get("backup_urls") or ()),
        settings=dict(given.get("settings") or {}),
        lazy=given.get("lazy", False),
        **connection,
    )


def query_ticket(
    pool_id: str,
    sql: str,
    params: Optional[Iterable[Any]],
    batch_size: Optional[int] = None,
    transaction_id: str = "",
    string_view: bool = False,
) -> bytes:
    """Encodes the Flight ticket (a ``dbpool.v1.QueryTicket``) of a query."""
    ticket = flight_pb2.QueryTicket(
        pool_id=pool_id,
        sql=check_sql(sql),
        params=to_params(params),
        batch_size=batch_size or 0,
        transaction_id=transaction_id,
        string_view=string_view,
    )
    return ticket.SerializeToString()


def execute_request(
    pool_id: str, sql: str, params: Optional[Iterable[Any]], transaction_id: str = ""
) -> pool_pb2.ExecuteRequest:
    """Builds an ExecuteRequest (inside a transaction when ``transaction_id`` is set)."""
    return pool_pb2.ExecuteRequest(
        pool_id=pool_id, sql=check_sql(sql), params=to_params(params), transaction_id=transaction_id
    )


# -- bulk insert ----------------------------------------------------------------------

#: What ``bulk_insert`` accepts as rows.
TableLike = Union[pl.DataFrame, pl.LazyFrame, pa.Table, pa.RecordBatch]

_INSERT_MODES = {
    "append": flight_pb2.INSERT_MODE_APPEND_UNSPECIFIED,
    "create": flight_pb2.INSERT_MODE_CREATE,
    "replace": flight_pb2.INSERT_MODE_REPLACE,
}


def insert_mode(mode: Any) -> int:
    """``"append"`` / ``"create"`` / ``"replace"`` -> ``dbpool.v1.InsertMode``."""
    value = _INSERT_MODES.get(mode.lower()) if isinstance(mode, str) else None
    if value is None:
        raise _invalid(f"mode must be one of {', '.join(map(repr, _INSERT_MODES))}, not {mode!r}")
    return value


def bulk_insert_command(pool_id: str, table: str, mode: Any) -> bytes:
    """The DoPut descriptor command: an Any-wrapped ``dbpool.v1.BulkInsertCommand``."""
    if not isinstance(table, str) or not table.strip():
        raise _invalid(f"table must be a non-empty str, not {table!r}")
    command = flight_pb2.BulkInsertCommand(pool_id=pool_id, table=table, mode=insert_mode(mode))
    wrapped = any_pb2.Any()
    wrapped.Pack(command)  # type_url: type.googleapis.com/dbpool.v1.BulkInsertCommand
    return wrapped.SerializeToString()


def to_arrow_table(data: Any) -> pa.Table:
    """A Polars DataFrame / LazyFrame, pyarrow Table or RecordBatch as a pyarrow Table.

    Polars frames are exported with ``to_arrow()``, which shares the column buffers.
    """
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if isinstance(data, pl.DataFrame):
        return data.to_arrow()
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    raise ParamTypeError(
        "data must be a polars DataFrame or LazyFrame, a pyarrow Table or a pyarrow RecordBatch, "
        f"not {type(data).__name__}",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


# -- transactions ---------------------------------------------------------------------

_ISOLATION = {
    "read_uncommitted": pool_pb2.ISOLATION_LEVEL_READ_UNCOMMITTED,
    "read_committed": pool_pb2.ISOLATION_LEVEL_READ_COMMITTED,
    "repeatable_read": pool_pb2.ISOLATION_LEVEL_REPEATABLE_READ,
    "serializable": pool_pb2.ISOLATION_LEVEL_SERIALIZABLE,
}


def isolation_level(isolation: Optional[str]) -> int:
    """``None`` (the database's default) or a level name -> ``dbpool.v1.IsolationLevel``.

    Names are case-insensitive; spaces and dashes count as underscores
    (``"REPEATABLE READ"`` works).
    """
    if isolation is None:
        return pool_pb2.ISOLATION_LEVEL_DEFAULT_UNSPECIFIED
    key = (
        isolation.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(isolation, str) else None
    )
    value = _ISOLATION.get(key) if key else None
    if value is None:
        raise _invalid(
            f"isolation must be None or one of {', '.join(map(repr, _ISOLATION))}, not {isolation!r}"
        )
    return value


def begin_transaction_request(
    pool_id: str, isolation: Optional[str], read_only: bool, idle_timeout_ms: Optional[int]
) -> pool_pb2.BeginTransactionRequest:
    """Builds a BeginTransactionRequest; None leaves the idle timeout to the daemon."""
    if idle_timeout_ms is not None and (
        isinstance(idle_timeout_ms, bool) or not isinstance(idle_timeout_ms, int) or idle_timeout_ms <= 0
    ):
        raise _invalid(f"idle_timeout_ms must be a positive int or None, not {idle_timeout_ms!r}")
    return pool_pb2.BeginTransactionRequest(
        pool_id=pool_id,
        isolation=isolation_level(isolation),
        read_only=bool(read_only),
        idle_timeout_ms=idle_timeout_ms or 0,
    )


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
    raise _invalid(f"statements[{index}] must be a str or a (sql, params) tuple, not {type(item).__name__}")


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
) -> Union[list[int], list[StatementResult]]:
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
