//! InfluxDB 1.x HTTP failures → dbpool errors: status codes, `{"error": …}` bodies and
//! the errors InfluxDB reports inside a 200 response.
use dbpool_core::{Error, UnavailableCause};

/// A transport failure: refused or dropped connections are `Unavailable`, a request
/// that outlived the statement timeout is `StatementTimeout`. The URL (which holds the
/// query) is left out of the message and of the kept source.
pub fn transport(e: reqwest::Error) -> Error {
    let e = e.without_url();
    // reqwest's Display hides the cause ("error sending request"); add the chain.
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        return Error::StatementTimeout(msg);
    }
    let cause = if e.is_connect() {
        UnavailableCause::Connect
    } else {
        UnavailableCause::Closed
    };
    Error::unavailable(cause, msg).with_source(e)
}

/// Characters of an upstream message a caller sees at most.
pub const EXCERPT_CHARS: usize = 200;

/// At most `EXCERPT_CHARS` characters of an upstream message, control characters
/// (newlines, escapes that could forge log lines or terminals) made spaces; `…` marks a
/// cut. Whatever a server or something posing as one sends, a caller gets no more.
pub fn excerpt(text: &str) -> String {
    let mut chars = text
        .trim_matches(|c: char| c.is_whitespace() || c.is_control())
        .chars();
    let mut out: String = chars
        .by_ref()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// The message of an error body: the `error` member of JSON, else the text itself; an
/// excerpt either way.
pub fn body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        error: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => excerpt(&b.error),
        Err(_) => excerpt(&String::from_utf8_lossy(body)),
    }
}

/// A 3xx answer: not followed, so the pool cannot be pointed through to another server.
pub fn redirect(code: u16) -> Error {
    Error::unavailable(
        UnavailableCause::Connect,
        format!(
            "InfluxDB answered HTTP {code}, a redirect, which is not followed: point the \
             pool's URL at the server itself"
        ),
    )
}

/// A non-2xx response: 401/403 are bad credentials or privileges, 4xx the statement's
/// or the data's fault (with the status as code), 5xx other than 500 the server's.
pub fn status(code: u16, body: &[u8]) -> Error {
    let mut message = body_message(body);
    if message.is_empty() {
        message = format!("HTTP status {code}");
    }
    match code {
        401 | 403 => Error::AuthFailed(message),
        502..=599 => Error::unavailable(UnavailableCause::Busy, format!("{message} (HTTP {code})")),
        _ => Error::Database {
            message,
            code: Some(code.to_string()),
        },
    }
}

/// An error InfluxDB put inside a 200 response (`database not found: x`).
pub fn in_body(message: String) -> Error {
    Error::Database {
        message: excerpt(&message),
        code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(matches!(
            status(401, br#"{"error":"authorization failed"}"#),
            Error::AuthFailed(m) if m == "authorization failed"
        ));
        assert!(matches!(status(403, b""), Error::AuthFailed(_)));
        let e = status(400, br#"{"error":"error parsing query: found SELEC"}"#);
        assert!(matches!(&e, Error::Database { message, code: Some(c) }
            if message.starts_with("error parsing") && c == "400"));
        assert!(matches!(status(503, b"busy"),
            Error::Unavailable { cause: UnavailableCause::Busy, message, .. } if message.contains("busy")));
        assert!(
            matches!(status(404, b""), Error::Database { message, .. } if message == "HTTP status 404")
        );
        assert!(
            matches!(redirect(307), Error::Unavailable { message, .. } if message.contains("HTTP 307"))
        );
    }

    #[test]
    fn excerpts_are_short_and_plain() {
        let long = format!("a\u{1b}[31mb\r\nc{}", "é".repeat(1000));
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.starts_with("a [31mb  c"), "{e}");
        assert!(e.ends_with('…'));
        assert!(!e.chars().any(char::is_control));
        assert_eq!(excerpt(" short\n"), "short");
        let body = format!(r#"{{"error":"{}"}}"#, "x".repeat(5000));
        let Error::Database { message, .. } = status(400, body.as_bytes()) else {
            panic!()
        };
        assert_eq!(message.chars().count(), EXCERPT_CHARS + 1);
    }
}
