//! The Flight SQL service's own plumbing: its construction, which pool a call
//! addresses, running prepared statements, binding parameters and bulk ingest — what
//! the `FlightSqlService` handlers of sql.rs call.
use super::ipc_in::{decode_put, IpcLimits};
use super::params::rows as param_rows;
use super::prepared::{client_key, Prepared};
use super::sql::{SqlService, POOL_HEADER};
use super::state::FlightState;
use crate::calls::Calls;
use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::sql::metadata::SqlInfoDataBuilder;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::*;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket};
use dbpool_core::{BulkInsert, Error, InsertMode, Param, QueryStream, Result, Statement};
use dbpool_proto::v1::QueryTicket;
use futures::StreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::metadata::MetadataMap;
use tonic::Request;

pub(super) fn utf8(bytes: &[u8], field: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::invalid(field, "is not UTF-8"))
}

pub(super) fn tx_id(bytes: Option<&bytes::Bytes>) -> Result<String> {
    bytes
        .map(|b| utf8(b, "transaction_id"))
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(super) fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes> {
    let IpcMessage(b) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(b)
}

/// The FlightInfo of a statement: one endpoint whose ticket runs it, and no schema. The
/// statement runs on DoGet, once, and its stream carries the schema; clients read a
/// FlightInfo without one by opening the first endpoint before returning (the ADBC
/// driver does so synchronously, so a statement without rows has run when `execute`
/// returns; JDBC reads `getSchemaOptional()`).
pub(super) fn statement_info(ticket: Vec<u8>, descriptor: FlightDescriptor) -> FlightInfo {
    FlightInfo::new()
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(true)
}

/// A prepared query takes one parameter row (an update runs every row via DoPut).
pub(super) fn one_row(p: &Prepared) -> Result<()> {
    if p.params.len() > 1 {
        return Err(Error::invalid(
            "parameters",
            "a prepared query takes one parameter row",
        ));
    }
    Ok(())
}

/// A FlightInfo with one endpoint whose ticket is `ticket`.
pub(super) fn info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(true))
}

pub(super) fn statement_ticket(t: &QueryTicket) -> Vec<u8> {
    TicketStatementQuery {
        statement_handle: t.encode_to_vec().into(),
    }
    .as_any()
    .encode_to_vec()
}

/// The result of a statement without rows: no columns, no batches.
fn empty_result() -> QueryStream {
    QueryStream {
        schema: Arc::new(Schema::empty()),
        batches: futures::stream::empty().boxed(),
    }
}

impl SqlService {
    /// A Flight SQL service over these calls, bounded by `[server.limits]`.
    pub fn new(calls: Calls, limits: &dbpool_config::Limits, state: Arc<FlightState>) -> Self {
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
            state,
            ipc: IpcLimits::from_config(limits),
            max_param_rows: limits.max_batch_statements,
            max_param_bytes: limits.max_message_bytes,
            max_sql_bytes: limits.max_sql_bytes,
            info,
            tenants: None,
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
        let mut pools = self.calls.manager.list();
        // A tenant's choice is among its own pools: another's is neither default nor named.
        if let Some(c) = crate::conn::current_caller() {
            pools.retain(|p| crate::auth::rights::sees(&c.tenant, &p.id));
        }
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

    /// Checks, without touching a database, a statement's bounds and that its pool (or
    /// the calling connection's transaction) exists, before its FlightInfo is answered.
    pub(super) fn check_statement(&self, pool: &str, tx: &str, sql: &str) -> Result<()> {
        let l = &self.calls.limits;
        crate::bounds::id(l, "pool_id", pool)?;
        crate::bounds::id(l, "transaction_id", tx)?;
        crate::bounds::sql(l, "query", sql)?;
        if tx.is_empty() {
            self.calls.manager.get(pool)?;
            // The tenant's right, as DoGet will check it: a hidden pool is NOT_FOUND here too.
            let call = crate::hooks::Call::new(crate::hooks::Method::Schema, pool);
            self.calls.authorizer.authorize(&call)
        } else {
            self.calls.txs.get(tx, crate::conn::current()).map(drop)
        }
    }

    /// The calling connection's prepared statement behind `handle`.
    pub(super) fn prepared(&self, handle: &[u8]) -> Result<Prepared> {
        self.state.prepared().get(client_key(), handle)
    }

    /// The pool for a call, or none when it runs in a transaction (which knows its pool).
    pub(super) fn target(&self, md: &MetadataMap, tx: &str) -> Result<String> {
        if tx.is_empty() {
            self.pool_of(md)
        } else {
            Ok(String::new())
        }
    }

    /// Runs each parameter row of an update (one run without parameters when none are
    /// bound); outside a transaction several rows are one all-or-nothing batch.
    pub(super) async fn run_update(&self, p: &Prepared, rows: Vec<Vec<Param>>) -> Result<i64> {
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
    pub(super) async fn read_params(
        &self,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<Vec<Vec<Param>>> {
        let mut batches = decode_put(request.into_inner(), self.ipc).await?.batches;
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

    /// Runs a prepared statement for DoGet: a query streams with its parameter row; a
    /// statement without rows runs every bound row and answers an empty stream.
    pub(super) async fn run_prepared(&self, p: &Prepared) -> Result<QueryStream> {
        if p.returns_rows {
            let params = p.params.first().cloned().unwrap_or_default();
            return self
                .calls
                .query(&p.pool_id, &p.tx_id, &p.sql, params, 0)
                .await;
        }
        self.run_update(p, p.params.clone()).await?;
        Ok(empty_result())
    }

    pub(super) async fn ingest(
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
        let rows = decode_put(request.into_inner(), self.ipc).await?;
        let n = self
            .calls
            .bulk_insert_in(&pool, &tx, BulkInsert { table, mode }, rows)
            .await?;
        Ok(n as i64)
    }
}
