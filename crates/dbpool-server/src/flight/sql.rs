//! Flight SQL for stock clients (ADBC, JDBC): statements, prepared statements,
//! transactions and bulk ingest on the pool named by the `x-dbpool-pool` call header.
use super::ipc_in::{decode_put, IpcLimits};
use super::params::rows as param_rows;
use super::prepared::{client_key, Prepared, PreparedRegistry};
use super::{flight_stream, Out};
use crate::calls::Calls;
use crate::status::to_status;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::*;
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use dbpool_core::{BulkInsert, Error, InsertMode, Param, QueryStream, Result, Statement};
use dbpool_proto::v1::QueryTicket;
use futures::StreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

/// The call header that picks the pool of a Flight SQL call.
pub const POOL_HEADER: &str = "x-dbpool-pool";

/// The Flight SQL service.
pub struct SqlService {
    pub(super) calls: Calls,
    pub(super) prepared: Arc<PreparedRegistry>,
    /// Bounds on the Arrow IPC a DoPut may send.
    pub(super) ipc: IpcLimits,
    /// Parameter rows one DoPut may bind (`server.limits.max_batch_statements`).
    max_param_rows: usize,
    /// Bytes of parameter values one DoPut may bind (`server.limits.max_message_bytes`).
    max_param_bytes: usize,
    /// Longest SQL a prepared statement may keep (`server.limits.max_sql_bytes`).
    max_sql_bytes: usize,
    info: SqlInfoData,
}

fn st(e: Error) -> Status {
    to_status(&e)
}

fn utf8(bytes: &[u8], field: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::invalid(field, "is not UTF-8"))
}

fn tx_id(bytes: Option<&bytes::Bytes>) -> Result<String> {
    bytes
        .map(|b| utf8(b, "transaction_id"))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes> {
    let IpcMessage(b) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(b)
}

/// A FlightInfo with one endpoint whose ticket is `ticket`.
fn info(schema: &Schema, ticket: Vec<u8>, descriptor: FlightDescriptor) -> Result<FlightInfo> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(true))
}

fn statement_ticket(t: &QueryTicket) -> Vec<u8> {
    TicketStatementQuery {
        statement_handle: t.encode_to_vec().into(),
    }
    .as_any()
    .encode_to_vec()
}

fn empty_result() -> Out<FlightData> {
    flight_stream(QueryStream {
        schema: Arc::new(Schema::empty()),
        batches: futures::stream::empty().boxed(),
    })
}

