//! The error type every layer shares; `grpc.rs` (feature `grpc`) maps it to gRPC
//! statuses in one place. Causes are variants: retry, breaker, failover, status codes and
//! health decide by matching on them, never on message text.
use std::sync::Arc;
use std::time::Duration;

/// The error a driver (or the OS) raised, kept behind an error of ours so a caller can
/// inspect it: `std::error::Error::source` of ours is this error itself, ready for
/// `downcast_ref::<std::io::Error>()`. Shared, so `Error` stays `Clone`.
#[derive(Debug, Clone)]
pub struct Source(Arc<dyn std::error::Error + Send + Sync>);

impl Source {
    /// Keeps `e`.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Source(Arc::new(e))
    }
}

/// The kept error itself (not the `Arc` around it), which is what `#[source]` hands out.
impl std::ops::Deref for Source {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// Why a database is unavailable: what retry, the breaker and failover decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnavailableCause {
    /// Opening a connection failed: refused, unreachable, TLS, handshake, or a server
    /// that answers at the address but is not the database (a redirect).
    Connect,
    /// The pool's circuit breaker is open after repeated connect failures, or a probe
    /// is testing the database: the call failed fast without trying.
    CircuitOpen,
    /// A connection broke while in use or was found closed: I/O, protocol, the server
    /// shutting down.
    Closed,
    /// The database is up but cannot take the call now: SQLite busy or locked, Redis
    /// `LOADING`/`BUSY`, an HTTP 5xx of a gateway, a server still starting.
    Busy,
}

impl UnavailableCause {
    /// `CONNECT`, `CIRCUIT_OPEN`, `CLOSED` or `BUSY` (the `cause` a client reads).
    pub fn name(self) -> &'static str {
        match self {
            UnavailableCause::Connect => "CONNECT",
            UnavailableCause::CircuitOpen => "CIRCUIT_OPEN",
            UnavailableCause::Closed => "CLOSED",
            UnavailableCause::Busy => "BUSY",
        }
    }
}

