"""Python client of db-pool-rs, the gRPC / Arrow Flight database sidecar.

Queries arrive over Arrow Flight as Polars frames (or pyarrow tables and record-batch
streams) without copying; pools are managed over gRPC. :class:`DatabasePool` is the
asyncio client, :class:`SyncDatabasePool` the blocking, thread-safe one::

    from db_pool_rs import SyncDatabasePool

    with SyncDatabasePool("grpc://127.0.0.1:50051") as db:
        df = db.query("default", "SELECT 1 AS one")

A daemon with tenants wants a token: ``token=`` of either client, else the environment
variable ``DBPOOL_TOKEN``.
"""

from ._flight import BatchStream
from .async_client import AsyncTransaction, DatabasePool
from .errors import (
    AuthenticationError,
    DbPoolError,
    InvalidArgumentError,
    ParamTypeError,
    PermissionDeniedError,
    PoolExistsError,
    PoolNotFoundError,
    PoolTimeoutError,
    PoolUnavailableError,
    QueryError,
    QuotaExceededError,
    TransactionAbortedError,
    TransactionClosedError,
    TransactionNotFoundError,
)
from .models import Metrics, PoolInfo, PoolOptions, PoolStatus, StatementResult
from .sync_client import SyncDatabasePool, Transaction

__version__ = "0.1.0"

__all__ = [
    "AsyncTransaction",
    "AuthenticationError",
    "BatchStream",
    "DatabasePool",
    "DbPoolError",
    "InvalidArgumentError",
    "Metrics",
    "ParamTypeError",
    "PermissionDeniedError",
    "PoolExistsError",
    "PoolInfo",
    "PoolNotFoundError",
    "PoolOptions",
    "PoolStatus",
    "PoolTimeoutError",
    "PoolUnavailableError",
    "QueryError",
    "QuotaExceededError",
    "StatementResult",
    "SyncDatabasePool",
    "Transaction",
    "TransactionAbortedError",
    "TransactionClosedError",
    "TransactionNotFoundError",
    "__version__",
]
