//! libpq's TLS keys of a PostgreSQL URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`):
//! read from the query, checked, and taken out of the URL the driver parses (which knows
//! only disable/prefer/require and no files).
use std::fmt;
use std::path::PathBuf;

/// The TLS query keys of a PostgreSQL URL, in the order the docs list them.
pub const PG_TLS_KEYS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// The keys among [`PG_TLS_KEYS`] that name a file on the daemon's machine.
pub const PG_TLS_FILE_KEYS: &[&str] = &["sslrootcert", "sslcert", "sslkey"];

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS if the server offers it, else plaintext (the default).
    Prefer,
    /// TLS or nothing; the certificate is checked only when `sslrootcert` is given.
    Require,
    /// TLS with the server's certificate chain checked against `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode of a `sslmode` value, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The value as written in a URL.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the CA certificates that check the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted roots.
    System,
}

/// The TLS settings of one PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    /// `sslmode`, `prefer` when absent.
    pub mode: SslMode,
    /// `sslrootcert`.
    pub root_cert: Option<RootCert>,
    /// `sslcert` and `sslkey`: the client certificate (PEM) and its private key (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// A TLS key with a bad value: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTlsError {
    /// The key (`sslmode`, `sslcert`, …).
    pub key: &'static str,
    /// Why it is refused.
    pub message: String,
}

impl fmt::Display for PgTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for PgTlsError {}

fn bad(key: &'static str, message: impl Into<String>) -> PgTlsError {
    PgTlsError {
        key,
        message: message.into(),
    }
}

/// Checks one `sslmode` value.
pub fn parse_sslmode(v: &str) -> Result<SslMode, PgTlsError> {
    SslMode::parse(v).ok_or_else(|| {
        bad(
            "sslmode",
            format!(
                "unknown mode `{}` (expected disable, prefer, require, verify-ca or verify-full)",
                v.chars().take(40).collect::<String>()
            ),
        )
    })
}

/// The key of one `key=value` part of a query, percent-decoded.
fn decode(s: &str) -> String {
    // tokio-postgres keeps `+` as it is: so do we (form decoding would make it a space).
    let s = s.replace('+', "%2B");
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Percent-encodes a value for a URL query that tokio-postgres reads back.
pub(crate) fn encode(v: &str) -> String {
    // byte_serialize writes a space as `+` (and a `+` as %2B): tokio-postgres wants %20.
    url::form_urlencoded::byte_serialize(v.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl PgTls {
    /// Splits a PostgreSQL URL into the URL without its TLS keys (every other part kept
    /// byte for byte) and the settings those keys give. Values are checked, files are
    /// not opened.
    pub fn split(url: &str) -> Result<(String, PgTls), PgTlsError> {
        let (head, fragment) = match url.split_once('#') {
            Some((h, f)) => (h, Some(f)),
            None => (url, None),
        };
        let (base, query) = head.split_once('?').unwrap_or((head, ""));
        let mut kept = Vec::new();
        let (mut mode, mut root, mut cert, mut key) = (None, None, None, None);
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let slot = match decode(k).as_str() {
                "sslmode" => &mut mode,
                "sslrootcert" => &mut root,
                "sslcert" => &mut cert,
                "sslkey" => &mut key,
                _ => {
                    kept.push(part);
                    continue;
                }
            };
            *slot = Some(decode(v));
        }
        let mode = match mode {
            Some(m) => parse_sslmode(&m)?,
            None => SslMode::Prefer,
        };
        let path = |key: &'static str, v: Option<String>| match v {
            Some(v) if v.is_empty() => Err(bad(key, "must not be empty")),
            Some(v) => Ok(Some(PathBuf::from(v))),
            None => Ok(None),
        };
        let root_cert = path("sslrootcert", root)?.map(|p| {
            if p.as_os_str() == "system" {
                RootCert::System
            } else {
                RootCert::File(p)
            }
        });
        let client_cert = match (path("sslcert", cert)?, path("sslkey", key)?) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "sslcert",
                    "a client certificate needs `sslkey` (its private key) too",
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "sslkey",
                    "a private key needs `sslcert` (its client certificate) too",
                ))
            }
        };
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(bad(
                "sslrootcert",
                format!(
                    "sslmode={} needs `sslrootcert`: a PEM file of the CA certificates, or \
                     `system` for the system's trusted roots",
                    mode.name()
                ),
            ));
        }
        let mut out = base.to_string();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        let tls = PgTls {
            mode,
            root_cert,
            client_cert,
        };
        Ok((out, tls))
    }

    /// Whether the server's certificate chain is checked: verify-ca and verify-full, and,
    /// as libpq does, require and prefer when a root certificate is given.
    pub fn verifies_chain(&self) -> bool {
        match self.mode {
            SslMode::Disable => false,
            SslMode::Prefer | SslMode::Require => self.root_cert.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        }
    }

    /// Whether the certificate must name the host (verify-full only).
    pub fn verifies_host(&self) -> bool {
        self.mode == SslMode::VerifyFull
    }
}

