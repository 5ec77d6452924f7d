"""DatabasePool: the asyncio client.

PoolService calls go over ``grpc.aio``. pyarrow.flight has no asyncio API, so Flight
reads run in a small thread pool owned by the client (pyarrow releases the GIL while it
waits) and batches are handed to the event loop one at a time as they arrive.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, Union

import grpc
import grpc.aio
import pyarrow as pa

from ._base import CHANNEL_OPTIONS, STRING_VIEWS, ClientBase, Frame, to_polars
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
from ._transaction import AsyncTransaction
from .models import Metrics, PoolInfo, PoolStatus, StatementResult

T = TypeVar("T")


class DatabasePool(ClientBase):
    """Asyncio client of the db-pool-rs daemon.

    Args:
        endpoint: ``grpc://host:port``; default ``$DBPOOL_ENDPOINT`` or
            ``grpc://127.0.0.1:50051``.
        token: sent as ``authorization: Bearer <token>`` on every call.
        timeout: default deadline of every call, in seconds (None: no deadline).
        propagate_trace: send the current OpenTelemetry trace context (``traceparent``,
            ``tracestate``) on every call, when ``opentelemetry-api`` is installed.
        max_workers: threads that wait on Arrow Flight streams (concurrent queries).
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        max_workers: int = 16,
        propagate_trace: bool = True,
    ) -> None:
        super().__init__(endpoint, token=token, timeout=timeout, propagate_trace=propagate_trace)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="dbpool-flight")
        self._channel: Optional[grpc.aio.Channel] = None
        self._channel_loop: Optional[asyncio.AbstractEventLoop] = None
        self._stub: Any = None

    def _get_stub(self) -> Any:
        # grpc.aio channels belong to the loop that created them: create on first use.
        loop = asyncio.get_running_loop()
        if self._channel is None or self._channel_loop is not loop:
            target = self._endpoint.grpc_target
            self._channel = (
                grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), CHANNEL_OPTIONS)
                if self._endpoint.tls
                else grpc.aio.insecure_channel(target, CHANNEL_OPTIONS)
            )
            self._channel_loop = loop
            self._stub = pool_pb2_grpc.PoolServiceStub(self._channel)
        return self._stub

    async def _call(self, method: str, request: Any, timeout: Optional[float]) -> Any:
        stub = self._get_stub()
        deadline = self._deadline(timeout)
        started = time.monotonic()
        try:
            return await getattr(stub, method)(request, timeout=deadline, metadata=self._metadata())
        except grpc.RpcError as e:
            error = from_grpc_error(e)
            raise past_deadline(error, deadline, started, time.monotonic()) from None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        # The worker runs in a copy of the caller's context, so Flight calls carry the
        # caller's trace context (contextvars do not cross threads on their own).
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, functools.partial(context.run, fn, *args))

    # -- pools -----------------------------------------------------------------------

    async def create_pool(
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

        Same arguments as :meth:`SyncDatabasePool.create_pool`: a ``url`` or ``db_type``
        with connection fields, pool options, and ``lazy`` to skip the connection check.
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
        return PoolInfo.from_proto((await self._call("CreatePool", request, timeout)).pool)

    async def remove_pool(self, pool_id: str, *, timeout: Optional[float] = None) -> None:
        """Removes a pool; in-flight queries finish. Raises PoolNotFoundError."""
        await self._call("RemovePool", pool_pb2.RemovePoolRequest(pool_id=pool_id), timeout)

    async def list_pools(self, *, timeout: Optional[float] = None) -> list[PoolInfo]:
        """Lists every pool with its redacted configuration and status."""
        reply = await self._call("ListPools", pool_pb2.ListPoolsRequest(), timeout)
        return [PoolInfo.from_proto(p) for p in reply.pools]

    async def pool_status(self, pool_id: str, *, timeout: Optional[float] = None) -> PoolStatus:
        """Returns the live status of one pool. Raises PoolNotFoundError."""
        request = pool_pb2.GetPoolStatusRequest(pool_id=pool_id)
        return PoolStatus.from_proto(await self._call("GetPoolStatus", request, timeout))

    async def metrics(self, pool_id: Optional[str] = None, *, timeout: Optional[float] = None) -> Metrics:
        """Returns the counters of every pool, or of ``pool_id`` only."""
        request = pool_pb2.GetMetricsRequest(pool_id=pool_id or "")
        return Metrics.from_proto(await self._call("GetMetrics", request, timeout))

    # -- queries ---------------------------------------------------------------------

    async def query_arrow(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query over Arrow Flight and returns the result as a pyarrow Table."""
        return await self._read_table(pool_id, sql, params, timeout, batch_size, False)

    async def _read_table(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]],
        timeout: Optional[float],
        batch_size: Optional[int],
        string_view: bool,
    ) -> pa.Table:
        ticket = self._ticket(pool_id, sql, params, batch_size, string_view)
        return await self._run(self._flight.read_table, ticket, self._deadline(timeout))

    async def query(
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
        """
        table = await self._read_table(pool_id, sql, params, timeout, batch_size, STRING_VIEWS)
        return to_polars(table, lazy)

    async def query_batches(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> AsyncIterator[pa.RecordBatch]:
        """Yields the result's pyarrow RecordBatches as they arrive (``async for``).

        Memory stays bounded by a batch; leaving the loop early cancels the stream.
        """
        ticket = self._ticket(pool_id, sql, params, batch_size)
        stream = await self._run(self._flight.open, ticket, self._deadline(timeout))
        done = False
        try:
            while True:
                batch = await self._run(stream.next_batch)
                if batch is None:
                    done = True
                    return
                yield batch
        finally:
            if not done:
                stream.cancel()

    # -- writes ----------------------------------------------------------------------

    async def execute(
        self,
        pool_id: str,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Runs one statement that returns no rows; returns the rows it affected."""
        reply = await self._call("Execute", execute_request(pool_id, sql, params), timeout)
        return int(reply.rows_affected)

    async def execute_batch(
        self,
        pool_id: str,
        statements: Iterable[StatementLike],
        transaction: bool = True,
        *,
        timeout: Optional[float] = None,
    ) -> Union[list[int], list[StatementResult]]:
        """Runs statements (``str`` or ``(sql, params)``) on one connection.

        ``transaction=True``: all-or-nothing, returns rows affected per statement or
        raises the first failure. ``transaction=False``: one StatementResult each.
        """
        request = execute_batch_request(pool_id, statements, transaction)
        return batch_results(await self._call("ExecuteBatch", request, timeout), transaction)

    async def bulk_insert(
        self,
        pool_id: str,
        table: str,
        data: TableLike,
        mode: str = "append",
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Writes a Polars DataFrame or a pyarrow Table / RecordBatch into ``table``.

        All rows or none; ``mode`` is ``"append"``, ``"create"`` or ``"replace"``. Same
        as :meth:`SyncDatabasePool.bulk_insert`; returns the rows inserted.
        """
        command = bulk_insert_command(pool_id, table, mode)
        arrow = to_arrow_table(data)
        return await self._run(self._flight.bulk_insert, command, arrow, self._deadline(timeout))

    # -- transactions ----------------------------------------------------------------

    def transaction(
        self,
        pool_id: str,
        isolation: Optional[str] = None,
        read_only: bool = False,
        idle_timeout_ms: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> AsyncTransaction:
        """An interactive transaction on one pinned connection of ``pool_id``.

        ``async with db.transaction("pg") as tx:`` begins it, commits at the end of the
        block and rolls back (re-raising) on an exception; ``tx = await
        db.transaction("pg")`` begins it for explicit ``await tx.commit()`` /
        ``await tx.rollback()``. Options as in :meth:`SyncDatabasePool.transaction`.
        """
        return AsyncTransaction(
            self,
            pool_id,
            isolation=isolation,
            read_only=read_only,
            idle_timeout_ms=idle_timeout_ms,
            timeout=timeout,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        """Closes the gRPC channel, the Flight client and the worker threads."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)
        self._flight.close()
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> DatabasePool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
