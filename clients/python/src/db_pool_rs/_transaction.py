"""Interactive transactions, written once: state, requests and one plan per call.

``PoolService.BeginTransaction`` pins a connection of the pool to a transaction id; every
``Execute`` / ``Query`` request that carries the id runs on that connection until
``Commit`` or ``Rollback``. The id is usable only on the gRPC connection that began it
(from any other it is NOT_FOUND), so every call of a transaction, its queries included,
goes over the client's PoolService channel (:class:`~._steps.ReadQuery` for whole
results, :class:`~._steps.TxQuery` for streamed ones), never the Flight client (a second
connection). The daemon rolls the transaction back by itself when it
stays idle longer than its idle timeout or when the gRPC connection that began it closes;
a later call then gets NOT_FOUND, raised as
:class:`~db_pool_rs.errors.TransactionNotFoundError`.

Used as a context manager, a transaction commits when the block ends normally and rolls
back (then re-raises) when it raises. :class:`~db_pool_rs.Transaction` (sync_client.py)
and :class:`~db_pool_rs.AsyncTransaction` (async_client.py) run these plans with their
client's driver (see :mod:`._steps`), blocking or awaiting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import grpc
import pyarrow as pa

from ._core import Frame, Params, to_polars
from ._fast import decode
from ._ipc_query import IpcStream, query_request
from ._proto import pool_pb2
from ._requests import begin_transaction_request, execute_request
from ._steps import Plan, ReadQuery, Rpc, Step, TxQuery
from .errors import DbPoolError, TransactionClosedError, TransactionNotFoundError

if TYPE_CHECKING:
    from ._base import ClientBase

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


class TransactionCore:
    """What both flavours share: ids, state, request building and the plan of each call."""

    def __init__(
        self,
        client: ClientBase,
        pool_id: str,
        *,
        isolation: Optional[str] = None,
        read_only: bool = False,
        idle_timeout_ms: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> None:
        # Validates the options before anything is sent.
        self._begin_request = begin_transaction_request(pool_id, isolation, read_only, idle_timeout_ms)
        self._client = client
        self._core = client._core
        self._pool_id = pool_id
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
        # The call's own timeout, else the transaction's, else the client's default.
        return self._core.deadline(self._timeout if timeout is None else timeout)

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

    # -- plans (see _steps.py) -----------------------------------------------------

    def _step(self, step: Step) -> Plan[Any]:
        """Performs ``step``; its NOT_FOUND means the transaction is gone."""
        try:
            return (yield step)
        except DbPoolError as e:
            raise _not_found(e, self._id or "") from None

    def _begin(self) -> Plan[None]:
        if self._state != "new":
            raise TransactionClosedError(
                f"transaction `{self._id}` has already begun ({self._state})",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        reply = yield Rpc("BeginTransaction", self._begin_request, self._deadline(None))
        self._id = reply.transaction_id
        self._state = "active"

    def _execute(self, sql: str, params: Params, timeout: Optional[float]) -> Plan[int]:
        request = execute_request(self._pool_id, sql, params, self._require_active())
        reply = yield from self._step(Rpc("Execute", request, self._deadline(timeout)))
        return int(reply.rows_affected)

    def _open(
        self, sql: str, params: Params, timeout: Optional[float], batch_size: Optional[int]
    ) -> Plan[IpcStream]:
        """Starts a query; its stream is read by the caller."""
        request = query_request(self._pool_id, sql, params, batch_size, self._require_active())
        return (yield from self._step(TxQuery(request, self._deadline(timeout))))

    def _read_table(
        self, sql: str, params: Params, timeout: Optional[float], batch_size: Optional[int]
    ) -> Plan[pa.Table]:
        request = query_request(self._pool_id, sql, params, batch_size, self._require_active())
        return decode((yield from self._step(ReadQuery(request, self._deadline(timeout)))))

    def _query(
        self, sql: str, params: Params, timeout: Optional[float], lazy: bool, batch_size: Optional[int]
    ) -> Plan[Frame]:
        return to_polars((yield from self._read_table(sql, params, timeout, batch_size)), lazy)

    def _end(self, method: str, state: str, timeout: Optional[float]) -> Plan[None]:
        request = pool_pb2.EndTransactionRequest(transaction_id=self._require_active())
        try:
            yield from self._step(Rpc(method, request, self._deadline(timeout)))
        except DbPoolError:
            self._state = "failed"  # the daemon forgets the transaction whatever happened
            raise
        self._state = state

    def _exit(self, exc_type: Any) -> Plan[None]:
        """Ends a ``with`` block: commits, or rolls back when the block raised."""
        if self._state != "active":
            return  # committed or rolled back inside the block
        if exc_type is None:
            yield from self._end("Commit", "committed", None)
            return
        try:
            yield from self._end("Rollback", "rolled back", None)
        except DbPoolError:
            self._state = "failed"  # the block's own exception is the one that matters

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pool_id={self._pool_id!r}, id={self._id!r}, state={self._state!r})"
