//! PostgreSQL behind PgBouncer in transaction mode (a pool of 3 server connections):
//! consecutive transactions run on different server connections, so named statements
//! cached by a connection go missing. `unnamed` never names one, `auto` detects the
//! first missing one and switches, `named` fails with SQLSTATE 26000 — the failure the
//! other two avoid, shown here so the test is known to exercise it.
use arrow::array::{Array, Int32Array, StringArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use dbpool_backends::postgres::PgBackend;
use dbpool_config::{PoolConfig, PoolOptions, PreparedStatements, Secret};
use dbpool_core::{Backend, Error, Executor, Param, TxOptions};
use dbpool_testkit::{PgBouncer, PgDb};
use futures::TryStreamExt;
use std::sync::Arc;

const TASKS: i64 = 8;
const QUERIES: i64 = 300;
const KEYS: i64 = 100;

fn backend(url: &str, mode: PreparedStatements) -> Arc<PgBackend> {
    let cfg = PoolConfig {
        url: Some(Secret::new(url)),
        options: PoolOptions {
            max_connections: 10,
            prepared_statements: mode,
            ..Default::default()
        },
        ..Default::default()
    };
    Arc::new(PgBackend::new("bouncer", &cfg.resolve("").unwrap()).unwrap())
}

async fn rows(b: &dyn Backend, sql: &str, params: Vec<Param>) -> dbpool_core::Result<RecordBatch> {
    let q = b.query(sql, params, 1000).await?;
    let batches: Vec<RecordBatch> = q.batches.try_collect().await?;
    Ok(arrow::compute::concat_batches(&q.schema, &batches).unwrap())
}

/// A database with `kv(k, v)`: k in 1..=KEYS, v = 'v' || k.
async fn database() -> PgDb {
    let db = PgDb::create().await;
    db.exec(&format!(
        "CREATE TABLE kv (k int4 PRIMARY KEY, v text NOT NULL);
         INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, {KEYS}) g"
    ))
    .await;
    db
}

/// A private PgBouncer, a [`database`] behind it, and a backend through it in `mode`
/// (keep the first two alive while the backend is used).
async fn behind_bouncer(mode: PreparedStatements) -> (PgBouncer, PgDb, Arc<PgBackend>) {
    let bouncer = PgBouncer::start();
    let db = database().await;
    let b = backend(&bouncer.url(&db.name), mode);
    (bouncer, db, b)
}

/// Asserts that no call of a [`load`] failed.
fn assert_none_failed(failures: &[Error]) {
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
}

