//! PostgreSQL errors → dbpool errors, keeping the SQLSTATE and the server's message.
use dbpool_core::Error;
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
            "08" => Error::Unavailable(format!("{message} (SQLSTATE {code})")),
            "28" => Error::AuthFailed(format!("{message} (SQLSTATE {code})")),
            "57" if code == "57014" => Error::StatementTimeout(message),
            "57" => Error::Unavailable(format!("{message} (SQLSTATE {code})")),
            "40" => Error::Aborted { message, code },
            _ => Error::Database {
                message,
                code: Some(code),
            },
        };
    }
    let text = e.to_string();
    if text.starts_with("error serializing parameter") {
        // Our ToSql refused a value, e.g. out of range for int2.
        let source = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        return Error::invalid("params", format!("{text}: {source}"));
    }
    // Everything else is the connection's fault: closed, I/O, protocol. The source says
    // why ("Connection refused").
    match std::error::Error::source(e) {
        Some(source) => Error::Unavailable(format!("{text}: {source}")),
        None => Error::Unavailable(text),
    }
}
