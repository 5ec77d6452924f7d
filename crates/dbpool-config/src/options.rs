//! A pool's options (`[pools.<id>]` sizing, timing, breaker, statement cache): their
//! defaults and the ranges `validate` enforces.
use crate::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

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
