//! A stock Flight SQL client's calls, made with arrow-flight's `FlightClient`: statements,
//! prepared statements (create, bind, run, close) and their results.
#![allow(dead_code)]
use arrow::array::{ArrayRef, Int64Array};
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, DoPutUpdateResult, ProstMessageExt,
};
use arrow_flight::{Action, FlightClient, FlightData, FlightDescriptor, FlightInfo};
use bytes::Bytes;
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::Status;

/// The gRPC status of a failed call.
pub fn status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => panic!("not a status: {other:?}"),
    }
}

/// A Flight SQL client on `pool` (the `x-dbpool-pool` header).
pub async fn client_on(server: &super::TestServer, pool: &str) -> FlightClient {
    let mut f = server.flight().await;
    f.add_header("x-dbpool-pool", pool).unwrap();
    f
}

/// A DoAction's results.
pub async fn action(f: &mut FlightClient, action: Action) -> Result<Vec<Bytes>, Status> {
    f.do_action(action)
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)
}

/// CreatePreparedStatement; the statement's handle and the schema it described.
pub async fn prepare_described(
    f: &mut FlightClient,
    sql: &str,
) -> Result<ActionCreatePreparedStatementResult, Status> {
    let req = ActionCreatePreparedStatementRequest {
        query: sql.into(),
        transaction_id: None,
    };
    let out = action(
        f,
        Action::new("CreatePreparedStatement", req.as_any().encode_to_vec()),
    )
    .await?;
    let any = Any::decode(out[0].clone()).unwrap();
    Ok(any.unpack().unwrap().unwrap())
}

/// CreatePreparedStatement; the statement's handle.
pub async fn prepare(f: &mut FlightClient, sql: &str) -> Result<Bytes, Status> {
    Ok(prepare_described(f, sql).await?.prepared_statement_handle)
}

/// GetFlightInfo of a prepared statement.
pub async fn info(f: &mut FlightClient, handle: &Bytes) -> Result<FlightInfo, Status> {
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    f.get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .map_err(status)
}

/// GetFlightInfo of a statement (CommandStatementQuery).
pub async fn statement_info(f: &mut FlightClient, sql: &str) -> Result<FlightInfo, Status> {
    let cmd = CommandStatementQuery {
        query: sql.into(),
        transaction_id: None,
    };
    f.get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .map_err(status)
}

/// DoGet of a FlightInfo's (one) endpoint: the whole result.
pub async fn fetch(f: &mut FlightClient, info: &FlightInfo) -> Result<Vec<RecordBatch>, Status> {
    assert_eq!(info.endpoint.len(), 1, "{info:?}");
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    f.do_get(ticket)
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)
}

/// ClosePreparedStatement.
pub async fn close(f: &mut FlightClient, handle: &Bytes) -> Result<(), Status> {
    let req = ActionClosePreparedStatementRequest {
        prepared_statement_handle: handle.clone(),
    };
    let action_ = Action::new("ClosePreparedStatement", req.as_any().encode_to_vec());
    action(f, action_).await.map(drop)
}

/// One Int64 parameter column `v` holding `values`, as DoPut messages.
pub fn param_rows(values: std::ops::Range<i64>) -> Vec<FlightData> {
    let b = RecordBatch::try_from_iter(vec![(
        "v",
        Arc::new(Int64Array::from_iter_values(values)) as ArrayRef,
    )])
    .unwrap();
    arrow_flight::utils::batches_to_flight_data(&b.schema(), &[b]).unwrap()
}

/// DoPut of `msgs` under the command `cmd`; the first PutResult's metadata.
pub async fn put(f: &mut FlightClient, cmd: Any, msgs: Vec<FlightData>) -> Result<Bytes, Status> {
    let mut msgs = msgs;
    msgs[0].flight_descriptor = Some(FlightDescriptor::new_cmd(cmd.encode_to_vec()));
    let out: Vec<arrow_flight::PutResult> = f
        .do_put(futures::stream::iter(msgs.into_iter().map(Ok)))
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)?;
    Ok(out[0].app_metadata.clone())
}

/// Binds parameter rows to a prepared query (DoPut of CommandPreparedStatementQuery).
pub async fn bind(
    f: &mut FlightClient,
    handle: &Bytes,
    msgs: Vec<FlightData>,
) -> Result<(), Status> {
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    put(f, cmd.as_any(), msgs).await.map(drop)
}

/// DoPut of parameter rows to a prepared update; the rows it changed, or the status.
pub async fn put_params(
    f: &mut FlightClient,
    handle: &Bytes,
    msgs: Vec<FlightData>,
) -> Result<i64, Status> {
    let cmd = CommandPreparedStatementUpdate {
        prepared_statement_handle: handle.clone(),
    };
    let meta = put(f, cmd.as_any(), msgs).await?;
    Ok(DoPutUpdateResult::decode(meta).unwrap().record_count)
}
