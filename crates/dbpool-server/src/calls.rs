//! What PoolService and Flight share: look up the pool (or transaction), run the call
//! through one dispatch point, count it.
mod call;
mod pools;

pub use call::{Op, Reply};

use crate::hooks::{self, AllowAll, Authorizer, Method, MiddlewareChain, Outcome};
use crate::schema_cache::SchemaMessages;
use crate::status::code_name;
use crate::timed::Timed;
use crate::{bounds, conn};
use arrow::datatypes::SchemaRef;
use call::Target;
use dbpool_config::Limits;
use dbpool_core::{
    sql_lex, BatchOutcome, BulkInsert, CallKind, Error, Param, PoolEntry, PoolManager, QueryStream,
    Result, Statement, TxOptions, TxRegistry,
};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Runs calls against the manager's pools and open transactions, keeping counters.
#[derive(Clone)]
pub struct Calls {
    /// The daemon's pools.
    pub manager: Arc<PoolManager>,
    /// Open interactive transactions.
    pub txs: Arc<TxRegistry>,
    /// Idle timeout of transactions that do not ask for one.
    pub tx_idle_timeout: Duration,
    /// Put SQL text on trace spans (`server.trace_sql`).
    pub trace_sql: bool,
    /// `server.limits`: the bounds on request fields.
    pub limits: Arc<Limits>,
    /// Allows or refuses each call before it takes a connection.
    pub authorizer: Arc<dyn Authorizer>,
    /// Sees each call before it runs and its outcome after (empty: skipped).
    pub middleware: Arc<MiddlewareChain>,
    /// The server's encoded IPC schema messages, for `Query` and `DoGet` results.
    pub schemas: Arc<SchemaMessages>,
    /// The configured tenants (`None`: every caller is trusted): the pools they own.
    pub tenants: Option<Arc<crate::auth::Tenants>>,
}

/// Counts the result of a call on its pool.
fn counted<T>(entry: &PoolEntry, r: Result<T>) -> Result<T> {
    if let Err(e) = &r {
        entry.counters.record_error(code_name(e));
    }
    r
}

fn require_sql(sql: &str) -> Result<()> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    Ok(())
}

/// Refuses BEGIN/COMMIT/ROLLBACK & co. on SQL pools: the transaction RPCs own
/// transactions, so no pooled connection goes back inside one (issue 15).
fn refuse_tx_control(sql: &str, target: &Target) -> Result<()> {
    let kind = target.pool().backend.kind();
    sql_lex::refuse_tx_control(sql, kind, target.tx().is_some(), "sql")
}

impl Calls {
    /// Builds the shared call layer: every call allowed, no middleware (the server
    /// builder sets its own).
    pub fn new(manager: Arc<PoolManager>, tx_idle_timeout: Duration, limits: Limits) -> Self {
        Calls {
            manager,
            txs: Arc::new(TxRegistry::new(limits.max_transactions_per_connection)),
            tx_idle_timeout,
            trace_sql: false,
            limits: Arc::new(limits),
            authorizer: Arc::new(AllowAll),
            middleware: Arc::new(MiddlewareChain::default()),
            schemas: Arc::new(SchemaMessages::default()),
            tenants: None,
        }
    }

    /// The size bounds of a statement call, checked before anything else: ids, SQL text
    /// and parameter count.
    fn check_request(&self, pool_id: &str, tx_id: &str, sql: &str, params: usize) -> Result<()> {
        let l = &self.limits;
        bounds::id(l, "pool_id", pool_id)?;
        bounds::id(l, "transaction_id", tx_id)?;
        bounds::sql(l, "sql", sql)?;
        bounds::params(l, "params", params)
    }

    fn target(&self, pool_id: &str, tx_id: &str) -> Result<Target> {
        if tx_id.is_empty() {
            return Ok(Target::Pool(self.manager.get(pool_id)?));
        }
        let tx = self.txs.get(tx_id, conn::current())?;
        if !pool_id.is_empty() && pool_id != tx.pool.id {
            return Err(Error::invalid(
                "pool_id",
                format!(
                    "transaction `{}` runs on pool `{}`, not `{}`",
                    dbpool_core::clip(tx_id),
                    dbpool_core::clip(&tx.pool.id),
                    dbpool_core::clip(pool_id)
                ),
            ));
        }
        Ok(Target::Tx(tx))
    }

    /// The target of a statement with SQL, after the size bounds (`check_request`, and a
    /// query's `batch_size`): the SQL must be there, and must not open, end or hand over
    /// a transaction.
    fn statement_target(
        &self,
        pool_id: &str,
        tx_id: &str,
        sql: &str,
        params: &[Param],
        batch_size: Option<u32>,
    ) -> Result<Target> {
        self.check_request(pool_id, tx_id, sql, params.len())?;
        if let Some(n) = batch_size {
            bounds::batch_size(&self.limits, "batch_size", n)?;
        }
        require_sql(sql)?;
        let target = self.target(pool_id, tx_id)?;
        refuse_tx_control(sql, &target)?;
        Ok(target)
    }

