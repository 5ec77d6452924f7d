//! The audit log (placeholder until the writer lands): one JSON line per audited call.
use std::sync::Arc;

/// One audited call.
pub struct AuditRecord<'a> {
    /// The caller's tenant.
    pub tenant: Option<&'a str>,
    /// How it proved who it is.
    pub principal: &'a str,
    /// The client's address.
    pub peer: Option<std::net::SocketAddr>,
    /// The pool.
    pub pool: &'a str,
    /// The gRPC method.
    pub method: &'a str,
    /// The statement.
    pub sql: Option<&'a str>,
    /// Rows.
    pub rows: Option<u64>,
    /// The status code.
    pub code: &'a str,
    /// How long the call took.
    pub duration: std::time::Duration,
}

/// The audit log.
pub struct AuditLog;

impl AuditLog {
    /// Opens `[audit]`.
    pub fn open(_cfg: &dbpool_config::AuditConfig) -> std::io::Result<Arc<AuditLog>> {
        Ok(Arc::new(AuditLog))
    }
    /// Records one line.
    pub fn record(&self, _r: &AuditRecord<'_>) {}
}
