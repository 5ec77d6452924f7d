//! Secrets that never show up in logs, Debug output or API responses.
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret string (password, token). Debug and Display print `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for handing to a database driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Query parameters whose values are shown by `redact_url` (compared ignoring case):
/// connection tuning and names every backend reads, none of which carries a secret.
/// Every other value is `***`, `options` included (`-c password=…` is one).
const SAFE_QUERY_KEYS: &[&str] = &[
    // PostgreSQL (libpq names).
    "sslmode",
    // Paths of the TLS files (not their contents).
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslnegotiation",
    "channel_binding",
    "connect_timeout",
    "application_name",
    "target_session_attrs",
    "load_balance_hosts",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "tcp_user_timeout",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    // MSSQL.
    "encrypt",
    "trust_server_certificate",
    "trustservercertificate",
    "trust_server_certificate_ca",
    "instance",
    "instance_name",
    "application_intent",
    "app_name",
    "applicationname",
    // InfluxDB.
    "db",
    "rp",
    "retention_policy",
    "precision",
    // Redis.
    "protocol",
    // SQLite.
    "mode",
    "cache",
];

/// The URL as it may be shown (ListPools, logs): the password of the user info, every
/// query value whose key is not on a known-safe list, and the fragment become `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let safe = SAFE_QUERY_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s));
                        let shown = if safe || v.is_empty() {
                            v.into_owned()
                        } else {
                            "***".into()
                        };
                        (k.into_owned(), shown)
                    })
                    .collect();
                if pairs.is_empty() {
                    u.set_query(None);
                } else {
                    u.query_pairs_mut().clear().extend_pairs(pairs);
                }
            }
            if u.fragment().is_some() {
                u.set_fragment(Some("***"));
            }
            u.to_string()
        }
        // Not a URL we understand: show only the scheme so nothing secret can leak.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact_url("postgres://bob:hunter2@db:5432/app?password=x&sslmode=disable"),
            "postgres://bob:***@db:5432/app?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
    }

    #[test]
    fn only_known_safe_query_values_are_shown() {
        let r = redact_url(
            "postgres://bob@db/app?options=-c%20secret%3Dx&SSLMode=require&api_key=k1&empty=",
        );
        assert_eq!(
            r,
            "postgres://bob@db/app?options=***&SSLMode=require&api_key=***&empty="
        );
        assert!(!r.contains("secret") && !r.contains("k1"), "{r}");
        let r = redact_url("influxdb://u:pw@h:8086/db?rp=week&precision=s#token=abc");
        assert_eq!(r, "influxdb://u:***@h:8086/db?rp=week&precision=s#***");
        let r = redact_url("redis://:hunter2@127.0.0.1:6379/0?unknown=hunter3#hunter4");
        assert!(!r.contains("hunter"), "{r}");
        let r = redact_url("mssql://sa:p@h/db?encrypt=on&trust_server_certificate=true");
        assert_eq!(
            r,
            "mssql://sa:***@h/db?encrypt=on&trust_server_certificate=true"
        );
        // A `?` with nothing after it stays harmless.
        assert_eq!(redact_url("postgres://h/db?"), "postgres://h/db");
        assert_eq!(redact_url("not a url: hunter2"), "***");
    }
}
