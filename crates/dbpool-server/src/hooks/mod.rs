//! Where a server is extended per call: the [`Authorizer`] that allows or refuses a call
//! and the [`MiddlewareChain`] that sees it before and its outcome after. Both see a call
//! as a [`Call`]: its method, pool, SQL and client connection.
mod authorizer;
mod middleware;

pub use authorizer::{AllowAll, Authorizer};
pub use middleware::{Middleware, MiddlewareChain, Outcome};

use crate::calls::Calls;
use crate::conn::{self, ConnInfo};
use dbpool_core::Result;
use std::borrow::Cow;

/// What a client asked the daemon to do, whatever the protocol (PoolService, Flight,
/// Flight SQL) it asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// A streamed query (Query, DoGet, Flight SQL statement and prepared queries).
    Query,
    /// The schema of a query without its rows (GetFlightInfo, GetSchema).
    Schema,
    /// One statement (Execute, Flight SQL updates).
    Execute,
    /// A batch of statements (ExecuteBatch).
    ExecuteBatch,
    /// Rows written into a table (DoPut, Flight SQL ingest).
    BulkInsert,
    /// Whether a table exists (the create/replace modes of bulk inserts).
    TableExists,
    /// Begins an interactive transaction.
    Begin,
    /// Commits a transaction.
    Commit,
    /// Rolls a transaction back.
    Rollback,
    /// Creates a pool (CreatePool).
    CreatePool,
    /// Removes a pool (RemovePool).
    RemovePool,
    /// Reads pools, their status or their metrics.
    ReadPools,
}

impl Method {
    /// A short lower-case name for logs and labels.
    pub fn name(self) -> &'static str {
        match self {
            Method::Query => "query",
            Method::Schema => "schema",
            Method::Execute => "execute",
            Method::ExecuteBatch => "execute_batch",
            Method::BulkInsert => "bulk_insert",
            Method::TableExists => "table_exists",
            Method::Begin => "begin",
            Method::Commit => "commit",
            Method::Rollback => "rollback",
            Method::CreatePool => "create_pool",
            Method::RemovePool => "remove_pool",
            Method::ReadPools => "read_pools",
        }
    }

    /// Whether the method may change data or pools (everything but reads).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Method::Query | Method::Schema | Method::TableExists | Method::ReadPools
        )
    }
}

/// One call as the authorizer and the middleware see it.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// What is asked.
    pub method: Method,
    /// The pool addressed; empty where none is (a call on a transaction names its pool
    /// once the transaction is found, a ListPools none).
    pub pool_id: &'a str,
    /// The interactive transaction the call runs in; empty outside one.
    pub tx_id: &'a str,
    /// The statement of a statement call (query, schema, execute); a middleware may
    /// rewrite it before the call runs.
    pub sql: Option<Cow<'a, str>>,
    /// The client connection, `None` for the daemon's own calls.
    pub conn: Option<ConnInfo>,
}

impl<'a> Call<'a> {
    /// A call of `method` on `pool_id` from the connection being served.
    pub fn new(method: Method, pool_id: &'a str) -> Self {
        Call {
            method,
            pool_id,
            tx_id: "",
            sql: None,
            conn: conn::current_info(),
        }
    }

    /// The call inside transaction `tx_id`.
    pub fn in_tx(mut self, tx_id: &'a str) -> Self {
        self.tx_id = tx_id;
        self
    }

    /// The call's statement.
    pub fn with_sql(mut self, sql: &'a str) -> Self {
        self.sql = Some(Cow::Borrowed(sql));
        self
    }
}

// Not called yet: the call path's single dispatch point (calls.rs, being reshaped in
// issue 16) calls `admit` before a call and `finish` after it.
#[allow(dead_code)]
impl Calls {
    /// Asks the authorizer, then the middleware chain, whether `call` may run (the chain
    /// may rewrite its SQL). Once per call, before it takes a connection.
    pub(crate) fn admit(&self, call: &mut Call<'_>) -> Result<()> {
        self.authorizer.authorize(call)?;
        if self.middleware.is_empty() {
            return Ok(());
        }
        self.middleware.before(call)
    }

    /// Tells the middleware chain how the call admitted by [`Calls::admit`] ended.
    pub(crate) fn finish(&self, call: &Call<'_>, outcome: &Outcome<'_>) {
        if !self.middleware.is_empty() {
            self.middleware.after(call, outcome);
        }
    }
}
