//! Redis through redis-rs multiplexed connections behind bb8: command lines in, Arrow
//! tables out (docs/redis.md), pattern reads streamed with SCAN, pipelines and
//! MULTI/EXEC batches, DataFrames into hashes, strings, lists and streams.
mod bulk;
mod columns;
mod command;
mod error;
mod manager;
mod reply;
mod scan;
mod settings;
mod target;

pub use command::Command;
pub use manager::{RedisConn, RedisManager};
pub use settings::{Settings, DEFAULT_DENIED};

use crate::exec::{Driver, PoolBackend, Session};
use crate::pool::{Conn, PoolHandle};
use arrow::datatypes::SchemaRef;
use dbpool_config::{BackendKind, ResolvedPool};
use dbpool_core::{
    BatchOutcome, BulkInsert, Error, Param, QueryStream, Result, Statement, StatementResult,
};
use futures::StreamExt;
use parking_lot::Mutex;
use redis::{FromRedisValue, Value};
use std::collections::HashMap;

/// A connection a Redis call runs on (Redis has no transactions to pin one to).
pub(crate) type RedisSession = Session<Conn<RedisManager>>;

/// A Redis pool.
pub type RedisBackend = PoolBackend<RedisDriver>;

/// Redis through redis-rs, with the pool's settings.
pub struct RedisDriver {
    pool: PoolHandle<RedisManager>,
    settings: Settings,
    /// Whether a command is read-only (from COMMAND INFO), for `schema`.
    readonly: Mutex<HashMap<String, bool>>,
}

impl RedisDriver {
    /// Parses a command line and applies the pool's policy.
    fn command(&self, line: &str, params: Vec<Param>) -> Result<Command> {
        let cmd = Command::parse(line, params)?;
        self.settings.policy.check(&cmd)?;
        Ok(cmd)
    }

    /// Parses a command for execute: pattern reads are queries only.
    fn write_command(&self, line: &str, params: Vec<Param>) -> Result<Command> {
        let cmd = self.command(line, params)?;
        if scan::Spec::parse(&cmd)?.is_some() {
            return Err(Error::invalid(
                "sql",
                format!("{} is a read; run it with query", cmd.name()),
            ));
        }
        Ok(cmd)
    }

    /// Whether the server flags `name` read-only; unknown commands count as read-only
    /// (running them yields the server's own error).
    async fn is_readonly(&self, conn: &mut Conn<RedisManager>, name: &str) -> Result<bool> {
        if let Some(r) = self.readonly.lock().get(name) {
            return Ok(*r);
        }
        let mut info = redis::cmd("COMMAND");
        info.arg("INFO").arg(name);
        let reply: Value = run(conn, &info).await?;
        let flags = match reply {
            Value::Array(mut a) if !a.is_empty() => match a.swap_remove(0) {
                Value::Array(mut doc) if doc.len() > 2 => Some(doc.swap_remove(2)),
                _ => None,
            },
            _ => None,
        };
        let readonly = match flags {
            Some(Value::Array(f)) | Some(Value::Set(f)) => f.iter().any(|v| {
                matches!(v, Value::SimpleString(s) if s.eq_ignore_ascii_case("readonly"))
                    || matches!(v, Value::BulkString(b) if b.eq_ignore_ascii_case(b"readonly"))
            }),
            _ => true,
        };
        self.readonly.lock().insert(name.to_string(), readonly);
        Ok(readonly)
    }
}

/// Runs one command; a connection-level failure marks the connection broken.
pub(crate) async fn run<T: FromRedisValue>(
    conn: &mut Conn<RedisManager>,
    cmd: &redis::Cmd,
) -> Result<T> {
    let c: &mut RedisConn = conn;
    c.broken = true; // until the reply is read: see `RedisConn::broken`
    let r = cmd.query_async::<T>(&mut c.conn).await;
    c.broken = false;
    r.map_err(|e| fail(c, &e))
}