    /// The dispatch point: every statement call passes through here, its target (pool
    /// or transaction) chosen once.
    async fn dispatch(&self, target: &Target, op: Op<'_>) -> Result<Reply> {
        let started = std::time::Instant::now();
        let pool = target.pool();
        let tx_id = target.tx().map(|t| t.id.as_str()).unwrap_or_default();
        let mut hook = hooks::Call::new(op.method(), &pool.id).in_tx(tx_id);
        hook.sql = op.sql().map(std::borrow::Cow::Borrowed);
        conn::note_statement(op.sql(), None);
        // The authorizer, then the middleware chain (which may rewrite the statement). A
        // middleware's `after` runs once for each call its `before` let pass: on a refusal
        // the chain has shown it to those links already, and none saw a call the
        // authorizer refused.
        self.admit(&mut hook)?;
        let rewritten = hook.sql.clone();
        let op = match rewritten.as_deref() {
            Some(sql) if Some(sql) != op.sql() => op.with_sql(sql),
            _ => op,
        };
        let reply = self.run(target, op).await;
        let rows = match &reply {
            Ok(Reply::Rows(n)) => *n,
            _ => 0,
        };
        conn::note_statement(None, Some(rows));
        let outcome = Outcome {
            error: reply.as_ref().err(),
            rows,
            bytes: 0,
            elapsed: started.elapsed(),
        };
        self.finish(&hook, &outcome);
        reply
    }

    /// Runs a call on its target's executor.
    async fn run(&self, target: &Target, op: Op<'_>) -> Result<Reply> {
        let exec = target.executor();
        Ok(match op {
            Op::Query {
                sql,
                params,
                batch_size,
            } => Reply::Stream(exec.query(sql, params, batch_size).await?),
            Op::Schema { sql, params } => Reply::Schema(exec.schema(sql, params).await?),
            Op::Execute { sql, params } => Reply::Rows(exec.execute(sql, params).await?),
            Op::Batch {
                statements,
                transaction,
            } => {
                let backend = &target.pool().backend;
                Reply::Batch(backend.execute_batch(statements, transaction).await?)
            }
            Op::BulkInsert { target, rows } => Reply::Rows(exec.bulk_insert(target, rows).await?),
        })
    }

    /// Starts a query; the returned stream counts rows and errors as they pass.
    pub async fn query(
        &self,
        pool_id: &str,
        tx_id: &str,
        sql: &str,
        params: Vec<Param>,
        batch_size: u32,
    ) -> Result<QueryStream> {
        let target = self.statement_target(pool_id, tx_id, sql, &params, Some(batch_size))?;
        let entry = target.pool().clone();
        let timed = Timed::start(&entry, CallKind::Query)
            .statement(sql, self.trace_sql)
            .in_tx(target.tx());
        let batch_size = if batch_size > 0 {
            batch_size
        } else {
            entry.config.options.batch_size
        } as usize;
        let op = Op::Query {
            sql,
            params,
            batch_size,
        };
        let started = self
            .dispatch(&target, op)
            .instrument(timed.span.clone())
            .await
            .and_then(Reply::stream);
        let mut started = counted(&entry, started)?;
        if let Some(c) = conn::current_caller() {
            started = c.tenant.quotas.limit_result(started);
        }
        let QueryStream { schema, batches } = started;
        let batches = batches
            .inspect(move |b| match b {
                Ok(b) => timed
                    .entry
                    .counters
                    .record_rows(b.num_rows() as u64, b.get_array_memory_size() as u64),
                Err(e) => timed.entry.counters.record_error(code_name(e)),
            })
            .boxed();
        Ok(QueryStream { schema, batches })
    }

