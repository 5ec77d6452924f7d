//! PostgreSQL errors → dbpool errors, keeping the SQLSTATE and the server's message.
use super::params::ParamError;
use dbpool_core::{Error, UnavailableCause};
use tokio_postgres::error::Severity;

/// Classifies a tokio-postgres error by what the caller can do about it.
pub fn classify(e: &tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let mut message = db.message().to_string();
        if let Some(detail) = db.detail() {
            message.push_str(": ");
            message.push_str(detail);
        }
        // An ERROR (not FATAL) protocol violation is the server refusing one message of
        // ours, e.g. an unnamed statement bound with the wrong number of parameters: the
        // session goes on, and the request is what was wrong.
        let session_survives = db.parsed_severity() == Some(Severity::Error);
        return match code.get(..2).unwrap_or_default() {
            "08" if code == "08P01" && session_survives => Error::Database {
                message,
                code: Some(code),
            },
            "08" => Error::unavailable(
                UnavailableCause::Closed,
                format!("{message} (SQLSTATE {code})"),
            ),
            "28" => Error::AuthFailed(format!("{message} (SQLSTATE {code})")),
            "57" if code == "57014" => Error::StatementTimeout(message),
            // cannot_connect_now: the server is starting up or shutting down.
            "57" if code == "57P03" => Error::unavailable(
                UnavailableCause::Busy,
                format!("{message} (SQLSTATE {code})"),
            ),
            "57" => Error::unavailable(
                UnavailableCause::Closed,
                format!("{message} (SQLSTATE {code})"),
            ),
            "40" => Error::Aborted { message, code },
            _ => Error::Database {
                message,
                code: Some(code),
            },
        };
    }
    let text = e.to_string();
    let source = std::error::Error::source(e);
    if let Some(refused) = source.and_then(|s| s.downcast_ref::<ParamError>()) {
        // Our ToSql refused a value, e.g. out of range for int2.
        return Error::invalid("params", format!("{text}: {refused}"));
    }
    // Everything else is the connection's fault: closed, I/O, protocol (a failed connect
    // is told apart by the pool, which knows it was connecting). The source says why
    // ("Connection refused").
    let message = match source {
        Some(source) => format!("{text}: {source}"),
        None => text,
    };
    Error::unavailable(UnavailableCause::Closed, message)
}