/// Whether a URL's query sets `key`.
pub(crate) fn has_key(url: &str, key: &str) -> bool {
    let head = url.split('#').next().unwrap_or("");
    let query = head.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .any(|p| decode(p.split_once('=').map(|(k, _)| k).unwrap_or(p)) == key)
}

/// The file-naming TLS keys present in a URL's query (for the request policy).
pub fn pg_tls_file_keys(url: &str) -> Vec<String> {
    let head = url.split('#').next().unwrap_or("");
    let query = head.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|p| {
            let k = decode(p.split_once('=').map(|(k, _)| k).unwrap_or(p));
            let v = decode(p.split_once('=').map(|(_, v)| v).unwrap_or(""));
            // `sslrootcert=system` names no file.
            let file =
                PG_TLS_FILE_KEYS.contains(&k.as_str()) && !(k == "sslrootcert" && v == "system");
            file.then_some(k)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_leave_the_url_and_the_rest_is_kept() {
        let (url, tls) = PgTls::split(
            "postgres://u:p@h/db?options=-c%20search_path%3Dx&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a+b",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p@h/db?options=-c%20search_path%3Dx&application_name=a+b"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        assert!(tls.verifies_chain() && tls.verifies_host());
        let (url, tls) = PgTls::split("postgres://h/db").unwrap();
        assert_eq!(url, "postgres://h/db");
        assert_eq!(tls.mode, SslMode::Prefer);
        assert!(!tls.verifies_chain());
        let (url, tls) = PgTls::split("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(url, "postgres://h/db");
        assert!(!tls.verifies_chain());
    }

    #[test]
    fn require_with_a_root_certificate_checks_the_chain_as_libpq() {
        let (_, tls) = PgTls::split("postgres://h/db?sslmode=require&sslrootcert=system").unwrap();
        assert_eq!(tls.root_cert, Some(RootCert::System));
        assert!(tls.verifies_chain() && !tls.verifies_host());
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = PgTls::split("postgres://h/db?sslmode=verify").unwrap_err();
        assert_eq!(e.key, "sslmode");
        assert!(e.message.contains("verify-full"), "{e}");
        let e = PgTls::split("postgres://h/db?sslcert=/c.pem").unwrap_err();
        assert_eq!(e.key, "sslcert");
        let e = PgTls::split("postgres://h/db?sslkey=/k.pem").unwrap_err();
        assert_eq!(e.key, "sslkey");
        let e = PgTls::split("postgres://h/db?sslmode=verify-ca").unwrap_err();
        assert_eq!(e.key, "sslrootcert");
        let e = PgTls::split("postgres://h/db?sslrootcert=").unwrap_err();
        assert_eq!(e.key, "sslrootcert");
    }

    #[test]
    fn file_keys_are_found() {
        let url = "postgres://h/db?sslrootcert=system&sslcert=%2Fc&sslkey=k&sslmode=require";
        assert_eq!(pg_tls_file_keys(url), ["sslcert", "sslkey"]);
        assert_eq!(
            pg_tls_file_keys("postgres://h/db?sslrootcert=/ca"),
            ["sslrootcert"]
        );
        assert!(pg_tls_file_keys("postgres://h/db?sslmode=require").is_empty());
    }

    #[test]
    fn encoded_values_read_back() {
        let v = "/tmp/a b+c/ca.pem";
        assert_eq!(decode(&encode(v)), v);
    }
}
