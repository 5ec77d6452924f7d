import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResetSessions(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESET_SESSIONS_AUTO_UNSPECIFIED: _ClassVar[ResetSessions]
    RESET_SESSIONS_ALWAYS: _ClassVar[ResetSessions]

class PreparedStatements(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREPARED_STATEMENTS_AUTO_UNSPECIFIED: _ClassVar[PreparedStatements]
    PREPARED_STATEMENTS_NAMED: _ClassVar[PreparedStatements]
    PREPARED_STATEMENTS_UNNAMED: _ClassVar[PreparedStatements]

class ResultFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_FORMAT_ARROW_IPC_UNSPECIFIED: _ClassVar[ResultFormat]
    RESULT_FORMAT_JSON_ROWS: _ClassVar[ResultFormat]

class IsolationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISOLATION_LEVEL_DEFAULT_UNSPECIFIED: _ClassVar[IsolationLevel]
    ISOLATION_LEVEL_READ_UNCOMMITTED: _ClassVar[IsolationLevel]
    ISOLATION_LEVEL_READ_COMMITTED: _ClassVar[IsolationLevel]
    ISOLATION_LEVEL_REPEATABLE_READ: _ClassVar[IsolationLevel]
    ISOLATION_LEVEL_SERIALIZABLE: _ClassVar[IsolationLevel]
RESET_SESSIONS_AUTO_UNSPECIFIED: ResetSessions
RESET_SESSIONS_ALWAYS: ResetSessions
PREPARED_STATEMENTS_AUTO_UNSPECIFIED: PreparedStatements
PREPARED_STATEMENTS_NAMED: PreparedStatements
PREPARED_STATEMENTS_UNNAMED: PreparedStatements
RESULT_FORMAT_ARROW_IPC_UNSPECIFIED: ResultFormat
RESULT_FORMAT_JSON_ROWS: ResultFormat
ISOLATION_LEVEL_DEFAULT_UNSPECIFIED: IsolationLevel
ISOLATION_LEVEL_READ_UNCOMMITTED: IsolationLevel
ISOLATION_LEVEL_READ_COMMITTED: IsolationLevel
ISOLATION_LEVEL_REPEATABLE_READ: IsolationLevel
ISOLATION_LEVEL_SERIALIZABLE: IsolationLevel

class Param(_message.Message):
    __slots__ = ("null", "bool", "int64", "double", "string", "bytes", "timestamp", "decimal")
    NULL_FIELD_NUMBER: _ClassVar[int]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    INT64_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DECIMAL_FIELD_NUMBER: _ClassVar[int]
    null: bool
    bool: bool
    int64: int
    double: float
    string: str
    bytes: bytes
    timestamp: _timestamp_pb2.Timestamp
    decimal: str
    def __init__(self, null: bool = ..., bool: bool = ..., int64: _Optional[int] = ..., double: _Optional[float] = ..., string: _Optional[str] = ..., bytes: _Optional[bytes] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decimal: _Optional[str] = ...) -> None: ...

class PoolOptions(_message.Message):
    __slots__ = ("max_connections", "min_connections", "acquire_timeout_ms", "idle_timeout_ms", "max_lifetime_ms", "statement_timeout_ms", "batch_size", "max_waiters", "breaker_threshold", "breaker_cooldown_ms", "statement_cache_size", "prepared_statements", "reset_sessions")
    MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    MIN_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_LIFETIME_MS_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_WAITERS_FIELD_NUMBER: _ClassVar[int]
    BREAKER_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BREAKER_COOLDOWN_MS_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_CACHE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PREPARED_STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    RESET_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    max_connections: int
    min_connections: int
    acquire_timeout_ms: int
    idle_timeout_ms: int
    max_lifetime_ms: int
    statement_timeout_ms: int
    batch_size: int
    max_waiters: int
    breaker_threshold: int
    breaker_cooldown_ms: int
    statement_cache_size: int
    prepared_statements: PreparedStatements
    reset_sessions: ResetSessions
    def __init__(self, max_connections: _Optional[int] = ..., min_connections: _Optional[int] = ..., acquire_timeout_ms: _Optional[int] = ..., idle_timeout_ms: _Optional[int] = ..., max_lifetime_ms: _Optional[int] = ..., statement_timeout_ms: _Optional[int] = ..., batch_size: _Optional[int] = ..., max_waiters: _Optional[int] = ..., breaker_threshold: _Optional[int] = ..., breaker_cooldown_ms: _Optional[int] = ..., statement_cache_size: _Optional[int] = ..., prepared_statements: _Optional[_Union[PreparedStatements, str]] = ..., reset_sessions: _Optional[_Union[ResetSessions, str]] = ...) -> None: ...

class CreatePoolRequest(_message.Message):
    __slots__ = ("pool_id", "url", "db_type", "host", "port", "database", "username", "password", "options", "lazy", "settings", "backup_urls")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DB_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LAZY_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    BACKUP_URLS_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    url: str
    db_type: str
    host: str
    port: int
    database: str
    username: str
    password: str
    options: PoolOptions
    lazy: bool
    settings: _containers.ScalarMap[str, str]
    backup_urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pool_id: _Optional[str] = ..., url: _Optional[str] = ..., db_type: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., database: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., options: _Optional[_Union[PoolOptions, _Mapping]] = ..., lazy: bool = ..., settings: _Optional[_Mapping[str, str]] = ..., backup_urls: _Optional[_Iterable[str]] = ...) -> None: ...

class CreatePoolResponse(_message.Message):
    __slots__ = ("pool",)
    POOL_FIELD_NUMBER: _ClassVar[int]
    pool: PoolInfo
    def __init__(self, pool: _Optional[_Union[PoolInfo, _Mapping]] = ...) -> None: ...

class RemovePoolRequest(_message.Message):
    __slots__ = ("pool_id",)
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    def __init__(self, pool_id: _Optional[str] = ...) -> None: ...

class RemovePoolResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolInfo]
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolInfo, _Mapping]]] = ...) -> None: ...