    /// The schema of a query without streaming it; inside a transaction the statement
    /// sees the transaction's state.
    pub async fn schema(
        &self,
        pool_id: &str,
        tx_id: &str,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<SchemaRef> {
        let target = self.statement_target(pool_id, tx_id, sql, &params, None)?;
        let r = self.dispatch(&target, Op::Schema { sql, params }).await;
        counted(target.pool(), r.and_then(Reply::schema))
    }

    /// Runs one statement.
    pub async fn execute(
        &self,
        pool_id: &str,
        tx_id: &str,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<u64> {
        let target = self.statement_target(pool_id, tx_id, sql, &params, None)?;
        let mut timed = Timed::start(target.pool(), CallKind::Execute)
            .statement(sql, self.trace_sql)
            .in_tx(target.tx());
        let r = self
            .dispatch(&target, Op::Execute { sql, params })
            .instrument(timed.span.clone())
            .await
            .and_then(Reply::rows);
        timed.rows = *r.as_ref().unwrap_or(&0);
        counted(target.pool(), r)
    }

    /// Runs a batch.
    pub async fn execute_batch(
        &self,
        pool_id: &str,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<BatchOutcome> {
        bounds::statements(&self.limits, "statements", statements.len())?;
        for (i, s) in statements.iter().enumerate() {
            bounds::sql(&self.limits, &format!("statements[{i}].sql"), &s.sql)?;
            bounds::params(
                &self.limits,
                &format!("statements[{i}].params"),
                s.params.len(),
            )?;
        }
        bounds::id(&self.limits, "pool_id", pool_id)?;
        let target = Target::Pool(self.manager.get(pool_id)?);
        let kind = target.pool().backend.kind();
        for (i, s) in statements.iter().enumerate() {
            let field = format_args!("statements[{i}].sql");
            sql_lex::refuse_tx_control(&s.sql, kind, transaction, field)?;
        }
        let _timed = Timed::start(target.pool(), CallKind::Batch);
        let call = Op::Batch {
            statements,
            transaction,
        };
        let r = self.dispatch(&target, call).await;
        counted(target.pool(), r.and_then(Reply::batch))
    }

    /// Begins a transaction owned by the calling client connection; `idle_timeout_ms` 0
    /// takes the server's default, else it must be 1..=max_transaction_idle_timeout_ms.
    pub async fn begin(
        &self,
        pool_id: &str,
        options: TxOptions,
        idle_timeout_ms: u64,
    ) -> Result<String> {
        bounds::id(&self.limits, "pool_id", pool_id)?;
        let max_idle = self.limits.max_transaction_idle_timeout_ms;
        if idle_timeout_ms > max_idle {
            return Err(Error::invalid(
                "idle_timeout_ms",
                format!(
                    "{idle_timeout_ms} is out of range: 0 (the server's default) or 1..={max_idle} \
                     (server.limits.max_transaction_idle_timeout_ms)"
                ),
            ));
        }
        let owner = conn::current();
        // Before a connection is taken: a client at its maximum gets no connection.
        self.txs.check_room(owner)?;
        let entry = self.manager.get(pool_id)?;
        let method = match options.read_only {
            true => Method::BeginReadOnly,
            false => Method::Begin,
        };
        let hook = hooks::Call::new(method, pool_id);
        let tx = self.guarded(hook, entry.backend.begin(options)).await;
        let tx = counted(&entry, tx)?;
        let idle = if idle_timeout_ms > 0 {
            Duration::from_millis(idle_timeout_ms)
        } else {
            self.tx_idle_timeout
        };
        match self.txs.register(entry, tx, owner, idle) {
            Ok(id) => Ok(id),
            // Concurrent begins of one connection raced past the first check.
            Err((e, tx)) => {
                if let Err(r) = tx.rollback().await {
                    tracing::warn!(error = %r, "rollback of a refused transaction failed");
                }
                Err(e)
            }
        }
    }

    /// Commits or rolls back.
    pub async fn end(&self, tx_id: &str, commit: bool) -> Result<()> {
        if tx_id.is_empty() {
            return Err(Error::invalid("transaction_id", "is empty"));
        }
        bounds::id(&self.limits, "transaction_id", tx_id)?;
        let owner = conn::current();
        let pool = self.txs.get(tx_id, owner)?.pool.id.clone();
        let method = if commit {
            Method::Commit
        } else {
            Method::Rollback
        };
        let hook = hooks::Call::new(method, &pool).in_tx(tx_id);
        self.guarded(hook, self.txs.end(tx_id, commit, owner)).await
    }

    /// Whether a table exists, asked of the pool (or the transaction's pool).
    pub async fn table_exists(
        &self,
        pool_id: &str,
        tx_id: &str,
        db_schema: &str,
        table: &str,
    ) -> Result<bool> {
        self.check_request(pool_id, tx_id, "", 0)?;
        bounds::id(&self.limits, "db_schema", db_schema)?;
        bounds::id(&self.limits, "table", table)?;
        let entry = self.target(pool_id, tx_id)?.pool().clone();
        let hook = hooks::Call::new(Method::TableExists, &entry.id).in_tx(tx_id);
        match self
            .guarded(hook, entry.backend.table_schema(db_schema, table))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Database { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `rows` into a table, inside a transaction when `tx_id` is set.
    pub async fn bulk_insert_in(
        &self,
        pool_id: &str,
        tx_id: &str,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        if target.table.trim().is_empty() {
            return Err(Error::invalid("table", "is empty"));
        }
        self.check_request(pool_id, tx_id, "", 0)?;
        bounds::id(&self.limits, "table", &target.table)?;
        let on = self.target(pool_id, tx_id)?;
        let _timed = Timed::start(on.pool(), CallKind::BulkInsert).in_tx(on.tx());
        let r = self.dispatch(&on, Op::BulkInsert { target, rows }).await;
        counted(on.pool(), r.and_then(Reply::rows))
    }

    /// Writes `rows` into a table.
    pub async fn bulk_insert(
        &self,
        pool_id: &str,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        self.bulk_insert_in(pool_id, "", target, rows).await
    }
}
