//! When a pool resets a connection before another caller gets it: only after SQL that
//! may have changed the session (`auto`, found by a lexical check), or after every use
//! (`always`, for SQL that changes session state where the lexer cannot see it, inside
//! functions or procedures). docs/security.md, "Clean sessions", says what each
//! database resets and how.
use serde::Deserialize;

/// The `reset_sessions` pool option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetSessions {
    /// Reset only a connection whose SQL may have changed its session (SET, temporary
    /// tables, advisory locks, LISTEN, PREPARE, cursors, …): the clean path costs nothing.
    #[default]
    Auto,
    /// Reset every connection before it is reused.
    Always,
}

impl ResetSessions {
    /// The name used in the config file and the API.
    pub fn name(self) -> &'static str {
        match self {
            ResetSessions::Auto => "auto",
            ResetSessions::Always => "always",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ResetSessions;

    #[test]
    fn parsed_from_the_pool_table() {
        let cfg = crate::load_str(
            "[pools.a]\nurl = \"postgres://db/app\"\nreset_sessions = \"always\"\n\
             [pools.b]\nurl = \"postgres://db/app\"\n",
            "test.toml",
        )
        .unwrap();
        let mode = |id: &str| cfg.pools[id].options.reset_sessions;
        assert_eq!(mode("a"), ResetSessions::Always);
        assert_eq!(mode("b"), ResetSessions::Auto);
        let bad = "[pools.a]\nurl = \"postgres://db/app\"\nreset_sessions = \"never\"\n";
        let e = crate::load_str(bad, "test.toml").unwrap_err().to_string();
        assert!(e.contains("reset_sessions") || e.contains("never"), "{e}");
    }
}
