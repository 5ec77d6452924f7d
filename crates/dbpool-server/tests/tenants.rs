//! Identity and rights over the real server: without credentials every service but
//! health answers UNAUTHENTICATED; a read tenant reads and is refused writes; a tenant
//! cannot see, query or remove another's pool; pools created at run time belong to
//! their creator and only on its upstreams; without tenants only loopback serves.
mod common;

use arrow_flight::Ticket;
use common::flight_sql::status;
use common::tenants::*;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::{InsertMode, QueryTicket};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;

const READER: &str = "pools = { shared = \"read\" }\n";
const WRITER: &str = "pools = { shared = \"write\", own = \"write\" }\n";

async fn two_tenants() -> TenantServer {
    TenantServer::start(
        &["shared", "own", "theirs"],
        &[
            ("reader", READER),
            ("writer", WRITER),
            ("other", "pools = { theirs = \"write\" }\n"),
        ],
        |_| {},
    )
    .await
}

fn ticket(pool: &str, sql: &str) -> Ticket {
    Ticket::new(
        QueryTicket {
            pool_id: pool.into(),
            sql: sql.into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

/// DoPut of one row into `pool`.`t`.
async fn put(f: &mut arrow_flight::FlightClient, pool: &str) -> Result<u64, tonic::Status> {
    use arrow::array::Int64Array;
    let batch = arrow::record_batch::RecordBatch::try_from_iter([(
        "v",
        std::sync::Arc::new(Int64Array::from(vec![1])) as _,
    )])
    .unwrap();
    common::bulk::do_put(f, pool, "t", InsertMode::AppendUnspecified, vec![batch]).await
}

#[tokio::test]
async fn without_valid_credentials_every_service_but_health_is_unauthenticated() {
    let s = two_tenants().await;
    for auth in [
        None,
        Some("Bearer not-a-token".to_string()),
        Some("Basic eDp5".into()),
    ] {
        let mut c = s.client_with(auth.clone()).await;
        let what = format!("{auth:?}");
        let codes = [
            query(&mut c, "shared", "SELECT 1")
                .await
                .unwrap_err()
                .code(),
            exec(&mut c, "shared", "SELECT 1").await.unwrap_err().code(),
            listed(&mut c).await.unwrap_err().code(),
            c.get_metrics(pb::GetMetricsRequest::default())
                .await
                .unwrap_err()
                .code(),
            c.create_pool(pb::CreatePoolRequest::default())
                .await
                .unwrap_err()
                .code(),
            c.begin_transaction(pb::BeginTransactionRequest::default())
                .await
                .unwrap_err()
                .code(),
        ];
        assert_eq!(codes, [Code::Unauthenticated; 6], "{what}");
    }
    let mut f = s.flight(None).await;
    let e = f.do_get(ticket("shared", "SELECT 1")).await.unwrap_err();
    assert_eq!(status(e).code(), Code::Unauthenticated);
    assert_eq!(
        put(&mut f, "shared").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let e = f
        .list_flights(bytes::Bytes::new())
        .await
        .err()
        .expect("refused");
    assert_eq!(status(e).code(), Code::Unauthenticated);
    // Reflection describes the API only to callers.
    let mut r = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        s.server.channel().await,
    );
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let reply = r.server_reflection_info(futures::stream::iter([req])).await;
    let code = match reply {
        Err(s) => s.code(),
        Ok(mut stream) => stream.get_mut().message().await.unwrap_err().code(),
    };
    assert_eq!(code, Code::Unauthenticated);
    // Kubelet probes carry no token.
    wait_health(
        &s.server,
        "",
        tonic_health::pb::health_check_response::ServingStatus::Serving,
    )
    .await;
    // With a token the same calls work.
    let mut ok = s.client("writer").await;
    assert!(query(&mut ok, "shared", "SELECT 1").await.unwrap() > 0);
    let e = s.client("nobody").await;
    let mut e = e;
    let err = query(&mut e, "shared", "SELECT 1").await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::Unauthenticated, "UNAUTHENTICATED")
    );
    assert!(
        !err.message().contains(&token("nobody")),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_read_tenant_reads_and_is_refused_writes() {
    let s = two_tenants().await;
    let mut w = s.client("writer").await;
    exec(&mut w, "shared", "CREATE TABLE t (v INTEGER)")
        .await
        .unwrap();
    exec(&mut w, "shared", "INSERT INTO t VALUES (7)")
        .await
        .unwrap();
    let mut r = s.client("reader").await;
    assert!(query(&mut r, "shared", "SELECT v FROM t").await.unwrap() > 0);
    let e = exec(&mut r, "shared", "DELETE FROM t").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("may only read pool `shared`"),
        "{}",
        e.message()
    );
    let batch = r
        .execute_batch(pb::ExecuteBatchRequest {
            pool_id: "shared".into(),
            statements: vec![pb::Statement {
                sql: "DELETE FROM t".into(),
                params: vec![],
            }],
            transaction: true,
        })
        .await
        .unwrap_err();
    assert_eq!(batch.code(), Code::PermissionDenied);
    let mut f = s.flight(Some("reader")).await;
    assert_eq!(
        put(&mut f, "shared").await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let rw = r
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "shared".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(rw.code(), Code::PermissionDenied);
    let ro = r
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "shared".into(),
            read_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    r.commit(end(&ro)).await.unwrap();
    // Nothing was deleted; the writer may write through Flight too.
    let mut fw = s.flight(Some("writer")).await;
    put(&mut fw, "shared").await.unwrap();
    let rows: Vec<_> = fw
        .do_get(ticket("shared", "SELECT v FROM t ORDER BY v"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[tokio::test]
async fn a_tenant_cannot_see_query_or_remove_another_tenants_pool() {
    let s = two_tenants().await;
    let mut w = s.client("writer").await;
    let mut listed_w = listed(&mut w).await.unwrap();
    listed_w.sort();
    assert_eq!(listed_w, ["own", "shared"]);
    let hidden = query(&mut w, "theirs", "SELECT 1").await.unwrap_err();
    let missing = query(&mut w, "no-such-pool", "SELECT 1").await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(
        hidden.message().replace("theirs", "X"),
        missing.message().replace("no-such-pool", "X"),
        "a hidden pool answers as a missing one"
    );
    let remove = w
        .remove_pool(pb::RemovePoolRequest {
            pool_id: "theirs".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(remove.code(), Code::NotFound);
    let st = w
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: "theirs".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let metrics = w
        .get_metrics(pb::GetMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<_> = metrics.pools.iter().map(|p| p.pool_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["own", "shared"]);
    let mut f = s.flight(Some("writer")).await;
    let e = f.do_get(ticket("theirs", "SELECT 1")).await.unwrap_err();
    assert_eq!(status(e).code(), Code::NotFound);
    // Its owner still has it.
    let mut o = s.client("other").await;
    assert_eq!(listed(&mut o).await.unwrap(), ["theirs"]);
    assert!(query(&mut o, "theirs", "SELECT 1").await.is_ok());
}

fn create(id: &str, url: &str) -> pb::CreatePoolRequest {
    pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        lazy: true,
        options: Some(pb::PoolOptions {
            max_connections: 2,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn pools_created_at_run_time_belong_to_their_creator_on_its_upstreams() {
    let s = TenantServer::start(
        &["shared"],
        &[
            ("plain", READER),
            (
                "creator",
                "create_pools = true\nupstreams = [\"sqlite\", \"postgresql://db.internal:5432\"]\n\
                 [quotas]\nmax_pools = 1\n",
            ),
            ("admin", "admin = true\n"),
        ],
        |_| {},
    )
    .await;
    let mut plain = s.client("plain").await;
    let e = plain
        .create_pool(create("p1", "sqlite://p1.db"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut c = s.client("creator").await;
    let outside = c
        .create_pool(create("pg", "postgres://u:secret@10.1.2.3:5432/x"))
        .await
        .unwrap_err();
    assert_eq!(outside.code(), Code::PermissionDenied);
    assert!(outside.message().contains("10.1.2.3:5432") && !outside.message().contains("secret"));
    let sneaky = c
        .create_pool(create(
            "pg",
            "postgres://u@db.internal:5432/x?host=10.1.2.3",
        ))
        .await
        .unwrap_err();
    assert_eq!(sneaky.code(), Code::PermissionDenied);
    c.create_pool(create("mine", "sqlite://mine.db"))
        .await
        .unwrap();
    exec(&mut c, "mine", "CREATE TABLE t (v INTEGER)")
        .await
        .unwrap();
    assert_eq!(listed(&mut c).await.unwrap(), ["mine"]);
    // Its pool quota is one.
    let e = c
        .create_pool(create("second", "sqlite://second.db"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::ResourceExhausted, "QUOTA_EXCEEDED")
    );
    assert!(e.message().contains("max_pools (1)"), "{}", e.message());
    // Others do not see it; the admin does and may remove any pool.
    assert_eq!(
        query(&mut plain, "mine", "SELECT 1")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let mut a = s.client("admin").await;
    let mut all = listed(&mut a).await.unwrap();
    all.sort();
    assert_eq!(all, ["mine", "shared"]);
    c.remove_pool(pb::RemovePoolRequest {
        pool_id: "mine".into(),
    })
    .await
    .unwrap();
    // Removed, the quota has room again.
    c.create_pool(create("second", "sqlite://second.db"))
        .await
        .unwrap();
    a.remove_pool(pb::RemovePoolRequest {
        pool_id: "second".into(),
    })
    .await
    .unwrap();
    c.create_pool(create("third", "sqlite://third.db"))
        .await
        .unwrap(); // A second create of its own pool is ALREADY_EXISTS and keeps it counted.
    let again = c
        .create_pool(create("third", "sqlite://third.db"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    a.remove_pool(pb::RemovePoolRequest {
        pool_id: "third".into(),
    })
    .await
    .unwrap();
    // A configured pool's id is not the tenant's to take, even once removed.
    a.remove_pool(pb::RemovePoolRequest {
        pool_id: "shared".into(),
    })
    .await
    .unwrap();
    let squat = c
        .create_pool(create("shared", "sqlite://s.db"))
        .await
        .unwrap_err();
    assert_eq!(squat.code(), Code::PermissionDenied);
    // A host hidden behind a second `@` (what tokio-postgres would dial) is refused.
    let hidden = c
        .create_pool(create(
            "pg",
            "postgresql://db.internal:5432/x@10.1.2.3:6543/app",
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn without_tenants_only_loopback_serves_unless_allowed() {
    let mut config = dbpool_config::Config::default();
    config.server.listen = "0.0.0.0:0".into();
    config.server.data_dir = tempfile::tempdir().unwrap().keep();
    let e = dbpool_server::Server::builder(config.clone())
        .build()
        .await
        .err()
        .expect("refused");
    let m = e.to_string();
    assert!(m.contains("0.0.0.0:0") && m.contains("dbpool token"), "{m}");
    config.server.allow_unauthenticated = true;
    dbpool_server::Server::builder(config)
        .build()
        .await
        .unwrap();
}
