//! One `[pools.<id>]` table: where the database is and how its pool behaves.
pub use crate::options::PoolOptions;
use crate::{redact_url, Error, Result, Secret};
use serde::Deserialize;
use std::fmt;

/// The database kinds this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// PostgreSQL over its binary protocol.
    Postgres,
    /// An SQLite file, embedded in the daemon.
    Sqlite,
    /// Microsoft SQL Server over TDS.
    Mssql,
    /// Redis.
    Redis,
    /// InfluxDB 1.x over HTTP.
    Influxdb,
}

impl BackendKind {
    /// The name used in the API and in `db_type`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Postgres => "postgresql",
            BackendKind::Sqlite => "sqlite",
            BackendKind::Mssql => "mssql",
            BackendKind::Redis => "redis",
            BackendKind::Influxdb => "influxdb",
        }
    }

    pub(crate) fn from_scheme(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Some(BackendKind::Postgres),
            "sqlite" | "sqlite3" => Some(BackendKind::Sqlite),
            "mssql" | "sqlserver" => Some(BackendKind::Mssql),
            "redis" | "rediss" => Some(BackendKind::Redis),
            "influxdb" | "influxdbs" => Some(BackendKind::Influxdb),
            _ => None,
        }
    }
}

/// A pool as written in the config file or sent to CreatePool: a URL or separate fields.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Connection URL: `postgres://user:pass@host:port/db?…` or `sqlite:///path/file.db`.
    pub url: Option<Secret>,
    /// Database kind when no URL is given: `postgresql` or `sqlite`.
    pub db_type: Option<String>,
    /// Host name or address (field form).
    pub host: Option<String>,
    /// TCP port (field form).
    pub port: Option<u16>,
    /// Database name, or the SQLite file path (field form).
    pub database: Option<String>,
    /// User name (field form).
    pub username: Option<String>,
    /// Password (field form). Prefer `password_env` in files.
    pub password: Option<Secret>,
    /// Name of an environment variable holding the password.
    pub password_env: Option<String>,
    /// Backup servers (e.g. replicas) of the same database, as URLs of the primary's
    /// scheme: reads move to the first one that works while the primary is down, writes
    /// are refused. PostgreSQL only.
    #[serde(default)]
    pub backup_urls: Vec<Secret>,
    /// TLS to PostgreSQL, as libpq: `disable`, `prefer` (the default), `require`,
    /// `verify-ca` or `verify-full`. Applies to the URL and the backups unless their own
    /// query sets it.
    pub sslmode: Option<String>,
    /// PEM file of the CA certificates that check the server, or `system` (PostgreSQL).
    pub sslrootcert: Option<String>,
    /// PEM file of the client certificate (PostgreSQL; needs `sslkey`).
    pub sslcert: Option<String>,
    /// PEM file of the client certificate's private key (PostgreSQL; needs `sslcert`).
    pub sslkey: Option<String>,
    /// Pool sizing and timing.
    #[serde(flatten)]
    pub options: PoolOptions,
    /// Backend-specific settings (e.g. Redis `denied_commands`), documented per backend.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("url", &self.url.as_ref().map(|u| redact_url(u.expose())))
            .field("db_type", &self.db_type)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("password_env", &self.password_env)
            .field("backup_urls", &redact_all(&self.backup_urls))
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("options", &self.options)
            .field("settings", &self.settings)
            .finish()
    }
}

/// A pool config resolved to one backend and one complete URL.
#[derive(Clone)]
pub struct ResolvedPool {
    /// Which backend serves it.
    pub kind: BackendKind,
    /// The full URL including the password: hand it to a driver, never print it.
    pub url: Secret,
    /// Pool sizing and timing, validated.
    pub options: PoolOptions,
    /// Backend-specific settings, as configured.
    pub settings: std::collections::BTreeMap<String, String>,
    /// Backup URLs (with passwords), validated to be of the primary's backend; empty
    /// when the pool has none.
    pub backup_urls: Vec<Secret>,
}

