"""SyncDatabasePool: the blocking client, safe to share between threads.

One ``grpc.Channel`` carries the PoolService calls and one Arrow Flight client the
queries; both are thread-safe, so a single instance serves a whole application.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Mapping, Optional, Sequence, Union

import grpc
import pyarrow as pa

from ._base import CHANNEL_OPTIONS, STRING_VIEWS, ClientBase, Frame, to_polars
from ._flight import BatchStream
from ._proto import pool_pb2, pool_pb2_grpc
from ._requests import (
    StatementLike,
    TableLike,
    batch_results,
    bulk_insert_command,
    create_pool_request,
    execute_batch_request,
    execute_request,
    to_arrow_table,
)
from ._status import from_grpc_error, past_deadline
from ._transaction import Transaction
from .models import Metrics, PoolInfo, PoolStatus, StatementResult


class SyncDatabasePool(ClientBase):
    """Blocking client of the db-pool-rs daemon.

    Args:
        endpoint: ``grpc://host:port``; default ``$DBPOOL_ENDPOINT`` or
            ``grpc://127.0.0.1:50051``.
        token: sent as ``authorization: Bearer <token>`` on every call.
        timeout: default deadline of every call, in seconds (None: no deadline).
        propagate_trace: send the current OpenTelemetry trace context (``traceparent``,
            ``tracestate``) on every call, when ``opentelemetry-api`` is installed.
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        propagate_trace: bool = True,
    ) -> None:
        super().__init__(endpoint, token=token, timeout=timeout, propagate_trace=propagate_trace)
        target = self._endpoint.grpc_target
        self._channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials(), CHANNEL_OPTIONS)
            if self._endpoint.tls
            else grpc.insecure_channel(target, CHANNEL_OPTIONS)
        )
        self._stub = pool_pb2_grpc.PoolServiceStub(self._channel)

    def _call(self, method: str, request: Any, timeout: Optional[float]) -> Any:
        deadline = self._deadline(timeout)
        started = time.monotonic()
        try:
            return getattr(self._stub, method)(request, timeout=deadline, metadata=self._metadata())
        except grpc.RpcError as e:
            error = from_grpc_error(e)
            raise past_deadline(error, deadline, started, time.monotonic()) from None

    # -- pools -----------------------------------------------------------------------

    def create_pool(
        self,
        pool_id: str,
        url: Optional[str] = None,
        *,
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
        max_waiters: Optional[int] = None,
        breaker_threshold: Optional[int] = None,
        breaker_cooldown_ms: Optional[int] = None,
        statement_cache_size: Optional[int] = None,
        prepared_statements: Optional[str] = None,
        backup_urls: Optional[Sequence[str]] = None,
        settings: Optional[Mapping[str, str]] = None,
        lazy: bool = False,
        timeout: Optional[float] = None,
    ) -> PoolInfo:
        """Creates a pool and returns it as the daemon sees it.

        Give either ``url`` (``postgres://user:pass@host:5432/db``,
        ``sqlite:///path/file.db``) or ``db_type`` with ``host``, ``port``, ``database``,
        ``username``, ``password``. Pool options: ``max_connections``,
        ``min_connections``, ``acquire_timeout_ms``, ``idle_timeout_ms``,
        ``max_lifetime_ms``, ``statement_timeout_ms``, ``batch_size``, ``max_waiters``,
        ``breaker_threshold``, ``breaker_cooldown_ms``, ``statement_cache_size`` (0 turns
        PostgreSQL's statement cache off), ``prepared_statements`` (PostgreSQL: ``"auto"``
        by default, ``"named"``, or ``"unnamed"`` behind a transaction-mode pooler such as
        PgBouncer); ``backup_urls``: read replicas served while the
        primary is down (PostgreSQL); ``settings``: backend-specific settings (strings);
        ``lazy=True`` skips the connection check. Raises PoolExistsError, InvalidArgumentError,
        PoolUnavailableError or AuthenticationError.
        """
        request = create_pool_request(
            pool_id,
            url=url,
            db_type=db_type,
            host=host,
            port=port,
            database=database,
            username=username,
            password=password,
            max_connections=max_connections,
            min_connections=min_connections,
            acquire_timeout_ms=acquire_timeout_ms,
            idle_timeout_ms=idle_timeout_ms,
            max_lifetime_ms=max_lifetime_ms,
            statement_timeout_ms=statement_timeout_ms,
            batch_size=batch_size,
            max_waiters=max_waiters,
            breaker_threshold=breaker_threshold,
            breaker_cooldown_ms=breaker_cooldown_ms,
            statement_cache_size=statement_cache_size,
            prepared_statements=prepared_statements,
            backup_urls=backup_urls,
            settings=settings,
            lazy=lazy,
        )
        return PoolInfo.from_proto(self._call("CreatePool", request, timeout).pool)

    def remove_pool(self, pool_id: str, *, timeout: Optional[float] = None) -> None:
        """Removes a pool; in-flight queries finish. Raises PoolNotFoundError."""
        self._call("RemovePool", pool_pb2.RemovePoolRequest(pool_id=pool_id), timeout)

    def list_pools(self, *, timeout: Optional[float] = None) -> list[PoolInfo]:
        """Lists every pool with its redacted configuration and status."""
        reply = self._call("ListPools", pool_pb2.ListPoolsRequest(), timeout)
        return [PoolInfo.from_proto(p) for p in reply.pools]

    def pool_status(self, pool_id: str, *, timeout: Optional[float] = None) -> PoolStatus:
        """Returns the live status of one pool. Raises PoolNotFoundError."""
        request = pool_pb2.GetPoolStatusRequest(pool_id=pool_id)
        return PoolStatus.from_proto(self._call("GetPoolStatus", request, timeout))

    def metrics(self, pool_id: Optional[str] = None, *, timeout: Optional[float] = None) -> Metrics:
        """Returns the counters of every pool, or of ``pool_id`` only."""
        request = pool_pb2.GetMetricsRequest(pool_id=pool_id or "")
        return Metrics.from_proto(self._call("GetMetrics", request, timeout))

    # -- queries ---------------------------------------------------------------------

    def query_arrow(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query over Arrow Flight and returns the result as a pyarrow Table."""
        return self._read_table(pool_id, sql, params, timeout, batch_size, False)

    def _read_table(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]],
        timeout: Optional[float],
        batch_size: Optional[int],
        string_view: bool,
    ) -> pa.Table:
        ticket = self._ticket(pool_id, sql, params, batch_size, string_view)
        return self._flight.read_table(ticket, self._deadline(timeout))

    def query(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        lazy: bool = False,
        batch_size: Optional[int] = None,
    ) -> Frame:
        """Runs a query and returns a polars DataFrame (a LazyFrame with ``lazy=True``).

        The frame wraps the Arrow buffers received from the daemon without copying them.
        Raises PoolNotFoundError, QueryError (with ``sqlstate``), PoolUnavailableError,
        PoolTimeoutError or InvalidArgumentError.
        """
        table = self._read_table(pool_id, sql, params, timeout, batch_size, STRING_VIEWS)
        return to_polars(table, lazy)

    def query_batches(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> BatchStream:
        """Runs a query and returns an iterator of pyarrow RecordBatches as they arrive.

        Memory stays bounded by a batch. Errors of the request itself raise here; errors
        in the middle of the stream raise from the iteration.
        """
        ticket = self._ticket(pool_id, sql, params, batch_size)
        return BatchStream(self._flight.open(ticket, self._deadline(timeout)))

    # -- writes ----------------------------------------------------------------------

    def execute(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Runs one statement that returns no rows; returns the rows it affected."""
        reply = self._call("Execute", execute_request(pool_id, sql, params), timeout)
        return int(reply.rows_affected)

    def execute_batch(
        self,
        pool_id: str,
        statements: Iterable[StatementLike],
        transaction: bool = True,
        *,
        timeout: Optional[float] = None,
    ) -> Union[list[int], list[StatementResult]]:
        """Runs statements (``str`` or ``(sql, params)``) on one connection.

        With ``transaction=True`` (default) the batch is all-or-nothing: it returns the
        rows affected per statement, or raises the first failure (everything rolled
        back). With ``transaction=False`` every statement runs and one
        :class:`StatementResult` per statement tells its outcome.
        """
        request = execute_batch_request(pool_id, statements, transaction)
        return batch_results(self._call("ExecuteBatch", request, timeout), transaction)

    def bulk_insert(
        self,
        pool_id: str,
        table: str,
        data: TableLike,
        mode: str = "append",
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Writes a Polars DataFrame or a pyarrow Table / RecordBatch into ``table``.

        The rows travel as Arrow record batches over Flight ``DoPut`` and are written in
        one transaction: all or none. ``mode``: ``"append"`` (the table must exist and
        have the frame's columns), ``"create"`` (created from the frame's schema; it must
        not exist) or ``"replace"`` (dropped if it exists, then created). ``table`` may be
        schema-qualified (``"sales.orders"``). Returns the rows inserted. Raises
        InvalidArgumentError (bad mode, schema mismatch), QueryError, PoolNotFoundError.
        """
        command = bulk_insert_command(pool_id, table, mode)
        arrow = to_arrow_table(data)
        return self._flight.bulk_insert(command, arrow, self._deadline(timeout))

    # -- transactions ----------------------------------------------------------------

    def transaction(
        self,
        pool_id: str,
        isolation: Optional[str] = None,
        read_only: bool = False,
        idle_timeout_ms: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> Transaction:
        """Begins an interactive transaction on one pinned connection of ``pool_id``.

        Use it as ``with db.transaction("pg") as tx:`` (commit at the end of the block,
        rollback and re-raise on an exception) or call ``tx.commit()`` / ``tx.rollback()``.
        ``isolation``: None (the database's default), ``"read_uncommitted"``,
        ``"read_committed"``, ``"repeatable_read"`` or ``"serializable"`` (SQLite has
        only ``"serializable"``). ``idle_timeout_ms``: the daemon rolls the transaction
        back after this long without a call (None: the daemon's default, 60 s); later
        calls then raise TransactionNotFoundError.
        """
        return Transaction(
            self,
            pool_id,
            isolation=isolation,
            read_only=read_only,
            idle_timeout_ms=idle_timeout_ms,
            timeout=timeout,
        ).begin()

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Closes the gRPC channel and the Flight client."""
        self._flight.close()
        self._channel.close()

    def __enter__(self) -> SyncDatabasePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
