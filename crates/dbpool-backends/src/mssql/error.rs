//! tiberius errors → dbpool errors, keeping SQL Server's error number and message.
use dbpool_core::{Error, UnavailableCause};
use tiberius::error::Error as TdsError;

/// Login failed for user (wrong name or password).
const LOGIN_FAILED: u32 = 18456;
/// Other login refusals: account locked, password expired or must change.
const LOGIN_REFUSED: [u32; 3] = [18486, 18487, 18488];
/// Deadlock victim; snapshot isolation update conflict.
const ABORTED: [u32; 2] = [1205, 3960];

/// Classifies a tiberius error by what the caller can do about it.
pub fn classify(e: &TdsError) -> Error {
    match e {
        TdsError::Server(t) => {
            let code = t.code();
            let message = t.message().to_string();
            if code == LOGIN_FAILED || LOGIN_REFUSED.contains(&code) {
                Error::AuthFailed(format!("{message} (error {code})"))
            } else if ABORTED.contains(&code) {
                Error::Aborted {
                    message,
                    code: code.to_string(),
                }
            } else {
                Error::Database {
                    message,
                    code: Some(code.to_string()),
                }
            }
        }
        TdsError::Conversion(m) => Error::invalid("params", m.to_string()),
        TdsError::BulkInput(m) => Error::invalid("stream", m.to_string()),
        TdsError::Tls(m) => Error::unavailable(UnavailableCause::Connect, format!("TLS: {m}")),
        // I/O, protocol and encoding failures leave the connection unusable.
        other => Error::unavailable(UnavailableCause::Closed, other.to_string())
            .with_source(other.clone()),
    }
}

/// Whether the connection is still usable after this error (a server error is, the
/// session goes on; anything on the wire is not).
pub fn keeps_connection(e: &TdsError) -> bool {
    matches!(e, TdsError::Server(t) if t.class() < 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable() {
        let e = TdsError::Io {
            kind: tiberius::error::IoErrorKind::ConnectionRefused,
            message: "refused".into(),
        };
        assert!(
            matches!(classify(&e), Error::Unavailable { message, .. } if message.contains("refused"))
        );
        assert!(!keeps_connection(&e));
        let c = TdsError::Conversion("bad".into());
        assert!(matches!(classify(&c), Error::InvalidArgument { field, .. } if field == "params"));
    }
}
