//! Running statements on one connection: queries streamed in bounded batches from a
//! task that owns the connection, statements with their row counts, plain batches.
//!
//! Every call marks the connection broken first and clears the mark only when the
//! server's answer was read to the end (or was an ordinary SQL error), so a connection
//! left mid-answer by a timeout, a panic or a vanished reader is closed, never reused.
use super::convert::{plan, Decoder};
use super::error::{classify, keeps_connection};
use super::manager::MssqlConn;
use super::params::{refs, Bound};
use super::MssqlSession;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, QueryStream, Result};
use futures::{FutureExt, StreamExt, TryStreamExt};
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tiberius::{QueryItem, Row};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Settles the broken mark after a call: a clean answer or an SQL error keeps the
/// connection, anything else on the wire does not.
pub fn settle<T>(conn: &mut MssqlConn, r: tiberius::Result<T>) -> Result<T> {
    match r {
        Ok(v) => {
            conn.broken = false;
            Ok(v)
        }
        Err(e) => {
            conn.broken = !keeps_connection(&e);
            Err(classify(&e))
        }
    }
}

/// Runs `sql` as a plain batch (no parameters, no results wanted).
pub async fn batch(conn: &mut MssqlConn, sql: &str) -> Result<()> {
    conn.broken = true;
    let r = async { conn.simple_query(sql).await?.into_results().await }.await;
    settle(conn, r).map(|_| ())
}

/// Rolls back the open transaction, if the server has not ended it already (some
/// errors do, and ROLLBACK without a transaction is an error of its own).
pub async fn rollback_if_open(conn: &mut MssqlConn) -> Result<()> {
    conn.broken = true;
    let r = async {
        conn.simple_query("SELECT @@TRANCOUNT")
            .await?
            .into_row()
            .await
    }
    .await;
    let open = settle(conn, r)?
        .and_then(|r| r.get::<i32, _>(0))
        .unwrap_or(1)
        > 0;
    if open {
        batch(conn, "ROLLBACK TRANSACTION").await?;
    }
    Ok(())
}

/// Runs one statement (or several, `;`-separated) and sums the rows they affected.
pub async fn execute_on(conn: &mut MssqlConn, sql: &str, params: &[Bound]) -> Result<u64> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    conn.broken = true;
    let r = conn.execute(sql, &refs(params)).await.map(|r| r.total());
    settle(conn, r)
}

/// Applies the pool's statement timeout (client side: the connection is closed, which
/// stops the statement on the server).
pub async fn timed<T>(
    limit: Option<Duration>,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match limit {
        None => f.await,
        Some(d) => tokio::time::timeout(d, f).await.unwrap_or_else(|_| {
            Err(Error::StatementTimeout(format!(
                "no answer within the pool's statement_timeout_ms ({} ms); the connection was closed",
                d.as_millis()
            )))
        }),
    }
}

/// Aborts the query task when dropped.
struct Stop(Option<tokio::task::AbortHandle>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

enum Msg {
    Schema(SchemaRef),
    Batch(RecordBatch),
    Fail(Error),
}

/// Starts the query in a task that owns the session; returns once the first result
/// set's schema is known (after its first batch, which settles decimal scales).
pub async fn start_query(
    held: MssqlSession,
    sql: String,
    params: Vec<Bound>,
    batch_size: usize,
    limit: Option<Duration>,
) -> Result<QueryStream> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    // Two batches in flight at most: a slow reader slows the database read.
    let (tx, mut rx) = mpsc::channel(2);
    let panic_tx = tx.clone();
    let pooled = !held.interactive();
    let task = tokio::spawn(async move {
        let run = AssertUnwindSafe(run(held, sql, params, batch_size.max(1), tx));
        if let Err(p) = run.catch_unwind().await {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let e = Error::Internal(format!("the TDS driver failed: {what}"));
            let _ = panic_tx.send(Msg::Fail(e)).await;
        }
    });
    let first = timed(limit, async {
        match rx.recv().await {
            Some(Msg::Schema(s)) => Ok(s),
            Some(Msg::Fail(e)) => Err(e),
            Some(Msg::Batch(_)) | None => Err(Error::Internal("query task ended early".into())),
        }
    });
    // A pooled connection whose reader is gone (a timeout, a dropped stream) is closed
    // at once: the task is aborted and the connection, still marked broken, dropped.
    // A transaction's connection is drained by its next call instead.
    let stop = Stop(pooled.then(|| task.abort_handle()));
    let schema = first.await?;
    let batches = ReceiverStream::new(rx)
        .map(move |m| {
            let _owned_by_the_stream = &stop;
            m
        })
        .map(|m| match m {
            Msg::Batch(b) => Ok(b),
            Msg::Fail(e) => Err(e),
            Msg::Schema(_) => Err(Error::Internal("a second schema".into())),
        })
        .boxed();
    Ok(QueryStream { schema, batches })
}

async fn run(
    mut held: MssqlSession,
    sql: String,
    params: Vec<Bound>,
    n: usize,
    tx: mpsc::Sender<Msg>,
) {
    let conn: &mut MssqlConn = &mut held;
    conn.broken = true;
    let (r, clean) = read(conn, &sql, &params, n, &tx).await;
    conn.broken = !clean;
    if let Err(e) = r {
        let _ = tx.send(Msg::Fail(e)).await;
    }
}

