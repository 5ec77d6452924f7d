//! How a PostgreSQL pool prepares statements: named and cached per connection, or
//! unnamed (parsed with every call), for servers reached through a transaction-mode
//! pooler such as PgBouncer, where the next transaction may run on another server
//! connection that never saw the named statement.
use serde::Deserialize;

/// The `prepared_statements` pool option (PostgreSQL only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreparedStatements {
    /// Named statements, cached per connection (`statement_cache_size`) and bound in one
    /// round trip. Safe on a direct connection, a session-mode pooler, or PgBouncer ≥
    /// 1.21 with `max_prepared_statements` set.
    Named,
    /// Unnamed statements: parse, bind and execute in one round trip every call. Works
    /// behind any transaction-mode pooler; the server plans every call.
    Unnamed,
    /// Named until the server reports a statement this connection prepared as missing
    /// (SQLSTATE 26000) or a name it prepares as taken (42P05), then unnamed for the
    /// rest of the pool's life.
    #[default]
    Auto,
}

impl PreparedStatements {
    /// The name used in the config file and the API.
    pub fn name(self) -> &'static str {
        match self {
            PreparedStatements::Named => "named",
            PreparedStatements::Unnamed => "unnamed",
            PreparedStatements::Auto => "auto",
        }
    }
}
