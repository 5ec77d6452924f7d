//! Flight SQL prepared statements cannot be hoarded: a cap per client connection (another
//! connection can still prepare), idle expiry, freed when the connection closes, and a
//! handle works only on the connection that created it.
mod common;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, DoPutUpdateResult, ProstMessageExt,
};
use arrow_flight::{Action, FlightClient, FlightDescriptor, FlightInfo};
use bytes::Bytes;
use common::*;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_server::fuzzing::open_prepared_statements;
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Code, Status};

fn status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => panic!("not a status: {other:?}"),
    }
}

async fn prepare(f: &mut FlightClient, sql: &str) -> Result<Bytes, Status> {
    let req = ActionCreatePreparedStatementRequest {
        query: sql.into(),
        transaction_id: None,
    };
    let action = Action::new("CreatePreparedStatement", req.as_any().encode_to_vec());
    let out: Vec<Bytes> = f
        .do_action(action)
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)?;
    let any = Any::decode(out[0].clone()).unwrap();
    let r: ActionCreatePreparedStatementResult = any.unpack().unwrap().unwrap();
    Ok(r.prepared_statement_handle)
}

async fn info(f: &mut FlightClient, handle: &Bytes) -> Result<FlightInfo, Status> {
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    f.get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .map_err(status)
}

async fn close(f: &mut FlightClient, handle: &Bytes) -> Result<(), Status> {
    let req = ActionClosePreparedStatementRequest {
        prepared_statement_handle: handle.clone(),
    };
    let action = Action::new("ClosePreparedStatement", req.as_any().encode_to_vec());
    let _: Vec<Bytes> = f
        .do_action(action)
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)?;
    Ok(())
}

/// Polls the server's open-statement count until it is `want` (10 s at most).
async fn wait_for_open(server: &TestServer, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = open_prepared_statements(server.addr).expect("the server is registered");
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} statements open, waited for {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cap_is_per_connection_and_handles_belong_to_their_connection() {
    let server = TestServer::start_with(&[], |c| {
        c.server.limits.max_prepared_statements_per_connection = 3
    })
    .await;
    let (mut a, mut b) = (server.flight().await, server.flight().await);
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(prepare(&mut a, "SELECT 1 AS one").await.unwrap());
    }
    let s = prepare(&mut a, "SELECT 1 AS one").await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(
        s.message()
            .contains("max_prepared_statements_per_connection"),
        "{s:?}"
    );
    // Another client is not refused because of a's statements.
    let theirs = prepare(&mut b, "SELECT 2 AS two").await.unwrap();
    assert_eq!(open_prepared_statements(server.addr), Some(4));
    // Handles are random and distinct, and usable only on their own connection.
    assert_eq!(mine[0].len(), 35, "ps- and 32 hex digits: {:?}", mine[0]);
    assert!(mine.iter().all(|h| h != &theirs));
    let s = info(&mut b, &mine[0]).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("no such prepared statement"), "{s:?}");
    assert_eq!(
        close(&mut b, &mine[0]).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let i = info(&mut a, &mine[0]).await.unwrap();
    assert_eq!(i.try_decode_schema().unwrap().field(0).name(), "one");
    // Closing one makes room again.
    close(&mut a, &mine[0]).await.unwrap();
    prepare(&mut a, "SELECT 3 AS three").await.unwrap();
    assert_eq!(
        info(&mut a, &mine[0]).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(open_prepared_statements(server.addr), Some(4));
}

#[tokio::test]
async fn idle_statements_expire() {
    let server = TestServer::start_with(&[], |c| {
        c.server.limits.prepared_statement_idle_timeout_ms = 1_000
    })
    .await;
    let mut f = server.flight().await;
    let h = prepare(&mut f, "SELECT 1 AS one").await.unwrap();
    assert_eq!(open_prepared_statements(server.addr), Some(1));
    // The server's reaper closes it once unused for the timeout.
    wait_for_open(&server, 0).await;
    let s = info(&mut f, &h).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().contains("unused for more than 1000 ms"),
        "{s:?}"
    );
    // The connection itself is fine.
    prepare(&mut f, "SELECT 1 AS one").await.unwrap();
}