fn redact_all(urls: &[Secret]) -> Vec<String> {
    urls.iter().map(|u| redact_url(u.expose())).collect()
}

impl fmt::Debug for ResolvedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedPool")
            .field("kind", &self.kind)
            .field("url", &self.redacted_url())
            .field("backup_urls", &self.redacted_backup_urls())
            .field("options", &self.options)
            .finish()
    }
}

impl ResolvedPool {
    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose())
    }

    /// The backup URLs with their passwords replaced by `***`.
    pub fn redacted_backup_urls(&self) -> Vec<String> {
        redact_all(&self.backup_urls)
    }
}

impl PoolConfig {
    /// Resolves URL or fields into one backend and URL; `prefix` is the key of the table
    /// (e.g. `pools.pg.`) for error messages.
    pub fn resolve(&self, prefix: &str) -> Result<ResolvedPool> {
        self.options.validate(prefix)?;
        let url = match &self.url {
            Some(u) if !u.is_empty() => u.expose().to_string(),
            _ => self.url_from_fields(prefix)?,
        };
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        let kind = BackendKind::from_scheme(scheme).ok_or_else(|| {
            Error::invalid(
                format!("{prefix}url"),
                format!("unsupported scheme `{scheme}` (expected postgres://, sqlite://, mssql://, redis://, rediss://, influxdb:// or influxdbs://)"),
            )
        })?;
        let url = self.with_tls_fields(prefix, kind, url)?;
        if kind == BackendKind::Postgres {
            url::Url::parse(&url).map_err(|e| {
                Error::invalid(format!("{prefix}url"), format!("not a valid URL: {e}"))
            })?;
            self.check_tls(&url, prefix, "url", "")?;
        }
        Ok(ResolvedPool {
            kind,
            url: Secret::new(url),
            options: self.options.clone(),
            settings: self.settings.clone(),
            backup_urls: self.backup_urls(prefix, kind)?,
        })
    }

    /// Checks `backup_urls`: PostgreSQL only, each a valid URL of the primary's backend.
    fn backup_urls(&self, prefix: &str, kind: BackendKind) -> Result<Vec<Secret>> {
        let key = format!("{prefix}backup_urls");
        if self.backup_urls.is_empty() {
            return Ok(Vec::new());
        }
        if kind != BackendKind::Postgres {
            return Err(Error::invalid(
                key,
                format!(
                    "backup URLs are supported for PostgreSQL pools only, not {}",
                    kind.name()
                ),
            ));
        }
        for (i, u) in self.backup_urls.iter().enumerate() {
            let n = i + 1;
            // Never echo the URL itself: it may hold a password.
            let scheme = u.expose().split_once(':').map(|(s, _)| s).unwrap_or("");
            if BackendKind::from_scheme(scheme) != Some(kind) {
                return Err(Error::invalid(
                    key,
                    format!(
                        "backup {n}: expected a postgres:// URL like the primary's, got scheme `{scheme}`"
                    ),
                ));
            }
            url::Url::parse(u.expose()).map_err(|e| {
                Error::invalid(key.clone(), format!("backup {n}: not a valid URL: {e}"))
            })?;
        }
        let mut out = Vec::with_capacity(self.backup_urls.len());
        for (i, u) in self.backup_urls.iter().enumerate() {
            let url = self.with_tls_fields(prefix, kind, u.expose().to_string())?;
            self.check_tls(&url, prefix, "backup_urls", &format!("backup {}: ", i + 1))?;
            out.push(Secret::new(url));
        }
        Ok(out)
    }

