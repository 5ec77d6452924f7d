//! Arrow Flight on the shared port: our QueryTicket (GetFlightInfo / GetSchema / DoGet),
//! bulk insert (DoPut) and Flight SQL, dispatched by the command each call carries.
mod bulk;
pub(crate) mod commands;
mod encode;
mod handshake;
pub(crate) mod ipc_in;
pub(crate) mod params;
pub(crate) mod prepared;
mod sql;
mod sql_meta;
mod sql_support;
mod state;
mod views;

use crate::calls::Calls;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use commands::Command;
use dbpool_core::Error;
pub(crate) use encode::flight_stream;
use futures::stream::BoxStream;
use futures::StreamExt;
pub use state::FlightState;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// The Flight service: our commands here, Flight SQL in `sql`.
pub struct FlightImpl {
    calls: Calls,
    sql: Arc<sql::SqlService>,
}

impl FlightImpl {
    /// A Flight service over these calls, bounded by `[server.limits]`, keeping its
    /// per-server state in `state`; `tenants` log in through the handshake.
    pub fn new(
        calls: Calls,
        limits: &dbpool_config::Limits,
        state: Arc<FlightState>,
        tenants: Option<Arc<crate::auth::Tenants>>,
    ) -> Self {
        let mut sql = sql::SqlService::new(calls.clone(), limits, state);
        sql.tenants = tenants;
        FlightImpl {
            sql: Arc::new(sql),
            calls,
        }
    }
}

type Out<T> = BoxStream<'static, Result<T, Status>>;

fn descriptor_cmd(d: &FlightDescriptor) -> Result<Command, Error> {
    if d.r#type != arrow_flight::flight_descriptor::DescriptorType::Cmd as i32 {
        return Err(Error::invalid(
            "descriptor",
            "only CMD descriptors are served",
        ));
    }
    commands::classify(&d.cmd, "descriptor.cmd")
}

impl FlightImpl {
    /// The schema of the query a descriptor names, or None for a Flight SQL command.
    async fn query_schema(
        &self,
        d: &FlightDescriptor,
    ) -> Result<Option<arrow::datatypes::SchemaRef>, Status> {
        match descriptor_cmd(d)? {
            Command::FlightSql => Ok(None),
            Command::Query(t, params) => self
                .calls
                .schema(&t.pool_id, &t.transaction_id, &t.sql, params)
                .await
                .map(|s| {
                    Some(if t.string_view {
                        views::view_schema(&s)
                    } else {
                        s
                    })
                })
                .map_err(Status::from),
        }
    }
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

    async fn handshake(
        &self,
        req: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&*self.sql, req).await
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
        let Some(schema) = self.query_schema(req.get_ref()).await? else {
            return FlightService::get_flight_info(&*self.sql, req).await;
        };
        let d = req.into_inner();
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(d.cmd.clone()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(Error::from)?
            .with_endpoint(endpoint)
            .with_descriptor(d)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "PollFlightInfo is not supported by dbpool",
        ))
    }

    async fn get_schema(
        &self,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let Some(schema) = self.query_schema(req.get_ref()).await? else {
            return FlightService::get_schema(&*self.sql, req).await;
        };
        let result = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(Error::from)?;
        Ok(Response::new(result))
    }

    async fn do_get(&self, req: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let (t, params) = match commands::classify(&req.get_ref().ticket, "ticket")? {
            Command::FlightSql => return FlightService::do_get(&*self.sql, req).await,
            Command::Query(t, p) => (t, p),
        };
        let mut q = self
            .calls
            .query(&t.pool_id, &t.transaction_id, &t.sql, params, t.batch_size)
            .await?;
        if t.string_view {
            q = views::string_views(q);
        }
        Ok(Response::new(flight_stream(q, &self.calls.schemas)))
    }

    /// Bulk insert (an Any-wrapped BulkInsertCommand) and Flight SQL updates and ingest.
    async fn do_put(
        &self,
        req: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&*self.sql, req).await
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "DoExchange is not supported by dbpool",
        ))
    }

    async fn do_action(
        &self,
        req: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        commands::check_action(req.get_ref())?;
        FlightService::do_action(&*self.sql, req).await
    }

    async fn list_actions(
        &self,
        req: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&*self.sql, req).await
    }
}