#[tokio::test]
async fn closing_the_connection_frees_its_statements() {
    let server = TestServer::start(&[]).await;
    let mut a = server.flight().await;
    let mut b = server.flight().await;
    for _ in 0..5 {
        prepare(&mut a, "SELECT 1 AS one").await.unwrap();
    }
    let kept = prepare(&mut b, "SELECT 2 AS two").await.unwrap();
    assert_eq!(open_prepared_statements(server.addr), Some(6));
    drop(a);
    wait_for_open(&server, 1).await;
    info(&mut b, &kept).await.unwrap();
}

/// DoPut of parameter rows to a prepared update; the rows it changed, or the status.
async fn put_params(
    f: &mut FlightClient,
    handle: &Bytes,
    msgs: Vec<arrow_flight::FlightData>,
) -> Result<i64, Status> {
    let cmd = CommandPreparedStatementUpdate {
        prepared_statement_handle: handle.clone(),
    };
    let mut msgs = msgs;
    msgs[0].flight_descriptor = Some(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()));
    let out: Vec<arrow_flight::PutResult> = f
        .do_put(futures::stream::iter(msgs.into_iter().map(Ok)))
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)?;
    Ok(DoPutUpdateResult::decode(out[0].app_metadata.clone())
        .unwrap()
        .record_count)
}

fn param_rows(values: std::ops::Range<i64>) -> Vec<arrow_flight::FlightData> {
    let b = RecordBatch::try_from_iter(vec![(
        "v",
        Arc::new(Int64Array::from_iter_values(values)) as ArrayRef,
    )])
    .unwrap();
    arrow_flight::utils::batches_to_flight_data(&b.schema(), &[b]).unwrap()
}

#[tokio::test]
async fn bound_parameters_are_validated_and_bounded() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_batch_statements = 3).await;
    let mut pools = server.pools().await;
    let count = |mut pools: PoolServiceClient<tonic::transport::Channel>| async move {
        let b = query_ipc(&mut pools, "default", "SELECT count(*) FROM p", vec![])
            .await
            .unwrap();
        b[0].column(0).as_primitive::<Int64Type>().value(0)
    };
    pools
        .execute(dbpool_proto::v1::ExecuteRequest {
            pool_id: "default".into(),
            sql: "CREATE TABLE p (v INTEGER)".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut f = server.flight().await;
    let h = prepare(&mut f, "INSERT INTO p (v) VALUES (?)")
        .await
        .unwrap();
    // More rows than max_batch_statements: refused whole.
    let s = put_params(&mut f, &h, param_rows(0..4)).await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains("max_batch_statements"), "{s:?}");
    // A truncated parameter batch: INVALID_ARGUMENT naming the message.
    let mut msgs = param_rows(0..3);
    let body = msgs[1].data_body.clone();
    msgs[1].data_body = body.slice(..body.len() / 2);
    let s = put_params(&mut f, &h, msgs).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("flight_data[1]"), "{s:?}");
    assert_eq!(count(pools.clone()).await, 0, "nothing inserted");
    // Within the bound, every row runs.
    assert_eq!(put_params(&mut f, &h, param_rows(0..3)).await.unwrap(), 3);
    assert_eq!(count(pools).await, 3);
}

#[tokio::test]
async fn prepared_sql_is_bounded() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_sql_bytes = 64).await;
    let mut f = server.flight().await;
    let long = format!("SELECT '{}' AS x", "y".repeat(64));
    let s = prepare(&mut f, &long).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("max_sql_bytes"), "{s:?}");
    assert_eq!(open_prepared_statements(server.addr), Some(0));
    prepare(&mut f, "SELECT 1 AS one").await.unwrap();
}
