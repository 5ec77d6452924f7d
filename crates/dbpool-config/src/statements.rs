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

#[cfg(test)]
mod tests {
    use super::PreparedStatements;

    #[test]
    fn parsed_from_the_pool_table() {
        let cfg = crate::load_str(
            "[pools.a]\nurl = \"postgres://db/app\"\nprepared_statements = \"unnamed\"\n\
             [pools.b]\nurl = \"postgres://db/app\"\n",
            "test.toml",
        )
        .unwrap();
        let mode = |id: &str| cfg.pools[id].options.prepared_statements;
        assert_eq!(mode("a"), PreparedStatements::Unnamed);
        assert_eq!(mode("b"), PreparedStatements::Auto);
        let bad = "[pools.a]\nurl = \"postgres://db/app\"\nprepared_statements = \"sometimes\"\n";
        let e = crate::load_str(bad, "test.toml").unwrap_err().to_string();
        assert!(
            e.contains("prepared_statements") || e.contains("sometimes"),
            "{e}"
        );
    }
}