/// TASKS × QUERIES calls with parameters (every tenth an UPDATE), each result checked;
/// returns the failures.
async fn load(b: Arc<PgBackend>) -> Vec<Error> {
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..QUERIES {
                let k = (t * QUERIES + i) % KEYS + 1;
                let outcome = if i % 10 == 9 {
                    let sql = "UPDATE kv SET v = $2 WHERE k = $1";
                    let params = vec![Param::Int64(k), Param::String(format!("v{k}"))];
                    b.execute(sql, params).await.map(|n| assert_eq!(n, 1))
                } else {
                    let sql = "SELECT k, v FROM kv WHERE k = $1";
                    rows(&*b, sql, vec![Param::Int64(k)]).await.map(|r| {
                        assert_eq!(r.num_rows(), 1);
                        let key = r.column(0).as_any().downcast_ref::<Int32Array>();
                        let val = r.column(1).as_any().downcast_ref::<StringArray>();
                        assert_eq!(i64::from(key.unwrap().value(0)), k);
                        assert_eq!(val.unwrap().value(0), format!("v{k}"));
                    })
                };
                if let Err(e) = outcome {
                    failures.push(e);
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unnamed_statements_never_fail() {
    let (_bouncer, _db, b) = behind_bouncer(PreparedStatements::Unnamed).await;
    let failures = load(b.clone()).await;
    assert_none_failed(&failures);
    assert_eq!(b.statement_mode(), "unnamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_detects_the_pooler_without_failing_a_call() {
    let (_bouncer, _db, b) = behind_bouncer(PreparedStatements::Auto).await;
    assert_eq!(b.statement_mode(), "named");
    let failures = load(b.clone()).await;
    assert_none_failed(&failures);
    assert_eq!(b.statement_mode(), "unnamed", "auto switched to unnamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn named_statements_fail_behind_the_pooler() {
    let (_bouncer, _db, b) = behind_bouncer(PreparedStatements::Named).await;
    let failures = load(b.clone()).await;
    assert!(
        !failures.is_empty(),
        "named statements all worked: the test lost its pooler"
    );
    eprintln!(
        "named: {} of {} calls failed",
        failures.len(),
        TASKS * QUERIES
    );
    for e in &failures {
        let code = match e {
            Error::Database { code, .. } => code.as_deref(),
            _ => None,
        };
        assert_eq!(code, Some("26000"), "{e:?}");
    }
    assert_eq!(b.statement_mode(), "named");
}

#[tokio::test]
async fn unnamed_mode_transactions_empty_results_and_schemas() {
    let (_bouncer, _db, b) = behind_bouncer(PreparedStatements::Unnamed).await;
    // No rows: the schema still comes back (described inside a transaction).
    let sql = "SELECT k, v FROM kv WHERE k = $1";
    let r = rows(&*b, sql, vec![Param::Int64(-1)]).await.unwrap();
    assert_eq!(r.num_rows(), 0);
    let types: Vec<DataType> = r
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(types, [DataType::Int32, DataType::Utf8]);
    let schema = b.schema(sql, vec![]).await.unwrap();
    assert_eq!(schema.field(1).name(), "v");

    // An interactive transaction: several statements on one pinned server connection.
    let tx = b.begin(TxOptions::default()).await.unwrap();
    let n = tx
        .execute(
            "UPDATE kv SET v = 'changed' WHERE k = $1",
            vec![Param::Int64(7)],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let q = tx.query(sql, vec![Param::Int64(7)], 10).await.unwrap();
    let got: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    let v = got[0]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(v.value(0), "changed");
    let empty = tx.query(sql, vec![Param::Int64(-1)], 10).await.unwrap();
    assert_eq!(empty.schema.fields().len(), 2);
    tx.rollback().await.unwrap();
    let r = rows(&*b, sql, vec![Param::Int64(7)]).await.unwrap();
    let v = r.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(v.value(0), "v7", "rolled back");

    // The wrong number of parameters is the caller's error, not an outage.
    let e = rows(&*b, sql, vec![]).await.unwrap_err();
    assert!(
        matches!(&e, Error::Database { code: Some(c), .. } if c == "08P01"),
        "{e:?}"
    );
    assert_eq!(
        rows(&*b, "SELECT 1 AS one", vec![])
            .await
            .unwrap()
            .num_rows(),
        1
    );
}

/// Unnamed statements send parameters as text for the type the server infers; the
/// results match named statements on a direct connection.
#[tokio::test]
async fn unnamed_and_named_give_the_same_results() {
    let db = PgDb::create().await;
    db.exec(
        "CREATE TABLE p (i2 int2, i8 int8, f4 float4, f8 float8, n numeric(8,2), d date, \
         ts timestamptz, by bytea, t text, b bool)",
    )
    .await;
    let insert = "INSERT INTO p VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    let params = vec![
        Param::Int64(-7),
        Param::Int64(i64::MAX),
        Param::Double(0.1),
        Param::Double(1e300),
        Param::Decimal("-12.35".into()),
        Param::String("2024-02-29".into()),
        Param::TimestampMicros(1_700_000_000_123_456),
        Param::Bytes(vec![0, 159, 146, 150, b'\\']),
        Param::String("it's \\ ünïcode".into()),
        Param::Bool(true),
    ];
    let mut results = Vec::new();
    for mode in [PreparedStatements::Named, PreparedStatements::Unnamed] {
        let b = backend(&db.url, mode);
        assert_eq!(b.execute(insert, params.clone()).await.unwrap(), 1);
        let r = rows(&*b, "SELECT * FROM p", vec![]).await.unwrap();
        results.push(r);
        b.execute("DELETE FROM p", vec![]).await.unwrap();
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0].num_rows(), 1);
    // Out of range for int2: refused either way (by dbpool or by PostgreSQL).
    for mode in [PreparedStatements::Named, PreparedStatements::Unnamed] {
        let b = backend(&db.url, mode);
        let e = b
            .execute("INSERT INTO p (i2) VALUES ($1)", vec![Param::Int64(40_000)])
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { .. } | Error::Database { .. }),
            "{mode:?}: {e:?}"
        );
    }
}
