//! The config file: `[server]` and one `[pools.<id>]` table per pool, plus env overrides.
use crate::{Error, PoolConfig, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which pools decide the overall health (service "") the readiness probe asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// SERVING only while every pool reaches its database.
    #[default]
    All,
    /// SERVING while the pools in `required_pools` reach their databases.
    Required,
    /// Always SERVING while the daemon runs (pools report on their own services).
    None,
}

/// The `[server]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The one gRPC port: `host:port`, or `unix:/path` for a Unix domain socket.
    /// Localhost by default: the daemon is a sidecar.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// More addresses serving the same services as `listen` (same forms), e.g. a Unix
    /// socket beside a TCP port.
    #[serde(default)]
    pub extra_listen: Vec<String>,
    /// Mode of the socket files (`listen` or `extra_listen` as `unix:/path`), in octal
    /// (`"0660"`, the default: owner and group may connect).
    #[serde(default)]
    pub unix_socket_mode: Option<String>,
    /// A TCP address serving only `grpc.health.v1` (Kubernetes probes), e.g.
    /// `0.0.0.0:50052`; off when unset. Lets `listen` be a Unix socket.
    #[serde(default)]
    pub probe_listen: Option<String>,
    /// `[server.tls]`: TLS (and mutual TLS) on the daemon's port; plaintext when unset.
    #[serde(default)]
    pub tls: Option<crate::ServerTls>,
    /// Where the embedded default SQLite database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Create the pool `default` on an embedded SQLite file when no pool is configured.
    #[serde(default = "default_true")]
    pub default_pool: bool,
    /// Log format: `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Seconds in-flight calls get to finish after SIGTERM/SIGINT.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Milliseconds between background health checks of each pool.
    #[serde(default = "default_health_interval_ms")]
    pub health_check_interval_ms: u64,
    /// Put the SQL text of each call on its trace span (off: SQL may hold personal data).
    #[serde(default)]
    pub trace_sql: bool,
    /// Address of the Prometheus `/metrics` endpoint, e.g. `127.0.0.1:9090` (off when unset).
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Readiness policy of the overall health service: `all`, `required` or `none`.
    #[serde(default)]
    pub readiness: Readiness,
    /// Pools that must be healthy when `readiness = "required"`.
    #[serde(default)]
    pub required_pools: Vec<String>,
    /// Milliseconds an interactive transaction may stay idle before it is rolled back
    /// (a BeginTransaction may ask for another value).
    #[serde(default = "default_tx_idle_ms")]
    pub transaction_idle_timeout_ms: u64,
    /// `[server.limits]`: bounds on what clients may make the daemon hold or do.
    #[serde(default)]
    pub limits: crate::Limits,
    /// Serve the API on addresses beyond loopback without `[tenants]` (anyone reaching
    /// the port may use every pool); off: such a config does not start.
    #[serde(default)]
    pub allow_unauthenticated: bool,
}

fn default_listen() -> String {
    "127.0.0.1:50051".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./dbpool-data")
}
fn default_true() -> bool {
    true
}
fn default_shutdown_grace_secs() -> u64 {
    30
}
fn default_health_interval_ms() -> u64 {
    5_000
}
fn default_tx_idle_ms() -> u64 {
    60_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            extra_listen: Vec::new(),
            unix_socket_mode: None,
            probe_listen: None,
            tls: None,
            data_dir: default_data_dir(),
            default_pool: true,
            log_format: LogFormat::Text,
            shutdown_grace_secs: default_shutdown_grace_secs(),
            health_check_interval_ms: default_health_interval_ms(),
            transaction_idle_timeout_ms: default_tx_idle_ms(),
            metrics_listen: None,
            trace_sql: false,
            readiness: Readiness::All,
            required_pools: Vec::new(),
            limits: crate::Limits::default(),
            allow_unauthenticated: false,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `[server]` table.
    #[serde(default)]
    pub server: ServerConfig,
    /// One entry per `[pools.<id>]` table.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolConfig>,
    /// One entry per `[tenants.<name>]` table; none: every caller is trusted (loopback
    /// and Unix sockets only, see [`crate::check_exposure`]).
    #[serde(default)]
    pub tenants: BTreeMap<String, crate::TenantConfig>,
    /// `[auth]`: JWT checking.
    #[serde(default)]
    pub auth: crate::AuthConfig,
    /// `[audit]`: the audit log; off when unset.
    #[serde(default)]
    pub audit: Option<crate::AuditConfig>,
}

/// The shortest `health_check_interval_ms`: checks any closer would be load, not news.
const MIN_HEALTH_CHECK_INTERVAL_MS: u64 = 100;

