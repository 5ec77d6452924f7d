//! One `[pools.<id>]` table: where the database is and how its pool behaves.
use crate::{redact_url, Error, Result, Secret};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

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

    fn from_scheme(s: &str) -> Option<Self> {
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

/// Pool sizing and timing. Every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolOptions {
    /// Largest number of open connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Idle connections kept open.
    #[serde(default)]
    pub min_connections: u32,
    /// How long a call waits for a free connection, in milliseconds.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Idle connections older than this are closed, in milliseconds (0: never).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections older than this are replaced, in milliseconds (0: never).
    #[serde(default = "default_max_lifetime_ms")]
    pub max_lifetime_ms: u64,
    /// Server-side statement timeout in milliseconds where supported (0: none).
    #[serde(default)]
    pub statement_timeout_ms: u64,
    /// Rows per Arrow record batch of a streamed result.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Calls that may wait for a connection at once; more are refused at once with
    /// RESOURCE_EXHAUSTED instead of piling up.
    #[serde(default = "default_max_waiters")]
    pub max_waiters: u32,
    /// Consecutive connection failures that open the circuit breaker (0: never).
    #[serde(default = "default_breaker_threshold")]
    pub breaker_threshold: u32,
    /// Milliseconds an open breaker fails calls fast before one probe may try again.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// Prepared statements kept per connection, least recently used evicted first
    /// (0: prepare every statement anew). PostgreSQL only.
    #[serde(default = "default_statement_cache_size")]
    pub statement_cache_size: u32,
    /// Named (cached) or unnamed statements, or named until a transaction-mode pooler
    /// is detected. PostgreSQL only.
    #[serde(default)]
    pub prepared_statements: crate::PreparedStatements,
}

fn default_max_connections() -> u32 {
    10
}
fn default_acquire_timeout_ms() -> u64 {
    30_000
}
fn default_idle_timeout_ms() -> u64 {
    600_000
}
fn default_max_lifetime_ms() -> u64 {
    1_800_000
}
fn default_batch_size() -> u32 {
    8192
}
fn default_max_waiters() -> u32 {
    256
}
fn default_breaker_threshold() -> u32 {
    5
}
fn default_breaker_cooldown_ms() -> u64 {
    2_000
}
fn default_statement_cache_size() -> u32 {
    256
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: default_max_connections(),
            min_connections: 0,
            acquire_timeout_ms: default_acquire_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            max_lifetime_ms: default_max_lifetime_ms(),
            statement_timeout_ms: 0,
            batch_size: default_batch_size(),
            max_waiters: default_max_waiters(),
            breaker_threshold: default_breaker_threshold(),
            breaker_cooldown_ms: default_breaker_cooldown_ms(),
            statement_cache_size: default_statement_cache_size(),
            prepared_statements: crate::PreparedStatements::Auto,
        }
    }
}

/// Longest acquire timeout a pool may have, in milliseconds (one hour).
pub const MAX_ACQUIRE_TIMEOUT_MS: u64 = 3_600_000;
/// Longest idle timeout, lifetime, statement timeout or breaker cooldown (one week).
pub const MAX_DURATION_MS: u64 = 604_800_000;
/// Most calls that may wait for a connection of one pool.
pub const MAX_WAITERS: u32 = 100_000;
/// Largest breaker threshold (consecutive failures).
pub const MAX_BREAKER_THRESHOLD: u32 = 1_000_000;