/// Everything that can go wrong in a call, classified by what the caller can do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No pool has this id.
    #[error("pool `{0}` not found")]
    PoolNotFound(String),
    /// No open transaction has this id (never begun, ended, or rolled back by timeout).
    #[error("transaction `{0}` not found (never begun, already ended, or rolled back after its idle timeout or when the client connection that began it closed)")]
    TransactionNotFound(String),
    /// No Flight SQL prepared statement has this handle on the calling connection; the
    /// text says why one may be gone.
    #[error("{0}")]
    PreparedStatementNotFound(String),
    /// A pool with this id exists already.
    #[error("pool `{0}` already exists")]
    PoolExists(String),
    /// A request field is missing or wrong.
    #[error("invalid `{field}`: {message}")]
    InvalidArgument {
        /// The field, e.g. `sql` or `params[2]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The database rejected the statement (syntax, missing table, constraint, type).
    #[error("{message}{}", code.as_ref().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default())]
    Database {
        /// The database's own message.
        message: String,
        /// SQLSTATE or the database's error number.
        code: Option<String>,
    },
    /// The transaction was aborted by the database (serialization failure, deadlock).
    #[error("{message} (SQLSTATE {code})")]
    Aborted {
        /// The database's own message.
        message: String,
        /// SQLSTATE or the database's error number.
        code: String,
    },
    /// The SQL holds a statement that opens, ends or hands over a transaction (BEGIN,
    /// COMMIT, ROLLBACK, …) where the daemon manages transactions: it would leave a
    /// pooled connection inside a transaction, or end one behind `Commit`'s back.
    #[error("invalid `{field}`: `{statement}` is refused: {hint}")]
    TransactionControl {
        /// The request field, `sql` or `statements[i].sql`.
        field: String,
        /// The statement, e.g. `BEGIN` or `ROLLBACK TO SAVEPOINT`.
        statement: String,
        /// What to do instead.
        hint: String,
    },
    /// A transaction cannot commit as its caller expects: a failed statement aborted it,
    /// a statement inside it ended it, or a call left one open. The message says which,
    /// and that it was rolled back.
    #[error("transaction rolled back: {0}")]
    TransactionBroken(String),
    /// A statement ran longer than the statement timeout or was cancelled.
    #[error("statement timed out or was cancelled: {0}")]
    StatementTimeout(String),
    /// The database could not be reached, dropped the connection, or cannot take the
    /// call now; `cause` says which.
    #[error("database unavailable: {message}")]
    Unavailable {
        /// Why, by kind: what retry, breaker and failover decide on.
        cause: UnavailableCause,
        /// What the caller reads: the database's or driver's own words (never a URL,
        /// a password or an upstream body).
        message: String,
        /// The driver's error, when one was at hand; `message` already says what it said.
        #[source]
        source: Option<Source>,
    },
    /// The pool's primary is down and its backups serve reads only: a write is refused
    /// rather than sent to a replica.
    #[error("pool `{pool}` is in read-only degraded mode: primary unavailable ({}); writes are refused, {reads}", Bare(.cause))]
    ReadOnly {
        /// The pool's id.
        pool: String,
        /// Why the primary is considered down (its last connection error).
        #[source]
        cause: Box<Error>,
        /// Where reads go meanwhile, e.g. `reads are served by backup 1`.
        reads: String,
    },
    /// The database refused the pool's credentials.
    #[error("database rejected the pool's credentials: {0}")]
    AuthFailed(String),
    /// No connection became free within the acquire timeout.
    #[error("no connection free within {0:?} (pool exhausted)")]
    AcquireTimeout(Duration),
    /// A limit of the daemon was reached (too many open prepared statements, queue full).
    #[error("limit reached: {0}")]
    ResourceExhausted(String),
    /// Statement `index` of a transactional batch failed; everything was rolled back.
    #[error("statement {index} failed, batch rolled back: {source}")]
    BatchStatement {
        /// Position of the failing statement, from 0.
        index: usize,
        /// Why it failed.
        source: Box<Error>,
    },
    /// The pool's policy forbids this command (e.g. a Redis command on the denylist), or
    /// the caller's tenant has no right to the call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The caller is not known: no credentials, or ones the daemon does not accept (a
    /// wrong token, an expired JWT). The text says which, never the credential.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A quota of the caller's tenant is used up.
    #[error("tenant `{tenant}` reached its quota {quota} ({limit})")]
    QuotaExceeded {
        /// The tenant.
        tenant: String,
        /// The quota's key, e.g. `max_concurrent_calls`.
        quota: &'static str,
        /// Its value.
        limit: u64,
    },
    /// The backend cannot do this.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The daemon is shutting down or the pool is being removed.
    #[error("shutting down: {0}")]
    ShuttingDown(String),
    /// A bug or an unexpected state; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The refusal of a transaction-control statement found by
    /// [`crate::sql_lex::find_tx_control`].
    pub fn transaction_control(
        c: crate::sql_lex::TxControl,
        in_transaction: bool,
        field: &str,
    ) -> Self {
        use crate::sql_lex::TxControlKind;
        let hint = match (c.kind, in_transaction) {
            (TxControlKind::Savepoint, _) => {
                "savepoints work only inside a transaction; \
                 begin one with BeginTransaction (or use ExecuteBatch with transaction = true)"
            }
            (TxControlKind::Transaction, true) => {
                "end the transaction with Commit or \
                 Rollback; a statement that ends it would make later statements run outside \
                 it while Commit still answers"
            }
            (TxControlKind::Transaction, false) => {
                "use BeginTransaction, then Commit or \
                 Rollback (or ExecuteBatch with transaction = true); the daemon manages \
                 transactions so a pooled connection never goes back inside one"
            }
        };
        Error::TransactionControl {
            field: field.to_string(),
            statement: c.statement.to_string(),
            hint: hint.to_string(),
        }
    }

    /// An `Unavailable` error without a driver error behind it.
    pub fn unavailable(cause: UnavailableCause, message: impl Into<String>) -> Self {
        Error::Unavailable {
            cause,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` behind an `Unavailable` error (other errors are returned as they are:
    /// their message is all a caller needs).
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        match self {
            Error::Unavailable { cause, message, .. } => Error::Unavailable {
                cause,
                message,
                source: Some(Source::new(source)),
            },
            other => other,
        }
    }

    /// The cause of an `Unavailable` error.
    pub fn unavailable_cause(&self) -> Option<UnavailableCause> {
        match self {
            Error::Unavailable { cause, .. } => Some(*cause),
            _ => None,
        }
    }

    /// The same error with `note` appended to its message, for the variants whose
    /// message is free text (e.g. how many rows went in before a bulk insert failed).
    pub fn noted(self, note: &str) -> Self {
        match self {
            Error::Database { message, code } => Error::Database {
                message: message + note,
                code,
            },
            Error::InvalidArgument { field, message } => Error::InvalidArgument {
                field,
                message: message + note,
            },
            Error::Unavailable {
                cause,
                message,
                source,
            } => Error::Unavailable {
                cause,
                message: message + note,
                source,
            },
            Error::StatementTimeout(m) => Error::StatementTimeout(m + note),
            Error::AuthFailed(m) => Error::AuthFailed(m + note),
            other => other,
        }
    }

    /// A request field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The database's error code (SQLSTATE) if this error carries one.
    pub fn db_code(&self) -> Option<&str> {
        match self {
            Error::Database { code, .. } => code.as_deref(),
            Error::Aborted { code, .. } => Some(code),
            Error::BatchStatement { source, .. } => source.db_code(),
            _ => None,
        }
    }

    /// Whether this error says the database (not the statement) is at fault.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::AuthFailed(_))
    }
}

/// An error as it reads nested in another's message: an `Unavailable` error without its
/// "database unavailable: " prefix (the outer message says so already).
#[derive(Debug)]
pub struct Bare<'a>(pub &'a Error);

impl std::fmt::Display for Bare<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Error::Unavailable { message, .. } => f.write_str(message),
            other => write!(f, "{other}"),
        }
    }
}

impl From<dbpool_config::Error> for Error {
    fn from(e: dbpool_config::Error) -> Self {
        match e {
            dbpool_config::Error::Invalid { key, message, .. } => Error::InvalidArgument {
                field: key,
                message,
            },
            other => Error::invalid("config", other.to_string()),
        }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}

/// Result of dbpool-core functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
