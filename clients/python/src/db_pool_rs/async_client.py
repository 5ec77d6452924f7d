"""DatabasePool: the asyncio client.

PoolService calls go over ``grpc.aio``, whole query results of a transaction included
(read on the loop: ``_fast.py``). pyarrow.flight has no asyncio API, so Flight reads run
in a small thread pool owned by the client (pyarrow releases the GIL while it waits) and
batches are handed to the event loop one at a time as they arrive. Every
operation is a plan of the sans-io core (``_core.py``); this shell awaits its steps.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import AsyncIterator, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

import grpc
import grpc.aio
import pyarrow as pa

from ._base import ClientBase
from ._core import Frame, Params
from ._endpoint import PemSource
from ._fast import query_method, read_async
from ._ipc_query import open_async
from ._options import spelled_out
from ._proto import pool_pb2_grpc
from ._requests import StatementLike, TableLike
from ._steps import Blocking, Plan, ReadQuery, Rpc, Step, advance
from ._transaction import TransactionCore
from .models import Metrics, PoolInfo, PoolStatus, StatementResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._flight import FlightStream
    from ._ipc_query import IpcStream
    from ._options import CreatePoolArgs

T = TypeVar("T")


class DatabasePool(ClientBase):
    """Asyncio client of the db-pool-rs daemon.

    Args:
        endpoint: ``grpc://host:port``, ``grpcs://host:port`` or ``unix:/path``; default
            ``$DBPOOL_ENDPOINT`` or ``grpc://127.0.0.1:50051``.
        token: sent as ``authorization: Bearer <token>`` on every gRPC and Arrow Flight
            call (queries, bulk inserts and transactions included), for a daemon with
            ``[tenants.*]``. None (the default) reads ``$DBPOOL_TOKEN``; ``""`` sends no
            token even when that variable is set.
        timeout: default deadline of every call, in seconds (None: no deadline).
        propagate_trace: send the current OpenTelemetry trace context (``traceparent``,
            ``tracestate``) on every call, when ``opentelemetry-api`` is installed.
        tls_root_certs: PEM (bytes or a file path) of the CA that signed the daemon's
            certificate, for ``grpcs://`` endpoints; default the system's roots.
        tls_cert_chain: the client certificate (PEM, bytes or a file path), when the
            daemon requires mutual TLS or knows the tenant by its certificate subject;
            used by both the gRPC channel and the Flight client.
        tls_private_key: its private key (PEM, bytes or a file path).
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
        tls_root_certs: Optional[PemSource] = None,
        tls_cert_chain: Optional[PemSource] = None,
        tls_private_key: Optional[PemSource] = None,
    ) -> None:
        super().__init__(
            endpoint,
            token=token,
            timeout=timeout,
            propagate_trace=propagate_trace,
            tls_root_certs=tls_root_certs,
            tls_cert_chain=tls_cert_chain,
            tls_private_key=tls_private_key,
        )
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="dbpool-flight")
        self._channel: Optional[grpc.aio.Channel] = None
        self._channel_loop: Optional[asyncio.AbstractEventLoop] = None
        self._stub: Any = None
        self._query: Any = None

    def _get_stub(self) -> Any:
        # grpc.aio channels belong to the loop that created them: create on first use.
        loop = asyncio.get_running_loop()
        if self._channel is None or self._channel_loop is not loop:
            self._channel = self._open_channel(grpc.aio)
            self._channel_loop = loop
            self._stub = pool_pb2_grpc.PoolServiceStub(self._channel)
            self._query = query_method(self._channel)
        return self._stub

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        # The worker runs in a copy of the caller's context, so Flight calls carry the
        # caller's trace context (contextvars do not cross threads on their own).
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, functools.partial(context.run, fn, *args))

    async def _perform(self, step: Step) -> Any:
        if isinstance(step, Blocking):
            return await self._run(step.fn, *step.args)
        stub = self._get_stub()
        if isinstance(step, (Rpc, ReadQuery)):
            started = time.monotonic()
            try:
                if isinstance(step, ReadQuery):
                    return await read_async(self._query, step.request, step.deadline, self._metadata())
                rpc = getattr(stub, step.method)
                return await rpc(step.request, timeout=step.deadline, metadata=self._metadata())
            except grpc.RpcError as e:
                raise step.failed(e, started) from None
        call = stub.Query(step.request, timeout=step.deadline, metadata=self._metadata())
        # The IPC reader blocks on each message: it runs in a worker thread while this
        # loop fetches the messages.
        return await self._run(open_async, call, asyncio.get_running_loop(), step.deadline)

    async def _drive(self, plan: Plan[T]) -> T:
        """Runs a plan of the core, awaiting each of its steps."""
        step, result = advance(plan)
        while step is not None:
            try:
                value, error = await self._perform(step), None
            except BaseException as e:  # raised in the plan, at the step's yield
                value, error = None, e
            step, result = advance(plan, value, error)
        return result  # type: ignore[return-value]

    async def _batches(self, opened: Plan[Union[FlightStream, IpcStream]]) -> AsyncIterator[pa.RecordBatch]:
        """Yields the record batches of the stream ``opened`` returns, as they arrive;
        leaving the loop early cancels the stream."""
        stream = await self._drive(opened)
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

    # -- pools -----------------------------------------------------------------------

    @spelled_out
    async def create_pool(
        self,
        pool_id: str,
        url: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        **fields: Unpack[CreatePoolArgs],
    ) -> PoolInfo:
        """Creates a pool and returns it as the daemon sees it.

        Same arguments as :meth:`SyncDatabasePool.create_pool`: a ``url`` or ``db_type``
        with connection fields, pool options, and ``lazy`` to skip the connection check.
        """
        return await self._drive(self._core.create_pool(pool_id, url, timeout, fields))

    async def remove_pool(self, pool_id: str, *, timeout: Optional[float] = None) -> None:
        """Removes a pool; in-flight queries finish. Raises PoolNotFoundError."""
        await self._drive(self._core.remove_pool(pool_id, timeout))

    async def list_pools(self, *, timeout: Optional[float] = None) -> list[PoolInfo]:
        """Lists every pool with its redacted configuration and status."""
        return await self._drive(self._core.list_pools(timeout))

    async def pool_status(self, pool_id: str, *, timeout: Optional[float] = None) -> PoolStatus:
        """Returns the live status of one pool. Raises PoolNotFoundError."""
        return await self._drive(self._core.pool_status(pool_id, timeout))

    async def metrics(self, pool_id: Optional[str] = None, *, timeout: Optional[float] = None) -> Metrics:
        """Returns the counters of every pool, or of ``pool_id`` only."""
        return await self._drive(self._core.metrics(pool_id, timeout))

    # -- queries ---------------------------------------------------------------------

    async def query_arrow(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query over Arrow Flight and returns the result as a pyarrow Table."""
        return await self._drive(self._core.read_table(pool_id, sql, params, timeout, batch_size))

    async def query(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        lazy: bool = False,
        batch_size: Optional[int] = None,
    ) -> Frame:
        """Runs a query and returns a polars DataFrame (a LazyFrame with ``lazy=True``).

        The frame wraps the Arrow buffers received from the daemon without copying them.
        """
        return await self._drive(
            self._core.query(pool_id, sql, params, timeout=timeout, lazy=lazy, batch_size=batch_size)
        )

    def query_batches(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> AsyncIterator[pa.RecordBatch]:
        """Yields the result's pyarrow RecordBatches as they arrive (``async for``).

        Memory stays bounded by a batch; leaving the loop early cancels the stream.
        """
        return self._batches(self._core.open_batches(pool_id, sql, params, timeout, batch_size))

    # -- writes ----------------------------------------------------------------------

    async def execute(
        self, pool_id: str, sql: str, params: Params = None, *, timeout: Optional[float] = None
    ) -> int:
        """Runs one statement that returns no rows; returns the rows it affected."""
        return await self._drive(self._core.execute(pool_id, sql, params, timeout))

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
        return await self._drive(self._core.execute_batch(pool_id, statements, transaction, timeout))

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
        return await self._drive(self._core.bulk_insert(pool_id, table, data, mode, timeout))

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


class AsyncTransaction(TransactionCore):
    """An interactive transaction of :class:`~db_pool_rs.DatabasePool`.

    ``async with db.transaction("pg") as tx:`` begins it, commits at the end of the block
    and rolls back (re-raising) when the block raises. ``tx = await db.transaction("pg")``
    begins it without a block; then ``await tx.commit()`` or ``await tx.rollback()``.
    """

    _client: DatabasePool

    async def begin(self) -> AsyncTransaction:
        """Begins the transaction; returns self."""
        await self._client._drive(self._begin())
        return self

    def __await__(self) -> Generator[Any, None, AsyncTransaction]:
        return self.begin().__await__()

    async def execute(self, sql: str, params: Params = None, *, timeout: Optional[float] = None) -> int:
        """Runs one statement inside the transaction; returns the rows it affected."""
        return await self._client._drive(self._execute(sql, params, timeout))

    async def query_arrow(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query inside the transaction; returns a pyarrow Table."""
        return await self._client._drive(self._read_table(sql, params, timeout, batch_size))

    async def query(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        lazy: bool = False,
        batch_size: Optional[int] = None,
    ) -> Frame:
        """Runs a query inside the transaction; returns a polars DataFrame (or LazyFrame)."""
        return await self._client._drive(self._query(sql, params, timeout, lazy, batch_size))

    def query_batches(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> AsyncIterator[pa.RecordBatch]:
        """Yields a query's record batches inside the transaction (``async for``)."""
        return self._client._batches(self._open(sql, params, timeout, batch_size))

    async def commit(self, *, timeout: Optional[float] = None) -> None:
        """Commits. Raises TransactionNotFoundError if the daemon already rolled it back."""
        await self._client._drive(self._end("Commit", "committed", timeout))

    async def rollback(self, *, timeout: Optional[float] = None) -> None:
        """Rolls back and returns the connection to the pool."""
        await self._client._drive(self._end("Rollback", "rolled back", timeout))

    async def __aenter__(self) -> AsyncTransaction:
        if self._state == "new":
            await self.begin()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self._client._drive(self._exit(exc_type))
