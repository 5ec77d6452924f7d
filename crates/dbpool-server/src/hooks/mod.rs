//! Where a server is extended per call: the [`Authorizer`] that allows or refuses a call
//! and the [`MiddlewareChain`] that sees it before and its outcome after. Both see a call
//! as a [`Call`]: its method, pool, SQL and client connection.
mod authorizer;
mod middleware;

pub use authorizer::{AllowAll, Authorizer};
pub use middleware::{Middleware, MiddlewareChain, Outcome};

pub use crate::auth::{Caller, Principal};
use crate::calls::Calls;
use crate::conn;
pub use crate::conn::{ConnInfo, Transport};
use dbpool_core::Result;
use std::borrow::Cow;
use std::sync::Arc;

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
    /// Begins a read-only interactive transaction.
    BeginReadOnly,
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
            Method::BeginReadOnly => "begin_read_only",
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
            Method::Query
                | Method::Schema
                | Method::TableExists
                | Method::ReadPools
                | Method::BeginReadOnly
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
    /// Who is calling: `None` when no tenants are configured (every caller is trusted)
    /// and for the daemon's own calls.
    pub caller: Option<Arc<Caller>>,
}

impl<'a> Call<'a> {
    /// A call of `method` on `pool_id` from the connection being served.
    pub fn new(method: Method, pool_id: &'a str) -> Self {
        let (conn, caller) = conn::current_conn_and_caller();
        Call {
            method,
            pool_id,
            tx_id: "",
            sql: None,
            conn,
            caller,
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

// Called at the call path's single dispatch point (`Calls::dispatch` in calls.rs):
// `admit` before a call, `finish` after it.
impl Calls {
    /// Asks the authorizer, then the middleware chain, whether `call` may run (the chain
    /// may rewrite its SQL). Once per call, before it takes a connection.
    pub(crate) fn admit(&self, call: &mut Call<'_>) -> Result<()> {
        if call.method.writes() {
            conn::note_write();
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use dbpool_core::{Backend, BackendFactory, Error, PoolManager};
    use parking_lot::Mutex;
    use std::time::Duration;

    struct NoBackends;

    #[tonic::async_trait]
    impl BackendFactory for NoBackends {
        async fn create(
            &self,
            _: &str,
            _: &dbpool_config::ResolvedPool,
        ) -> Result<Arc<dyn Backend>> {
            Err(Error::Unsupported("no backends here".into()))
        }
    }

    /// Refuses everything on pool `closed`.
    struct ClosedPool;

    impl Authorizer for ClosedPool {
        fn authorize(&self, call: &Call<'_>) -> Result<()> {
            match call.pool_id {
                "closed" => Err(Error::PermissionDenied("pool closed".into())),
                _ => Ok(()),
            }
        }
    }

    /// Tags statements and records the outcomes it sees.
    #[derive(Default)]
    struct Tagger(Mutex<Vec<(String, u64)>>);

    impl Middleware for Tagger {
        fn before(&self, call: &mut Call<'_>) -> Result<()> {
            if let Some(sql) = &call.sql {
                call.sql = Some(Cow::Owned(format!("/* dbpool */ {sql}")));
            }
            Ok(())
        }

        fn after(&self, call: &Call<'_>, outcome: &Outcome<'_>) {
            let sql = call.sql.as_deref().unwrap_or_default().to_string();
            self.0.lock().push((sql, outcome.rows));
        }
    }

    fn calls(tagger: Arc<Tagger>) -> Calls {
        let manager = Arc::new(PoolManager::new(Arc::new(NoBackends)));
        let mut chain = MiddlewareChain::default();
        chain.push(tagger);
        Calls {
            authorizer: Arc::new(ClosedPool),
            middleware: Arc::new(chain),
            ..Calls::new(manager, Duration::from_secs(1), Default::default())
        }
    }

    #[test]
    fn admission_asks_the_authorizer_then_the_chain() {
        let tagger = Arc::new(Tagger::default());
        let calls = calls(tagger.clone());
        let mut refused = Call::new(Method::Query, "closed").with_sql("SELECT 1");
        let e = calls.admit(&mut refused).unwrap_err();
        assert!(matches!(e, Error::PermissionDenied(_)));
        assert_eq!(
            refused.sql.as_deref(),
            Some("SELECT 1"),
            "the chain never ran"
        );
        let mut call = Call::new(Method::Query, "open").with_sql("SELECT 1");
        calls.admit(&mut call).unwrap();
        assert_eq!(call.sql.as_deref(), Some("/* dbpool */ SELECT 1"));
        let ok = Outcome {
            error: None,
            rows: 3,
            bytes: 24,
            elapsed: Duration::from_millis(1),
        };
        calls.finish(&call, &ok);
        assert_eq!(*tagger.0.lock(), [("/* dbpool */ SELECT 1".to_string(), 3)]);
    }

    #[test]
    fn only_writes_are_writes() {
        assert!(!Method::Query.writes() && !Method::ReadPools.writes());
        assert!(Method::Execute.writes() && Method::CreatePool.writes());
        assert_eq!(Method::ExecuteBatch.name(), "execute_batch");
    }
}
