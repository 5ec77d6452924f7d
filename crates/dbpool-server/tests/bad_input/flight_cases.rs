//! The Flight part of the bad-input table: DoPut bodies that end early, tickets that
//! are no ticket, Flight SQL parameters that do not fit.
use super::cases::{case, Case, Ctx};
use super::raw::bytes_field;
use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampSecondArray};
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandPreparedStatementQuery, ProstMessageExt,
};
use arrow_flight::{Action, FlightData, FlightDescriptor, Ticket};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

fn flight(c: &Ctx) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(c.ch.clone())
}

/// The FlightData of a bulk insert of two rows into `t` on `pg`: descriptor + schema,
/// then one record batch.
async fn bulk_insert_messages() -> Vec<FlightData> {
    let cmd = dbpool_proto::v1::BulkInsertCommand {
        pool_id: "pg".into(),
        table: "t".into(),
        mode: 0,
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: cmd.encode_to_vec(),
    };
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "name",
            Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
        ),
    ])
    .unwrap();
    FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(any.encode_to_vec())))
        .build(futures::stream::iter([Ok(batch)]))
        .try_collect()
        .await
        .unwrap()
}

/// DoPut of these messages; the status of the call or of its result stream.
async fn do_put(c: &Ctx, messages: Vec<FlightData>, pool: Option<&str>) -> Result<(), Status> {
    let mut req = Request::new(futures::stream::iter(messages));
    if let Some(p) = pool {
        req.metadata_mut()
            .insert("x-dbpool-pool", p.parse().unwrap());
    }
    let mut results = flight(c).do_put(req).await?.into_inner();
    while results.message().await?.is_some() {}
    Ok(())
}

async fn do_get(c: &Ctx, ticket: Vec<u8>) -> Result<(), Status> {
    let mut s = flight(c).do_get(Ticket::new(ticket)).await?.into_inner();
    while s.message().await?.is_some() {}
    Ok(())
}

/// A Flight SQL prepared statement on `pg` bound to `params` (DoPut), then closed.
async fn bind_prepared(c: &Ctx, sql: &str, params: RecordBatch) -> Result<(), Status> {
    let body = ActionCreatePreparedStatementRequest {
        query: sql.into(),
        transaction_id: None,
    }
    .as_any()
    .encode_to_vec();
    let mut req = Request::new(Action::new("CreatePreparedStatement", body));
    req.metadata_mut()
        .insert("x-dbpool-pool", "pg".parse().unwrap());
    let mut results = flight(c).do_action(req).await?.into_inner();
    let first = results
        .message()
        .await?
        .ok_or_else(|| Status::internal("CreatePreparedStatement returned nothing"))?;
    let any = Any::decode(first.body).map_err(|e| Status::internal(e.to_string()))?;
    let handle = any
        .unpack::<ActionCreatePreparedStatementResult>()
        .ok()
        .flatten()
        .ok_or_else(|| Status::internal("not an ActionCreatePreparedStatementResult"))?
        .prepared_statement_handle;
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    let messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(
            cmd.as_any().encode_to_vec(),
        )))
        .build(futures::stream::iter([Ok(params)]))
        .try_collect()
        .await
        .unwrap();
    let bound = do_put(c, messages, Some("pg")).await;
    let close = arrow_flight::sql::ActionClosePreparedStatementRequest {
        prepared_statement_handle: handle,
    };
    let mut req = Request::new(Action::new(
        "ClosePreparedStatement",
        close.as_any().encode_to_vec(),
    ));
    req.metadata_mut()
        .insert("x-dbpool-pool", "pg".parse().unwrap());
    if let Ok(s) = flight(c).do_action(req).await {
        let _ = s.into_inner().collect::<Vec<_>>().await;
    }
    bound
}

/// The Flight cases.
pub fn all() -> Vec<Case> {
    vec![
        case!(
            "DoPut bulk insert: a valid schema, then a truncated body",
            [InvalidArgument],
            |c| {
                let mut m = bulk_insert_messages().await;
                let body = m[1].data_body.clone();
                m[1].data_body = body.slice(..body.len() / 2);
                do_put(&c, m, None).await
            }
        ),
        case!(
            "DoPut bulk insert: a valid schema, then an empty body",
            [InvalidArgument],
            |c| {
                let mut m = bulk_insert_messages().await;
                m[1].data_body = Default::default();
                do_put(&c, m, None).await
            }
        ),
        case!(
            "DoPut bulk insert: a valid schema, then a header that is no IPC message",
            [InvalidArgument],
            |c| {
                let mut m = bulk_insert_messages().await;
                m[1].data_header = vec![0xff; 16].into();
                do_put(&c, m, None).await
            }
        ),
        case!(
            "DoGet with a ticket that is no ticket",
            [InvalidArgument],
            |c| { do_get(&c, vec![0xff, 0x00, 0x13, 0x37]).await }
        ),
        case!(
            "DoGet with a QueryTicket whose sql is invalid UTF-8",
            [InvalidArgument],
            |c| {
                let ticket = [bytes_field(1, b"pg"), bytes_field(2, b"SELECT '\xc3\x28'")].concat();
                do_get(&c, ticket).await
            }
        ),
        case!(
            "fuzz (params): Flight SQL parameter Timestamp(Second, i64::MAX)",
            [InvalidArgument],
            |c| {
                let at = TimestampSecondArray::from(vec![i64::MAX]);
                let params = RecordBatch::try_from_iter([("p", Arc::new(at) as ArrayRef)]).unwrap();
                bind_prepared(&c, "SELECT $1::timestamptz", params).await
            }
        ),
    ]
}