impl ServerConfig {
    /// Checks the values of `[server]` and `[server.limits]` that parsed but may still be
    /// wrong; the error names the key (`server.health_check_interval_ms`).
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, m: String| Err(Error::invalid(format!("server.{k}"), m));
        if let Some(m) = &self.metrics_listen {
            if let Err(e) = m.parse::<std::net::SocketAddr>() {
                return bad("metrics_listen", format!("not an address: {e}"));
            }
        }
        self.limits.validate()?;
        if self.health_check_interval_ms < MIN_HEALTH_CHECK_INTERVAL_MS {
            return bad(
                "health_check_interval_ms",
                format!("must be at least {MIN_HEALTH_CHECK_INTERVAL_MS}"),
            );
        }
        let max_idle = self.limits.max_transaction_idle_timeout_ms;
        if !(1..=max_idle).contains(&self.transaction_idle_timeout_ms) {
            return bad(
                "transaction_idle_timeout_ms",
                format!(
                    "must be 1..={max_idle} (at most server.limits.max_transaction_idle_timeout_ms)"
                ),
            );
        }
        if self.readiness == Readiness::Required && self.required_pools.is_empty() {
            return bad(
                "required_pools",
                "must list pools when readiness = \"required\"".into(),
            );
        }
        crate::listen::validate(self)
    }

    /// `listen`, parsed; the error names `server.listen`.
    pub fn listen_addr(&self) -> Result<crate::ListenAddr> {
        crate::ListenAddr::parse(&self.listen).map_err(|m| Error::invalid("server.listen", m))
    }

    /// The socket file's mode: `unix_socket_mode` or [`crate::DEFAULT_UNIX_SOCKET_MODE`].
    pub fn socket_mode(&self) -> u32 {
        self.unix_socket_mode
            .as_deref()
            .and_then(|m| crate::listen::parse_mode(m).ok())
            .unwrap_or(crate::DEFAULT_UNIX_SOCKET_MODE)
    }
}

impl Config {
    /// Checks every value that parsed but may still be wrong, naming key and line.
    fn validate(&self, text: &str, path: &str) -> Result<()> {
        self.validate_values(text, path)?;
        crate::check_exposure(&self.server, !self.tenants.is_empty())
            .map_err(|e| with_line(e, text, path))
    }

    /// [`Config::validate`] but for the rule of exposure, which only the whole config
    /// (file and environment) decides.
    fn validate_values(&self, text: &str, path: &str) -> Result<()> {
        self.server
            .validate()
            .map_err(|e| with_line(e, text, path))?;
        for (id, pool) in &self.pools {
            validate_pool_id(id).map_err(|m| located(text, path, "pools", id, m))?;
            pool.resolve(&format!("pools.{id}."))
                .map_err(|e| with_line(e, text, path))?;
        }
        self.validate_access().map_err(|e| with_line(e, text, path))
    }

    /// The pool ids a tenant may name: the configured pools, or `default` when the
    /// daemon creates it.
    pub fn pool_ids(&self) -> Vec<&str> {
        if self.pools.is_empty() && self.server.default_pool {
            return vec!["default"];
        }
        self.pools.keys().map(String::as_str).collect()
    }

    /// Checks `[tenants]`, `[auth]` and `[audit]`.
    pub fn validate_access(&self) -> Result<()> {
        let pools = self.pool_ids();
        let named_by_jwt = self
            .auth
            .jwt
            .as_ref()
            .is_some_and(|j| j.tenant_claim.is_some());
        for (name, t) in &self.tenants {
            t.validate(name, &pools, named_by_jwt)?;
        }
        if let Some(jwt) = &self.auth.jwt {
            jwt.validate()?;
        }
        if let Some(audit) = &self.audit {
            audit.validate()?;
        }
        Ok(())
    }
}

/// Adds the file and line of its key to an `Invalid` error that names a dotted key
/// (`server.limits.max_pools`: the key `max_pools` of the table `[server.limits]`).
fn with_line(e: Error, text: &str, path: &str) -> Error {
    match e {
        Error::Invalid { key, message, .. } => {
            let (table, field) = key.rsplit_once('.').unwrap_or(("", &key));
            let location = find_line(text, table, field)
                .map(|l| format!("{path}:{l}: "))
                .unwrap_or_default();
            Error::Invalid {
                key,
                location,
                message,
            }
        }
        other => other,
    }
}

/// Checks a pool id: 1..=64 of letters, digits, `_`, `-`, `.`.
pub fn validate_pool_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "pool id `{id}` must be 1-64 letters, digits, '_', '-' or '.'"
        ))
    }
}

/// Builds an `Invalid` error for `table.key`, with the line where the key is written.
fn located(text: &str, path: &str, table: &str, key: &str, message: String) -> Error {
    let location = find_line(text, table, key)
        .map(|l| format!("{path}:{l}: "))
        .unwrap_or_default();
    Error::Invalid {
        key: format!("{table}.{key}"),
        location,
        message,
    }
}