class PoolInfo(_message.Message):
    __slots__ = ("pool_id", "backend", "redacted_url", "options", "status", "redacted_backup_urls")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    REDACTED_URL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REDACTED_BACKUP_URLS_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    backend: str
    redacted_url: str
    options: PoolOptions
    status: PoolStatus
    redacted_backup_urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pool_id: _Optional[str] = ..., backend: _Optional[str] = ..., redacted_url: _Optional[str] = ..., options: _Optional[_Union[PoolOptions, _Mapping]] = ..., status: _Optional[_Union[PoolStatus, _Mapping]] = ..., redacted_backup_urls: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPoolStatusRequest(_message.Message):
    __slots__ = ("pool_id",)
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    def __init__(self, pool_id: _Optional[str] = ...) -> None: ...

class PoolStatus(_message.Message):
    __slots__ = ("pool_id", "size", "idle", "in_use", "waiters", "max_connections", "healthy", "queries_total", "executes_total", "errors_total", "connections_created_total", "acquire_timeouts_total", "circuit", "degraded", "serving")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    WAITERS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    QUERIES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    EXECUTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERRORS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_CREATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_TIMEOUTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    size: int
    idle: int
    in_use: int
    waiters: int
    max_connections: int
    healthy: bool
    queries_total: int
    executes_total: int
    errors_total: int
    connections_created_total: int
    acquire_timeouts_total: int
    circuit: str
    degraded: bool
    serving: str
    def __init__(self, pool_id: _Optional[str] = ..., size: _Optional[int] = ..., idle: _Optional[int] = ..., in_use: _Optional[int] = ..., waiters: _Optional[int] = ..., max_connections: _Optional[int] = ..., healthy: bool = ..., queries_total: _Optional[int] = ..., executes_total: _Optional[int] = ..., errors_total: _Optional[int] = ..., connections_created_total: _Optional[int] = ..., acquire_timeouts_total: _Optional[int] = ..., circuit: _Optional[str] = ..., degraded: bool = ..., serving: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("pool_id", "sql", "params", "format", "batch_size", "transaction_id")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[Param]
    format: ResultFormat
    batch_size: int
    transaction_id: str
    def __init__(self, pool_id: _Optional[str] = ..., sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[Param, _Mapping]]] = ..., format: _Optional[_Union[ResultFormat, str]] = ..., batch_size: _Optional[int] = ..., transaction_id: _Optional[str] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("arrow_ipc", "rows")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    rows: RowBatch
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., rows: _Optional[_Union[RowBatch, _Mapping]] = ...) -> None: ...

