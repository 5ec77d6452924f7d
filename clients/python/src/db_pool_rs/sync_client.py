"""SyncDatabasePool: the blocking client, safe to share between threads.

One ``grpc.Channel`` carries the PoolService calls (a transaction's queries included)
and one Arrow Flight client the other queries; both are thread-safe, so a single instance serves a whole application. Every
operation is a plan of the sans-io core (``_core.py``); this shell performs its steps in
the calling thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

import grpc
import grpc.experimental
import pyarrow as pa

from ._base import ClientBase
from ._core import Frame, Params
from ._fast import query_method, read_sync
from ._flight import BatchStream
from ._ipc_query import open_sync
from ._options import spelled_out
from ._proto import pool_pb2_grpc
from ._requests import StatementLike, TableLike
from ._steps import Blocking, Plan, ReadQuery, Rpc, Step, advance
from ._transaction import TransactionCore
from .models import Metrics, PoolInfo, PoolStatus, StatementResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import CreatePoolArgs

T = TypeVar("T")


class SyncDatabasePool(ClientBase):
    """Blocking client of the db-pool-rs daemon.

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
    """

    # Unary-stream calls (a transaction's Query) are read on the calling thread: grpcio
    # otherwise starts a thread per call to drive it (~230 µs more CPU per small query
    # here, docs/performance.md section 5).
    _channel_options = ((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),)

    def _connect(self) -> None:
        self._channel = self._open_channel(grpc)
        self._stub = pool_pb2_grpc.PoolServiceStub(self._channel)
        self._query = query_method(self._channel)

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Blocking):
            return step.fn(*step.args)
        if isinstance(step, (Rpc, ReadQuery)):
            started = time.monotonic()
            try:
                if isinstance(step, ReadQuery):
                    return read_sync(self._query, step.request, step.deadline, self._metadata())
                rpc = getattr(self._stub, step.method)
                return rpc(step.request, timeout=step.deadline, metadata=self._metadata())
            except grpc.RpcError as e:
                raise step.failed(e, started) from None
        call = self._stub.Query(step.request, timeout=step.deadline, metadata=self._metadata())
        return open_sync(call, step.deadline)

    def _drive(self, plan: Plan[T]) -> T:
        """Runs a plan of the core, performing each of its steps in this thread."""
        step, result = advance(plan)
        while step is not None:
            try:
                value, error = self._perform(step), None
            except BaseException as e:  # raised in the plan, at the step's yield
                value, error = None, e
            step, result = advance(plan, value, error)
        return result  # type: ignore[return-value]

    # -- pools -----------------------------------------------------------------------

    @spelled_out
    def create_pool(
        self,
        pool_id: str,
        url: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        **fields: Unpack[CreatePoolArgs],
    ) -> PoolInfo:
        """Creates a pool and returns it as the daemon sees it.

        Give either ``url`` (``postgres://user:pass@host:5432/db``,
        ``sqlite://file.db``, a path inside the daemon's data directory) or ``db_type`` with ``host``, ``port``, ``database``,
        ``username``, ``password``. Pool options: ``max_connections``,
        ``min_connections``, ``acquire_timeout_ms``, ``idle_timeout_ms``,
        ``max_lifetime_ms``, ``statement_timeout_ms``, ``batch_size``, ``max_waiters``,
        ``breaker_threshold``, ``breaker_cooldown_ms``, ``statement_cache_size`` (0 turns
        PostgreSQL's statement cache off), ``prepared_statements`` (PostgreSQL: ``"auto"``
        by default, ``"named"``, or ``"unnamed"`` behind a transaction-mode pooler such as
        PgBouncer), ``reset_sessions`` (``"auto"``: a connection whose SQL changed its
        session is reset before the next caller; ``"always"``: after every use);
        ``backup_urls``: read replicas served while the
        primary is down (PostgreSQL); ``settings``: backend-specific settings (strings);
        ``lazy=True`` skips the connection check. Raises PoolExistsError, InvalidArgumentError,
        PoolUnavailableError, AuthenticationError, PermissionDeniedError or QuotaExceededError.
        """
        return self._drive(self._core.create_pool(pool_id, url, timeout, fields))

    def remove_pool(self, pool_id: str, *, timeout: Optional[float] = None) -> None:
        """Removes a pool; in-flight queries finish. Raises PoolNotFoundError."""
        self._drive(self._core.remove_pool(pool_id, timeout))

    def list_pools(self, *, timeout: Optional[float] = None) -> list[PoolInfo]:
        """Lists every pool with its redacted configuration and status."""
        return self._drive(self._core.list_pools(timeout))

    def pool_status(self, pool_id: str, *, timeout: Optional[float] = None) -> PoolStatus:
        """Returns the live status of one pool. Raises PoolNotFoundError."""
        return self._drive(self._core.pool_status(pool_id, timeout))

    def metrics(self, pool_id: Optional[str] = None, *, timeout: Optional[float] = None) -> Metrics:
        """Returns the counters of every pool, or of ``pool_id`` only."""
        return self._drive(self._core.metrics(pool_id, timeout))

    # -- queries ---------------------------------------------------------------------

    def query_arrow(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query over Arrow Flight and returns the result as a pyarrow Table."""
        return self._drive(self._core.read_table(pool_id, sql, params, timeout, batch_size))

    def query(
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
        Raises PoolNotFoundError, QueryError (with ``sqlstate``), PoolUnavailableError,
        PoolTimeoutError or InvalidArgumentError.
        """
        return self._drive(
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
    ) -> BatchStream:
        """Runs a query and returns an iterator of pyarrow RecordBatches as they arrive.

        Memory stays bounded by a batch. Errors of the request itself raise here; errors
        in the middle of the stream raise from the iteration.
        """
        return BatchStream(self._drive(self._core.open_batches(pool_id, sql, params, timeout, batch_size)))

    # -- writes ----------------------------------------------------------------------

    def execute(
        self, pool_id: str, sql: str, params: Params = None, *, timeout: Optional[float] = None
    ) -> int:
        """Runs one statement that returns no rows; returns the rows it affected."""
        return self._drive(self._core.execute(pool_id, sql, params, timeout))

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
        return self._drive(self._core.execute_batch(pool_id, statements, transaction, timeout))

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
        return self._drive(self._core.bulk_insert(pool_id, table, data, mode, timeout))

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


class Transaction(TransactionCore):
    """An interactive transaction of :class:`~db_pool_rs.SyncDatabasePool`.

    Made by ``SyncDatabasePool.transaction()``, which begins it::

        with db.transaction("pg", isolation="serializable") as tx:
            tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", [10, 1])
            df = tx.query("SELECT * FROM accounts")
        # committed here; rolled back (and the exception re-raised) if the block raised

    Not meant to be shared between threads: the statements of a transaction run one at
    a time on one connection.
    """

    _client: SyncDatabasePool

    def begin(self) -> Transaction:
        """Begins the transaction (``transaction()`` already did); returns self."""
        self._client._drive(self._begin())
        return self

    def execute(self, sql: str, params: Params = None, *, timeout: Optional[float] = None) -> int:
        """Runs one statement inside the transaction; returns the rows it affected."""
        return self._client._drive(self._execute(sql, params, timeout))

    def query_arrow(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query inside the transaction; returns a pyarrow Table."""
        return self._client._drive(self._read_table(sql, params, timeout, batch_size))

    def query(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        lazy: bool = False,
        batch_size: Optional[int] = None,
    ) -> Frame:
        """Runs a query inside the transaction; returns a polars DataFrame (or LazyFrame)."""
        return self._client._drive(self._query(sql, params, timeout, lazy, batch_size))

    def query_batches(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> BatchStream:
        """Streams a query's record batches inside the transaction.

        Read the stream to its end before the next statement of the transaction.
        """
        return BatchStream(self._client._drive(self._open(sql, params, timeout, batch_size)))

    def commit(self, *, timeout: Optional[float] = None) -> None:
        """Commits. Raises TransactionNotFoundError if the daemon already rolled it back."""
        self._client._drive(self._end("Commit", "committed", timeout))

    def rollback(self, *, timeout: Optional[float] = None) -> None:
        """Rolls back and returns the connection to the pool."""
        self._client._drive(self._end("Rollback", "rolled back", timeout))

    def __enter__(self) -> Transaction:
        if self._state == "new":
            self.begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._client._drive(self._exit(exc_type))
