//! Pools and transactions as shared resources (issue 15): the pool cap, one warning
//! (not one per failure) for a pool whose database is down, and transaction ids usable
//! only from the client connection that began them.
mod common;

use common::*;
use dbpool_proto::v1 as pb;
use dbpool_testkit::PgDb;
use tonic::Code;

#[tokio::test]
async fn pools_beyond_max_pools_are_refused() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_pools = 3).await;
    let mut c = server.pools().await;
    // Relative: a runtime SQLite pool lives in the server's data directory.
    let url = |i: u32| format!("sqlite://p{i}.db");
    // `default` is one; two more fit.
    for i in 0..2 {
        c.create_pool(pb::CreatePoolRequest {
            pool_id: format!("p{i}"),
            url: url(i),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "p2".into(),
            url: url(2),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("max_pools"), "{}", e.message());
    let listed = c.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    assert_eq!(listed.into_inner().pools.len(), 3);
}

#[tokio::test]
async fn a_transaction_belongs_to_the_connection_that_began_it() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8)").await;
    let server = TestServer::start_with(&[("pg", &db.url)], |c| {
        c.server.limits.max_transactions_per_connection = 2;
    })
    .await;
    // pools() opens a new connection each time.
    let mut owner = server.pools().await;
    let mut other = server.pools().await;
    let begin = |pool: &str| pb::BeginTransactionRequest {
        pool_id: pool.into(),
        ..Default::default()
    };
    let tx = owner
        .begin_transaction(begin("pg"))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let exec = |tx: &str| pb::ExecuteRequest {
        transaction_id: tx.into(),
        sql: "INSERT INTO t VALUES (1)".into(),
        ..Default::default()
    };
    assert_eq!(
        owner
            .execute(exec(&tx))
            .await
            .unwrap()
            .into_inner()
            .rows_affected,
        1
    );
    // From another connection: NOT_FOUND, worded as for an id that never existed.
    let foreign = other.execute(exec(&tx)).await.unwrap_err();
    let unknown = other
        .execute(exec("tx-00000000000000000000000000000000"))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    assert_eq!(
        foreign.message().replace(&tx, "ID"),
        unknown
            .message()
            .replace("tx-00000000000000000000000000000000", "ID")
    );
    let e = other
        .commit(pb::EndTransactionRequest {
            transaction_id: tx.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // The foreign attempts changed nothing: the owner still commits its row.
    owner
        .commit(pb::EndTransactionRequest {
            transaction_id: tx.clone(),
        })
        .await
        .unwrap();
    let rows = db
        .client()
        .await
        .query("SELECT id FROM t", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // At most two open per connection; another connection still has its own quota.
    let _a = owner.begin_transaction(begin("pg")).await.unwrap();
    let _b = owner.begin_transaction(begin("pg")).await.unwrap();
    let e = owner.begin_transaction(begin("pg")).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("max_transactions_per_connection"),
        "{}",
        e.message()
    );
    other.begin_transaction(begin("pg")).await.unwrap();
}

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_pool_whose_database_is_down_warns_once_not_per_failure() {
    // Everything (server, pool, health checks) runs on this thread, under this subscriber.
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = TestServer::start_with(&[], |c| {
        c.pools.insert(
            "down".into(),
            dbpool_config::PoolConfig {
                url: Some(dbpool_config::Secret::new(
                    "postgres://postgres@127.0.0.1:1/postgres",
                )),
                options: dbpool_config::PoolOptions {
                    // Every call tries to connect: no breaker to stop the failures.
                    breaker_threshold: 0,
                    acquire_timeout_ms: 2_000,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
    })
    .await;
    let mut c = server.pools().await;
    // Ten calls, each failing to connect: the window is counted in failures, not in time.
    for _ in 0..10 {
        let e = c
            .execute(pb::ExecuteRequest {
                pool_id: "down".into(),
                sql: "SELECT 1".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warned = text
        .lines()
        .filter(|l| l.contains("connection failed"))
        .count();
    assert_eq!(warned, 1, "{text}");
}
