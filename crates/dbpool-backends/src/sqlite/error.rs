//! SQLite errors → dbpool errors, keeping SQLite's extended result code.
use dbpool_core::{Error, UnavailableCause};

/// rusqlite errors → ours, keeping SQLite's extended result code.
pub(crate) fn classify(e: &rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            use rusqlite::ErrorCode::*;
            let message = msg.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                DatabaseBusy | DatabaseLocked => {
                    Error::unavailable(UnavailableCause::Busy, message)
                }
                CannotOpen | NotADatabase | DatabaseCorrupt => {
                    Error::unavailable(UnavailableCause::Connect, message)
                }
                SystemIoFailure => Error::unavailable(UnavailableCause::Closed, message),
                // Only the authorizer of a confined pool (confine.rs) denies statements.
                AuthorizationForStatementDenied => Error::PermissionDenied(format!(
                    "{message}: on a pool created at run time, ATTACH (and VACUUM INTO) of \
                     a file outside the data directory and load_extension() are refused"
                )),
                PermissionDenied | ReadOnly => Error::Database {
                    message,
                    code: Some(f.extended_code.to_string()),
                },
                _ => Error::Database {
                    message,
                    code: Some(f.extended_code.to_string()),
                },
            }
        }
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => Error::Database {
            message: format!("{msg} (at offset {offset})"),
            code: Some(error.extended_code.to_string()),
        },
        rusqlite::Error::InvalidParameterCount(got, want) => Error::invalid(
            "params",
            format!("the statement has {want} placeholders but {got} parameters were given"),
        ),
        rusqlite::Error::MultipleStatement => {
            Error::invalid("sql", "holds more than one statement; use ExecuteBatch")
        }
        other => Error::Database {
            message: other.to_string(),
            code: None,
        },
    }
}

pub(crate) fn sq(e: rusqlite::Error) -> Error {
    classify(&e)
}