impl PoolOptions {
    /// Checks ranges; `prefix` is the dotted key of the table, e.g. `pools.pg`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let key = |k: &str| format!("{prefix}{k}");
        if self.max_connections == 0 || self.max_connections > 10_000 {
            return Err(Error::invalid(key("max_connections"), "must be 1..=10000"));
        }
        if self.min_connections > self.max_connections {
            return Err(Error::invalid(
                key("min_connections"),
                "must not exceed max_connections",
            ));
        }
        // Upper bounds keep every timeout far from overflowing an Instant or a driver's
        // own integer (PostgreSQL's statement_timeout is an int of milliseconds).
        if self.acquire_timeout_ms == 0 || self.acquire_timeout_ms > MAX_ACQUIRE_TIMEOUT_MS {
            return Err(Error::invalid(
                key("acquire_timeout_ms"),
                "must be 1..=3600000 (one hour)",
            ));
        }
        for (name, v) in [
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_lifetime_ms", self.max_lifetime_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
            ("breaker_cooldown_ms", self.breaker_cooldown_ms),
        ] {
            if v > MAX_DURATION_MS {
                return Err(Error::invalid(
                    key(name),
                    "must be 0..=604800000 (one week)",
                ));
            }
        }
        if self.max_waiters > MAX_WAITERS {
            return Err(Error::invalid(key("max_waiters"), "must be 0..=100000"));
        }
        if self.breaker_threshold > MAX_BREAKER_THRESHOLD {
            return Err(Error::invalid(
                key("breaker_threshold"),
                "must be 0..=1000000",
            ));
        }
        if self.batch_size == 0 || self.batch_size > 1_000_000 {
            return Err(Error::invalid(key("batch_size"), "must be 1..=1000000"));
        }
        if self.statement_cache_size > 100_000 {
            return Err(Error::invalid(
                key("statement_cache_size"),
                "must be 0..=100000",
            ));
        }
        Ok(())
    }

    /// The acquire timeout as a Duration.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// `None` when 0 (disabled), else the Duration.
    pub fn optional(ms: u64) -> Option<Duration> {
        (ms > 0).then(|| Duration::from_millis(ms))
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
        if kind == BackendKind::Postgres {
            url::Url::parse(&url).map_err(|e| {
                Error::invalid(format!("{prefix}url"), format!("not a valid URL: {e}"))
            })?;
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
        Ok(self.backup_urls.clone())
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
mod tests {
    use super::*;

    #[test]
    fn fields_become_a_url() {
        let cfg = PoolConfig {
            db_type: Some("postgresql".into()),
            host: Some("db".into()),
            port: Some(6543),
            database: Some("app".into()),
            username: Some("u".into()),
            password: Some(Secret::new("p@ss")),
            ..Default::default()
        };
        let r = cfg.resolve("pools.x.").unwrap();
        assert_eq!(r.kind, BackendKind::Postgres);
        assert_eq!(r.url.expose(), "postgres://u:p%40ss@db:6543/app");
        assert_eq!(r.redacted_url(), "postgres://u:***@db:6543/app");
        assert!(!format!("{cfg:?}{r:?}").contains("p@ss"));
    }

    #[test]
    fn backup_urls_are_resolved_and_redacted() {
        let cfg = PoolConfig {
            url: Some(Secret::new("postgres://u:primary-pw@db1/app")),
            backup_urls: vec![
                Secret::new("postgresql://u:backup-pw@db2:5433/app"),
                Secret::new("pg://db3/app"),
            ],
            ..Default::default()
        };
        let r = cfg.resolve("pools.x.").unwrap();
        assert_eq!(r.backup_urls.len(), 2);
        assert_eq!(
            r.backup_urls[0].expose(),
            "postgresql://u:backup-pw@db2:5433/app"
        );
        assert_eq!(
            r.redacted_backup_urls(),
            ["postgresql://u:***@db2:5433/app", "pg://db3/app"]
        );
        let shown = format!("{cfg:?}{r:?}");
        assert!(shown.contains("postgresql://u:***@db2:5433/app"), "{shown}");
        assert!(!shown.contains("backup-pw") && !shown.contains("primary-pw"));
    }

    #[test]
    fn bad_backup_urls_name_the_key() {
        let with = |url: &str, backup: &str| PoolConfig {
            url: Some(Secret::new(url)),
            backup_urls: vec![Secret::new(backup)],
            ..Default::default()
        };
        let e = with("redis://r:6379/0", "redis://r2:6379/0")
            .resolve("pools.r.")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pools.r.backup_urls") && e.contains("PostgreSQL pools only"),
            "{e}"
        );
        let e = with("postgres://db/app", "mysql://u:secret-pw@db2/app")
            .resolve("pools.p.")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pools.p.backup_urls") && e.contains("backup 1") && e.contains("mysql"),
            "{e}"
        );
        assert!(!e.contains("secret-pw"), "{e}");
        let e = with("postgres://db/app", "postgres://db2:notaport/app")
            .resolve("pools.p.")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pools.p.backup_urls") && e.contains("not a valid URL"),
            "{e}"
        );
    }

    #[test]
    fn backup_urls_in_a_file() {
        let text = "[pools.pg]\nurl = \"postgres://db1/app\"\nbackup_urls = [\"postgres://u:pw@db2/app\", \"postgres://db3/app\"]\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, text).unwrap();
        // The file as the daemon loads it (through the env-override merge).
        let cfg = crate::load(Some(&path)).unwrap();
        let r = cfg.pools["pg"].resolve("pools.pg.").unwrap();
        assert_eq!(
            r.redacted_backup_urls(),
            ["postgres://u:***@db2/app", "postgres://db3/app"]
        );
        let text =
            "[pools.lite]\nurl = \"sqlite:///tmp/x.db\"\nbackup_urls = [\"sqlite:///tmp/y.db\"]\n";
        let e = crate::load_str(text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("f.toml:3") && e.contains("pools.lite.backup_urls"),
            "{e}"
        );
    }

    #[test]
    fn unknown_scheme_names_the_key() {
        let cfg = PoolConfig {
            url: Some(Secret::new("mysql://x")),
            ..Default::default()
        };
        let e = cfg.resolve("pools.m.").unwrap_err().to_string();
        assert!(e.contains("pools.m.url") && e.contains("mysql"), "{e}");
    }
}
