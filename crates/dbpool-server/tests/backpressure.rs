//! Backpressure against the real daemon binary: a consumer that stops reading a
//! 10,000,000-row PostgreSQL result (Flight DoGet, gRPC Query) makes PostgreSQL wait on
//! its socket instead of the daemon buffering the result, so the daemon's resident
//! memory stays flat; dropping the stream cancels the query on the server and gives the
//! connection back. Memory is the daemon process's own (`/proc/<pid>/status`), measured
//! on `target/debug/dbpool` (or `$DBPOOL_BIN`) run as a child process.
mod common;
#[path = "common/daemon.rs"]
mod daemon;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::{FlightClient, Ticket};
use common::{wait_status, wait_until};
use daemon::Daemon;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::PgDb;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use std::time::Duration;
use tonic::transport::Channel;

/// Ten million rows, produced as they are read (a set-returning function in the select
/// list streams; in FROM it would be materialised first).
const BIG: &str =
    "SELECT generate_series(1, 10000000)::int8 AS g, repeat('x', 20) AS pad -- backpressure";
/// What the test reads of it before and between the stalls, in batches of 8192 rows.
const FIRST_BATCHES: usize = 20;
const MORE_BATCHES: usize = 200;
/// Growth of the daemon's peak resident memory over its baseline that counts as flat.
/// Buffering the result would take hundreds of MiB (320 MB of Arrow data).
const FLAT_BYTES: u64 = 64 * 1024 * 1024;

