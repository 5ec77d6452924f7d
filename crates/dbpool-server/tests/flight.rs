//! Arrow Flight (GetFlightInfo, GetSchema, DoGet) against real PostgreSQL.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use arrow_flight::{FlightDescriptor, Ticket};
use common::*;
use dbpool_proto::v1::QueryTicket;
use dbpool_testkit::PgDb;
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;

fn ticket(pool: &str, sql: &str, batch_size: u32) -> Vec<u8> {
    QueryTicket {
        pool_id: pool.into(),
        sql: sql.into(),
        params: vec![],
        batch_size,
        ..Default::default()
    }
    .encode_to_vec()
}

#[tokio::test]
async fn flight_info_schema_and_many_batches_in_order() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut f = server.flight().await;
    let sql =
        "SELECT g::int8 AS n, repeat('x', 50) AS pad FROM generate_series(1, 300000) g ORDER BY g";
    let cmd = ticket("pg", sql, 10_000);
    let info = f
        .get_flight_info(FlightDescriptor::new_cmd(cmd.clone()))
        .await
        .unwrap();
    let schema = info.clone().try_decode_schema().unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    let s2 = f
        .get_schema(FlightDescriptor::new_cmd(cmd.clone()))
        .await
        .unwrap();
    assert_eq!(s2, schema);
    let t = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = f.do_get(t).await.unwrap().try_collect().await.unwrap();
    assert!(batches.len() >= 30, "{} batches", batches.len());
    let mut next = 1i64;
    for b in &batches {
        for v in b.column(0).as_primitive::<Int64Type>().values() {
            assert_eq!(*v, next);
            next += 1;
        }
    }
    assert_eq!(next, 300_001);
}

#[tokio::test]
async fn flight_errors_carry_codes() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut f = server.flight().await;
    let e = f
        .do_get(Ticket::new(ticket("nope", "SELECT 1", 0)))
        .await
        .err()
        .unwrap();
    let arrow_flight::error::FlightError::Tonic(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code(), Code::NotFound);
    let e = f
        .do_get(Ticket::new(b"garbage".to_vec()))
        .await
        .err()
        .unwrap();
    let arrow_flight::error::FlightError::Tonic(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("QueryTicket"));
    let e = f
        .get_flight_info(FlightDescriptor::new_cmd(ticket("pg", "SELEC 1", 0)))
        .await
        .unwrap_err();
    let arrow_flight::error::FlightError::Tonic(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("42601"));
    // An error after rows were sent ends the stream with the database's error.
    let sql = "SELECT 1 / (5000 - g) AS x FROM generate_series(1, 10000) g";
    let stream = f.do_get(Ticket::new(ticket("pg", sql, 100))).await.unwrap();
    let e = stream.try_collect::<Vec<_>>().await.unwrap_err();
    let arrow_flight::error::FlightError::Tonic(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("22012"), "{}", s.message());
}

#[tokio::test]
async fn string_view_tickets_get_text_as_views() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut f = server.flight().await;
    let cmd = QueryTicket {
        pool_id: "pg".into(),
        sql: "SELECT g::int8 AS n, 'row ' || g AS label, NULLIF(g % 3, 0)::text AS maybe, \
              ARRAY['a', 'b'] AS tags FROM generate_series(1, 5) g ORDER BY g"
            .into(),
        string_view: true,
        ..Default::default()
    }
    .encode_to_vec();
    let info = f
        .get_flight_info(FlightDescriptor::new_cmd(cmd.clone()))
        .await
        .unwrap();
    let schema = info.try_decode_schema().unwrap();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types[..3],
        [DataType::Int64, DataType::Utf8View, DataType::Utf8View]
    );
    // Only top-level text becomes views; lists keep their Utf8 items.
    assert!(matches!(&types[3], DataType::List(item) if item.data_type() == &DataType::Utf8));

    let batches: Vec<_> = f
        .do_get(Ticket::new(cmd))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        batches[0].schema().fields()[1].data_type(),
        &DataType::Utf8View
    );
    let labels: Vec<_> = batches
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_string_view()
                .iter()
                .map(|s| s.unwrap().to_owned())
        })
        .collect();
    assert_eq!(labels, ["row 1", "row 2", "row 3", "row 4", "row 5"]);
    let maybe: Vec<_> = batches
        .iter()
        .flat_map(|b| {
            b.column(2)
                .as_string_view()
                .iter()
                .map(|s| s.map(str::to_owned))
        })
        .collect();
    let expect = [Some("1"), Some("2"), None, Some("1"), Some("2")];
    assert_eq!(maybe, expect.map(|s| s.map(str::to_owned)));
}
