//! The one place where dbpool errors become gRPC statuses and choose their log level:
//! handlers return `Err(e)?` and `From<Error> for Status` does the rest.
use crate::{call, Error};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The gRPC code and the ErrorInfo reason of an error: an exhaustive match, no `_` arm.
fn classify(e: &Error) -> (Code, &'static str) {
    match e {
        Error::PoolNotFound(_) => (Code::NotFound, "POOL_NOT_FOUND"),
        Error::TransactionNotFound(_) => (Code::NotFound, "TRANSACTION_NOT_FOUND"),
        Error::PreparedStatementNotFound(_) => (Code::NotFound, "PREPARED_STATEMENT_NOT_FOUND"),
        Error::PoolExists(_) => (Code::AlreadyExists, "POOL_EXISTS"),
        Error::InvalidArgument { .. } => (Code::InvalidArgument, "INVALID_ARGUMENT"),
        Error::Database { .. } => (Code::InvalidArgument, "DATABASE_ERROR"),
        Error::Aborted { .. } => (Code::Aborted, "TRANSACTION_ABORTED"),
        Error::TransactionControl { .. } => {
            (Code::InvalidArgument, "TRANSACTION_CONTROL_STATEMENT")
        }
        Error::TransactionBroken(_) => (Code::Aborted, "TRANSACTION_ROLLED_BACK"),
        Error::StatementTimeout(_) => (Code::DeadlineExceeded, "STATEMENT_TIMEOUT"),
        Error::Unavailable { .. } => (Code::Unavailable, "DATABASE_UNAVAILABLE"),
        Error::ReadOnly { .. } => (Code::Unavailable, "READ_ONLY_DEGRADED"),
        Error::AuthFailed(_) => (Code::Unauthenticated, "DATABASE_AUTH_FAILED"),
        Error::AcquireTimeout(_) => (Code::ResourceExhausted, "ACQUIRE_TIMEOUT"),
        Error::ResourceExhausted(_) => (Code::ResourceExhausted, "LIMIT_REACHED"),
        Error::BatchStatement { source, .. } => (classify(source).0, "BATCH_STATEMENT_FAILED"),
        Error::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
        Error::Unauthenticated(_) => (Code::Unauthenticated, "UNAUTHENTICATED"),
        Error::QuotaExceeded { .. } => (Code::ResourceExhausted, "QUOTA_EXCEEDED"),
        Error::Unsupported(_) => (Code::Unimplemented, "UNSUPPORTED"),
        Error::ShuttingDown(_) => (Code::Unavailable, "SHUTTING_DOWN"),
        Error::Internal(_) => (Code::Internal, "INTERNAL"),
    }
}

impl Error {
    /// The gRPC code this error is sent with.
    pub fn grpc_code(&self) -> Code {
        classify(self).0
    }

    /// The gRPC code as a metric label (`INVALID_ARGUMENT`, …).
    pub fn code_name(&self) -> &'static str {
        code_name(self.grpc_code())
    }
}

/// Maps an error to a gRPC status and logs it, naming the call's method and pool. The
/// message keeps the database's own text and SQLSTATE; the details carry a
/// google.rpc.ErrorInfo with `sqlstate`, `statement_index`, `field`, `statement` or
/// `cause` where the error has one.
impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let (code, reason) = classify(&e);
        log(&e, code);
        let mut metadata = std::collections::HashMap::new();
        if let Some(sqlstate) = e.db_code() {
            metadata.insert("sqlstate".to_string(), sqlstate.to_string());
        }
        match &e {
            Error::BatchStatement { index, .. } => {
                metadata.insert("statement_index".to_string(), index.to_string());
            }
            Error::InvalidArgument { field, .. } => {
                metadata.insert("field".to_string(), field.clone());
            }
            Error::TransactionControl {
                field, statement, ..
            } => {
                metadata.insert("field".to_string(), field.clone());
                metadata.insert("statement".to_string(), statement.clone());
            }
            Error::Unavailable { cause, .. } => {
                metadata.insert("cause".to_string(), cause.name().to_string());
            }
            Error::QuotaExceeded { quota, limit, .. } => {
                metadata.insert("quota".to_string(), quota.to_string());
                metadata.insert("limit".to_string(), limit.to_string());
            }
            _ => {}
        }
        let details = ErrorDetails::with_error_info(reason, "dbpool", metadata);
        Status::with_error_details(code, bounded(e.to_string()), details)
    }
}

/// Longest status message sent: a client's metadata limit (often 16 KiB for all headers)
/// must still hold it, or the caller cannot read its error at all.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A status message cut to [`MAX_MESSAGE_BYTES`] on a character boundary. Request
/// strings are already shortened where they are quoted; this bounds what a database
/// says (a long DETAIL, a statement it echoes).
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// A gRPC code as a label (`INVALID_ARGUMENT`, …).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The log line of a failed call: an error for a bug, a warning for what an operator
/// must see (the database is down, a limit is reached, credentials are refused), debug
/// for the caller's own mistakes.
fn log(e: &Error, code: Code) {
    let (method, pool) = call::describe();
    let name = code_name(code);
    match code {
        Code::Internal | Code::Unknown => {
            tracing::error!(%pool, %method, code = name, error = %e, "call failed")
        }
        Code::Unavailable | Code::ResourceExhausted | Code::Unauthenticated => {
            tracing::warn!(%pool, %method, code = name, error = %e, "call failed")
        }
        _ => tracing::debug!(%pool, %method, code = name, error = %e, "call failed"),
    }
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