/// Runs a pipeline (or MULTI/EXEC when it is atomic), same failure handling.
pub(crate) async fn run_pipe<T: FromRedisValue>(
    conn: &mut Conn<RedisManager>,
    pipe: &redis::Pipeline,
) -> Result<T> {
    let r = pipe_raw(conn, pipe).await;
    r.map_err(|e| fail(conn, &e))
}

/// Sends a pipeline and reads its replies, the connection marked broken meanwhile.
async fn pipe_raw<T: FromRedisValue>(
    conn: &mut Conn<RedisManager>,
    pipe: &redis::Pipeline,
) -> redis::RedisResult<T> {
    let c: &mut RedisConn = conn;
    c.broken = true;
    let r = pipe.query_async::<T>(&mut c.conn).await;
    c.broken = false;
    r
}

fn fail(conn: &mut RedisConn, e: &redis::RedisError) -> Error {
    if !error::keeps_connection(e) {
        conn.broken = true;
    }
    error::classify(e)
}

/// The reply's table cut into batches of `batch_size` rows.
fn stream_of(batch: arrow::record_batch::RecordBatch, batch_size: usize) -> QueryStream {
    let schema = batch.schema();
    let size = batch_size.max(1);
    let slices: Vec<Result<_>> = (0..batch.num_rows())
        .step_by(size)
        .map(|o| Ok(batch.slice(o, size.min(batch.num_rows() - o))))
        .collect();
    QueryStream {
        schema,
        batches: futures::stream::iter(slices).boxed(),
    }
}

