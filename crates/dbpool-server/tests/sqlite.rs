//! SQLite end to end: a call whose gRPC deadline passes interrupts its statement on the
//! blocking thread, so the pool's only connection serves the next call, and a write that
//! was interrupted left nothing behind; a pool that could take every blocking thread is
//! refused.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

/// About a minute of work for SQLite: a statement that is not interrupted holds the one
/// connection far longer than any call below waits.
const SLOW_COUNT: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                          WHERE x < 300000000) SELECT count(*) AS n FROM c";
const SLOW_WRITE: &str = "CREATE TABLE big AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL \
                          SELECT x + 1 FROM c WHERE x < 300000000) SELECT x FROM c";

fn abandoned(e: tonic::Status) {
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
}

/// A call with a deadline of `ms` milliseconds.
fn within<T>(msg: T, ms: u64) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(Duration::from_millis(ms));
    req
}

/// `SELECT ?` with `v` on the pool, within 20 s (a bound on a regression's hang).
async fn echo(c: &mut PoolServiceClient<Channel>, v: i64) -> Result<i64, tonic::Status> {
    let req = pb::QueryRequest {
        pool_id: "lite".into(),
        sql: "SELECT ? AS v".into(),
        params: vec![p_int(v)],
        ..Default::default()
    };
    let mut stream = c.query(within(req, 20_000)).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(m) = stream.message().await? {
        if let Some(pb::query_response::Payload::ArrowIpc(b)) = m.payload {
            bytes.extend(b);
        }
    }
    let mut reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let b = reader.next().unwrap().unwrap();
    Ok(b.column(0).as_primitive::<Int64Type>().value(0))
}

#[tokio::test]
async fn a_deadline_interrupts_the_statement() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    c.create_pool(pb::CreatePoolRequest {
        pool_id: "lite".into(),
        url: "sqlite://lite.db".into(),
        options: Some(pb::PoolOptions {
            max_connections: 1,
            acquire_timeout_ms: 15_000,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(echo(&mut c, 1).await.unwrap(), 1);

    let e = c
        .execute(within(
            pb::ExecuteRequest {
                pool_id: "lite".into(),
                sql: SLOW_WRITE.into(),
                ..Default::default()
            },
            300,
        ))
        .await
        .unwrap_err();
    abandoned(e);
    assert_eq!(echo(&mut c, 2).await.unwrap(), 2);

    let query = pb::QueryRequest {
        pool_id: "lite".into(),
        sql: SLOW_COUNT.into(),
        ..Default::default()
    };
    match c.query(within(query, 300)).await {
        Err(e) => abandoned(e),
        Ok(r) => abandoned(r.into_inner().message().await.unwrap_err()),
    }
    assert_eq!(echo(&mut c, 3).await.unwrap(), 3);

    // The interrupted CREATE TABLE … AS rolled back: no table, not even later.
    let req = pb::QueryRequest {
        pool_id: "lite".into(),
        sql: "SELECT count(*) AS n FROM sqlite_master WHERE name = 'big'".into(),
        ..Default::default()
    };
    let batches = query_ipc(&mut c, &req.pool_id, &req.sql, vec![])
        .await
        .unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 0);
    // The client sees the end of a result before the server lets go of the stream that
    // holds the connection: wait for the connection's return, not a moment.
    let s = wait_status(&c, "lite", "the connection back in the pool", |s| {
        s.in_use == 0
    })
    .await;
    assert_eq!((s.size, s.in_use), (1, 0), "{s:?}");
}

/// SQLite statements run on the daemon's shared blocking threads; a pool that could
/// take them all (and so starve other pools) is refused when it is created.
#[tokio::test]
async fn a_pool_larger_than_the_thread_budget_is_refused() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "huge".into(),
            url: "sqlite://huge.db".into(),
            options: Some(pb::PoolOptions {
                max_connections: dbpool_backends::sqlite::ThreadBudget::default().limit() + 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("blocking pool"), "{e:?}");
}
