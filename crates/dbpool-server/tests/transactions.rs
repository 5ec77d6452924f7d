//! Interactive transactions over gRPC and Flight against real PostgreSQL and SQLite:
//! isolation, commit/rollback, idle timeout, client disconnect.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::PgDb;
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::Code;

async fn count(c: &mut PoolServiceClient<Channel>, pool: &str, tx: &str) -> i64 {
    let mut s = c
        .query(pb::QueryRequest {
            pool_id: pool.into(),
            transaction_id: tx.into(),
            sql: "SELECT CAST(count(*) AS BIGINT) AS n FROM t".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        if let Some(pb::query_response::Payload::ArrowIpc(b)) = m.payload {
            bytes.extend(b);
        }
    }
    let mut r =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let b = r.next().unwrap().unwrap();
    b.column(0).as_primitive::<Int64Type>().value(0)
}

async fn begin(
    c: &mut PoolServiceClient<Channel>,
    pool: &str,
    idle_ms: u64,
    read_only: bool,
) -> String {
    c.begin_transaction(pb::BeginTransactionRequest {
        pool_id: pool.into(),
        idle_timeout_ms: idle_ms,
        read_only,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .transaction_id
}

async fn insert(
    c: &mut PoolServiceClient<Channel>,
    tx: &str,
    v: i64,
) -> Result<u64, tonic::Status> {
    c.execute(pb::ExecuteRequest {
        transaction_id: tx.into(),
        sql: "INSERT INTO t VALUES ($1)".into(),
        params: vec![p_int(v)],
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().rows_affected)
}

fn end(tx: &str) -> pb::EndTransactionRequest {
    pb::EndTransactionRequest {
        transaction_id: tx.into(),
    }
}

#[tokio::test]
async fn commit_rollback_and_isolation_on_postgres() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8)").await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    // One connection for PoolService and Flight: a transaction is usable only on the
    // connection that began it.
    let channel = server.channel().await;
    let mut c = PoolServiceClient::new(channel.clone());
    let a = begin(&mut c, "pg", 0, false).await;
    let b = begin(&mut c, "pg", 0, false).await;
    assert_eq!(insert(&mut c, &a, 1).await.unwrap(), 1);
    assert_eq!(insert(&mut c, &b, 2).await.unwrap(), 1);
    // Each sees its own row only; outside sees none.
    assert_eq!(count(&mut c, "", &a).await, 1);
    assert_eq!(count(&mut c, "", &b).await, 1);
    assert_eq!(count(&mut c, "pg", "").await, 0);
    // Flight DoGet inside the transaction sees its uncommitted row too.
    let mut f = arrow_flight::FlightClient::new(channel);
    let ticket = pb::QueryTicket {
        sql: "SELECT id FROM t".into(),
        transaction_id: a.clone(),
        ..Default::default()
    };
    let batches: Vec<_> = f
        .do_get(arrow_flight::Ticket::new(ticket.encode_to_vec()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().values(),
        &[1]
    );
    c.commit(end(&a)).await.unwrap();
    c.rollback(end(&b)).await.unwrap();
    assert_eq!(count(&mut c, "pg", "").await, 1);
    // Ended transactions are gone.
    assert_eq!(c.commit(end(&a)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        insert(&mut c, &b, 3).await.unwrap_err().code(),
        Code::NotFound
    );
    // Wrong pool for the transaction is named.
    let d = begin(&mut c, "pg", 0, false).await;
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "other".into(),
            transaction_id: d.clone(),
            sql: "SELECT 1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    c.rollback(end(&d)).await.unwrap();
    // Read-only refuses writes with PostgreSQL's own error.
    let ro = begin(&mut c, "pg", 0, true).await;
    let e = insert(&mut c, &ro, 9).await.unwrap_err();
    assert!(e.message().contains("25006"), "{}", e.message());
    c.rollback(end(&ro)).await.unwrap();
    // Every connection went back to the pool.
    let s = c
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: "pg".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.in_use, 0, "{s:?}");
}

#[tokio::test]
async fn idle_timeout_rolls_back_and_frees_the_connection() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8)").await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    let tx = begin(&mut c, "pg", 300, false).await;
    insert(&mut c, &tx, 1).await.unwrap();
    // The reaper rolls it back and its pinned connection returns to the pool (status
    // calls do not touch the transaction, so they do not keep it alive).
    wait_status(&c, "pg", "the idle transaction's connection back", |s| {
        s.in_use == 0
    })
    .await;
    let e = c.commit(end(&tx)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("idle timeout"), "{}", e.message());
    assert_eq!(count(&mut c, "pg", "").await, 0);
    assert_eq!(pool_status(&mut c, "pg").await.in_use, 0);
    let idle_in_tx: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(idle_in_tx, 0);
}

#[tokio::test]
async fn client_disconnect_rolls_back() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8)").await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let tx = {
        // A client of its own, on its own HTTP/2 connection, that goes away.
        let channel = Channel::from_shared(server.endpoint())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut gone = PoolServiceClient::new(channel);
        let tx = begin(&mut gone, "pg", 60_000, false).await;
        insert(&mut gone, &tx, 1).await.unwrap();
        tx
    };
    let mut c = server.pools().await;
    // Another connection cannot see the transaction at all (NOT_FOUND either way), so
    // wait for its pinned connection to come back to the pool.
    wait_status(
        &c,
        "pg",
        "the transaction ended after its client disconnected",
        |s| s.in_use == 0,
    )
    .await;
    assert_eq!(c.commit(end(&tx)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(count(&mut c, "pg", "").await, 0);
}

#[tokio::test]
async fn sqlite_transactions() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    c.execute(pb::ExecuteRequest {
        pool_id: "default".into(),
        sql: "CREATE TABLE t (id INTEGER)".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let tx = begin(&mut c, "default", 0, false).await;
    c.execute(pb::ExecuteRequest {
        transaction_id: tx.clone(),
        sql: "INSERT INTO t VALUES (?)".into(),
        params: vec![p_int(5)],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(count(&mut c, "", &tx).await, 1);
    c.rollback(end(&tx)).await.unwrap();
    assert_eq!(count(&mut c, "default", "").await, 0);
    let tx = begin(&mut c, "default", 0, false).await;
    c.execute(pb::ExecuteRequest {
        transaction_id: tx.clone(),
        sql: "INSERT INTO t VALUES (?)".into(),
        params: vec![p_int(6)],
        ..Default::default()
    })
    .await
    .unwrap();
    c.commit(end(&tx)).await.unwrap();
    assert_eq!(count(&mut c, "default", "").await, 1);
    let e = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "default".into(),
            isolation: pb::IsolationLevel::ReadCommitted as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("SERIALIZABLE"));
    let ro = begin(&mut c, "default", 0, true).await;
    let e = c
        .execute(pb::ExecuteRequest {
            transaction_id: ro.clone(),
            sql: "INSERT INTO t VALUES (1)".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    c.rollback(end(&ro)).await.unwrap();
    // query_only was reset: the pool writes again.
    c.execute(pb::ExecuteRequest {
        pool_id: "default".into(),
        sql: "INSERT INTO t VALUES (7)".into(),
        ..Default::default()
    })
    .await
    .unwrap();
}
