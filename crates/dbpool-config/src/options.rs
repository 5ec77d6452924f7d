//! A pool's options (`[pools.<id>]` sizing, timing, breaker, statement cache): the one
//! table of their names, types and defaults (`pool_options!`), the struct made from it,
//! and the ranges `validate` enforces.
use crate::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

/// The pool options, each written once: doc, name, type and default. Calls
/// `$callback! { $( #[doc = "…"] name: Type = default; )+ }`. [`PoolOptions`] (the
/// `[pools.<id>]` keys, with their defaults) is made from it here, and dbpool-server's
/// proto conversion from it there; crates/dbpool-server/tests/pool_options.rs checks
/// the proto, the Python client and docs/configuration.md against [`PoolOptions::NAMES`]
/// and [`PoolOptions::entries`].
#[macro_export]
macro_rules! pool_options {
    ($callback:ident) => {
        $callback! {
            /// Largest number of open connections.
            max_connections: u32 = 10;
            /// Idle connections kept open.
            min_connections: u32 = 0;
            /// How long a call waits for a free connection, in milliseconds.
            acquire_timeout_ms: u64 = 30_000;
            /// Idle connections older than this are closed, in milliseconds (0: never).
            idle_timeout_ms: u64 = 600_000;
            /// Connections older than this are replaced, in milliseconds (0: never).
            max_lifetime_ms: u64 = 1_800_000;
            /// Server-side statement timeout in milliseconds where supported (0: none).
            statement_timeout_ms: u64 = 0;
            /// Rows per Arrow record batch of a streamed result.
            batch_size: u32 = 8192;
            /// Calls that may wait for a connection at once; more are refused at once with
            /// RESOURCE_EXHAUSTED instead of piling up.
            max_waiters: u32 = 256;
            /// Consecutive connection failures that open the circuit breaker (0: never).
            breaker_threshold: u32 = 5;
            /// Milliseconds an open breaker fails calls fast before one probe may try again.
            breaker_cooldown_ms: u64 = 2_000;
            /// Prepared statements kept per connection, least recently used evicted first
            /// (0: prepare every statement anew). PostgreSQL only.
            statement_cache_size: u32 = 256;
            /// Named (cached) or unnamed statements, or named until a transaction-mode pooler
            /// is detected. PostgreSQL only.
            prepared_statements: $crate::PreparedStatements = $crate::PreparedStatements::Auto;
            /// Reset a connection before the next caller only after SQL that may have
            /// changed its session (`auto`), or after every use (`always`).
            reset_sessions: $crate::ResetSessions = $crate::ResetSessions::Auto;
        }
    };
}

/// Makes [`PoolOptions`] from the table of [`pool_options!`].
macro_rules! define_pool_options {
    ($( $(#[$doc:meta])+ $name:ident: $ty:ty = $default:expr; )+) => {
        /// Pool sizing and timing. Every field has a default.
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct PoolOptions {
            $( $(#[$doc])+ pub $name: $ty, )+
        }

        impl Default for PoolOptions {
            fn default() -> Self {
                PoolOptions { $( $name: $default, )+ }
            }
        }

        impl PoolOptions {
            /// Every option's name (its config key and proto field), in table order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),+];

            /// Every option's name and value as it is written in the config file
            /// (`10`, `"auto"`), in table order.
            pub fn entries(&self) -> Vec<(&'static str, String)> {
                vec![$( (stringify!($name), OptionValue::written(&self.$name)) ),+]
            }
        }
    };
}

pool_options!(define_pool_options);

/// A value of an option as the config file writes it.
trait OptionValue {
    fn written(&self) -> String;
}

impl<T: std::fmt::Display> OptionValue for T {
    fn written(&self) -> String {
        self.to_string()
    }
}

impl OptionValue for crate::PreparedStatements {
    fn written(&self) -> String {
        format!("\"{}\"", self.name())
    }
}

impl OptionValue for crate::ResetSessions {
    fn written(&self) -> String {
        format!("\"{}\"", self.name())
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
