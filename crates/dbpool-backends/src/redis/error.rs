//! Redis errors → dbpool errors, keeping the server's error kind (`WRONGTYPE`, `ERR`) as
//! the code and its message as the text.
use dbpool_core::{Error, UnavailableCause};
use redis::{ErrorKind, RedisError, ServerError};

/// Classifies a driver error by what the caller can do about it.
pub fn classify(e: &RedisError) -> Error {
    if e.kind() == ErrorKind::AuthenticationFailed {
        return Error::AuthFailed(e.to_string());
    }
    if let Some(errors) = e.clone().into_server_errors() {
        if let Some((_, first)) = errors.first() {
            return server(first);
        }
    }
    if e.is_timeout() {
        return Error::StatementTimeout(format!("no reply from Redis in time: {e}"));
    }
    match e.kind() {
        ErrorKind::InvalidClientConfig => Error::invalid("url", e.to_string()),
        ErrorKind::Client => Error::invalid("sql", e.to_string()),
        // Everything else is the connection's fault: refused, closed, TLS, protocol.
        _ => {
            let cause = if e.is_connection_refusal() {
                UnavailableCause::Connect
            } else {
                UnavailableCause::Closed
            };
            Error::unavailable(cause, e.to_string()).with_source(e.clone())
        }
    }
}

/// An error reply of the server (also one element of a pipeline or EXEC reply).
pub fn server(e: &ServerError) -> Error {
    let code = e.code().to_string();
    let message = e.details().unwrap_or(e.code()).to_string();
    match code.as_str() {
        "WRONGPASS" | "NOAUTH" => Error::AuthFailed(format!("{code} {message}")),
        "NOPERM" => Error::PermissionDenied(format!("{code} {message}")),
        "LOADING" | "MASTERDOWN" | "CLUSTERDOWN" | "TRYAGAIN" | "BUSY" => {
            Error::unavailable(UnavailableCause::Busy, format!("{code} {message}"))
        }
        _ => Error::Database {
            message,
            code: Some(code),
        },
    }
}

/// Whether the connection that produced `e` is still fit to go back to the pool: a
/// server's error reply leaves it in sync, a timeout or I/O error may not.
pub fn keeps_connection(e: &RedisError) -> bool {
    matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
        || e.clone().into_server_errors().is_some()
}