class RowBatch(_message.Message):
    __slots__ = ("columns", "rows")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("pool_id", "sql", "params", "transaction_id")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[Param]
    transaction_id: str
    def __init__(self, pool_id: _Optional[str] = ..., sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[Param, _Mapping]]] = ..., transaction_id: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("rows_affected",)
    ROWS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    rows_affected: int
    def __init__(self, rows_affected: _Optional[int] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("sql", "params")
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[Param]
    def __init__(self, sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[Param, _Mapping]]] = ...) -> None: ...

class ExecuteBatchRequest(_message.Message):
    __slots__ = ("pool_id", "statements", "transaction")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    statements: _containers.RepeatedCompositeFieldContainer[Statement]
    transaction: bool
    def __init__(self, pool_id: _Optional[str] = ..., statements: _Optional[_Iterable[_Union[Statement, _Mapping]]] = ..., transaction: bool = ...) -> None: ...

class StatementResult(_message.Message):
    __slots__ = ("index", "ok", "rows_affected", "error", "code")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ROWS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    index: int
    ok: bool
    rows_affected: int
    error: str
    code: str
    def __init__(self, index: _Optional[int] = ..., ok: bool = ..., rows_affected: _Optional[int] = ..., error: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class ExecuteBatchResponse(_message.Message):
    __slots__ = ("results", "total_rows_affected")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StatementResult]
    total_rows_affected: int
    def __init__(self, results: _Optional[_Iterable[_Union[StatementResult, _Mapping]]] = ..., total_rows_affected: _Optional[int] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("pool_id",)
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    def __init__(self, pool_id: _Optional[str] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("pools", "uptime_seconds", "metrics")
    POOLS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolStatus]
    uptime_seconds: int
    metrics: _containers.RepeatedCompositeFieldContainer[PoolMetrics]
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolStatus, _Mapping]]] = ..., uptime_seconds: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[PoolMetrics, _Mapping]]] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("upper_bounds", "cumulative_counts", "sum", "count")
    UPPER_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_bounds: _containers.RepeatedScalarFieldContainer[float]
    cumulative_counts: _containers.RepeatedScalarFieldContainer[int]
    sum: float
    count: int
    def __init__(self, upper_bounds: _Optional[_Iterable[float]] = ..., cumulative_counts: _Optional[_Iterable[int]] = ..., sum: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class PoolMetrics(_message.Message):
    __slots__ = ("pool_id", "calls_total", "errors_total", "rows_streamed_total", "bytes_streamed_total", "acquire_wait_seconds", "call_duration_seconds", "acquire_timeouts_total")
    class CallsTotalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ErrorsTotalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class CallDurationSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Histogram
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Histogram, _Mapping]] = ...) -> None: ...
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERRORS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_STREAMED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_STREAMED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CALL_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_TIMEOUTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    calls_total: _containers.ScalarMap[str, int]
    errors_total: _containers.ScalarMap[str, int]
    rows_streamed_total: int
    bytes_streamed_total: int
    acquire_wait_seconds: Histogram
    call_duration_seconds: _containers.MessageMap[str, Histogram]
    acquire_timeouts_total: int
    def __init__(self, pool_id: _Optional[str] = ..., calls_total: _Optional[_Mapping[str, int]] = ..., errors_total: _Optional[_Mapping[str, int]] = ..., rows_streamed_total: _Optional[int] = ..., bytes_streamed_total: _Optional[int] = ..., acquire_wait_seconds: _Optional[_Union[Histogram, _Mapping]] = ..., call_duration_seconds: _Optional[_Mapping[str, Histogram]] = ..., acquire_timeouts_total: _Optional[int] = ...) -> None: ...

class BeginTransactionRequest(_message.Message):
    __slots__ = ("pool_id", "isolation", "read_only", "idle_timeout_ms")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    isolation: IsolationLevel
    read_only: bool
    idle_timeout_ms: int
    def __init__(self, pool_id: _Optional[str] = ..., isolation: _Optional[_Union[IsolationLevel, str]] = ..., read_only: bool = ..., idle_timeout_ms: _Optional[int] = ...) -> None: ...

class BeginTransactionResponse(_message.Message):
    __slots__ = ("transaction_id",)
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    def __init__(self, transaction_id: _Optional[str] = ...) -> None: ...

class EndTransactionRequest(_message.Message):
    __slots__ = ("transaction_id",)
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    def __init__(self, transaction_id: _Optional[str] = ...) -> None: ...

class EndTransactionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