impl Driver for RedisDriver {
    type Conn = Conn<RedisManager>;
    type Pool = PoolHandle<RedisManager>;
    const KIND: BackendKind = BackendKind::Redis;
    const NO_TRANSACTIONS: Option<&'static str> = Some(
        "Redis cannot roll back; send the commands together with \
         execute_batch(transaction=true), which runs them in MULTI/EXEC",
    );

    /// Builds the pool from a `redis://` or `rediss://` URL and the pool's settings.
    fn open(_pool_id: &str, cfg: &ResolvedPool) -> Result<Self> {
        let settings = Settings::parse(&cfg.settings, &cfg.options)?;
        let manager = RedisManager::new(cfg.url.expose(), &settings)?;
        // Commands that change a connection's state are refused (settings.rs): there is
        // nothing to reset, and `always` would only reconnect after every call.
        let options = dbpool_config::PoolOptions {
            reset_sessions: dbpool_config::ResetSessions::Auto,
            ..cfg.options.clone()
        };
        Ok(RedisDriver {
            pool: PoolHandle::new(manager, &options, error::classify),
            settings,
            readonly: Mutex::new(HashMap::new()),
        })
    }

    fn pool(&self) -> &PoolHandle<RedisManager> {
        &self.pool
    }

    async fn query(
        &self,
        mut conn: RedisSession,
        sql: &str,
        params: Vec<Param>,
        batch_size: usize,
    ) -> Result<QueryStream> {
        let cmd = self.command(sql, params)?;
        if let Some(spec) = scan::Spec::parse(&cmd)? {
            self.settings.policy.check_names(spec.commands())?;
            return scan::start(conn, spec, batch_size, self.settings.scan_count).await;
        }
        let reply: Value = run(&mut conn, &cmd.to_cmd()).await?;
        Ok(stream_of(reply::to_batch(&cmd, reply)?, batch_size))
    }

    /// Pattern reads read their first batch; other commands run when the server flags
    /// them read-only, since the shape of a reply is known only from the reply.
    async fn schema(
        &self,
        mut conn: RedisSession,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<SchemaRef> {
        let cmd = self.command(sql, params)?;
        let batch_size = self.pool.options().batch_size as usize;
        if let Some(spec) = scan::Spec::parse(&cmd)? {
            self.settings.policy.check_names(spec.commands())?;
            return scan::schema(conn, spec, batch_size, self.settings.scan_count).await;
        }
        if !self.is_readonly(&mut conn, &cmd.name()).await? {
            return Err(Error::Unsupported(format!(
                "the schema of `{}` before running it: Redis tells the shape of a write only \
                 by its reply; run it with Query or Execute instead of GetFlightInfo",
                cmd.name()
            )));
        }
        let reply: Value = run(&mut conn, &cmd.to_cmd()).await?;
        Ok(reply::to_batch(&cmd, reply)?.schema())
    }

    async fn execute(&self, conn: &mut RedisSession, sql: &str, params: Vec<Param>) -> Result<u64> {
        let cmd = self.write_command(sql, params)?;
        let reply: Value = run(conn, &cmd.to_cmd()).await?;
        Ok(reply::affected(&reply))
    }

    /// One pipeline (MULTI/EXEC when it is a transaction): commands the pool refuses
    /// are not sent, and in a transaction none is.
    async fn batch(&self, statements: Vec<Statement>, transaction: bool) -> Result<BatchOutcome> {
        let parsed: Vec<Result<Command>> = statements
            .into_iter()
            .map(|s| self.write_command(&s.sql, s.params))
            .collect();
        if transaction {
            // Nothing is sent unless every command is acceptable.
            if let Some((index, Err(e))) = parsed.iter().enumerate().find(|(_, c)| c.is_err()) {
                return Err(Error::BatchStatement {
                    index,
                    source: Box::new(e.clone()),
                });
            }
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        if transaction {
            pipe.atomic();
        }
        // Position of each sent command in the batch.
        let sent: Vec<usize> = parsed
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().ok().map(|c| (i, c)))
            .map(|(i, c)| {
                pipe.add_command(c.to_cmd());
                i
            })
            .collect();
        let mut out: Vec<StatementResult> = parsed
            .into_iter()
            .enumerate()
            .map(|(index, c)| StatementResult {
                index,
                outcome: c.map(|_| 0),
            })
            .collect();
        if sent.is_empty() {
            return Ok(out);
        }
        let mut conn = self.pool.acquire().await?;
        let replies = match pipe_raw::<Value>(&mut conn, &pipe).await {
            Ok(Value::Array(r)) => r,
            Ok(Value::Nil) => {
                return Err(Error::Aborted {
                    message: "EXEC returned nil: the transaction was discarded".into(),
                    code: "EXECABORT".into(),
                })
            }
            Ok(other) => return Err(Error::Internal(format!("a pipeline replied {other:?}"))),
            Err(e) => {
                let classified = fail(&mut conn, &e);
                return Err(batch_error(&e, transaction, &sent, classified));
            }
        };
        // An error reply inside EXEC ran after the others; Redis keeps their effects.
        for (reply, &index) in replies.iter().zip(&sent) {
            out[index].outcome = match reply {
                Value::ServerError(e) => Err(error::server(e)),
                v => Ok(reply::affected(v)),
            };
        }
        if transaction {
            if let Some(r) = out.iter().find(|r| r.outcome.is_err()) {
                return Err(Error::BatchStatement {
                    index: r.index,
                    source: Box::new(r.outcome.clone().unwrap_err()),
                });
            }
        }
        Ok(out)
    }

    async fn bulk_insert(
        &self,
        conn: RedisSession,
        target: BulkInsert,
        rows: QueryStream,
    ) -> Result<u64> {
        bulk::bulk_insert(conn, &self.settings, target, rows).await
    }

    async fn health_check(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        run::<()>(&mut conn, &redis::cmd("PING")).await
    }
}

/// A failed pipeline: with `transaction`, an EXECABORT (a command refused while
/// queueing) names the statement; anything else is the connection's.
fn batch_error(
    e: &redis::RedisError,
    transaction: bool,
    sent: &[usize],
    classified: Error,
) -> Error {
    let first = e
        .clone()
        .into_server_errors()
        .and_then(|errs| errs.first().cloned());
    match (transaction, first) {
        (true, Some((i, se))) if i < sent.len() => Error::BatchStatement {
            index: sent[i],
            source: Box::new(error::server(&se)),
        },
        _ => classified,
    }
}
