//! Flight SQL prepared statements cannot be hoarded: a cap per client connection (another
//! connection can still prepare), idle expiry, freed when the connection closes, and a
//! handle works only on the connection that created it.
mod common;

use arrow_flight::error::FlightError;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandPreparedStatementQuery, ProstMessageExt,
};
use arrow_flight::{Action, FlightClient, FlightDescriptor, FlightInfo};
use bytes::Bytes;
use common::*;
use dbpool_server::fuzzing::open_prepared_statements;
use futures::TryStreamExt;
use prost::Message;
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
