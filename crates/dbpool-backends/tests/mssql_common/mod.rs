//! Helpers the MSSQL tests share: the test servers' URLs (scripts/mssql-servers.sh),
//! backends, reads, unique names.
#![allow(dead_code)]
use arrow::array::RecordBatch;
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, PoolOptions, Secret};
use dbpool_core::{Backend, BackendFactory, Param};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The URL in `var`, set by `eval "$(scripts/mssql-servers.sh start)"`.
pub fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the test servers with `eval \"$(scripts/mssql-servers.sh start)\"`")
    })
}

/// A private iridium_server (a writable T-SQL engine, plaintext only) on a free port,
/// killed on drop. Each test gets its own: iridium's transactions are not isolated
/// between sessions (a rollback restores every table).
pub struct Iridium {
    /// Pool URL of the server.
    pub url: String,
    child: std::process::Child,
}

impl Drop for Iridium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an iridium_server from `DBPOOL_TEST_IRIDIUM_BIN`.
pub async fn iridium() -> Iridium {
    let bin = env_url("DBPOOL_TEST_IRIDIUM_BIN");
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--user",
                "dbpool",
                "--password",
                "Pw;d@1",
                "--database",
                "dbpool_test",
            ])
            .args(["--no-tls", "--memory"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        // Listening (true), or exited having lost the port to someone else (false), or
        // neither in time (None): then another port.
        let up = dbpool_testkit::try_wait_for(Duration::from_secs(10), || {
            let exited = child.try_wait().unwrap().is_some();
            async move {
                let listening = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
                match (listening.is_ok(), exited) {
                    (true, _) => Some(true),
                    (false, true) => Some(false),
                    (false, false) => None,
                }
            }
        })
        .await;
        if up == Some(true) {
            let url = format!(
                "mssql://dbpool:Pw%3Bd%401@127.0.0.1:{port}/dbpool_test?encrypt=not_supported"
            );
            return Iridium { url, child };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("iridium_server did not start");
}

/// pysqlbridge: read-only CSV tables, TLS inside TDS.
pub fn bridge() -> String {
    env_url("DBPOOL_TEST_BRIDGE_URL")
}

/// A backend for a pool URL with these settings and options.
pub async fn backend_with(
    url: &str,
    settings: &[(&str, &str)],
    options: PoolOptions,
) -> dbpool_core::Result<Arc<dyn Backend>> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        options,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    };
    Factory::default().create("t", &cfg.resolve("")?).await
}

/// A backend for a pool URL.
pub async fn backend(url: &str) -> Arc<dyn Backend> {
    backend_with(url, &[], PoolOptions::default())
        .await
        .unwrap()
}

/// All batches of a query.
pub async fn collect(
    b: &dyn Backend,
    sql: &str,
    params: Vec<Param>,
    batch: usize,
) -> dbpool_core::Result<Vec<RecordBatch>> {
    let q = b.query(sql, params, batch).await?;
    q.batches.try_collect().await
}

/// A name no other test (nor an earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
