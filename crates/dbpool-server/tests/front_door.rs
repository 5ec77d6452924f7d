//! The transport limits of `server.limits` against the real server: the connection cap,
//! the handshake timeout, and the per-connection stream limit.
mod common;

use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::PgDb;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::transport::Channel;

/// Waits (up to `within`) for the server to close a connection we never write to: true
/// when it was closed (EOF or reset), false when it was still open at the deadline.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // The server's HTTP/2 SETTINGS or GOAWAY: keep reading until it closes.
            Ok(Ok(_)) => {}
        }
    }
}

async fn connect(server: &TestServer) -> PoolServiceClient<Channel> {
    PoolServiceClient::new(
        Channel::from_shared(server.endpoint())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_while_the_others_work() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_client_connections = 2).await;
    let mut a = server.pools().await;
    let mut b = connect(&server).await;
    a.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    b.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        closed_by_server(&mut third, Duration::from_secs(5)).await,
        "a third connection was kept open"
    );
    // The two within the cap still work.
    a.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    b.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    // When one goes, its slot is free again (the server notices the close shortly after).
    drop(b);
    let endpoint = server.endpoint();
    let answered = try_wait_for(Duration::from_secs(10), || async {
        let ch = Channel::from_shared(endpoint.clone())
            .ok()?
            .connect()
            .await
            .ok()?;
        PoolServiceClient::new(ch)
            .list_pools(pb::ListPoolsRequest {})
            .await
            .ok()
    })
    .await;
    assert!(answered.is_some(), "no slot came free after a client left");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let server = TestServer::start_with(&[], |c| c.server.limits.handshake_timeout_ms = 300).await;
    // A working client first: the server is up.
    let mut c = server.pools().await;
    c.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(10)).await,
        "a connection that sent nothing was kept open"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "closed after {waited:?}, before the timeout"
    );
    // A client that spoke at once is not affected: it connected before `silent`, so its
    // handshake timeout has passed too.
    c.list_pools(pb::ListPoolsRequest {}).await.unwrap();
}

#[tokio::test]
async fn streams_beyond_the_per_connection_limit_wait_their_turn() {
    const LIMIT: u32 = 3;
    const CALLS: usize = 7;
    let db = PgDb::create().await;
    let server = TestServer::start_with(&[("pg", &db.url)], |c| {
        c.server.limits.max_concurrent_streams = LIMIT;
    })
    .await;
    // Every query blocks on an advisory lock held here until the calls are counted.
    let holder = db.client().await;
    holder
        .execute("SELECT pg_advisory_lock(4242)", &[])
        .await
        .unwrap();
    let mut one = server.pools().await;
    // One call first: the client has the server's SETTINGS (the stream limit) before
    // it opens more streams, so it queues the extra ones instead of having them
    // refused (REFUSED_STREAM), which HTTP/2 also allows.
    one.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let mut c = one.clone();
            tokio::spawn(async move {
                query_ipc(
                    &mut c,
                    "pg",
                    "SELECT pg_advisory_lock_shared(4242)::text AS x",
                    vec![],
                )
                .await
            })
        })
        .collect();
    // Count the statements waiting on the lock until LIMIT of them are.
    let waiting = || async {
        let row = db
            .client()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock' \
                 AND query LIKE '%pg_advisory_lock_shared(4242)%'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    while seen < i64::from(LIMIT) {
        assert!(
            Instant::now() < deadline,
            "only {seen} calls reached the database"
        );
        seen = waiting().await;
    }
    // Give extra streams every chance to get through, then check none did.
    for _ in 0..20 {
        let n = waiting().await;
        assert!(
            n <= i64::from(LIMIT),
            "{n} calls ran on one connection, limit {LIMIT}"
        );
    }
    holder
        .execute("SELECT pg_advisory_unlock(4242)", &[])
        .await
        .unwrap();
    // The queued ones then run: every call completes with its row.
    for c in calls {
        let batches = c.await.unwrap().unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }
}
