//! One execution interface per database. A backend implements `Driver` once: its
//! statement verbs over a `Session` (a connection checked out of the pool, or pinned to
//! a transaction), and how a transaction begins, ends and is abandoned. What is the same
//! for every database is written here once, on top of it:
//!
//! - `Exec<D, S>` (run.rs): the statement verbs (`dbpool_core::Executor`), on sessions
//!   from the pool or from a pinned connection;
//! - `PoolBackend<D>` (backend.rs): the pool, as a `dbpool_core::Backend`;
//! - `PinnedTx<D>` (tx.rs): an interactive transaction, as a `dbpool_core::Transaction`;
//! - `batch::run` (batch.rs): batches, all-or-nothing or statement by statement;
//! - `Session`, `Pinned` (session.rs): the connection a call runs on.
mod backend;
pub(crate) mod batch;
mod run;
mod session;
#[cfg(test)]
mod tests;
mod tx;

pub use backend::{FromPool, PoolBackend};
pub use run::{Exec, SessionSource};
pub use session::{spawn_cleanup, Guard, Pinned, Session};
pub use tx::PinnedTx;

use crate::pool::{Conn, Dirty, PoolHandle};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::sql_lex::{changes_session, Dialect};
use dbpool_core::{
    BatchOutcome, BulkInsert, Error, HistogramSnapshot, Param, PoolState, QueryStream, Result,
    Statement, TableRef, TxOptions,
};
use std::future::Future;

