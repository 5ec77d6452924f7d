"""Exceptions raised by the db_pool_rs client, one class per thing a caller can act on.

Every error of the daemon arrives as a gRPC status; :func:`error_class` picks the class
from its code (and from whether the database attached a SQLSTATE, or the daemon a
``QUOTA_EXCEEDED`` reason). The classes are exported from the package top level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import grpc

__all__ = [
    "AuthenticationError",
    "DbPoolError",
    "InvalidArgumentError",
    "ParamTypeError",
    "PermissionDeniedError",
    "PoolExistsError",
    "PoolNotFoundError",
    "PoolTimeoutError",
    "PoolUnavailableError",
    "QueryError",
    "QuotaExceededError",
    "TransactionAbortedError",
    "TransactionClosedError",
    "TransactionNotFoundError",
    "error_class",
]


class DbPoolError(Exception):
    """Base class of every error raised by db_pool_rs.

    Attributes:
        message: the daemon's (or the database's) message, without gRPC decoration.
        code: the :class:`grpc.StatusCode` of the failed call.
        sqlstate: the SQLSTATE (or the database's own error code) when there is one.
        metadata: the ``google.rpc.ErrorInfo`` metadata the daemon attached, if any.
    """

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        sqlstate: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.sqlstate = sqlstate
        self.metadata = dict(metadata or {})

    @property
    def statement_index(self) -> Optional[int]:
        """Index of the failing statement of a transactional ``execute_batch``, if any."""
        value = self.metadata.get("statement_index")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def field(self) -> Optional[str]:
        """The request field an InvalidArgumentError is about (e.g. ``params``), if known."""
        return self.metadata.get("field")

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = f", sqlstate={self.sqlstate!r}" if self.sqlstate else ""
        return f"{type(self).__name__}({self.message!r}, code={self.code.name}{extra})"


class PoolNotFoundError(DbPoolError, LookupError):
    """No pool has the given id (gRPC NOT_FOUND)."""


class PoolExistsError(DbPoolError):
    """A pool with this id exists already (gRPC ALREADY_EXISTS)."""


class InvalidArgumentError(DbPoolError, ValueError):
    """A request field is missing or wrong (gRPC INVALID_ARGUMENT without a SQLSTATE)."""


class ParamTypeError(InvalidArgumentError, TypeError):
    """A query parameter has a Python type the client cannot send; raised client-side."""


class QueryError(DbPoolError):
    """The database rejected the statement; ``sqlstate`` says why (e.g. ``42P01``)."""


class TransactionAbortedError(QueryError):
    """The database aborted the transaction: serialization failure or deadlock (ABORTED)."""


class TransactionNotFoundError(DbPoolError, LookupError):
    """The daemon has no open transaction with this id (gRPC NOT_FOUND).

    It was never begun, has already ended, or was rolled back by the daemon: after its
    idle timeout (``idle_timeout_ms`` of ``transaction()``) or because the client's
    connection closed. Not a :class:`PoolNotFoundError`: the pool is still there.
    """


class TransactionClosedError(DbPoolError):
    """The transaction object was already committed or rolled back; raised client-side."""


class PoolUnavailableError(DbPoolError):
    """The database, or the daemon itself, cannot be reached (gRPC UNAVAILABLE)."""


class PoolTimeoutError(DbPoolError, TimeoutError):
    """The call ran out of time: its deadline passed or no connection became free."""


class AuthenticationError(DbPoolError):
    """The daemon does not know who is calling (gRPC UNAUTHENTICATED): no token, a wrong
    or expired one, or no client certificate it accepts. Also raised by a database that
    refuses the pool's own credentials (SQLSTATE 28000/28P01)."""


class PermissionDeniedError(AuthenticationError):
    """The caller is known but may not do this (gRPC PERMISSION_DENIED): e.g. a write on
    a pool its tenant may only read, or a CreatePool it has no right to.

    A subclass of :class:`AuthenticationError` so that code written when both codes
    raised that class still catches it.
    """


class QuotaExceededError(DbPoolError):
    """The caller's tenant reached one of its quotas (gRPC RESOURCE_EXHAUSTED with the
    ``QUOTA_EXCEEDED`` reason).

    Attributes:
        quota: the quota's name, e.g. ``max_concurrent_calls``, ``calls_per_second``,
            ``max_result_rows`` (the keys of ``[tenants.<name>.quotas]``), if known.
        limit: its configured limit, if known.
    """

    @property
    def quota(self) -> Optional[str]:
        """The name of the quota that was reached."""
        return self.metadata.get("quota")

    @property
    def limit(self) -> Optional[int]:
        """The quota's configured limit."""
        value = self.metadata.get("limit")
        return int(value) if value is not None and value.isdigit() else None


_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: PoolNotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: PoolExistsError,
    grpc.StatusCode.UNAVAILABLE: PoolUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: PoolTimeoutError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: PoolTimeoutError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.ABORTED: TransactionAbortedError,
}

# Codes under which the database's own errors travel; with a SQLSTATE they are QueryErrors.
_STATEMENT_CODES = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
)


def error_class(code: grpc.StatusCode, from_database: bool = False, quota: bool = False) -> type[DbPoolError]:
    """Returns the exception class for a gRPC status code.

    ``from_database`` tells that the database itself rejected the statement (the status
    carries a SQLSTATE or a ``DATABASE_ERROR`` reason), which makes it a QueryError.
    ``quota`` tells that a RESOURCE_EXHAUSTED is a tenant's quota (reason
    ``QUOTA_EXCEEDED``), not a full pool: a QuotaExceededError.
    """
    if code in _STATEMENT_CODES and from_database:
        return QueryError
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and quota:
        return QuotaExceededError
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError
    return _BY_CODE.get(code, DbPoolError)
