//! Arrow Flight: GetFlightInfo / GetSchema / DoGet for a query named by a
//! `dbpool.v1.QueryTicket` (descriptor `cmd` or ticket bytes).
use crate::calls::Calls;
use crate::status::to_status;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use dbpool_core::{Error, Param};
use dbpool_proto::v1::{BulkInsertCommand, BulkInsertResult, InsertMode, QueryTicket};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// The Flight service.
pub struct FlightImpl {
    calls: Calls,
}

impl FlightImpl {
    /// A Flight service over these calls.
    pub fn new(calls: Calls) -> Self {
        FlightImpl { calls }
    }
}

type Out<T> = BoxStream<'static, Result<T, Status>>;

/// Decodes a QueryTicket and its parameters.
fn decode_ticket(bytes: &[u8], what: &str) -> Result<(QueryTicket, Vec<Param>), Error> {
    let t = QueryTicket::decode(bytes)
        .map_err(|e| Error::invalid(what, format!("not a dbpool.v1.QueryTicket: {e}")))?;
    let params = crate::convert::params(&t.params, "params")?;
    Ok((t, params))
}

fn descriptor_ticket(d: &FlightDescriptor) -> Result<(QueryTicket, Vec<Param>), Error> {
    if d.r#type != arrow_flight::flight_descriptor::DescriptorType::Cmd as i32 {
        return Err(Error::invalid(
            "descriptor",
            "only CMD descriptors holding a QueryTicket are served",
        ));
    }
    decode_ticket(&d.cmd, "descriptor.cmd")
}

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not supported by dbpool"
    )))
}

#[tonic::async_trait]
impl FlightService for FlightImpl {
    type HandshakeStream = Out<HandshakeResponse>;
    type ListFlightsStream = Out<FlightInfo>;
    type DoGetStream = Out<FlightData>;
    type DoPutStream = Out<PutResult>;
    type DoExchangeStream = Out<FlightData>;
    type DoActionStream = Out<arrow_flight::Result>;
    type ListActionsStream = Out<ActionType>;

    /// No authentication yet: the handshake echoes the payload (the hook for auth).
    async fn handshake(
        &self,
        req: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        let mut input = req.into_inner();
        let first = input.message().await?.unwrap_or_default();
        let reply = HandshakeResponse {
            protocol_version: first.protocol_version,
            payload: first.payload,
        };
        Ok(Response::new(
            futures::stream::once(async { Ok(reply) }).boxed(),
        ))
    }

    async fn list_flights(
        &self,
        _: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Ok(Response::new(futures::stream::empty().boxed()))
    }

    async fn get_flight_info(
        &self,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let d = req.into_inner();
        let (t, params) = descriptor_ticket(&d).map_err(|e| to_status(&e))?;
        let schema = self
            .calls
            .schema(&t.pool_id, &t.transaction_id, &t.sql, params)
            .await
            .map_err(|e| to_status(&e))?;
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(d.cmd.clone()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| to_status(&e.into()))?
            .with_endpoint(endpoint)
            .with_descriptor(d)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unimplemented("PollFlightInfo")
    }

    async fn get_schema(
        &self,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let (t, params) = descriptor_ticket(req.get_ref()).map_err(|e| to_status(&e))?;
        let schema = self
            .calls
            .schema(&t.pool_id, &t.transaction_id, &t.sql, params)
            .await
            .map_err(|e| to_status(&e))?;
        let result = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: arrow::error::ArrowError| to_status(&e.into()))?;
        Ok(Response::new(result))
    }

    async fn do_get(&self, req: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let (t, params) =
            decode_ticket(&req.get_ref().ticket, "ticket").map_err(|e| to_status(&e))?;
        let q = self
            .calls
            .query(&t.pool_id, &t.transaction_id, &t.sql, params, t.batch_size)
            .await
            .map_err(|e| to_status(&e))?;
        let batches = q
            .batches
            .map_err(|e| FlightError::Tonic(Box::new(to_status(&e))));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(q.schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(stream.boxed()))
    }

    /// Bulk insert: the descriptor `cmd` is a BulkInsertCommand, the stream the rows.
    async fn do_put(
        &self,
        req: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let mut input = req.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| to_status(&Error::invalid("stream", "DoPut sent no data")))?;
        let cmd = first.flight_descriptor.as_ref().ok_or_else(|| {
            to_status(&Error::invalid(
                "descriptor",
                "the first message must carry a BulkInsertCommand descriptor",
            ))
        })?;
        let cmd = BulkInsertCommand::decode(cmd.cmd.as_ref()).map_err(|e| {
            to_status(&Error::invalid(
                "descriptor.cmd",
                format!("not a dbpool.v1.BulkInsertCommand: {e}"),
            ))
        })?;
        let schema = Arc::new(arrow::datatypes::Schema::try_from(&first).map_err(|e| {
            to_status(&Error::invalid(
                "stream",
                format!("the first message must carry the Arrow schema: {e}"),
            ))
        })?);
        let mode = match cmd.mode() {
            InsertMode::AppendUnspecified => dbpool_core::InsertMode::Append,
            InsertMode::Create => dbpool_core::InsertMode::Create,
            InsertMode::Replace => dbpool_core::InsertMode::Replace,
        };
        let data = futures::stream::once(async { Ok(first) })
            .chain(input)
            .map_err(|s| FlightError::Tonic(Box::new(s)));
        let batches = FlightRecordBatchStream::new_from_flight_data(data)
            .map_err(|e| match e {
                FlightError::Tonic(s) => Error::invalid("stream", s.message().to_string()),
                other => Error::invalid("stream", other.to_string()),
            })
            .boxed();
        let target = dbpool_core::BulkInsert {
            table: cmd.table.clone(),
            mode,
        };
        let rows = self
            .calls
            .bulk_insert(&cmd.pool_id, target, schema, batches)
            .await
            .map_err(|e| to_status(&e))?;
        let result = PutResult {
            app_metadata: BulkInsertResult {
                rows_inserted: rows,
            }
            .encode_to_vec()
            .into(),
        };
        Ok(Response::new(
            futures::stream::once(async { Ok(result) }).boxed(),
        ))
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented("DoExchange")
    }

    async fn do_action(
        &self,
        req: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented(&format!("action `{}`", req.get_ref().r#type))
    }

    async fn list_actions(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(futures::stream::empty().boxed()))
    }
}
