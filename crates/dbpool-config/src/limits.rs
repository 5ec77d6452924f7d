//! `[server.limits]`: every bound on what a client may make the daemon hold or do — client
//! connections, HTTP/2 streams, request sizes and counts, transactions, prepared
//! statements and pools. Each has a default fit for a sidecar; docs/security.md says why.
use crate::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

/// The `[server.limits]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Client (TCP) connections served at once; further connections are closed at accept.
    pub max_client_connections: usize,
    /// HTTP/2 streams (calls) one client connection may have open at once.
    pub max_concurrent_streams: u32,
    /// Milliseconds a new client connection has to send its first bytes before it is closed.
    pub handshake_timeout_ms: u64,
    /// Milliseconds between HTTP/2 pings on an idle client connection (0: none).
    pub http2_keepalive_interval_ms: u64,
    /// Milliseconds to wait for a ping's answer before the connection is closed.
    pub http2_keepalive_timeout_ms: u64,
    /// TCP keepalive of client connections in milliseconds (0: off).
    pub tcp_keepalive_ms: u64,
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Pools the daemon holds at once (configured plus created by CreatePool).
    pub max_pools: usize,
    /// Largest `batch_size` a request may ask for (rows per Arrow batch).
    pub max_batch_rows: u32,
    /// Parameters one statement may carry.
    pub max_params: usize,
    /// Statements one ExecuteBatch may carry.
    pub max_batch_statements: usize,
    /// Bytes of SQL (or a command line) one statement may have.
    pub max_sql_bytes: usize,
    /// Longest id (pool, transaction, prepared statement, table name) a request may send.
    pub max_id_bytes: usize,
    /// Upper bound of the idle timeout a BeginTransaction may ask for, in milliseconds.
    pub max_transaction_idle_timeout_ms: u64,
    /// Interactive transactions one client connection may hold open at once.
    pub max_transactions_per_connection: usize,
    /// Flight SQL prepared statements one client connection may hold at once.
    pub max_prepared_statements_per_connection: usize,
    /// Milliseconds an unused Flight SQL prepared statement lives before it is closed.
    pub prepared_statement_idle_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_client_connections: 1024,
            max_concurrent_streams: 256,
            handshake_timeout_ms: 10_000,
            http2_keepalive_interval_ms: 30_000,
            http2_keepalive_timeout_ms: 20_000,
            tcp_keepalive_ms: 60_000,
            max_message_bytes: 64 * 1024 * 1024,
            max_pools: 256,
            max_batch_rows: 65_536,
            max_params: 65_535,
            max_batch_statements: 10_000,
            max_sql_bytes: 1024 * 1024,
            max_id_bytes: 128,
            max_transaction_idle_timeout_ms: 600_000,
            max_transactions_per_connection: 64,
            max_prepared_statements_per_connection: 256,
            prepared_statement_idle_timeout_ms: 600_000,
        }
    }
}

impl Limits {
    /// Checks ranges; returns the first bad key (relative to `server.limits`).
    pub fn validate(&self) -> Result<()> {
        const POSITIVE: &str = "must be > 0";
        // In the order of the fields: the first that fails is the one reported.
        let checks = [
            (
                "max_client_connections",
                self.max_client_connections > 0,
                POSITIVE,
            ),
            (
                "max_concurrent_streams",
                self.max_concurrent_streams > 0,
                POSITIVE,
            ),
            (
                "handshake_timeout_ms",
                self.handshake_timeout_ms > 0,
                POSITIVE,
            ),
            (
                "max_message_bytes",
                (64 * 1024..=1024 * 1024 * 1024).contains(&self.max_message_bytes),
                "must be 65536..=1073741824",
            ),
            ("max_pools", self.max_pools > 0, POSITIVE),
            (
                "max_batch_rows",
                (1..=1_000_000).contains(&self.max_batch_rows),
                "must be 1..=1000000",
            ),
            (
                "max_params",
                (1..=65_535).contains(&self.max_params),
                "must be 1..=65535",
            ),
            (
                "max_batch_statements",
                self.max_batch_statements > 0,
                POSITIVE,
            ),
            (
                "max_sql_bytes",
                (1..=self.max_message_bytes).contains(&self.max_sql_bytes),
                "must be 1..=max_message_bytes",
            ),
            (
                "max_id_bytes",
                (16..=4096).contains(&self.max_id_bytes),
                "must be 16..=4096",
            ),
            (
                "max_transaction_idle_timeout_ms",
                self.max_transaction_idle_timeout_ms > 0,
                POSITIVE,
            ),
            (
                "max_transactions_per_connection",
                self.max_transactions_per_connection > 0,
                POSITIVE,
            ),
            (
                "max_prepared_statements_per_connection",
                self.max_prepared_statements_per_connection > 0,
                POSITIVE,
            ),
            (
                "prepared_statement_idle_timeout_ms",
                self.prepared_statement_idle_timeout_ms > 0,
                POSITIVE,
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((key, _, message)) => Err(Error::invalid(format!("server.limits.{key}"), message)),
            None => Ok(()),
        }
    }

    /// `handshake_timeout_ms` as a Duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// `prepared_statement_idle_timeout_ms` as a Duration.
    pub fn prepared_statement_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.prepared_statement_idle_timeout_ms)
    }

    /// `max_transaction_idle_timeout_ms` as a Duration.
    pub fn max_transaction_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.max_transaction_idle_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Limits::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_names_the_key() {
        let l = Limits {
            max_batch_rows: 0,
            ..Limits::default()
        };
        let e = l.validate().unwrap_err().to_string();
        assert!(e.contains("server.limits.max_batch_rows"), "{e}");
    }
}
