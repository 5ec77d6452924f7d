//! `dbpool.v1.PoolService`: pool management, queries (Arrow IPC or JSON rows), writes.
use crate::calls::Calls;
use crate::health::Health;
use crate::ipc_chunks::{ipc_stream, QueryStreamOut};
use crate::{bounds, convert, rows};
use dbpool_core::{Error, Isolation, Param, Statement, TxOptions};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_server::PoolService;
use futures::StreamExt;
use std::path::PathBuf;
use tonic::{Request, Response, Status};

/// The PoolService implementation.
pub struct PoolServiceImpl {
    calls: Calls,
    health: Health,
    /// `server.data_dir`: the SQLite pools of CreatePool are confined to it.
    data_dir: PathBuf,
}

impl PoolServiceImpl {
    /// A service over these calls, reporting pool health to `health`; SQLite pools
    /// created by requests stay inside `data_dir`.
    pub fn new(calls: Calls, health: Health, data_dir: PathBuf) -> Self {
        PoolServiceImpl {
            calls,
            health,
            data_dir,
        }
    }

    /// A request's pool id, within the bounds.
    fn pool_id(&self, id: String) -> Result<String, Error> {
        bounds::id(&self.calls.limits, "pool_id", &id)?;
        Ok(id)
    }

    /// Bind parameters, counted within the bounds before they are converted.
    fn params(&self, ps: &[pb::Param], field: &str) -> Result<Vec<Param>, Error> {
        bounds::params(&self.calls.limits, field, ps.len())?;
        convert::params(ps, field)
    }

    /// Commits or rolls back a transaction.
    async fn end(
        &self,
        req: Request<pb::EndTransactionRequest>,
        commit: bool,
    ) -> Result<Response<pb::EndTransactionResponse>, Status> {
        let id = req.into_inner().transaction_id;
        self.calls.end(&id, commit).await?;
        Ok(Response::new(pb::EndTransactionResponse {}))
    }
}

/// An enum field holding a number the contract does not define: refused rather than
/// read as the default, which would silently do something the client did not ask for.
fn unknown_enum(field: &str, value: i32) -> Error {
    Error::invalid(field, format!("{value} is not a known value"))
}

/// Rows as Structs; the first message names the columns.
fn json_stream(q: dbpool_core::QueryStream) -> QueryStreamOut {
    let columns: Vec<String> = q.schema.fields().iter().map(|f| f.name().clone()).collect();
    let head = pb::QueryResponse {
        payload: Some(pb::query_response::Payload::Rows(pb::RowBatch {
            columns,
            rows: vec![],
        })),
    };
    let body = q.batches.map(|b| {
        let b = b?;
        let rows = rows::to_structs(&b)?;
        Ok(pb::QueryResponse {
            payload: Some(pb::query_response::Payload::Rows(pb::RowBatch {
                columns: vec![],
                rows,
            })),
        })
    });
    futures::stream::once(async { Ok(head) })
        .chain(body)
        .boxed()
}

#[tonic::async_trait]
impl PoolService for PoolServiceImpl {
    async fn create_pool(
        &self,
        req: Request<pb::CreatePoolRequest>,
    ) -> Result<Response<pb::CreatePoolResponse>, Status> {
        let r = req.into_inner();
        let mut cfg = convert::pool_config(&r, &self.calls.limits)?;
        // Command policy and file paths are the operator's (config file), not a caller's.
        let resolved = cfg.resolve("").map_err(Error::from)?;
        dbpool_backends::request_policy::check_request_pool(&resolved)?;
        dbpool_backends::request_policy::confine_request_pool(&mut cfg, &resolved, &self.data_dir)?;
        let entry = self.calls.create_pool(&r.pool_id, &cfg, !r.lazy).await?;
        self.health.pool_added(&entry).await;
        Ok(Response::new(pb::CreatePoolResponse {
            pool: Some(convert::info(&entry)),
        }))
    }

    async fn remove_pool(
        &self,
        req: Request<pb::RemovePoolRequest>,
    ) -> Result<Response<pb::RemovePoolResponse>, Status> {
        let id = self.pool_id(req.into_inner().pool_id)?;
        self.calls.remove_pool(&id).await?;
        self.health.pool_removed(&id).await;
        Ok(Response::new(pb::RemovePoolResponse {}))
    }

    async fn list_pools(
        &self,
        _: Request<pb::ListPoolsRequest>,
    ) -> Result<Response<pb::ListPoolsResponse>, Status> {
        let pools = self
            .calls
            .visible_pools()
            .await?
            .iter()
            .map(|e| convert::info(e))
            .collect();
        Ok(Response::new(pb::ListPoolsResponse { pools }))
    }

