"""Plain dataclasses returned by the pool-management calls (no protobuf types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional, TypeVar

from ._proto import pool_pb2

#: ``dbpool.v1.PreparedStatements`` values → the names ``create_pool`` takes.
_PREPARED_STATEMENTS = {
    pool_pb2.PREPARED_STATEMENTS_AUTO_UNSPECIFIED: "auto",
    pool_pb2.PREPARED_STATEMENTS_NAMED: "named",
    pool_pb2.PREPARED_STATEMENTS_UNNAMED: "unnamed",
}

#: ``dbpool.v1.ResetSessions`` values → the names ``create_pool`` takes.
_RESET_SESSIONS = {
    pool_pb2.RESET_SESSIONS_AUTO_UNSPECIFIED: "auto",
    pool_pb2.RESET_SESSIONS_ALWAYS: "always",
}

__all__ = ["Metrics", "PoolInfo", "PoolOptions", "PoolStatus", "StatementResult"]

D = TypeVar("D")


def _copy(cls: type[D], msg: Any, **given: Any) -> D:
    """An instance of the dataclass ``cls`` with each field read from the same-named
    field of ``msg``, but those in ``given``."""
    copied = {f.name: getattr(msg, f.name) for f in fields(cls) if f.name not in given}  # type: ignore[arg-type]
    return cls(**copied, **given)


@dataclass(frozen=True)
class PoolOptions:
    """Connection pool options as the daemon applies them (0 means the server default)."""

    max_connections: int = 0
    min_connections: int = 0
    acquire_timeout_ms: int = 0
    idle_timeout_ms: int = 0
    max_lifetime_ms: int = 0
    statement_timeout_ms: int = 0
    batch_size: int = 0
    max_waiters: int = 0
    breaker_threshold: int = 0
    breaker_cooldown_ms: int = 0
    statement_cache_size: int = 0
    #: ``"auto"``, ``"named"`` or ``"unnamed"`` (PostgreSQL).
    prepared_statements: str = "auto"
    #: ``"auto"`` (reset a connection after SQL that changed its session) or ``"always"``.
    reset_sessions: str = "auto"

    @classmethod
    def from_proto(cls, msg: pool_pb2.PoolOptions) -> PoolOptions:
        """Copies a ``dbpool.v1.PoolOptions`` message."""
        mode = msg.prepared_statements
        reset = msg.reset_sessions
        return _copy(
            cls,
            msg,
            prepared_statements=_PREPARED_STATEMENTS.get(mode, str(mode)),
            reset_sessions=_RESET_SESSIONS.get(reset, str(reset)),
        )


@dataclass(frozen=True)
class PoolStatus:
    """Live state and call totals of one pool."""

    pool_id: str
    size: int = 0
    idle: int = 0
    in_use: int = 0
    waiters: int = 0
    max_connections: int = 0
    healthy: bool = False
    queries_total: int = 0
    executes_total: int = 0
    errors_total: int = 0
    connections_created_total: int = 0
    acquire_timeouts_total: int = 0

    @classmethod
    def from_proto(cls, msg: pool_pb2.PoolStatus) -> PoolStatus:
        """Copies a ``dbpool.v1.PoolStatus`` message."""
        return _copy(cls, msg)


@dataclass(frozen=True)
class PoolInfo:
    """A pool as the daemon reports it; the URL has its password replaced by ``***``."""

    pool_id: str
    backend: str
    redacted_url: str
    options: PoolOptions = field(default_factory=PoolOptions)
    status: Optional[PoolStatus] = None

    @classmethod
    def from_proto(cls, msg: pool_pb2.PoolInfo) -> PoolInfo:
        """Copies a ``dbpool.v1.PoolInfo`` message."""
        status = PoolStatus.from_proto(msg.status) if msg.HasField("status") else None
        return _copy(cls, msg, options=PoolOptions.from_proto(msg.options), status=status)


@dataclass(frozen=True)
class Metrics:
    """Counters of every pool (or of the one asked for) and the daemon's uptime."""

    pools: list[PoolStatus]
    uptime_seconds: int

    @classmethod
    def from_proto(cls, msg: pool_pb2.GetMetricsResponse) -> Metrics:
        """Copies a ``dbpool.v1.GetMetricsResponse`` message."""
        return cls([PoolStatus.from_proto(p) for p in msg.pools], msg.uptime_seconds)


@dataclass(frozen=True)
class StatementResult:
    """Outcome of one statement of a non-transactional ``execute_batch``.

    ``ok`` tells whether it succeeded; on success ``rows_affected`` counts its rows, on
    failure ``error`` holds the database's message and ``code`` its SQLSTATE (or code).
    """

    index: int
    ok: bool
    rows_affected: int = 0
    error: Optional[str] = None
    code: Optional[str] = None

    @classmethod
    def from_proto(cls, msg: pool_pb2.StatementResult) -> StatementResult:
        """Copies a ``dbpool.v1.StatementResult`` message."""
        return _copy(cls, msg, error=msg.error or None, code=msg.code or None)
