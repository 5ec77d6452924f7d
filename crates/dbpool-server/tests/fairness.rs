//! Fairness between pools: a flood of slow calls on one pool, far beyond its connections
//! and wait queue, sent over the same HTTP/2 connection as everything else, neither
//! delays another pool's calls behind it nor makes them fail. The flood's excess is
//! refused with RESOURCE_EXHAUSTED; every call of the other pools succeeds. Callers that
//! give up while queued leave the queue.
mod common;

use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::PgDb;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Code;

/// Calls sent to the flooded pool at once.
const FLOOD: usize = 400;
const MAX_CONNECTIONS: u32 = 2;
const MAX_WAITERS: u32 = 250;
/// Calls of each other pool, all at once, while the flood waits.
const OTHERS: i64 = 50;

async fn create(c: &mut PoolServiceClient<Channel>, id: &str, url: &str, o: pb::PoolOptions) {
    c.create_pool(pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        options: Some(o),
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn status(c: &mut PoolServiceClient<Channel>, id: &str) -> pb::PoolStatus {
    let r = c.get_pool_status(pb::GetPoolStatusRequest { pool_id: id.into() });
    // A bound on a hang (a starved call never returns), not a speed assertion.
    tokio::time::timeout(Duration::from_secs(30), r)
        .await
        .expect("GetPoolStatus starved behind the flood")
        .unwrap()
        .into_inner()
}

/// `OTHERS` calls on `pool` at once, each with its own value; all must come back right.
/// Returns the slowest call's time (for the docs; not asserted).
async fn others_all_succeed(c: &PoolServiceClient<Channel>, pool: &str, sql: &str) -> Duration {
    let calls = (0..OTHERS).map(|i| {
        let mut c = c.clone();
        let (pool, sql) = (pool.to_string(), sql.to_string());
        async move {
            let started = Instant::now();
            let batches = query_ipc(&mut c, &pool, &sql, vec![p_int(i)]).await?;
            use arrow::array::AsArray;
            let v = batches[0]
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0);
            Ok::<_, tonic::Status>((i, v, started.elapsed()))
        }
    });
    let all = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(calls))
        .await
        .unwrap_or_else(|_| panic!("pool {pool}: calls starved behind the flood"));
    let mut slowest = Duration::ZERO;
    for r in all {
        let (sent, got, took) = r.unwrap_or_else(|e| panic!("pool {pool}: {e:?}"));
        assert_eq!(sent, got, "pool {pool}: a reply for another call");
        slowest = slowest.max(took);
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_pool_does_not_starve_the_others() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[]).await;
    // One client connection for everything: the flood and the others share it.
    let mut c = server.pools().await;
    let flooded = pb::PoolOptions {
        max_connections: MAX_CONNECTIONS,
        max_waiters: MAX_WAITERS,
        acquire_timeout_ms: 120_000,
        ..Default::default()
    };
    create(&mut c, "flooded", &db.url, flooded).await;
    let small = pb::PoolOptions {
        max_connections: 2,
        ..Default::default()
    };
    create(&mut c, "pg_other", &db.url, small).await;
    // Relative: a runtime SQLite pool lives in the server's data directory.
    let lite = "sqlite://other.db".to_string();
    create(&mut c, "lite_other", &lite, small).await;

    let codes: Arc<Mutex<Vec<(Code, String, Duration)>>> = Arc::default();
    // pg_sleep: statements that hold the connections for the test's length, not a wait.
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (mut c, codes) = (c.clone(), codes.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let r = c
                    .execute(pb::ExecuteRequest {
                        pool_id: "flooded".into(),
                        sql: "SELECT pg_sleep(600) -- flood".into(),
                        ..Default::default()
                    })
                    .await;
                let (code, msg) = match r {
                    Ok(_) => (Code::Ok, String::new()),
                    Err(e) => (e.code(), e.message().to_string()),
                };
                codes.lock().unwrap().push((code, msg, started.elapsed()));
            })
        })
        .collect();
    // The flooded pool fills up: its connections busy, its queue full, the rest refused.
    // (At least `excess`: callers waiting for a connection being opened count as waiters.)
    let excess = FLOOD - (MAX_CONNECTIONS + MAX_WAITERS) as usize;
    wait_until(
        Duration::from_secs(60),
        "the flood's excess to be refused",
        || {
            let (n, mut c) = (codes.lock().unwrap().len(), c.clone());
            async move { n >= excess && status(&mut c, "flooded").await.in_use == MAX_CONNECTIONS }
        },
    )
    .await;
    let refused = codes.lock().unwrap().len();
    for (code, msg, _) in codes.lock().unwrap().iter() {
        assert_eq!(*code, Code::ResourceExhausted, "{msg}");
        assert!(msg.contains("max_waiters"), "{msg}");
    }
    let s = status(&mut c, "flooded").await;
    assert!(s.waiters > 0 && s.waiters <= MAX_WAITERS, "{s:?}");

    // Meanwhile every call of the other pools succeeds with its own answer.
    let pg_slowest = others_all_succeed(&c, "pg_other", "SELECT $1::int8 AS v").await;
    let lite_slowest = others_all_succeed(&c, "lite_other", "SELECT ? AS v").await;
    // …while the flood's accepted calls still hold and wait: none failed meanwhile.
    assert_eq!(status(&mut c, "flooded").await.in_use, MAX_CONNECTIONS);
    assert_eq!(
        codes.lock().unwrap().len(),
        refused,
        "the flood still waits"
    );
    let slowest = codes.lock().unwrap().iter().map(|c| c.2).max().unwrap();
    println!(
        "flood of {FLOOD}: {refused} refused (slowest refusal {slowest:?}), {} waiting; \
         other pools: {OTHERS} + {OTHERS} calls ok (slowest {:?}, {:?})",
        s.waiters, pg_slowest, lite_slowest
    );

    // The flood gives up; the test database is dropped with its sessions.
    for h in &flood {
        h.abort();
    }
}

