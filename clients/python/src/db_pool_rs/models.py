"""Plain dataclasses returned by the pool-management calls (no protobuf types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ._proto import pool_pb2

#: ``dbpool.v1.PreparedStatements`` values → the names ``create_pool`` takes.
_PREPARED_STATEMENTS = {
    pool_pb2.PREPARED_STATEMENTS_AUTO_UNSPECIFIED: "auto",
    pool_pb2.PREPARED_STATEMENTS_NAMED: "named",
    pool_pb2.PREPARED_STATEMENTS_UNNAMED: "unnamed",
}

__all__ = ["Metrics", "PoolInfo", "PoolOptions", "PoolStatus", "StatementResult"]


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

    @classmethod
    def from_proto(cls, msg: pool_pb2.PoolOptions) -> PoolOptions:
        """Copies a ``dbpool.v1.PoolOptions`` message."""
        return cls(
            max_connections=msg.max_connections,
            min_connections=msg.min_connections,
            acquire_timeout_ms=msg.acquire_timeout_ms,
            idle_timeout_ms=msg.idle_timeout_ms,
            max_lifetime_ms=msg.max_lifetime_ms,
            statement_timeout_ms=msg.statement_timeout_ms,
            batch_size=msg.batch_size,
            max_waiters=msg.max_waiters,
            breaker_threshold=msg.breaker_threshold,
            breaker_cooldown_ms=msg.breaker_cooldown_ms,
            statement_cache_size=msg.statement_cache_size,
            prepared_statements=_PREPARED_STATEMENTS.get(
                msg.prepared_statements, str(msg.prepared_statements)
            ),
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
        return cls(
            pool_id=msg.pool_id,
            size=msg.size,
            idle=msg.idle,
            in_use=msg.in_use,
            waiters=msg.waiters,
            max_connections=msg.max_connections,
            healthy=msg.healthy,
            queries_total=msg.queries_total,
            executes_total=msg.executes_total,
            errors_total=msg.errors_total,
            connections_created_total=msg.connections_created_total,
            acquire_timeouts_total=msg.acquire_timeouts_total,
        )


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
        return cls(
            pool_id=msg.pool_id,
            backend=msg.backend,
            redacted_url=msg.redacted_url,
            options=PoolOptions.from_proto(msg.options),
            status=PoolStatus.from_proto(msg.status) if msg.HasField("status") else None,
        )


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
        return cls(
            index=msg.index,
            ok=msg.ok,
            rows_affected=msg.rows_affected,
            error=msg.error or None,
            code=msg.code or None,
        )
