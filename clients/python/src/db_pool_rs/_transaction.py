"""Interactive transactions: :class:`Transaction` (blocking) and :class:`AsyncTransaction`.

``PoolService.BeginTransaction`` pins a connection of the pool to a transaction id; every
``Execute`` / ``Query`` request that carries the id runs on that connection until
``Commit`` or ``Rollback``. The id is usable only on the gRPC connection that began it
(from any other it is NOT_FOUND), so every call of a transaction, its queries included,
goes over the client's PoolService channel, never the Flight client (a second
connection). The daemon rolls the transaction back
by itself when it stays idle longer than its idle timeout or when the gRPC connection
that began it closes; a later call then gets NOT_FOUND, raised as
:class:`~db_pool_rs.errors.TransactionNotFoundError`.

Used as a context manager, a transaction commits when the block ends normally and rolls
back (then re-raises) when it raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterable
from typing import TYPE_CHECKING, Any, Optional

import grpc
import pyarrow as pa

from ._base import Frame, to_polars
from ._flight import BatchStream
from ._ipc_query import IpcStream, open_async, open_sync, query_request
from ._proto import pool_pb2
from ._requests import begin_transaction_request, execute_request
from .errors import DbPoolError, TransactionClosedError, TransactionNotFoundError

if TYPE_CHECKING:
    from .async_client import DatabasePool
    from .sync_client import SyncDatabasePool

_TIMEOUT_HINT = (
    "it may have been rolled back after its idle timeout or because the client's connection closed"
)


def _not_found(error: DbPoolError, transaction_id: str) -> DbPoolError:
    """A NOT_FOUND inside a transaction means the transaction is gone, not the pool."""
    if error.code is not grpc.StatusCode.NOT_FOUND:
        return error
    message = error.message
    if "idle timeout" not in message and "timed out" not in message:
        message = f"transaction `{transaction_id}` not found ({_TIMEOUT_HINT}): {message}"
    if isinstance(error, TransactionNotFoundError) and message == error.message:
        return error
    return TransactionNotFoundError(message, error.code, None, error.metadata)


class _TransactionBase:
    """What both flavours share: ids, state and request building."""

    def __init__(
        self,
        pool_id: str,
        isolation: Optional[str],
        read_only: bool,
        idle_timeout_ms: Optional[int],
        timeout: Optional[float],
    ) -> None:
        # Validates the options before anything is sent.
        self._begin_request = begin_transaction_request(pool_id, isolation, read_only, idle_timeout_ms)
        self._pool_id = pool_id
        self._isolation = isolation
        self._read_only = read_only
        self._timeout = timeout
        self._id: Optional[str] = None
        self._state = "new"  # new -> active -> committed | rolled back | failed

    @property
    def pool_id(self) -> str:
        """The pool the transaction runs on."""
        return self._pool_id

    @property
    def transaction_id(self) -> Optional[str]:
        """The daemon's id of the transaction (None before it has begun)."""
        return self._id

    @property
    def active(self) -> bool:
        """True between begin and commit / rollback."""
        return self._state == "active"

    @property
    def state(self) -> str:
        """``"new"``, ``"active"``, ``"committed"``, ``"rolled back"`` or ``"failed"``."""
        return self._state

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return self._timeout if timeout is None else timeout

    def _require_active(self) -> str:
        if self._state == "new":
            raise TransactionClosedError(
                "the transaction has not begun: use it in a with block or begin() it first",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        if self._state != "active" or self._id is None:
            raise TransactionClosedError(
                f"transaction `{self._id}` is {self._state}: no more calls can run in it",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        return self._id

    def _require_new(self) -> None:
        if self._state != "new":
            raise TransactionClosedError(
                f"transaction `{self._id}` has already begun ({self._state})",
                grpc.StatusCode.FAILED_PRECONDITION,
            )

    def _execute_request(self, sql: str, params: Optional[Iterable[Any]]) -> pool_pb2.ExecuteRequest:
        return execute_request(self._pool_id, sql, params, self._require_active())

    def _query_request(
        self, sql: str, params: Optional[Iterable[Any]], batch_size: Optional[int]
    ) -> pool_pb2.QueryRequest:
        return query_request(self._pool_id, sql, params, batch_size, self._require_active())

    def _end_request(self) -> pool_pb2.EndTransactionRequest:
        return pool_pb2.EndTransactionRequest(transaction_id=self._require_active())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pool_id={self._pool_id!r}, id={self._id!r}, state={self._state!r})"


class Transaction(_TransactionBase):
    """An interactive transaction of :class:`~db_pool_rs.SyncDatabasePool`.

    Made by ``SyncDatabasePool.transaction()``, which begins it::

        with db.transaction("pg", isolation="serializable") as tx:
            tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", [10, 1])
            df = tx.query("SELECT * FROM accounts")
        # committed here; rolled back (and the exception re-raised) if the block raised

    Not meant to be shared between threads: the statements of a transaction run one at
    a time on one connection.
    """

    def __init__(
        self,
        client: SyncDatabasePool,
        pool_id: str,
        *,
        isolation: Optional[str] = None,
        read_only: bool = False,
        idle_timeout_ms: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> None:
        super().__init__(pool_id, isolation, read_only, idle_timeout_ms, timeout)
        self._client = client

    def begin(self) -> Transaction:
        """Begins the transaction (``transaction()`` already did); returns self."""
        self._require_new()
        reply = self._client._call("BeginTransaction", self._begin_request, self._timeout)
        self._id = reply.transaction_id
        self._state = "active"
        return self

    def _call(self, method: str, request: Any, timeout: Optional[float]) -> Any:
        try:
            return self._client._call(method, request, self._deadline(timeout))
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    def execute(
        self, sql: str, params: Optional[Iterable[Any]] = None, *, timeout: Optional[float] = None
    ) -> int:
        """Runs one statement inside the transaction; returns the rows it affected."""
        return int(self._call("Execute", self._execute_request(sql, params), timeout).rows_affected)

    def query_arrow(
        self,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query inside the transaction; returns a pyarrow Table."""
        return self._read_table(sql, params, timeout, batch_size)

    def _open(
        self, sql: str, params: Optional[Iterable[Any]], timeout: Optional[float], batch_size: Optional[int]
    ) -> IpcStream:
        request = self._query_request(sql, params, batch_size)
        deadline = self._client._deadline(self._deadline(timeout))
        try:
            call = self._client._stub.Query(request, timeout=deadline, metadata=self._client._metadata())
            return open_sync(call, deadline)
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    def _read_table(
        self,
        sql: str,
        params: Optional[Iterable[Any]],
        timeout: Optional[float],
        batch_size: Optional[int],
    ) -> pa.Table:
        stream = self._open(sql, params, timeout, batch_size)
        try:
            return stream.read_all()
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    def query(
        self,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        lazy: bool = False,
        batch_size: Optional[int] = None,
    ) -> Frame:
        """Runs a query inside the transaction; returns a polars DataFrame (or LazyFrame)."""
        return to_polars(self._read_table(sql, params, timeout, batch_size), lazy)

    def query_batches(
        self,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> BatchStream:
        """Streams a query's record batches inside the transaction.

        Read the stream to its end before the next statement of the transaction.
        """
        return BatchStream(self._open(sql, params, timeout, batch_size))

    def _end(self, method: str, state: str, timeout: Optional[float]) -> None:
        request = self._end_request()
        try:
            self._call(method, request, timeout)
        except DbPoolError:
            self._state = "failed"  # the daemon forgets the transaction whatever happened
            raise
        self._state = state

    def commit(self, *, timeout: Optional[float] = None) -> None:
        """Commits. Raises TransactionNotFoundError if the daemon already rolled it back."""
        self._end("Commit", "committed", timeout)

    def rollback(self, *, timeout: Optional[float] = None) -> None:
        """Rolls back and returns the connection to the pool."""
        self._end("Rollback", "rolled back", timeout)

    def __enter__(self) -> Transaction:
        if self._state == "new":
            self.begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._state != "active":
            return  # committed or rolled back inside the block
        if exc_type is None:
            self.commit()
            return
        try:
            self.rollback()
        except DbPoolError:
            self._state = "failed"  # the block's own exception is the one that matters


class AsyncTransaction(_TransactionBase):
    """An interactive transaction of :class:`~db_pool_rs.DatabasePool`.

    ``async with db.transaction("pg") as tx:`` begins it, commits at the end of the block
    and rolls back (re-raising) when the block raises. ``tx = await db.transaction("pg")``
    begins it without a block; then ``await tx.commit()`` or ``await tx.rollback()``.
    """

    def __init__(
        self,
        client: DatabasePool,
        pool_id: str,
        *,
        isolation: Optional[str] = None,
        read_only: bool = False,
        idle_timeout_ms: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> None:
        super().__init__(pool_id, isolation, read_only, idle_timeout_ms, timeout)
        self._client = client

    async def begin(self) -> AsyncTransaction:
        """Begins the transaction; returns self."""
        self._require_new()
        reply = await self._client._call("BeginTransaction", self._begin_request, self._timeout)
        self._id = reply.transaction_id
        self._state = "active"
        return self

    def __await__(self) -> Generator[Any, None, AsyncTransaction]:
        return self.begin().__await__()

    async def _call(self, method: str, request: Any, timeout: Optional[float]) -> Any:
        try:
            return await self._client._call(method, request, self._deadline(timeout))
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    async def execute(
        self, sql: str, params: Optional[Iterable[Any]] = None, *, timeout: Optional[float] = None
    ) -> int:
        """Runs one statement inside the transaction; returns the rows it affected."""
        reply = await self._call("Execute", self._execute_request(sql, params), timeout)
        return int(reply.rows_affected)

    async def query_arrow(
        self,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> pa.Table:
        """Runs a query inside the transaction; returns a pyarrow Table."""
        return await self._read_table(sql, params, timeout, batch_size)

    async def _open(
        self, sql: str, params: Optional[Iterable[Any]], timeout: Optional[float], batch_size: Optional[int]
    ) -> IpcStream:
        request = self._query_request(sql, params, batch_size)
        deadline = self._client._deadline(self._deadline(timeout))
        call = self._client._get_stub().Query(request, timeout=deadline, metadata=self._client._metadata())
        loop = asyncio.get_running_loop()
        try:
            # The IPC reader blocks on each message: it runs in a worker thread while
            # this loop fetches the messages.
            return await self._client._run(open_async, call, loop, deadline)
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    async def _read_table(
        self,
        sql: str,
        params: Optional[Iterable[Any]],
        timeout: Optional[float],
        batch_size: Optional[int],
    ) -> pa.Table:
        stream = await self._open(sql, params, timeout, batch_size)
        try:
            return await self._client._run(stream.read_all)
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    async def query(
        self,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        lazy: bool = False,
        batch_size: Optional[int] = None,
    ) -> Frame:
        """Runs a query inside the transaction; returns a polars DataFrame (or LazyFrame)."""
        table = await self._read_table(sql, params, timeout, batch_size)
        return to_polars(table, lazy)

    async def query_batches(
        self,
        sql: str,
        params: Optional[Iterable[Any]] = None,
        *,
        timeout: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> AsyncIterator[pa.RecordBatch]:
        """Yields a query's record batches inside the transaction (``async for``)."""
        stream = await self._open(sql, params, timeout, batch_size)
        done = False
        try:
            while True:
                batch = await self._client._run(stream.next_batch)
                if batch is None:
                    done = True
                    return
                yield batch
        finally:
            if not done:
                stream.cancel()

    async def _end(self, method: str, state: str, timeout: Optional[float]) -> None:
        request = self._end_request()
        try:
            await self._call(method, request, timeout)
        except DbPoolError:
            self._state = "failed"  # the daemon forgets the transaction whatever happened
            raise
        self._state = state

    async def commit(self, *, timeout: Optional[float] = None) -> None:
        """Commits. Raises TransactionNotFoundError if the daemon already rolled it back."""
        await self._end("Commit", "committed", timeout)

    async def rollback(self, *, timeout: Optional[float] = None) -> None:
        """Rolls back and returns the connection to the pool."""
        await self._end("Rollback", "rolled back", timeout)

    async def __aenter__(self) -> AsyncTransaction:
        if self._state == "new":
            await self.begin()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._state != "active":
            return
        if exc_type is None:
            await self.commit()
            return
        try:
            await self.rollback()
        except DbPoolError:
            self._state = "failed"
