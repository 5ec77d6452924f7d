//! The one place where dbpool errors become gRPC statuses (and choose their log level).
use dbpool_core::Error;
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
        Error::Unavailable(_) => (Code::Unavailable, "DATABASE_UNAVAILABLE"),
        Error::ReadOnly { .. } => (Code::Unavailable, "READ_ONLY_DEGRADED"),
        Error::AuthFailed(_) => (Code::Unauthenticated, "DATABASE_AUTH_FAILED"),
        Error::AcquireTimeout(_) => (Code::ResourceExhausted, "ACQUIRE_TIMEOUT"),
        Error::ResourceExhausted(_) => (Code::ResourceExhausted, "LIMIT_REACHED"),
        Error::BatchStatement { source, .. } => {
            (to_status(source).code(), "BATCH_STATEMENT_FAILED")
        }
        Error::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
        Error::Unsupported(_) => (Code::Unimplemented, "UNSUPPORTED"),
        Error::ShuttingDown(_) => (Code::Unavailable, "SHUTTING_DOWN"),
        Error::Internal(_) => (Code::Internal, "INTERNAL"),
    }
}

/// Maps an error to a gRPC status. The message keeps the database's own text and
/// SQLSTATE; the details carry a google.rpc.ErrorInfo with `sqlstate` when there is one.
pub fn to_status(e: &Error) -> Status {
    let (code, reason) = classify(e);
    log(e, code);
    let mut metadata = std::collections::HashMap::new();
    if let Some(sqlstate) = e.db_code() {
        metadata.insert("sqlstate".to_string(), sqlstate.to_string());
    }
    if let Error::BatchStatement { index, .. } = e {
        metadata.insert("statement_index".to_string(), index.to_string());
    }
    if let Error::InvalidArgument { field, .. } = e {
        metadata.insert("field".to_string(), field.clone());
    }
    if let Error::TransactionControl {
        field, statement, ..
    } = e
    {
        metadata.insert("field".to_string(), field.clone());
        metadata.insert("statement".to_string(), statement.clone());
    }
    let details = ErrorDetails::with_error_info(reason, "dbpool", metadata);
    Status::with_error_details(code, bounded(e.to_string()), details)
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

/// The gRPC code of an error, as a metric label (`INVALID_ARGUMENT`, …).
pub fn code_name(e: &Error) -> &'static str {
    match classify(e).0 {
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

fn log(e: &Error, code: Code) {
    match code {
        Code::Internal | Code::Unknown => tracing::error!(error = %e, "call failed"),
        Code::Unavailable | Code::ResourceExhausted | Code::Unauthenticated => {
            tracing::warn!(error = %e, "call failed")
        }
        _ => tracing::debug!(error = %e, "call failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let db = Error::Database {
            message: "relation \"x\" does not exist".into(),
            code: Some("42P01".into()),
        };
        let s = to_status(&db);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("42P01"));
        let info = s.get_details_error_info().unwrap();
        assert_eq!(info.metadata["sqlstate"], "42P01");
        assert_eq!(
            to_status(&Error::PoolNotFound("p".into())).code(),
            Code::NotFound
        );
        assert_eq!(
            to_status(&Error::AcquireTimeout(std::time::Duration::from_secs(1))).code(),
            Code::ResourceExhausted
        );
        let ro = to_status(&Error::ReadOnly {
            pool: "pg".into(),
            cause: "connection refused".into(),
            reads: "reads are served by backup 1".into(),
        });
        assert_eq!(ro.code(), Code::Unavailable);
        assert_eq!(
            ro.get_details_error_info().unwrap().reason,
            "READ_ONLY_DEGRADED"
        );
        assert!(
            ro.message().contains("read-only degraded mode"),
            "{}",
            ro.message()
        );
        let tc = to_status(&Error::TransactionControl {
            field: "sql".into(),
            statement: "BEGIN".into(),
            hint: "use BeginTransaction".into(),
        });
        assert_eq!(tc.code(), Code::InvalidArgument);
        let info = tc.get_details_error_info().unwrap();
        assert_eq!(info.reason, "TRANSACTION_CONTROL_STATEMENT");
        assert_eq!(info.metadata["field"], "sql");
        assert_eq!(info.metadata["statement"], "BEGIN");
        let broken = to_status(&Error::TransactionBroken("a statement failed".into()));
        assert_eq!(broken.code(), Code::Aborted);
        assert_eq!(
            broken.get_details_error_info().unwrap().reason,
            "TRANSACTION_ROLLED_BACK"
        );
        let batch = Error::BatchStatement {
            index: 2,
            source: Box::new(db),
        };
        let s = to_status(&batch);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.get_details_error_info().unwrap().metadata["statement_index"],
            "2"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let e = Error::Database {
            message: "é".repeat(10_000),
            code: None,
        };
        let m = to_status(&e).message().to_string();
        assert!(
            m.len() <= MAX_MESSAGE_BYTES && m.ends_with('…'),
            "{}",
            m.len()
        );
    }
}
