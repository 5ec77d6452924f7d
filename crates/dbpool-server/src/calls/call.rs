//! A statement call as the dispatch point sees it: where it runs (`Target`, a pool or a
//! transaction on one), what it is (`Op`) and what it returned (`Reply`).
use crate::hooks::Method;
use arrow::datatypes::SchemaRef;
use dbpool_core::{
    BatchOutcome, BulkInsert, Error, Executor, Param, PoolEntry, QueryStream, Result, Statement,
    TxEntry,
};
use std::sync::Arc;

/// Where a call runs: a pool, or a transaction on one.
pub(crate) enum Target {
    /// A pool: each call checks a connection out.
    Pool(Arc<PoolEntry>),
    /// A transaction: calls run on its pinned connection.
    Tx(Arc<TxEntry>),
}

impl Target {
    pub(crate) fn tx(&self) -> Option<&Arc<TxEntry>> {
        match self {
            Target::Pool(_) => None,
            Target::Tx(t) => Some(t),
        }
    }

    pub(crate) fn pool(&self) -> &Arc<PoolEntry> {
        match self {
            Target::Pool(p) => p,
            Target::Tx(t) => &t.pool,
        }
    }

    /// The statement verbs of the pool, or of the transaction: the one place a call
    /// tells them apart.
    pub(crate) fn executor(&self) -> &dyn Executor {
        match self {
            Target::Pool(p) => &*p.backend,
            Target::Tx(t) => &*t.tx,
        }
    }
}

/// A statement call as it reaches the dispatch point.
pub enum Op<'a> {
    /// A query, streamed in batches of `batch_size` rows.
    Query {
        /// The SQL.
        sql: &'a str,
        /// Bind parameters.
        params: Vec<Param>,
        /// Rows per batch.
        batch_size: usize,
    },
    /// The schema a query would return.
    Schema {
        /// The SQL.
        sql: &'a str,
        /// Bind parameters.
        params: Vec<Param>,
    },
    /// One statement.
    Execute {
        /// The SQL.
        sql: &'a str,
        /// Bind parameters.
        params: Vec<Param>,
    },
    /// A batch of statements (on a pool).
    Batch {
        /// The statements.
        statements: Vec<Statement>,
        /// All or nothing.
        transaction: bool,
    },
    /// Record batches into a table.
    BulkInsert {
        /// The table and what to do with it.
        target: BulkInsert,
        /// The rows: their schema and record batches.
        rows: QueryStream,
    },
}

impl<'a> Op<'a> {
    /// The method the authorizer and the middleware see.
    pub(crate) fn method(&self) -> Method {
        match self {
            Op::Query { .. } => Method::Query,
            Op::Schema { .. } => Method::Schema,
            Op::Execute { .. } => Method::Execute,
            Op::Batch { .. } => Method::ExecuteBatch,
            Op::BulkInsert { .. } => Method::BulkInsert,
        }
    }

    /// The statement of a statement call.
    pub(crate) fn sql(&self) -> Option<&'a str> {
        match self {
            Op::Query { sql, .. } | Op::Schema { sql, .. } | Op::Execute { sql, .. } => Some(sql),
            Op::Batch { .. } | Op::BulkInsert { .. } => None,
        }
    }

    /// The same call with the statement a middleware rewrote it to.
    pub(crate) fn with_sql<'b>(self, new: &'b str) -> Op<'b>
    where
        'a: 'b,
    {
        match self {
            Op::Query {
                params, batch_size, ..
            } => Op::Query {
                sql: new,
                params,
                batch_size,
            },
            Op::Schema { params, .. } => Op::Schema { sql: new, params },
            Op::Execute { params, .. } => Op::Execute { sql: new, params },
            other => other,
        }
    }
}

/// What a call returned.
pub enum Reply {
    /// A query's stream.
    Stream(QueryStream),
    /// A schema.
    Schema(SchemaRef),
    /// Rows affected or written.
    Rows(u64),
    /// A batch's outcomes.
    Batch(BatchOutcome),
}

/// `Reply::$name(self)`: the `$variant` a call of that kind returns, or an internal
/// error when the reply is of another kind.
macro_rules! reply_accessor {
    ($name:ident, $variant:ident, $ty:ty) => {
        pub(crate) fn $name(self) -> Result<$ty> {
            match self {
                Reply::$variant(v) => Ok(v),
                _ => Err(Error::Internal(
                    "a call got the reply of another kind of call".into(),
                )),
            }
        }
    };
}

impl Reply {
    reply_accessor!(stream, Stream, QueryStream);
    reply_accessor!(schema, Schema, SchemaRef);
    reply_accessor!(rows, Rows, u64);
    reply_accessor!(batch, Batch, BatchOutcome);
}