    /// The TLS fields (`sslmode`, …) that are set, with their keys.
    fn tls_fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("sslmode", &self.sslmode),
            ("sslrootcert", &self.sslrootcert),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    /// Adds the TLS fields to a PostgreSQL URL's query, each unless the URL sets it.
    fn with_tls_fields(&self, prefix: &str, kind: BackendKind, url: String) -> Result<String> {
        let fields = self.tls_fields();
        let Some((first, _)) = fields.first() else {
            return Ok(url);
        };
        if kind != BackendKind::Postgres {
            return Err(Error::invalid(
                format!("{prefix}{first}"),
                format!(
                    "applies to PostgreSQL pools only, not {} (see docs/security.md for \
                     the TLS of the other backends)",
                    kind.name()
                ),
            ));
        }
        let query = url.split('#').next().unwrap_or("");
        let query = query.split_once('?').map(|(_, q)| q).unwrap_or("");
        let own: Vec<&str> = query
            .split('&')
            .map(|p| p.split_once('=').map(|(k, _)| k).unwrap_or(p))
            .collect();
        let (mut head, fragment) = match url.split_once('#') {
            Some((h, f)) => (h.to_string(), Some(f.to_string())),
            None => (url.clone(), None),
        };
        for (k, v) in fields.into_iter().filter(|(k, _)| !own.contains(k)) {
            head.push(if head.contains('?') { '&' } else { '?' });
            head.push_str(&format!("{k}={}", crate::pg_tls::encode(v)));
        }
        Ok(match fragment {
            Some(f) => format!("{head}#{f}"),
            None => head,
        })
    }

    /// Checks the TLS keys of a PostgreSQL URL. A bad key of the pool's own URL names
    /// the URL (`what`), one set (or missing) in the field form names the field.
    fn check_tls(&self, url: &str, prefix: &str, what: &str, note: &str) -> Result<()> {
        crate::PgTls::split(url).map(drop).map_err(|e| {
            let in_url = self
                .url
                .as_ref()
                .is_some_and(|u| !u.is_empty() && crate::pg_tls::has_key(u.expose(), e.key));
            if what == "url" && !in_url {
                Error::invalid(format!("{prefix}{}", e.key), e.message)
            } else {
                Error::invalid(format!("{prefix}{what}"), format!("{note}{e}"))
            }
        })
    }

    fn url_from_fields(&self, prefix: &str) -> Result<String> {
        let db_type = self.db_type.as_deref().ok_or_else(|| {
            Error::invalid(
                format!("{prefix}url"),
                "either `url` or `db_type` is required",
            )
        })?;
        let kind = BackendKind::from_scheme(db_type).ok_or_else(|| {
            Error::invalid(
                format!("{prefix}db_type"),
                format!("unknown database type `{db_type}` (expected postgresql, sqlite, mssql, redis or influxdb)"),
            )
        })?;
        match kind {
            BackendKind::Sqlite => {
                let path = self.database.as_deref().ok_or_else(|| {
                    Error::invalid(
                        format!("{prefix}database"),
                        "the SQLite file path is required",
                    )
                })?;
                Ok(format!("sqlite://{path}"))
            }
            other => {
                let (scheme, default_port) = match other {
                    BackendKind::Mssql => ("mssql", 1433),
                    BackendKind::Redis => ("redis", 6379),
                    BackendKind::Influxdb => ("influxdb", 8086),
                    _ => ("postgres", 5432),
                };
                let mut u = url::Url::parse(&format!("{scheme}://localhost")).expect("static URL");
                let host = self.host.as_deref().unwrap_or("localhost");
                u.set_host(Some(host)).map_err(|e| {
                    Error::invalid(format!("{prefix}host"), format!("bad host `{host}`: {e}"))
                })?;
                let _ = u.set_port(Some(self.port.unwrap_or(default_port)));
                if let Some(user) = &self.username {
                    let _ = u.set_username(user);
                }
                let password = match (&self.password, &self.password_env) {
                    (Some(p), _) if !p.is_empty() => Some(p.expose().to_string()),
                    (_, Some(var)) => Some(std::env::var(var).map_err(|_| {
                        Error::invalid(
                            format!("{prefix}password_env"),
                            format!("environment variable `{var}` is not set"),
                        )
                    })?),
                    _ => None,
                };
                if let Some(p) = password {
                    let _ = u.set_password(Some(&p));
                }
                let default_db = if other == BackendKind::Postgres {
                    "postgres"
                } else {
                    ""
                };
                u.set_path(self.database.as_deref().unwrap_or(default_db));
                Ok(u.to_string())
            }
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