/// 1-based line of `key = …` inside `[table]` (or of the `[table.key]` header).
fn find_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = h.trim().trim_matches('"').to_string();
            if current == format!("{table}.{key}") {
                return Some(i + 1);
            }
            continue;
        }
        if current == table {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// Loads a config from TOML text, without env overrides (used by tests and check-config).
pub fn load_str(text: &str, path: &str) -> Result<Config> {
    let cfg: Config = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    cfg.validate(text, path)?;
    Ok(cfg)
}

/// Loads the config file (if any) and applies `DBPOOL__SECTION__KEY` env overrides,
/// e.g. `DBPOOL__SERVER__LISTEN=0.0.0.0:50051` or `DBPOOL__POOLS__PG__MAX_CONNECTIONS=20`.
pub fn load(path: Option<&Path>) -> Result<Config> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| Error::Io {
                path: p.display().to_string(),
                message: e.to_string(),
            })?,
            p.display().to_string(),
        ),
        None => (String::new(), "<defaults>".to_string()),
    };
    // Parse the file alone first: toml's errors carry the key, line and column. Whether
    // its addresses may serve without tenants waits for the environment's say.
    let file: Config = toml::from_str(&text).map_err(|e| Error::Parse {
        path: name.clone(),
        message: e.to_string(),
    })?;
    file.validate_values(&text, &name)?;
    let merged = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("DBPOOL")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .and_then(|c| c.try_deserialize::<Config>())
        .map_err(|e| Error::Parse {
            path: format!("{name} + DBPOOL__* environment"),
            message: e.to_string(),
        })?;
    merged.validate(&text, &name)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_rejected_with_line() {
        let e = load_str("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let text = "[pools.pg]\nurl = \"postgres://localhost/x\"\nmax_connections = 0\n";
        let e = load_str(text, "f.toml").unwrap_err().to_string();
        assert!(e.contains("pools.pg.max_connections"), "{e}");
        assert!(e.contains("f.toml:3"), "{e}");
    }

    #[test]
    fn a_health_interval_below_100_ms_is_refused_not_raised() {
        let text = "[server]\nhealth_check_interval_ms = 50\n";
        let e = load_str(text, "f.toml").unwrap_err().to_string();
        assert!(e.contains("server.health_check_interval_ms"), "{e}");
        assert!(e.contains("f.toml:2") && e.contains("at least 100"), "{e}");
        load_str("[server]\nhealth_check_interval_ms = 100\n", "f.toml").unwrap();
    }

    #[test]
    fn the_transaction_idle_timeout_must_fit_its_limit() {
        let text = "[server]\ntransaction_idle_timeout_ms = 5000\n\
                    [server.limits]\nmax_transaction_idle_timeout_ms = 1000\n";
        let e = load_str(text, "f.toml").unwrap_err().to_string();
        assert!(e.contains("server.transaction_idle_timeout_ms"), "{e}");
        assert!(e.contains("f.toml:2") && e.contains("1..=1000"), "{e}");
        let zero = "[server]\ntransaction_idle_timeout_ms = 0\n";
        let e = load_str(zero, "f.toml").unwrap_err().to_string();
        assert!(e.contains("server.transaction_idle_timeout_ms"), "{e}");
    }

    #[test]
    fn a_config_built_in_code_is_checked_the_same_way() {
        let mut server = ServerConfig::default();
        server.validate().unwrap();
        server.health_check_interval_ms = 99;
        let e = server.validate().unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { key, .. } if key == "server.health_check_interval_ms"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_limit_still_names_its_key_and_line() {
        let text = "[server.limits]\nmax_pools = 0\n";
        let e = load_str(text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("server.limits.max_pools") && e.contains("f.toml:2"),
            "{e}"
        );
    }

    #[test]
    fn pools_parse_with_defaults() {
        let text = "[server]\nlisten = \"127.0.0.1:6000\"\n[pools.lite]\nurl = \"sqlite:///tmp/x.db\"\nbatch_size = 100\n";
        let cfg = load_str(text, "f.toml").unwrap();
        assert_eq!(cfg.server.listen, "127.0.0.1:6000");
        let p = &cfg.pools["lite"];
        assert_eq!(p.options.batch_size, 100);
        assert_eq!(p.options.max_connections, 10);
    }

    #[test]
    fn exposure_is_decided_by_the_file_and_the_environment_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:50051\"\n").unwrap();
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("no [tenants]"), "{e}");
        // Only this test sets it; the other tests of exposure use load_str.
        std::env::set_var("DBPOOL__SERVER__ALLOW_UNAUTHENTICATED", "true");
        let cfg = load(Some(&path));
        std::env::remove_var("DBPOOL__SERVER__ALLOW_UNAUTHENTICATED");
        assert!(cfg.unwrap().server.allow_unauthenticated);
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[pools.envtest]\nurl = \"sqlite:///tmp/x.db\"\n").unwrap();
        // Unique variable name: tests in this binary run in parallel.
        std::env::set_var("DBPOOL__POOLS__ENVTEST__MAX_CONNECTIONS", "7");
        let cfg = load(Some(&path)).unwrap();
        std::env::remove_var("DBPOOL__POOLS__ENVTEST__MAX_CONNECTIONS");
        assert_eq!(cfg.pools["envtest"].options.max_connections, 7);
    }
}
