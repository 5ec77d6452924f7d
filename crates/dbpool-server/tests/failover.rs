//! Failover to a backup URL against real PostgreSQL servers: the primary is a private
//! cluster the test stops and starts, the backup a database on the main server; each
//! holds a different marker row so the test sees who answered.
mod common;

use arrow::array::AsArray;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightDescriptor, Ticket};
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::{PgDb, TempPostgres};
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

const WHO: &str = "SELECT who FROM marker ORDER BY who";

async fn seed(client: &tokio_postgres::Client, who: &str) {
    client
        .batch_execute(&format!(
            "CREATE TABLE marker (who text NOT NULL); INSERT INTO marker VALUES ('{who}')"
        ))
        .await
        .unwrap();
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM marker", &[])
        .await
        .unwrap()
        .get(0)
}

fn whos(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn create(c: &mut PoolServiceClient<Channel>, id: &str, url: &str, backups: Vec<String>) {
    c.create_pool(pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        backup_urls: backups,
        options: Some(pb::PoolOptions {
            max_connections: 4,
            acquire_timeout_ms: 5_000,
            breaker_cooldown_ms: 300,
            ..Default::default()
        }),
        lazy: true,
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn status(c: &mut PoolServiceClient<Channel>, id: &str) -> pb::PoolStatus {
    c.get_pool_status(pb::GetPoolStatusRequest { pool_id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Asserts the read-only degraded error: UNAVAILABLE, reason READ_ONLY_DEGRADED.
fn assert_read_only(s: &tonic::Status, also: &str) {
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert_eq!(
        s.get_details_error_info().unwrap().reason,
        "READ_ONLY_DEGRADED",
        "{s:?}"
    );
    assert!(
        s.message()
            .starts_with("pool `fo` is in read-only degraded mode: primary unavailable ("),
        "{}",
        s.message()
    );
    assert!(
        s.message().contains("writes are refused"),
        "{}",
        s.message()
    );
    assert!(s.message().contains(also), "{}", s.message());
}

fn flight_status(e: FlightError) -> tonic::Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => panic!("not a status: {other:?}"),
    }
}

/// DoPut of one row into `marker`; the call's status.
async fn do_put(f: &mut FlightClient) -> tonic::Status {
    let cmd = pb::BulkInsertCommand {
        pool_id: "fo".into(),
        table: "marker".into(),
        mode: pb::InsertMode::AppendUnspecified as i32,
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: cmd.encode_to_vec(),
    };
    let batch = RecordBatch::try_from_iter([(
        "who",
        Arc::new(arrow::array::StringArray::from(vec!["put"])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(any.encode_to_vec())))
        .build(futures::stream::iter([Ok(batch)]));
    match f.do_put(data).await {
        Ok(results) => flight_status(results.try_collect::<Vec<_>>().await.unwrap_err()),
        Err(e) => flight_status(e),
    }
}

fn ticket(sql: &str) -> Ticket {
    Ticket::new(
        pb::QueryTicket {
            pool_id: "fo".into(),
            sql: sql.into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fail_over_writes_are_refused_and_both_come_back() {
    let pg = Arc::new(
        tokio::task::spawn_blocking(TempPostgres::start)
            .await
            .unwrap(),
    );
    let backup = PgDb::create().await;
    seed(&connect(&pg.url()).await, "primary").await;
    let backup_client = backup.client().await;
    seed(&backup_client, "backup").await;

    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    create(&mut c, "fo", &pg.url(), vec![backup.url.clone()]).await;

    // Primary up: it answers; the backup is listed, redacted.
    let rows = query_ipc(&mut c, "fo", WHO, vec![]).await.unwrap();
    assert_eq!(whos(&rows), ["primary"]);
    let s = status(&mut c, "fo").await;
    assert!(!s.degraded);
    assert_eq!(s.serving, "primary");
    let info = c
        .list_pools(pb::ListPoolsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pools
        .into_iter()
        .find(|p| p.pool_id == "fo")
        .unwrap();
    assert_eq!(
        info.redacted_backup_urls,
        [dbpool_config::redact_url(&backup.url)]
    );

    // Primary down: every read is answered by the backup, none fails.
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop()).await.unwrap();
    let threshold = dbpool_config::PoolOptions::default().breaker_threshold;
    let mut slowest = Duration::ZERO;
    for _ in 0..threshold + 2 {
        let t = Instant::now();
        let rows = query_ipc(&mut c, "fo", WHO, vec![]).await.unwrap();
        slowest = slowest.max(t.elapsed());
        assert_eq!(whos(&rows), ["backup"]);
    }
    // Figures for docs/fault-tolerance.md (printed, never asserted).
    eprintln!("failover: slowest read while the primary was down: {slowest:?}");
    let s = status(&mut c, "fo").await;
    assert!(s.degraded);
    assert_eq!(s.serving, "backup 1");

    // Flight DoGet reads fail over too.
    let mut f = server.flight().await;
    let batches: Vec<_> = f
        .do_get(ticket(WHO))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(whos(&batches), ["backup"]);

    // Writes are refused with the read-only error, whichever way they come.
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "fo".into(),
            sql: "INSERT INTO marker VALUES ('execute')".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_read_only(&e, "reads are served by backup 1");
    for transaction in [false, true] {
        let e = c
            .execute_batch(pb::ExecuteBatchRequest {
                pool_id: "fo".into(),
                statements: vec![pb::Statement {
                    sql: "INSERT INTO marker VALUES ('batch')".into(),
                    params: vec![],
                }],
                transaction,
            })
            .await
            .unwrap_err();
        assert_read_only(&e, "reads are served by backup 1");
    }
    let e = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "fo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_read_only(&e, "reads are served by backup 1");
    // A write sent as a read reaches the backup, which refuses it (opened read-only).
    let e = query_ipc(
        &mut c,
        "fo",
        "INSERT INTO marker VALUES ('query') RETURNING who",
        vec![],
    )
    .await
    .unwrap_err();
    assert_read_only(&e, "backup 1 serves reads only and refused the statement");
    assert!(e.message().contains("SQLSTATE 25006"), "{}", e.message());
    // The statement fails on its first row: the error comes with the call itself.
    let e = match f
        .do_get(ticket("INSERT INTO marker VALUES ('flight') RETURNING who"))
        .await
    {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.unwrap_err(),
        Err(e) => e,
    };
    assert_read_only(&flight_status(e), "refused the statement");
    assert_read_only(&do_put(&mut f).await, "reads are served by backup 1");
    assert_eq!(count(&backup_client).await, 1, "a write reached the backup");

    // Primary back: reads return to it (once a probe finds it), writes go through.
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.restart())
        .await
        .unwrap();
    let back = Instant::now();
    // No event tells when the probe found the primary: each read meanwhile must still be
    // answered, by the backup.
    wait_until(WAIT, "reads to return to the primary", || {
        let mut c = c.clone();
        async move {
            let rows = query_ipc(&mut c, "fo", WHO, vec![]).await.unwrap();
            if whos(&rows) == ["backup"] {
                return false;
            }
            assert_eq!(whos(&rows), ["primary"]);
            true
        }
    })
    .await;
    eprintln!(
        "failover: reads back on the primary {:?} after it returned",
        back.elapsed()
    );
    let s = status(&mut c, "fo").await;
    assert!(!s.degraded);
    assert_eq!(s.serving, "primary");
    let n = c
        .execute(pb::ExecuteRequest {
            pool_id: "fo".into(),
            sql: "INSERT INTO marker VALUES ('after')".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows_affected;
    assert_eq!(n, 1);
    let rows = query_ipc(&mut c, "fo", WHO, vec![]).await.unwrap();
    assert_eq!(whos(&rows), ["after", "primary"]);
    assert_eq!(count(&backup_client).await, 1);
}

#[tokio::test]
async fn no_backup_reachable_is_unavailable() {
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "postgres://postgres@127.0.0.1:{}/x",
            l.local_addr().unwrap().port()
        )
    };
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    create(&mut c, "fo", &pg.url(), vec![dead]).await;
    let rows = query_ipc(&mut c, "fo", "SELECT 'primary' AS who", vec![])
        .await
        .unwrap();
    assert_eq!(whos(&rows), ["primary"]);
    tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let e = query_ipc(&mut c, "fo", "SELECT 'primary' AS who", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(
        e.get_details_error_info().unwrap().reason,
        "DATABASE_UNAVAILABLE"
    );
    assert!(
        e.message()
            .contains("primary and every backup unavailable (primary: "),
        "{}",
        e.message()
    );
    assert!(e.message().contains("; backup 1: "), "{}", e.message());
    let s = status(&mut c, "fo").await;
    assert!(s.degraded);
    assert_eq!(s.serving, "none");
}

#[tokio::test]
async fn backup_urls_are_postgresql_only() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let dir = tempfile::tempdir().unwrap();
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "lite".into(),
            url: format!("sqlite://{}/a.db", dir.path().display()),
            backup_urls: vec![format!("sqlite://{}/b.db", dir.path().display())],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.get_details_error_info().unwrap().metadata["field"],
        "backup_urls"
    );
    assert!(
        e.message().contains("PostgreSQL pools only"),
        "{}",
        e.message()
    );
    // A pool without backups reports the primary as serving, never degraded.
    let s = status(&mut c, "default").await;
    assert!(!s.degraded);
    assert_eq!(s.serving, "primary");
}
