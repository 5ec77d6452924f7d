//! Tenant quotas over the real server: each refuses its excess with RESOURCE_EXHAUSTED
//! naming the quota and recovers; a tenant flooding a shared pool cannot starve another
//! tenant on it; Flight SQL logs in with Basic credentials.
mod common;

use common::tenants::*;
use common::*;
use dbpool_config::{PoolConfig, Secret};
use dbpool_proto::v1 as pb;
use dbpool_testkit::PgDb;
use std::sync::{Arc, Mutex};
use tonic::Code;

/// The quota a refusal names, from its ErrorInfo.
fn quota_of(s: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(
        (s.code(), reason(s).as_str()),
        (Code::ResourceExhausted, "QUOTA_EXCEEDED"),
        "{s:?}"
    );
    s.get_details_error_info().unwrap().metadata["quota"].clone()
}

/// `n` rows of one integer, in SQLite.
fn rows(n: u32) -> String {
    format!(
        "WITH RECURSIVE r(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM r WHERE v < {n}) \
         SELECT v FROM r"
    )
}

#[tokio::test]
async fn concurrent_calls_are_held_by_a_running_result_and_come_back_when_it_ends() {
    let s = TenantServer::start(
        &["p"],
        &[(
            "t",
            "pools = { p = \"read\" }\n[quotas]\nmax_concurrent_calls = 1\n",
        )],
        |_| {},
    )
    .await;
    let mut c = s.client("t").await;
    // A result read no further than its first message holds its call open.
    let mut open = c
        .query(pb::QueryRequest {
            pool_id: "p".into(),
            sql: rows(200_000),
            batch_size: 16,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(open.message().await.unwrap().is_some());
    let e = query(&mut c, "p", "SELECT 1").await.unwrap_err();
    assert_eq!(quota_of(&e), "max_concurrent_calls");
    assert!(e
        .message()
        .contains("tenant `t` reached its quota max_concurrent_calls (1)"));
    drop(open);
    let recovered = wait_for(WAIT, "the quota to come back", || {
        let mut c = c.clone();
        async move { query(&mut c, "p", "SELECT 1").await.ok() }
    })
    .await;
    assert!(recovered > 0);
}

#[tokio::test]
async fn the_call_rate_refuses_past_its_burst_and_recovers() {
    let s = TenantServer::start(
        &["p"],
        &[(
            "t",
            "pools = { p = \"read\" }\n[quotas]\ncalls_per_second = 1\nburst = 2\n",
        )],
        |_| {},
    )
    .await;
    let mut c = s.client("t").await;
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(query(&mut c, "p", "SELECT 1").await);
    }
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    // Two from the burst, perhaps one more refilled meanwhile; never all four.
    assert!(!refused.is_empty() && refused.len() <= 2, "{results:?}");
    assert_eq!(quota_of(refused[0]), "calls_per_second");
    wait_for(WAIT, "the rate to refill", || {
        let mut c = c.clone();
        async move { query(&mut c, "p", "SELECT 1").await.ok() }
    })
    .await;
}

#[tokio::test]
async fn a_result_over_the_rows_or_bytes_quota_ends_with_it() {
    let s = TenantServer::start(
        &["p"],
        &[
            (
                "rows",
                "pools = { p = \"read\" }\n[quotas]\nmax_result_rows = 50\n",
            ),
            (
                "bytes",
                "pools = { p = \"read\" }\n[quotas]\nmax_result_bytes = 4096\n",
            ),
        ],
        |_| {},
    )
    .await;
    let mut r = s.client("rows").await;
    assert!(query(&mut r, "p", &rows(50)).await.is_ok());
    let e = query(&mut r, "p", &rows(51)).await.unwrap_err();
    assert_eq!(quota_of(&e), "max_result_rows");
    let mut b = s.client("bytes").await;
    assert!(query(&mut b, "p", &rows(10)).await.is_ok());
    let e = query(&mut b, "p", &rows(100_000)).await.unwrap_err();
    assert_eq!(quota_of(&e), "max_result_bytes");
    // The next result is counted afresh.
    assert!(query(&mut r, "p", &rows(10)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_flooding_a_shared_pool_does_not_starve_another() {
    let db = PgDb::create().await;
    let s = TenantServer::start(
        &[],
        &[
            (
                "flood",
                "pools = { shared = \"read\" }\n[quotas]\nmax_concurrent_calls = 2\n",
            ),
            ("calm", "pools = { shared = \"read\" }\n"),
        ],
        |c| {
            let mut pool = PoolConfig {
                url: Some(Secret::new(db.url.clone())),
                ..Default::default()
            };
            pool.options.max_connections = 3;
            c.pools.insert("shared".into(), pool);
        },
    )
    .await;
    let flood = s.client("flood").await;
    let codes: Arc<Mutex<Vec<tonic::Status>>> = Arc::default();
    // pg_sleep: statements that hold their connections for the test's length.
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let (mut c, codes) = (flood.clone(), codes.clone());
            tokio::spawn(async move {
                if let Err(e) = query(&mut c, "shared", "SELECT pg_sleep(600) -- flood").await {
                    codes.lock().unwrap().push(e);
                }
            })
        })
        .collect();
    wait_until(WAIT, "the flood's excess to be refused", || {
        let n = codes.lock().unwrap().len();
        async move { n >= 10 }
    })
    .await;
    wait_running(&db, "SELECT pg_sleep(600) -- flood").await;
    for e in codes.lock().unwrap().iter() {
        assert_eq!(quota_of(e), "max_concurrent_calls");
    }
    // The other tenant gets the pool's third connection at once, while the flood holds two.
    let mut calm = s.client("calm").await;
    for _ in 0..20 {
        assert!(query(&mut calm, "shared", "SELECT 1").await.unwrap() > 0);
    }
    let client = db.client().await;
    assert_eq!(running(&client, "SELECT pg_sleep(600) -- flood").await, 2);
    assert_eq!(
        codes.lock().unwrap().len(),
        10,
        "the two admitted still run"
    );
    for h in &calls {
        h.abort();
    }
}

#[tokio::test]
async fn flight_sql_logs_in_with_the_tenant_and_its_token() {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    let s = TenantServer::start(
        &["p", "q"],
        &[("app", "pools = { p = \"read\" }\n")],
        |_| {},
    )
    .await;
    let mut sql = FlightSqlServiceClient::new(s.server.channel().await);
    sql.set_header("x-dbpool-pool", "p");
    let e = sql.handshake("app", "wrong").await.unwrap_err();
    assert!(
        e.to_string().contains("Unauthenticated") || e.to_string().contains("not known"),
        "{e}"
    );
    let e = sql.execute("SELECT 1".into(), None).await.unwrap_err();
    assert!(e.to_string().contains("no credentials"), "{e}");
    sql.handshake("app", &token("app")).await.unwrap();
    assert_eq!(sql.token(), Some(&token("app")));
    let info = sql.execute("SELECT 42 AS v".into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(sql.do_get(ticket).await.unwrap())
            .await
            .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    // Another pool's catalog and statements are not the tenant's: NOT_FOUND.
    sql.set_header("x-dbpool-pool", "q");
    let info = sql.get_catalogs().await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let e = match sql.do_get(ticket).await {
        Err(e) => e.to_string(),
        Ok(s) => futures::TryStreamExt::try_collect::<Vec<_>>(s)
            .await
            .unwrap_err()
            .to_string(),
    };
    assert!(e.contains("not found"), "{e}");
    let e = sql
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found"), "{e}");
}