impl SqlService {
    /// A Flight SQL service over these calls, bounded by `[server.limits]`.
    pub fn new(calls: Calls, limits: &dbpool_config::Limits) -> Self {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "dbpool");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "60");
        b.append(SqlInfo::FlightSqlServerReadOnly, false);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::Transaction as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
        b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, true);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(SqlInfo::SqlDdlTable, true);
        let info = b.build().expect("static SqlInfo");
        SqlService {
            calls,
            prepared: Arc::new(PreparedRegistry::new(
                limits.max_prepared_statements_per_connection,
                limits.prepared_statement_idle_timeout(),
            )),
            ipc: IpcLimits::from_config(limits),
            max_param_rows: limits.max_batch_statements,
            max_param_bytes: limits.max_message_bytes,
            max_sql_bytes: limits.max_sql_bytes,
            info,
        }
    }

    /// The pool a call addresses: the `x-dbpool-pool` header, else `default`, else the
    /// only pool.
    pub(super) fn pool_of(&self, md: &MetadataMap) -> Result<String> {
        if let Some(v) = md.get(POOL_HEADER) {
            return v
                .to_str()
                .map(str::to_string)
                .map_err(|_| Error::invalid(POOL_HEADER, "is not ASCII"));
        }
        let pools = self.calls.manager.list();
        if pools.iter().any(|p| p.id == "default") {
            return Ok("default".into());
        }
        match pools.as_slice() {
            [only] => Ok(only.id.clone()),
            _ => Err(Error::invalid(
                POOL_HEADER,
                "several pools exist and no default: set the header to a pool id",
            )),
        }
    }

    /// The pool for a call, or none when it runs in a transaction (which knows its pool).
    fn target(&self, md: &MetadataMap, tx: &str) -> Result<String> {
        if tx.is_empty() {
            self.pool_of(md)
        } else {
            Ok(String::new())
        }
    }

    /// Runs each parameter row of an update (one run without parameters when none are
    /// bound); outside a transaction several rows are one all-or-nothing batch.
    async fn run_update(&self, p: &Prepared, rows: Vec<Vec<Param>>) -> Result<i64> {
        let rows = if rows.is_empty() { vec![vec![]] } else { rows };
        if !p.tx_id.is_empty() || rows.len() == 1 {
            let mut total = 0;
            for params in rows {
                total += self
                    .calls
                    .execute(&p.pool_id, &p.tx_id, &p.sql, params)
                    .await?;
            }
            return Ok(total as i64);
        }
        let statements = rows
            .into_iter()
            .map(|params| Statement {
                sql: p.sql.clone(),
                params,
            })
            .collect();
        let out = self
            .calls
            .execute_batch(&p.pool_id, statements, true)
            .await?;
        Ok(out
            .iter()
            .map(|r| *r.outcome.as_ref().unwrap_or(&0))
            .sum::<u64>() as i64)
    }

    /// Reads the parameter batches a DoPut carries: validated IPC, at most
    /// `max_param_rows` rows and `max_param_bytes` of values (counted as held in memory).
    async fn read_params(
        &self,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<Vec<Vec<Param>>> {
        let (_, mut batches) = decode_put(request.into_inner(), self.ipc).await?;
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        while let Some(b) = batches.next().await {
            let b = b?;
            let cells = b.num_rows().saturating_mul(b.num_columns());
            bytes = bytes
                .saturating_add(cells.saturating_mul(std::mem::size_of::<Param>()))
                .saturating_add(b.get_array_memory_size());
            if rows.len().saturating_add(b.num_rows()) > self.max_param_rows
                || bytes > self.max_param_bytes
            {
                return Err(Error::ResourceExhausted(format!(
                    "parameters: one DoPut may bind at most {} rows \
                     (server.limits.max_batch_statements) and {} bytes of values \
                     (server.limits.max_message_bytes)",
                    self.max_param_rows, self.max_param_bytes
                )));
            }
            rows.extend(param_rows(&b)?);
        }
        Ok(rows)
    }

    async fn prepared_info(
        &self,
        p: &Prepared,
        descriptor: FlightDescriptor,
        handle: bytes::Bytes,
    ) -> Result<FlightInfo> {
        if p.params.len() > 1 {
            return Err(Error::invalid(
                "parameters",
                "a prepared query takes one parameter row",
            ));
        }
        let params = p.params.first().cloned().unwrap_or_default();
        let schema = self
            .calls
            .schema(&p.pool_id, &p.tx_id, &p.sql, params)
            .await?;
        if schema.fields().is_empty() {
            // Not a query: run it now, so clients that never fetch still execute it.
            self.run_update(p, p.params.clone()).await?;
            let done = QueryTicket::default();
            return info(&schema, statement_ticket(&done), descriptor);
        }
        let ticket = CommandPreparedStatementQuery {
            prepared_statement_handle: handle,
        }
        .as_any()
        .encode_to_vec();
        info(&schema, ticket, descriptor)
    }

    async fn ingest(
        &self,
        cmd: CommandStatementIngest,
        md: &MetadataMap,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64> {
        use arrow_flight::sql::{TableExistsOption as E, TableNotExistOption as N};
        let tx = tx_id(cmd.transaction_id.as_ref())?;
        let pool = self.target(md, &tx)?;
        let table = match &cmd.schema {
            Some(s) if !s.is_empty() => format!("{}.{}", s, cmd.table),
            _ => cmd.table.clone(),
        };
        let opts = cmd.table_definition_options.unwrap_or_default();
        let (if_not_exist, if_exists) = (opts.if_not_exist(), opts.if_exists());
        let exists = || async {
            self.calls
                .table_exists(&pool, &tx, cmd.schema.as_deref().unwrap_or(""), &cmd.table)
                .await
        };
        let mode = match (if_not_exist, if_exists) {
            (N::Create, E::Fail | E::Unspecified) => InsertMode::Create,
            (N::Create, E::Replace) => InsertMode::Replace,
            (N::Create, E::Append) => {
                if exists().await? {
                    InsertMode::Append
                } else {
                    InsertMode::Create
                }
            }
            (N::Fail | N::Unspecified, E::Append | E::Unspecified) => InsertMode::Append,
            (N::Fail | N::Unspecified, E::Replace) => {
                if !exists().await? {
                    return Err(Error::invalid(
                        "table",
                        format!("table `{table}` does not exist"),
                    ));
                }
                InsertMode::Replace
            }
            (N::Fail | N::Unspecified, E::Fail) => {
                return Err(Error::invalid(
                    "table_definition_options",
                    "fails whether or not the table exists",
                ))
            }
        };
        let (schema, batches) = decode_put(request.into_inner(), self.ipc).await?;
        let n = self
            .calls
            .bulk_insert_in(&pool, &tx, BulkInsert { table, mode }, schema, batches)
            .await?;
        Ok(n as i64)
    }
}

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    /// The authentication hook: no authentication yet, so the handshake echoes its payload.
    async fn do_handshake(
        &self,
        req: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Out<HandshakeResponse>>, Status> {
        crate::auth::check(req.metadata())?;
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

    async fn get_flight_info_statement(
        &self,
        q: CommandStatementQuery,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let tx = tx_id(q.transaction_id.as_ref()).map_err(st)?;
        let pool = self.target(req.metadata(), &tx).map_err(st)?;
        let schema = self
            .calls
            .schema(&pool, &tx, &q.query, vec![])
            .await
            .map_err(st)?;
        let mut t = QueryTicket {
            pool_id: pool.clone(),
            sql: q.query.clone(),
            transaction_id: tx.clone(),
            ..Default::default()
        };
        if schema.fields().is_empty() {
            // Not a query: run it now, so clients that never fetch still execute it.
            self.calls
                .execute(&pool, &tx, &q.query, vec![])
                .await
                .map_err(st)?;
            t.sql.clear();
        }
        Ok(Response::new(
            info(&schema, statement_ticket(&t), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        let t = QueryTicket::decode(ticket.statement_handle.as_ref()).map_err(|e| {
            st(Error::invalid(
                "ticket",
                format!("not a dbpool statement ticket: {e}"),
            ))
        })?;
        if t.sql.is_empty() {
            return Ok(Response::new(empty_result()));
        }
        let q = self
            .calls
            .query(&t.pool_id, &t.transaction_id, &t.sql, vec![], t.batch_size)
            .await
            .map_err(st)?;
        Ok(Response::new(flight_stream(q)))
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let tx = tx_id(cmd.transaction_id.as_ref()).map_err(st)?;
        let pool = self.target(req.metadata(), &tx).map_err(st)?;
        let n = self
            .calls
            .execute(&pool, &tx, &cmd.query, vec![])
            .await
            .map_err(st)?;
        Ok(n as i64)
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let md = req.metadata().clone();
        self.ingest(cmd, &md, req).await.map_err(st)
    }

    async fn do_action_create_prepared_statement(
        &self,
        q: ActionCreatePreparedStatementRequest,
        req: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        if q.query.len() > self.max_sql_bytes {
            // Held for as long as the statement lives: bounded before anything else.
            return Err(st(Error::invalid(
                "query",
                format!(
                    "is {} bytes, more than server.limits.max_sql_bytes ({})",
                    q.query.len(),
                    self.max_sql_bytes
                ),
            )));
        }
        let tx = tx_id(q.transaction_id.as_ref()).map_err(st)?;
        let pool = self.target(req.metadata(), &tx).map_err(st)?;
        let schema: SchemaRef = self
            .calls
            .schema(&pool, &tx, &q.query, vec![])
            .await
            .map_err(st)?;
        let owner = client_key(&req);
        let handle = self
            .prepared
            .open(
                &owner,
                Prepared {
                    pool_id: pool,
                    tx_id: tx,
                    sql: q.query,
                    params: vec![],
                },
            )
            .map_err(st)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes(&schema).map_err(st)?,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        q: ActionClosePreparedStatementRequest,
        req: Request<Action>,
    ) -> Result<(), Status> {
        self.prepared
            .close(&client_key(&req), &q.prepared_statement_handle)
            .map_err(st)
    }

    async fn do_put_prepared_statement_query(
        &self,
        q: CommandPreparedStatementQuery,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let owner = client_key(&req);
        // The handle is checked first: no parameters are decoded for a stranger's handle.
        self.prepared
            .get(&owner, &q.prepared_statement_handle)
            .map_err(st)?;
        let rows = self.read_params(req).await.map_err(st)?;
        self.prepared
            .bind(&owner, &q.prepared_statement_handle, rows)
            .map_err(st)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(q.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        q: CommandPreparedStatementQuery,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = self
            .prepared
            .get(&client_key(&req), &q.prepared_statement_handle)
            .map_err(st)?;
        let info = self
            .prepared_info(&p, req.into_inner(), q.prepared_statement_handle)
            .await
            .map_err(st)?;
        Ok(Response::new(info))
    }

    async fn do_get_prepared_statement(
        &self,
        q: CommandPreparedStatementQuery,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        let p = self
            .prepared
            .get(&client_key(&req), &q.prepared_statement_handle)
            .map_err(st)?;
        let params = p.params.first().cloned().unwrap_or_default();
        let out = self
            .calls
            .query(&p.pool_id, &p.tx_id, &p.sql, params, 0)
            .await
            .map_err(st)?;
        Ok(Response::new(flight_stream(out)))
    }

    async fn do_put_prepared_statement_update(
        &self,
        q: CommandPreparedStatementUpdate,
        req: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let p = self
            .prepared
            .get(&client_key(&req), &q.prepared_statement_handle)
            .map_err(st)?;
        let rows = self.read_params(req).await.map_err(st)?;
        self.run_update(&p, rows).await.map_err(st)
    }

    async fn do_action_begin_transaction(
        &self,
        _: ActionBeginTransactionRequest,
        req: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        let pool = self.pool_of(req.metadata()).map_err(st)?;
        // Owned by this client connection; idle timeout: the server's default (0).
        let id = self
            .calls
            .begin(&pool, Default::default(), 0)
            .await
            .map_err(st)?;
        Ok(ActionBeginTransactionResult {
            transaction_id: id.into_bytes().into(),
        })
    }

    async fn do_action_end_transaction(
        &self,
        q: ActionEndTransactionRequest,
        _: Request<Action>,
    ) -> Result<(), Status> {
        let id = utf8(&q.transaction_id, "transaction_id").map_err(st)?;
        let commit = match q.action() {
            EndTransaction::Commit => true,
            EndTransaction::Rollback => false,
            _ => return Err(st(Error::invalid("action", "must be COMMIT or ROLLBACK"))),
        };
        self.calls.end(&id, commit).await.map_err(st)
    }

    async fn do_put_fallback(
        &self,
        req: Request<PeekableFlightDataStream>,
        message: arrow_flight::sql::Any,
    ) -> Result<Response<Out<arrow_flight::PutResult>>, Status> {
        super::bulk::do_put(self, req, message).await
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}

    // Metadata: see sql_meta.rs.
    async fn get_flight_info_sql_info(
        &self,
        q: CommandGetSqlInfo,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = q.clone().into_builder(&self.info).schema();
        Ok(Response::new(
            info(&schema, q.as_any().encode_to_vec(), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_sql_info(
        &self,
        q: CommandGetSqlInfo,
        _: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        let batch = q
            .into_builder(&self.info)
            .build()
            .map_err(|e| st(super::sql_meta::flight_err(e)))?;
        Ok(Response::new(super::sql_meta::one_batch(batch)))
    }

    async fn get_flight_info_catalogs(
        &self,
        q: CommandGetCatalogs,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = q.into_builder().schema();
        Ok(Response::new(
            info(&schema, q.as_any().encode_to_vec(), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_catalogs(
        &self,
        q: CommandGetCatalogs,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        self.meta_catalogs(q, req.metadata())
            .await
            .map_err(st)
            .map(Response::new)
    }

    async fn get_flight_info_schemas(
        &self,
        q: CommandGetDbSchemas,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = q.clone().into_builder().schema();
        Ok(Response::new(
            info(&schema, q.as_any().encode_to_vec(), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_schemas(
        &self,
        q: CommandGetDbSchemas,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        self.meta_schemas(q, req.metadata())
            .await
            .map_err(st)
            .map(Response::new)
    }

    async fn get_flight_info_tables(
        &self,
        q: CommandGetTables,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = q.clone().into_builder().schema();
        Ok(Response::new(
            info(&schema, q.as_any().encode_to_vec(), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_tables(
        &self,
        q: CommandGetTables,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        self.meta_tables(q, req.metadata())
            .await
            .map_err(st)
            .map(Response::new)
    }

    async fn get_flight_info_table_types(
        &self,
        q: CommandGetTableTypes,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = q.into_builder().schema();
        Ok(Response::new(
            info(&schema, q.as_any().encode_to_vec(), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_table_types(
        &self,
        q: CommandGetTableTypes,
        _: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        let mut b = q.into_builder();
        for t in super::sql_meta::TABLE_TYPES {
            b.append(t);
        }
        let batch = b.build().map_err(|e| st(super::sql_meta::flight_err(e)))?;
        Ok(Response::new(super::sql_meta::one_batch(batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        q: CommandGetPrimaryKeys,
        req: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = super::sql_meta::primary_keys_schema();
        Ok(Response::new(
            info(&schema, q.as_any().encode_to_vec(), req.into_inner()).map_err(st)?,
        ))
    }

    async fn do_get_primary_keys(
        &self,
        q: CommandGetPrimaryKeys,
        req: Request<Ticket>,
    ) -> Result<Response<Out<FlightData>>, Status> {
        self.meta_primary_keys(q, req.metadata())
            .await
            .map_err(st)
            .map(Response::new)
    }
}