/// A caller that gives up while queued (its deadline passes) leaves the queue: it no
/// longer counts against `max_waiters`, so later callers are not refused.
#[tokio::test]
async fn callers_that_give_up_leave_the_queue() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let o = pb::PoolOptions {
        max_connections: 1,
        max_waiters: 3,
        acquire_timeout_ms: 120_000,
        ..Default::default()
    };
    create(&mut c, "q", &db.url, o).await;
    // pg_sleep: a statement that holds the only connection, not a wait.
    let holder = {
        let mut c = c.clone();
        tokio::spawn(async move {
            c.execute(pb::ExecuteRequest {
                pool_id: "q".into(),
                sql: "SELECT pg_sleep(600)".into(),
                ..Default::default()
            })
            .await
        })
    };
    // Its statement running, not merely a connection in use (a health check uses one).
    wait_running(&db, "SELECT pg_sleep(600)").await;
    for round in 0..3 {
        let waits = (0..3).map(|_| {
            let mut c = c.clone();
            async move {
                let mut req = tonic::Request::new(pb::ExecuteRequest {
                    pool_id: "q".into(),
                    sql: "SELECT 1".into(),
                    ..Default::default()
                });
                req.set_timeout(Duration::from_millis(300));
                c.execute(req).await
            }
        });
        for r in futures::future::join_all(waits).await {
            let e = r.unwrap_err();
            assert!(
                matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
                "round {round}: {e:?}"
            );
        }
        wait_until(
            Duration::from_secs(10),
            "callers that gave up to leave the queue (else they refuse later ones)",
            || {
                let mut c = c.clone();
                async move { status(&mut c, "q").await.waiters == 0 }
            },
        )
        .await;
    }
    holder.abort();
    let r = c
        .execute(pb::ExecuteRequest {
            pool_id: "q".into(),
            sql: "SELECT 1".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(r.unwrap().into_inner().rows_affected, 1);
}
