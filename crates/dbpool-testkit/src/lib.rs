//! Test fixtures: a uniquely named PostgreSQL database per test (dropped afterwards) and
//! unique names, so tests run in parallel and twice in a row against the real servers;
//! private PostgreSQL and PgBouncer servers for tests that need their own; a scripted
//! fake backend; waiting for a condition with a deadline.
mod as_postgres;
pub mod fake;
mod pgbouncer;
mod temp_pg;
mod test_ca;
mod wait;

pub use fake::{Fake, FakeFactory, Gate, Step, Verb};
pub use pgbouncer::PgBouncer;
use std::time::Duration;
pub use temp_pg::{TempPgTls, TempPostgres};
pub use test_ca::{CertUse, TestCa};
pub use wait::{try_wait_for, wait_for, wait_until, wait_until_sync};

/// Base URL of the test PostgreSQL server (env `DBPOOL_TEST_PG_URL`).
pub fn pg_base_url() -> String {
    std::env::var("DBPOOL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A short unique name with a prefix, e.g. `t_3f2a…`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh PostgreSQL database, dropped (with its connections) on drop.
pub struct PgDb {
    /// The database's name.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg_base_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("test PostgreSQL at {} is not reachable: {e}", pg_base_url()));
    tokio::spawn(conn);
    client
}

impl PgDb {
    /// Creates the database.
    pub async fn create() -> PgDb {
        let name = unique_name("dbpool_t");
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let base = pg_base_url();
        let (head, _) = base.rsplit_once('/').expect("URL with a database path");
        PgDb {
            url: format!("{head}/{name}"),
            name,
        }
    }

    /// Runs SQL in the database on a fresh connection (setup of fixtures).
    pub async fn exec(&self, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to test database");
        tokio::spawn(conn);
        client.batch_execute(sql).await.expect("fixture SQL");
    }

    /// Connects to the database directly (to check what the daemon did).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to test database");
        tokio::spawn(conn);
        client
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        admin_exec_blocking(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs `sql` as the admin user, best effort and within 10 s: for the `Drop` of a
/// fixture (see [`block_on_detached`]).
pub fn admin_exec_blocking(sql: String) {
    block_on_detached(async move {
        let _ = admin().await.batch_execute(&sql).await;
    });
}

/// Runs `fut` to its end, or for at most 10 s, on a thread with a runtime of its own, and
/// waits for it: the clean-up of a fixture's `Drop`, which may run inside a runtime.
pub fn block_on_detached(fut: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(10), fut).await;
        });
        Some(())
    })
    .join();
}
