//! Configuration of the dbpool daemon: the TOML file, env overrides, pool URLs and secrets.
mod access;
mod error;
mod file;
mod limits;
mod listen;
mod options;
mod pg_tls;
mod pool;
mod redact;
mod sessions;
mod statements;
mod tenants;

pub use access::{
    check_exposure, exposed_addresses, AuditConfig, AuditStatements, AuthConfig, JwtConfig,
};
pub use error::{Error, Result};
pub use file::{load, load_str, validate_pool_id, Config, LogFormat, Readiness, ServerConfig};
pub use limits::Limits;
pub use listen::{parse_mode, ListenAddr, ServerTls, DEFAULT_UNIX_SOCKET_MODE, UNIX_PREFIX};
pub use pg_tls::{
    parse_sslmode, pg_tls_file_keys, PgTls, PgTlsError, RootCert, SslMode, PG_TLS_FILE_KEYS,
    PG_TLS_KEYS,
};
pub use pool::{BackendKind, PoolConfig, PoolOptions, ResolvedPool};
pub use redact::{redact_url, Secret};
pub use sessions::ResetSessions;
pub use statements::PreparedStatements;
pub use tenants::{default_port, is_sha256_hex, Quotas, Right, TenantConfig, Upstream};