/// Creates pool `big` (two connections) on the test's database.
async fn big_pool(ch: &Channel, db: &PgDb) {
    PoolServiceClient::new(ch.clone())
        .create_pool(pb::CreatePoolRequest {
            pool_id: "big".into(),
            url: db.url.clone(),
            options: Some(pb::PoolOptions {
                max_connections: 2,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}

fn ticket(sql: &str) -> Ticket {
    let t = pb::QueryTicket {
        pool_id: "big".into(),
        sql: sql.into(),
        ..Default::default()
    };
    Ticket::new(t.encode_to_vec())
}

/// Sessions of the test's database running the big query, by whether they wait to
/// write to their client (`ClientWrite`: the daemon does not read).
async fn big_sessions(admin: &tokio_postgres::Client, client_write: bool) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND query LIKE '%-- backpressure' AND pid <> pg_backend_pid() \
         {}",
        if client_write {
            "AND wait_event = 'ClientWrite'"
        } else {
            ""
        }
    );
    admin.query_one(&sql, &[]).await.unwrap().get(0)
}

/// Waits until PostgreSQL is blocked writing the result to the daemon: the consumer's
/// stall has filled every buffer between them. Then gives a buffering daemon time to
/// show it.
async fn stalled(admin: &tokio_postgres::Client) {
    wait_until(
        Duration::from_secs(60),
        "PostgreSQL to wait for the daemon to read",
        || async { big_sessions(admin, true).await == 1 },
    )
    .await;
    // The consumer stays silent for 3 s, the window in which a buffering daemon would
    // grow: the behaviour under test, not a wait for an event.
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Reads `n` items of `s`, returning how many rows (or bytes) they held.
async fn read(s: &mut BoxStream<'static, Result<usize, tonic::Status>>, n: usize) -> usize {
    let mut total = 0;
    for _ in 0..n {
        total += s.next().await.expect("the result ended early").unwrap();
    }
    total
}

/// The common test: read a little, stall, read more, stall, drop. Prints the figures
/// for the docs and asserts the peak stays within `FLAT_BYTES` of `baseline` (taken
/// right before the stream was opened), the query is cancelled on PostgreSQL and the
/// pool's connections come back.
async fn stays_flat(
    d: &Daemon,
    db: &PgDb,
    ch: &Channel,
    what: &str,
    (started, baseline): (u64, u64),
    mut s: BoxStream<'static, Result<usize, tonic::Status>>,
) {
    let admin = db.client().await;
    let first = read(&mut s, FIRST_BATCHES).await;
    stalled(&admin).await;
    let after_first = d.memory("VmRSS");
    let more = read(&mut s, MORE_BATCHES).await;
    stalled(&admin).await;
    let after_more = d.memory("VmRSS");
    // The kernel updates VmHWM lazily: count the samples too.
    let peak = d.memory("VmHWM").max(after_first).max(after_more);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "{what}: RSS at start {:.1} MiB, baseline {:.1} MiB, after {first} then {more} more, \
         stalled: {:.1} MiB, {:.1} MiB; peak {:.1} MiB (+{:.1} MiB)",
        mib(started),
        mib(baseline),
        mib(after_first),
        mib(after_more),
        mib(peak),
        mib(peak.saturating_sub(baseline)),
    );
    assert!(
        peak < baseline + FLAT_BYTES,
        "{what}: the daemon's memory grew from {:.1} MiB to a peak of {:.1} MiB",
        mib(baseline),
        mib(peak)
    );
    drop(s);
    wait_until(
        Duration::from_secs(30),
        "the query to stop on PostgreSQL after the stream was dropped",
        || async { big_sessions(&admin, false).await == 0 },
    )
    .await;
    let mut c = PoolServiceClient::new(ch.clone());
    wait_status(&c, "big", "the pool's connection to come back", |s| {
        s.in_use == 0
    })
    .await;
    // The pool serves the next call.
    let r = c
        .execute(pb::ExecuteRequest {
            pool_id: "big".into(),
            sql: "SELECT 1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().rows_affected, 1);
}

/// Runs a smaller result through the same path first, so the baseline includes what
/// any query costs once (connections, buffers, code paths).
async fn warm_up(f: &mut FlightClient) {
    let sql = "SELECT generate_series(1, 200000)::int8 AS g, repeat('x', 20) AS pad";
    let batches: Vec<RecordBatch> = f
        .do_get(ticket(sql))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_flight_consumer_keeps_the_daemon_flat() {
    let db = PgDb::create().await;
    let d = Daemon::start(None);
    let started = d.memory("VmRSS");
    let ch = d.channel().await;
    big_pool(&ch, &db).await;
    let mut f = FlightClient::new(ch.clone());
    warm_up(&mut f).await;
    let baseline = d.baseline();
    let batches = f.do_get(ticket(BIG)).await.unwrap();
    let mut next = 1i64;
    // Checks the values as they pass: the rows come in order, none lost.
    let rows = batches
        .map_err(|e| tonic::Status::internal(e.to_string()))
        .map_ok(move |b| {
            let g = b.column(0).as_primitive::<Int64Type>();
            assert_eq!(g.value(0), next);
            assert_eq!(b.column(1).as_string::<i32>().value(0), "x".repeat(20));
            next += b.num_rows() as i64;
            b.num_rows()
        })
        .boxed();
    stays_flat(&d, &db, &ch, "Flight DoGet", (started, baseline), rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_grpc_query_consumer_keeps_the_daemon_flat() {
    let db = PgDb::create().await;
    let d = Daemon::start(None);
    let started = d.memory("VmRSS");
    let ch = d.channel().await;
    big_pool(&ch, &db).await;
    warm_up(&mut FlightClient::new(ch.clone())).await;
    let baseline = d.baseline();
    let messages = PoolServiceClient::new(ch.clone())
        .query(pb::QueryRequest {
            pool_id: "big".into(),
            sql: BIG.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Arrow IPC chunks (up to 1 MiB, whole batches): counted in bytes.
    let bytes = messages
        .map_ok(|m| match m.payload {
            Some(pb::query_response::Payload::ArrowIpc(b)) => b.len(),
            other => panic!("unexpected payload {other:?}"),
        })
        .boxed();
    stays_flat(&d, &db, &ch, "gRPC Query", (started, baseline), bytes).await;
}