    async fn get_pool_status(
        &self,
        req: Request<pb::GetPoolStatusRequest>,
    ) -> Result<Response<pb::PoolStatus>, Status> {
        let id = self.pool_id(req.into_inner().pool_id)?;
        let entry = self.calls.read_pool(&id).await?;
        Ok(Response::new(convert::status(&entry)))
    }

    type QueryStream = QueryStreamOut;

    async fn query(
        &self,
        req: Request<pb::QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let r = req.into_inner();
        // Checked before the query runs: an unknown format must not cost a connection.
        let format =
            pb::ResultFormat::try_from(r.format).map_err(|_| unknown_enum("format", r.format))?;
        let params = self.params(&r.params, "params")?;
        let q = self
            .calls
            .query(&r.pool_id, &r.transaction_id, &r.sql, params, r.batch_size)
            .await?;
        let out = match format {
            pb::ResultFormat::JsonRows => json_stream(q),
            pb::ResultFormat::ArrowIpcUnspecified => ipc_stream(q, &self.calls.schemas)?,
        };
        Ok(Response::new(out))
    }

    async fn execute(
        &self,
        req: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let r = req.into_inner();
        let params = self.params(&r.params, "params")?;
        let n = self
            .calls
            .execute(&r.pool_id, &r.transaction_id, &r.sql, params)
            .await?;
        Ok(Response::new(pb::ExecuteResponse { rows_affected: n }))
    }

    async fn execute_batch(
        &self,
        req: Request<pb::ExecuteBatchRequest>,
    ) -> Result<Response<pb::ExecuteBatchResponse>, Status> {
        let r = req.into_inner();
        // Counted before the statements are converted (copied).
        bounds::statements(&self.calls.limits, "statements", r.statements.len())?;
        let statements = r
            .statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Statement {
                    sql: s.sql.clone(),
                    params: self.params(&s.params, &format!("statements[{i}].params"))?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let out = self
            .calls
            .execute_batch(&r.pool_id, statements, r.transaction)
            .await?;
        let results: Vec<pb::StatementResult> = out
            .into_iter()
            .map(|s| {
                let index = u32::try_from(s.index).unwrap_or(u32::MAX);
                match s.outcome {
                    Ok(n) => pb::StatementResult {
                        index,
                        ok: true,
                        rows_affected: n,
                        ..Default::default()
                    },
                    Err(e) => pb::StatementResult {
                        index,
                        ok: false,
                        rows_affected: 0,
                        code: e.db_code().unwrap_or_default().to_string(),
                        error: e.to_string(),
                    },
                }
            })
            .collect();
        let total = results.iter().map(|r| r.rows_affected).sum();
        Ok(Response::new(pb::ExecuteBatchResponse {
            results,
            total_rows_affected: total,
        }))
    }

    async fn begin_transaction(
        &self,
        req: Request<pb::BeginTransactionRequest>,
    ) -> Result<Response<pb::BeginTransactionResponse>, Status> {
        let r = req.into_inner();
        let level = pb::IsolationLevel::try_from(r.isolation)
            .map_err(|_| unknown_enum("isolation", r.isolation))?;
        let isolation = match level {
            pb::IsolationLevel::DefaultUnspecified => Isolation::Default,
            pb::IsolationLevel::ReadUncommitted => Isolation::ReadUncommitted,
            pb::IsolationLevel::ReadCommitted => Isolation::ReadCommitted,
            pb::IsolationLevel::RepeatableRead => Isolation::RepeatableRead,
            pb::IsolationLevel::Serializable => Isolation::Serializable,
        };
        let options = TxOptions {
            isolation,
            read_only: r.read_only,
        };
        let id = self
            .calls
            .begin(&r.pool_id, options, r.idle_timeout_ms)
            .await?;
        Ok(Response::new(pb::BeginTransactionResponse {
            transaction_id: id,
        }))
    }

    async fn commit(
        &self,
        req: Request<pb::EndTransactionRequest>,
    ) -> Result<Response<pb::EndTransactionResponse>, Status> {
        self.end(req, true).await
    }

    async fn rollback(
        &self,
        req: Request<pb::EndTransactionRequest>,
    ) -> Result<Response<pb::EndTransactionResponse>, Status> {
        self.end(req, false).await
    }

    async fn get_metrics(
        &self,
        req: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        let id = self.pool_id(req.into_inner().pool_id)?;
        let entries = if id.is_empty() {
            self.calls.visible_pools().await?
        } else {
            vec![self.calls.read_pool(&id).await?]
        };
        Ok(Response::new(pb::GetMetricsResponse {
            pools: entries.iter().map(|e| convert::status(e)).collect(),
            metrics: entries.iter().map(|e| convert::metrics(e)).collect(),
            uptime_seconds: self.calls.manager.started().elapsed().as_secs(),
        }))
    }
}
