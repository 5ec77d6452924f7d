//! Flight SQL for stock clients (ADBC, JDBC): statements, prepared statements,
//! transactions and bulk ingest on the pool named by the `x-dbpool-pool` call header.
use super::ipc_in::IpcLimits;
use super::prepared::{client_key, Prepared};
use super::sql_meta::{built, meta_info, meta_reply, primary_keys_schema, table_types, Meta};
use super::sql_support::{one_row, schema_bytes, statement_info, statement_ticket, tx_id, utf8};
use super::state::FlightState;
use super::{flight_stream, Out};
use crate::calls::Calls;
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{DoPutError, FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::*;
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use dbpool_core::{Error, Result};
use dbpool_proto::v1::QueryTicket;
use prost::Message;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// The call header that picks the pool of a Flight SQL call.
pub const POOL_HEADER: &str = "x-dbpool-pool";

/// The Flight SQL service.
pub struct SqlService {
    pub(super) calls: Calls,
    /// The per-server state: prepared statements by client connection.
    pub(super) state: Arc<FlightState>,
    /// Bounds on the Arrow IPC a DoPut may send.
    pub(super) ipc: IpcLimits,
    /// Parameter rows one DoPut may bind (`server.limits.max_batch_statements`).
    pub(super) max_param_rows: usize,
    /// Bytes of parameter values one DoPut may bind (`server.limits.max_message_bytes`).
    pub(super) max_param_bytes: usize,
    /// Longest SQL a prepared statement may keep (`server.limits.max_sql_bytes`).
    pub(super) max_sql_bytes: usize,
    pub(super) info: SqlInfoData,
    /// Who may log in with the handshake; `None`: every caller is trusted.
    pub(super) tenants: Option<Arc<crate::auth::Tenants>>,
}

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    /// The login of ADBC and JDBC drivers: Basic credentials for a Bearer token.
    async fn do_handshake(
        &self,
        req: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Out<HandshakeResponse>>, Status> {
        super::handshake::handshake(self.tenants.as_deref(), req).await
    }

    async fn do_get_fallback(
        &self,
        _: Request<Ticket>,
        message: arrow_flight::sql::Any,
    ) -> Result<Response<Out<FlightData>>, Status> {
        Err(Status::invalid_argument(format!(
            "unknown ticket type `{}`",
            message.type_url
        )))
    }

    /// Touches no database: the statement runs on DoGet, once (docs/flight-sql.md).
    async fn get_flight_info_statement(
        &self,
        q: CommandStatementQuery,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let tx = tx_id(q.transaction_id.as_ref())?;
        let pool = self.target(req.metadata(), &tx)?;
        self.check_statement(&pool, &tx, &q.query)?;
        let t = QueryTicket {
            pool_id: pool,
            sql: q.query,
            transaction_id: tx,
            ..Default::default()
        };
        Ok(Response::new(statement_info(
            statement_ticket(&t),
            req.into_inner(),
        )))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        let t = QueryTicket::decode(ticket.statement_handle.as_ref()).map_err(|e| {
            Status::from(Error::invalid(
                "ticket",
                format!("not a dbpool statement ticket: {e}"),
            ))
        })?;
        let q = self
            .calls
            .query(&t.pool_id, &t.transaction_id, &t.sql, vec![], t.batch_size)
            .await?;
        Ok(Response::new(flight_stream(q, &self.calls.schemas)))
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let tx = tx_id(cmd.transaction_id.as_ref())?;
        let pool = self.target(req.metadata(), &tx)?;
        let n = self.calls.execute(&pool, &tx, &cmd.query, vec![]).await?;
        Ok(n as i64)
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let md = req.metadata().clone();
        self.ingest(cmd, &md, req).await.map_err(Status::from)
    }

    async fn do_action_create_prepared_statement(
        &self,
        q: ActionCreatePreparedStatementRequest,
        req: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        if q.query.len() > self.max_sql_bytes {
            // Held for as long as the statement lives: bounded before anything else.
            return Err(Status::from(Error::invalid(
                "query",
                format!(
                    "is {} bytes, more than server.limits.max_sql_bytes ({})",
                    q.query.len(),
                    self.max_sql_bytes
                ),
            )));
        }
        let tx = tx_id(q.transaction_id.as_ref())?;
        let pool = self.target(req.metadata(), &tx)?;
        let schema: SchemaRef = self.calls.schema(&pool, &tx, &q.query, vec![]).await?;
        let handle = self.state.prepared().open(
            client_key(),
            Prepared {
                pool_id: pool,
                tx_id: tx,
                sql: q.query,
                returns_rows: !schema.fields().is_empty(),
                params: vec![],
            },
        )?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes(&schema)?,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        q: ActionClosePreparedStatementRequest,
        _req: Request<Action>,
    ) -> Result<(), Status> {
        self.state
            .prepared()
            .close(client_key(), &q.prepared_statement_handle)
            .map_err(Status::from)
    }

    async fn do_put_prepared_statement_query(
        &self,
        q: CommandPreparedStatementQuery,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let (owner, prepared) = (client_key(), self.state.prepared());
        // The handle is checked first: no parameters are decoded for a stranger's handle.
        prepared.get(owner, &q.prepared_statement_handle)?;
        let rows = self.read_params(req).await?;
        prepared.bind(owner, &q.prepared_statement_handle, rows)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(q.prepared_statement_handle),
        })
    }

    /// Touches no database: the statement runs on DoGet, once (docs/flight-sql.md).
    async fn get_flight_info_prepared_statement(
        &self,
        q: CommandPreparedStatementQuery,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = self.prepared(&q.prepared_statement_handle)?;
        one_row(&p)?;
        let ticket = q.as_any().encode_to_vec();
        Ok(Response::new(statement_info(ticket, req.into_inner())))
    }

    async fn do_get_prepared_statement(
        &self,
        q: CommandPreparedStatementQuery,
        _req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        let p = self.prepared(&q.prepared_statement_handle)?;
        one_row(&p)?;
        let out = self.run_prepared(&p).await?;
        Ok(Response::new(flight_stream(out, &self.calls.schemas)))
    }

    async fn do_put_prepared_statement_update(
        &self,
        q: CommandPreparedStatementUpdate,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let p = self.prepared(&q.prepared_statement_handle)?;
        let rows = self.read_params(req).await?;
        self.run_update(&p, rows).await.map_err(Status::from)
    }

    async fn do_action_begin_transaction(
        &self,
        _: ActionBeginTransactionRequest,
        req: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        let pool = self.pool_of(req.metadata())?;
        // Owned by this client connection; idle timeout: the server's default (0).
        let id = self.calls.begin(&pool, Default::default(), 0).await?;
        Ok(ActionBeginTransactionResult {
            transaction_id: id.into_bytes().into(),
        })
    }

    async fn do_action_end_transaction(
        &self,
        q: ActionEndTransactionRequest,
        _: Request<Action>,
    ) -> Result<(), Status> {
        let id = utf8(&q.transaction_id, "transaction_id")?;
        let commit = match q.action() {
            EndTransaction::Commit => true,
            EndTransaction::Rollback => false,
            _ => {
                return Err(Status::from(Error::invalid(
                    "action",
                    "must be COMMIT or ROLLBACK",
                )))
            }
        };
        self.calls.end(&id, commit).await.map_err(Status::from)
    }

    /// A DoPut without a first message or without its descriptor is the client's error.
    async fn do_put_error_callback(
        &self,
        _: Request<PeekableFlightDataStream>,
        error: DoPutError,
    ) -> Result<Response<Out<arrow_flight::PutResult>>, Status> {
        let why = match error {
            DoPutError::MissingCommand => "is missing: a DoPut starts with a message",
            DoPutError::MissingFlightDescriptor => "has no descriptor naming the command",
        };
        Err(Status::from(Error::invalid("flight_data[0]", why)))
    }

    async fn do_put_fallback(
        &self,
        req: Request<PeekableFlightDataStream>,
        message: arrow_flight::sql::Any,
    ) -> Result<Response<Out<arrow_flight::PutResult>>, Status> {
        super::bulk::do_put(self, req, message).await
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}

    // Metadata: see sql_meta.rs. The command is its own ticket.
    async fn get_flight_info_sql_info(
        &self,
        q: CommandGetSqlInfo,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        meta_info(&q.clone().into_builder(&self.info).schema(), &q, req)
    }

    async fn do_get_sql_info(
        &self,
        q: CommandGetSqlInfo,
        _: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        meta_reply(built(q.into_builder(&self.info).build()))
    }

    async fn get_flight_info_catalogs(
        &self,
        q: CommandGetCatalogs,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        meta_info(&q.into_builder().schema(), &q, req)
    }

    async fn do_get_catalogs(
        &self,
        q: CommandGetCatalogs,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        meta_reply(self.meta(Meta::Catalogs(q), req.metadata()).await)
    }

    async fn get_flight_info_schemas(
        &self,
        q: CommandGetDbSchemas,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        meta_info(&q.clone().into_builder().schema(), &q, req)
    }

    async fn do_get_schemas(
        &self,
        q: CommandGetDbSchemas,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        meta_reply(self.meta(Meta::Schemas(q), req.metadata()).await)
    }

    async fn get_flight_info_tables(
        &self,
        q: CommandGetTables,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        meta_info(&q.clone().into_builder().schema(), &q, req)
    }

    async fn do_get_tables(
        &self,
        q: CommandGetTables,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        meta_reply(self.meta(Meta::Tables(q), req.metadata()).await)
    }

    async fn get_flight_info_table_types(
        &self,
        q: CommandGetTableTypes,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        meta_info(&q.into_builder().schema(), &q, req)
    }

    async fn do_get_table_types(
        &self,
        q: CommandGetTableTypes,
        _: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        meta_reply(table_types(q))
    }

    async fn get_flight_info_primary_keys(
        &self,
        q: CommandGetPrimaryKeys,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        meta_info(&primary_keys_schema(), &q, req)
    }

    async fn do_get_primary_keys(
        &self,
        q: CommandGetPrimaryKeys,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        meta_reply(self.meta(Meta::PrimaryKeys(q), req.metadata()).await)
    }
}
