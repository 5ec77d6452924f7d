//! SQL Server end to end through the server, against pysqlbridge over TLS
//! (scripts/mssql-servers.sh): Flight GetFlightInfo/DoGet and gRPC Query return Arrow;
//! SQL Server's error number reaches the client, a bad login is UNAUTHENTICATED; a call
//! abandoned at its deadline closes its connection instead of handing it on.
//! Needs DBPOOL_TEST_BRIDGE_URL; fails when it is unset.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float64Type, Int32Type};
use arrow_flight::FlightDescriptor;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::QueryTicket;
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

fn bridge() -> String {
    std::env::var("DBPOOL_TEST_BRIDGE_URL").unwrap_or_else(|_| {
        panic!(
            "DBPOOL_TEST_BRIDGE_URL is not set: start the test servers with \
             `eval \"$(scripts/mssql-servers.sh start)\"`"
        )
    })
}

fn ticket(sql: &str, batch_size: u32) -> Vec<u8> {
    QueryTicket {
        pool_id: "ms".into(),
        sql: sql.into(),
        batch_size,
        ..Default::default()
    }
    .encode_to_vec()
}

#[tokio::test]
async fn flight_and_grpc_queries() {
    let server = TestServer::start(&[("ms", &bridge())]).await;
    let mut f = server.flight().await;
    let cmd = ticket("SELECT id, score FROM people ORDER BY id", 2);
    let info = f
        .get_flight_info(FlightDescriptor::new_cmd(cmd))
        .await
        .unwrap();
    let schema = info.clone().try_decode_schema().unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int32);
    assert_eq!(schema.field(1).data_type(), &DataType::Float64);
    let t = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = f.do_get(t).await.unwrap().try_collect().await.unwrap();
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(batches[1].column(0).as_primitive::<Int32Type>().value(0), 3);
    assert_eq!(
        batches[0].column(1).as_primitive::<Float64Type>().value(1),
        87.25
    );

    let mut c = server.pools().await;
    let rows = query_ipc(
        &mut c,
        "ms",
        "SELECT name FROM people WHERE id = @P1",
        vec![p_int(1)],
    )
    .await
    .unwrap();
    assert_eq!(
        rows[0].column(0).as_string::<i32>().value(0),
        "Ada Lovelace"
    );
}

#[tokio::test]
async fn errors_keep_the_sql_server_number() {
    let server = TestServer::start(&[("ms", &bridge())]).await;
    let mut c = server.pools().await;
    let s = query_ipc(&mut c, "ms", "SELECT * FROM no_such_table", vec![])
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().contains("no_such_table") && s.message().contains("208"),
        "{s:?}"
    );
    let info = s.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        info.metadata.get("sqlstate").map(String::as_str),
        Some("208")
    );

    let bad = bridge().replacen("reader-Pw1", "wrong", 1);
    let server = TestServer::start(&[("ms", &bad)]).await;
    let mut c = server.pools().await;
    let s = query_ipc(&mut c, "ms", "SELECT 1 AS one", vec![])
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert!(s.message().contains("18456"), "{s:?}");
}

async fn status(c: &mut pb::pool_service_client::PoolServiceClient<Channel>) -> pb::PoolStatus {
    c.get_pool_status(pb::GetPoolStatusRequest {
        pool_id: "ms".into(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// A call with a deadline of `ms` milliseconds.
fn within<T>(msg: T, ms: u64) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(std::time::Duration::from_millis(ms));
    req
}

/// tiberius 0.12 cannot send a TDS attention, so a call whose gRPC deadline passes
/// mid-statement leaves its connection mid-answer: it is closed (which stops the batch
/// on the server) and replaced, never handed to the next caller. The pool has one
/// connection, so every replacement shows in `connections_created_total`.
#[tokio::test]
async fn a_deadline_closes_the_connection() {
    // No health checks: one that times out on the busy bridge would replace the
    // connection too, and spoil the count.
    let server =
        TestServer::start_with(&[], |c| c.server.health_check_interval_ms = 3_600_000).await;
    let mut c = server.pools().await;
    c.create_pool(pb::CreatePoolRequest {
        pool_id: "ms".into(),
        url: bridge(),
        options: Some(pb::PoolOptions {
            max_connections: 1,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let count = "SELECT COUNT(*) AS n FROM people";
    let n = |b: &[arrow::array::RecordBatch]| b[0].column(0).as_primitive::<Int32Type>().value(0);
    assert_eq!(n(&query_ipc(&mut c, "ms", count, vec![]).await.unwrap()), 3);
    let created = status(&mut c).await.connections_created_total;
    // Seconds of work for the bridge (which, unlike SQL Server, finishes it after the
    // disconnect); the calls give up after one.
    let slow = "DECLARE @i int = 0\nWHILE @i < 1000000 SET @i = @i + 1\nSELECT @i AS i";

    let e = c
        .execute(within(
            pb::ExecuteRequest {
                pool_id: "ms".into(),
                sql: slow.into(),
                ..Default::default()
            },
            1_000,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
    assert_eq!(n(&query_ipc(&mut c, "ms", count, vec![]).await.unwrap()), 3);
    assert_eq!(status(&mut c).await.connections_created_total, created + 1);

    let q = pb::QueryRequest {
        pool_id: "ms".into(),
        sql: slow.into(),
        ..Default::default()
    };
    match c.query(within(q, 1_000)).await {
        Err(e) => assert!(
            matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{e:?}"
        ),
        Ok(r) => {
            let e = r.into_inner().message().await.unwrap_err();
            assert!(
                matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
                "{e:?}"
            );
        }
    }
    assert_eq!(n(&query_ipc(&mut c, "ms", count, vec![]).await.unwrap()), 3);
    let s = status(&mut c).await;
    assert_eq!(
        (s.connections_created_total, s.size),
        (created + 2, 1),
        "{s:?}"
    );
}
