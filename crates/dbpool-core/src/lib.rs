//! The heart of dbpool: the `Backend` trait, parameters, errors, the `PoolManager` and
//! its counters. No driver code and no gRPC code live here.
mod backend;
pub mod call;
mod error;
mod executor;
pub mod fingerprint;
#[cfg(feature = "grpc")]
pub mod grpc;
mod limiter;
mod manager;
mod metrics;
pub mod normalize;
mod param;
pub mod sql_lex;
mod tx;

pub use backend::{
    validate_statements, Backend, BackendFactory, BatchOutcome, BulkInsert, CircuitState, Failover,
    InsertMode, PoolState, QueryStream, Serving, Statement, StatementResult, TableRef,
};
pub use error::{Bare, Error, Result, Source, UnavailableCause};
pub use executor::Executor;
pub use limiter::{clip, LogLimiter, ECHO_CHARS};
pub use manager::{PoolEntry, PoolManager};
pub use metrics::{
    CallKind, Histogram, HistogramSnapshot, PoolCounters, PoolSnapshot, LATENCY_BUCKETS,
};
pub use normalize::quote_ident;
pub use param::Param;
pub use tx::{Isolation, Owner, Transaction, TxEntry, TxOptions, TxRegistry};