/// A database as a backend implements it, once for pooled and pinned connections.
///
/// Every verb gets the `Session` it runs on; `Session::in_transaction` tells whether a
/// transaction is open on it (a batch's or an interactive one), which decides the checks
/// after a call: a pooled connection must not keep a transaction the SQL opened, a
/// transaction's must still have its own.
pub trait Driver: Send + Sync + Sized + 'static {
    /// A connection checked out of the pool.
    type Conn: Send + Dirty + 'static;

    /// The pool the connections come from.
    type Pool: ConnPool<Conn = Self::Conn>;

    /// Which database this is.
    const KIND: BackendKind;

    /// Why the database has no transactions the driver can begin (interactive ones,
    /// and the transactional batches of the generic `batch`), or `None` when it has
    /// them; then the driver implements `begin`, `end` and `abandon`.
    const NO_TRANSACTIONS: Option<&'static str> = None;

    /// Builds the driver and its pool from a resolved pool config; connects lazily.
    fn open(pool_id: &str, cfg: &ResolvedPool) -> Result<Self>;

    /// The driver's pool.
    fn pool(&self) -> &Self::Pool;

    /// Runs a query on `s`; the stream owns the session until it ends.
    fn query(
        &self,
        s: Session<Self::Conn>,
        sql: &str,
        params: Vec<Param>,
        batch_size: usize,
    ) -> impl Future<Output = Result<QueryStream>> + Send;

    /// The schema `sql` would return, keeping nothing a statement that writes writes.
    fn schema(
        &self,
        s: Session<Self::Conn>,
        sql: &str,
        params: Vec<Param>,
    ) -> impl Future<Output = Result<SchemaRef>> + Send;

    /// Runs one statement on `s` and returns the rows it affected.
    fn execute(
        &self,
        s: &mut Session<Self::Conn>,
        sql: &str,
        params: Vec<Param>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Writes `rows` into a table on `s`: every row or none.
    fn bulk_insert(
        &self,
        s: Session<Self::Conn>,
        target: BulkInsert,
        rows: QueryStream,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Runs a validated batch on one connection. The default is the generic loop over
    /// `execute` (`batch::run`); a database that batches natively overrides it.
    fn batch(
        &self,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> impl Future<Output = Result<BatchOutcome>> + Send {
        batch::run(self, statements, transaction)
    }

    /// Begins a transaction on `s` (for a batch: with the default options).
    fn begin(
        &self,
        s: &mut Session<Self::Conn>,
        options: TxOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (s, options);
        async { Err(no_transactions::<Self>()) }
    }

    /// Commits or rolls back the transaction open on `s`, leaving the connection fit
    /// for the pool whatever happens.
    fn end(
        &self,
        s: &mut Session<Self::Conn>,
        commit: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (s, commit);
        async { Err(no_transactions::<Self>()) }
    }

    /// Rolls back the transaction of a connection that was dropped inside it (client
    /// gone, daemon stopping, call abandoned), then lets the connection go back.
    fn abandon(conn: Self::Conn) {
        drop(conn);
    }

    /// Whether `sql` may change the state of the session it runs on (a setting, a
    /// temporary object, a lock, a subscription, …), which the connection must not keep
    /// for the next caller: the session is marked dirty and the pool resets it before it
    /// is reused (`PoolHandle::with_reset`, or closes it). A conservative lexical check
    /// per SQL dialect (dbpool-core `sql_lex::changes_session`); a false positive costs
    /// one reset.
    fn changes_session(sql: &str) -> bool {
        Dialect::of(Self::KIND).is_some_and(|d| changes_session(sql, d))
    }

    /// Opens (or borrows) a connection and runs a trivial statement.
    fn health_check(&self) -> impl Future<Output = Result<()>> + Send;

    /// Flight SQL catalog metadata, for a database that has it.
    fn catalog(&self) -> Option<&dyn Catalog> {
        None
    }
}

/// A pool of connections, as the generic layer uses it.
pub trait ConnPool: Send + Sync + 'static {
    /// A connection checked out of it.
    type Conn: Send + Dirty + 'static;

    /// Checks a connection out.
    fn acquire(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Size, idle and waiting counts.
    fn state(&self) -> PoolState;

    /// How long calls waited for a connection.
    fn acquire_wait(&self) -> HistogramSnapshot {
        HistogramSnapshot::default()
    }
}

impl<M> ConnPool for PoolHandle<M>
where
    M: bb8::ManageConnection,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    type Conn = Conn<M>;

    fn acquire(&self) -> impl Future<Output = Result<Conn<M>>> + Send {
        PoolHandle::acquire(self)
    }

    fn state(&self) -> PoolState {
        PoolHandle::state(self)
    }

    fn acquire_wait(&self) -> HistogramSnapshot {
        PoolHandle::acquire_wait(self)
    }
}

/// Catalog metadata of a database (Flight SQL `GetCatalogs`, `GetTables`, …).
#[async_trait]
pub trait Catalog: Send + Sync {
    /// The catalog (database) name the pool connects to.
    async fn catalog_name(&self) -> Result<String>;
    /// The schemas (namespaces), system schemas left out.
    async fn list_schemas(&self) -> Result<Vec<String>>;
    /// The user tables and views.
    async fn list_tables(&self) -> Result<Vec<TableRef>>;
    /// The Arrow schema a table's rows would have.
    async fn table_schema(&self, db_schema: &str, table: &str) -> Result<SchemaRef>;
    /// The primary key columns of a table, in key order.
    async fn primary_keys(&self, db_schema: &str, table: &str) -> Result<Vec<String>>;
}

/// Ends the transaction open on `s` with the driver's `end`. The session no longer
/// counts as inside it whatever happened: `end` leaves the connection fit for the pool.
async fn end<D: Driver>(d: &D, s: &mut Session<D::Conn>, commit: bool) -> Result<()> {
    let r = d.end(s, commit).await;
    s.closed();
    r
}

/// Marks `s` dirty when `sql` may change its session (`Driver::changes_session`).
pub(crate) fn note<D: Driver>(s: &mut Session<D::Conn>, sql: &str) {
    if D::changes_session(sql) {
        s.mark_dirty();
    }
}

/// What a database without transactions answers where one is asked for.
fn no_transactions<D: Driver>() -> Error {
    Error::Unsupported(format!(
        "transactions on {}: {}",
        D::KIND.name(),
        D::NO_TRANSACTIONS.unwrap_or("the driver does not implement them")
    ))
}
