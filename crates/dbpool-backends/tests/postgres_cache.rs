//! The PostgreSQL statement cache against the real server: statements are prepared once
//! per connection, evicted least-recently-used, and prepared anew when DDL or the session
//! made them stale.
use arrow::array::{Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, PoolOptions, Secret};
use dbpool_core::{Backend, BackendFactory, Param, TxOptions};
use dbpool_testkit::PgDb;
use futures::TryStreamExt;
use std::sync::Arc;

/// A one-connection pool, so every call sees the same session.
async fn one_connection(url: &str, statement_cache_size: u32) -> Arc<dyn Backend> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        options: PoolOptions {
            max_connections: 1,
            statement_cache_size,
            ..Default::default()
        },
        ..Default::default()
    };
    Factory::default()
        .create("cache", &cfg.resolve("").unwrap())
        .await
        .unwrap()
}

async fn rows(b: &dyn Backend, sql: &str, params: Vec<Param>) -> RecordBatch {
    let q = b.query(sql, params, 1000).await.unwrap();
    let batches: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    arrow::compute::concat_batches(&q.schema, &batches).unwrap()
}

/// Statements prepared in the session, as PostgreSQL sees them (this query included).
async fn prepared_in_session(b: &dyn Backend) -> i64 {
    let r = rows(b, "SELECT count(*) FROM pg_prepared_statements", vec![]).await;
    let n = r.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    n.value(0)
}

#[tokio::test]
async fn repeated_statements_are_prepared_once() {
    let db = PgDb::create().await;
    let b = one_connection(&db.url, 256).await;
    for i in 0..5i64 {
        let r = rows(&*b, "SELECT $1::int8 + 1 AS v", vec![Param::Int64(i)]).await;
        let v = r.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(v.value(0), i + 1);
        assert_eq!(b.execute("SELECT 1", vec![]).await.unwrap(), 1);
    }
    // Two statements run five times each, plus the counting query: three in the session.
    assert_eq!(prepared_in_session(&*b).await, 3);
}

#[tokio::test]
async fn least_recently_used_statements_are_closed() {
    let db = PgDb::create().await;
    let b = one_connection(&db.url, 2).await;
    for sql in ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"] {
        b.execute(sql, vec![]).await.unwrap();
    }
    // Evicted statements were closed on the server: at most the cache's two remain
    // (one of them the counting query itself).
    assert!(prepared_in_session(&*b).await <= 2);
}

#[tokio::test]
async fn cache_size_zero_prepares_every_time() {
    let db = PgDb::create().await;
    let b = one_connection(&db.url, 0).await;
    for _ in 0..3 {
        b.execute("SELECT 1", vec![]).await.unwrap();
    }
    // Each statement is closed after its call; only the running count query remains.
    assert_eq!(prepared_in_session(&*b).await, 1);
}

#[tokio::test]
async fn result_type_change_prepares_anew() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8, v int8); INSERT INTO t VALUES (1, 10)")
        .await;
    let b = one_connection(&db.url, 256).await;
    let sql = "SELECT * FROM t ORDER BY id";
    let before = rows(&*b, sql, vec![]).await;
    assert_eq!(before.schema().field(1).data_type(), &DataType::Int64);

    db.exec("ALTER TABLE t ALTER COLUMN v TYPE text; ALTER TABLE t ADD COLUMN w text DEFAULT 'x'")
        .await;
    let after = rows(&*b, sql, vec![]).await;
    assert_eq!(after.num_columns(), 3);
    let v = after
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(v.value(0), "10");

    // The same for Execute.
    db.exec("ALTER TABLE t ALTER COLUMN id TYPE text").await;
    let upd = "UPDATE t SET w = 'y' RETURNING id";
    assert_eq!(b.execute(upd, vec![]).await.unwrap(), 1);
    db.exec("ALTER TABLE t ALTER COLUMN id TYPE int8 USING id::int8")
        .await;
    assert_eq!(b.execute(upd, vec![]).await.unwrap(), 1);
}

#[tokio::test]
async fn deallocated_statements_are_prepared_anew() {
    let db = PgDb::create().await;
    let b = one_connection(&db.url, 256).await;
    let sql = "SELECT 41 + 1 AS v";
    assert_eq!(rows(&*b, sql, vec![]).await.num_rows(), 1);
    b.execute("DEALLOCATE ALL", vec![]).await.unwrap();
    let r = rows(&*b, sql, vec![]).await;
    let v = r
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int32Array>();
    assert_eq!(v.unwrap().value(0), 42);
}

#[tokio::test]
async fn stale_statement_in_a_transaction_fails_then_heals() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (v int8); INSERT INTO t VALUES (1)")
        .await;
    let b = one_connection(&db.url, 256).await;
    let sql = "SELECT * FROM t";
    rows(&*b, sql, vec![]).await;
    db.exec("ALTER TABLE t ALTER COLUMN v TYPE text").await;

    // Inside a transaction the failure aborted it: no silent re-run, a clear error.
    let tx = b.begin(TxOptions::default()).await.unwrap();
    let e = match tx.query(sql, vec![], 100).await {
        Ok(_) => panic!("a stale statement inside a transaction must fail"),
        Err(e) => e,
    };
    assert!(e.to_string().contains("cached plan"), "{e}");
    tx.rollback().await.unwrap();

    // The entry was evicted: the next call prepares it anew.
    let r = rows(&*b, sql, vec![]).await;
    assert_eq!(r.schema().field(0).data_type(), &DataType::Utf8);
}