/// Streams the first result set into `tx`; later result sets are read and dropped so
/// that an error after them (RAISERROR, a failing statement) still ends the stream.
/// Also says whether the connection was left clean (its answer read to the end).
async fn read(
    conn: &mut MssqlConn,
    sql: &str,
    params: &[Bound],
    n: usize,
    tx: &mpsc::Sender<Msg>,
) -> (Result<()>, bool) {
    let failed = |e: tiberius::error::Error| (Err(classify(&e)), keeps_connection(&e));
    let mut stream = match conn.query(sql, &refs(params)).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let mut columns = Vec::new();
    let mut first: Vec<Row> = Vec::new();
    let mut state: Option<(Vec<Decoder>, SchemaRef)> = None;
    let mut rows = 0usize;
    let mut in_first = true;
    loop {
        let item = match stream.try_next().await {
            Ok(i) => i,
            Err(e) => return failed(e),
        };
        match item {
            Some(QueryItem::Metadata(m)) if m.result_index() == 0 => {
                columns = m.columns().to_vec();
            }
            Some(QueryItem::Metadata(_)) => in_first = false,
            Some(QueryItem::Row(_)) if !in_first => {}
            Some(QueryItem::Row(row)) => match &mut state {
                None => {
                    first.push(row);
                    if first.len() == n {
                        let s = begin(&columns, std::mem::take(&mut first), n, tx).await;
                        match s {
                            Some(s) => state = Some(s),
                            None => return (Ok(()), false), // the reader went away
                        }
                    }
                }
                Some((decoders, schema)) => {
                    if let Err(e) = append(decoders, schema, row) {
                        return (Err(e), false);
                    }
                    rows += 1;
                    if rows == n {
                        rows = 0;
                        let b = match finish(schema, decoders) {
                            Ok(b) => b,
                            Err(e) => return (Err(e), false),
                        };
                        if tx.send(Msg::Batch(b)).await.is_err() {
                            return (Ok(()), false);
                        }
                    }
                }
            },
            None => break,
        }
    }
    drop(stream);
    match state {
        None => {
            let _ = begin(&columns, first, n, tx).await;
        }
        Some((mut decoders, schema)) if rows > 0 => match finish(&schema, &mut decoders) {
            Ok(b) => {
                let _ = tx.send(Msg::Batch(b)).await;
            }
            Err(e) => return (Err(e), true),
        },
        Some(_) => {}
    }
    (Ok(()), true)
}

/// Plans the schema from the first rows, sends it and their batch; None when the
/// reader is gone.
async fn begin(
    columns: &[tiberius::Column],
    first: Vec<Row>,
    n: usize,
    tx: &mpsc::Sender<Msg>,
) -> Option<(Vec<Decoder>, SchemaRef)> {
    let (kinds, schema) = plan(columns, &first);
    let mut decoders: Vec<Decoder> = kinds.iter().map(|k| Decoder::new(*k, n)).collect();
    tx.send(Msg::Schema(schema.clone())).await.ok()?;
    if first.is_empty() {
        return Some((decoders, schema));
    }
    let mut batch = Ok(());
    for row in first {
        batch = append(&mut decoders, &schema, row);
        if batch.is_err() {
            break;
        }
    }
    let msg = match batch.and_then(|_| finish(&schema, &mut decoders)) {
        Ok(b) => Msg::Batch(b),
        Err(e) => Msg::Fail(e),
    };
    tx.send(msg).await.ok()?;
    Some((decoders, schema))
}

fn append(decoders: &mut [Decoder], schema: &Schema, row: Row) -> Result<()> {
    for (i, (d, v)) in decoders.iter_mut().zip(row).enumerate() {
        d.append(v).map_err(|m| {
            let col = schema.field(i).name();
            Error::invalid("sql", format!("column `{col}`: {m}"))
        })?;
    }
    Ok(())
}

fn finish(schema: &SchemaRef, decoders: &mut [Decoder]) -> Result<RecordBatch> {
    let columns = decoders.iter_mut().map(|d| d.finish()).collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The schema of the first result set of `sql`, read from its first batch; used by
/// `schema` inside a transaction or savepoint that the caller rolls back.
pub async fn first_schema(
    conn: &mut MssqlConn,
    sql: &str,
    params: &[Bound],
    n: usize,
) -> Result<SchemaRef> {
    conn.broken = true;
    let r = async {
        let mut stream = conn.query(sql, &refs(params)).await?;
        let mut columns = Vec::new();
        let mut first = Vec::new();
        while let Some(item) = stream.try_next().await? {
            match item {
                QueryItem::Metadata(m) if m.result_index() == 0 => columns = m.columns().to_vec(),
                QueryItem::Metadata(_) => break,
                QueryItem::Row(r) => {
                    first.push(r);
                    if first.len() == n {
                        break;
                    }
                }
            }
        }
        Ok::<_, tiberius::error::Error>(plan(&columns, &first).1)
    }
    .await;
    // What is left unread is drained by the driver before the next request.
    settle(conn, r)
}
