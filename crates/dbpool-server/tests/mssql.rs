//! SQL Server end to end through the server, against pysqlbridge over TLS
//! (scripts/mssql-servers.sh): Flight GetFlightInfo/DoGet and gRPC Query return Arrow;
//! SQL Server's error number reaches the client, a bad login is UNAUTHENTICATED.
//! Needs DBPOOL_TEST_BRIDGE_URL; fails when it is unset.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float64Type, Int32Type};
use arrow_flight::FlightDescriptor;
use common::*;
use dbpool_proto::v1::QueryTicket;
use futures::TryStreamExt;
use prost::Message;
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
