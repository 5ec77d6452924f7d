//! A query on PostgreSQL: bound in one round trip when its statement is cached, binary
//! rows decoded straight into Arrow builders. A result that fits in one batch is read
//! inline and its connection goes back to the pool before the caller sees it; a larger
//! one streams from a task that owns the connection, two batches ahead at most.
use super::cancel::Cancelling;
use super::params::PgParam;
use super::session::Prepared;
use super::{pg, AsClient, Decoder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Param, QueryStream, Result};
use futures::StreamExt;
use std::pin::Pin;
use tokio_postgres::{RowStream, Statement};
use tokio_stream::wrappers::ReceiverStream;

/// Binds and starts the query on `conn`, then reads its first batch.
pub(crate) async fn start_query<C: AsClient>(
    conn: C,
    sql: &str,
    params: Vec<Param>,
    batch_size: usize,
) -> Result<QueryStream> {
    // Armed from here: a caller that goes away while the statement runs cancels it.
    let conn = Cancelling::new(conn);
    let (prepared, rows) = match bind(conn.inner(), sql, &params).await {
        Ok(started) => started,
        Err(e) => {
            conn.done();
            return Err(e);
        }
    };
    let schema = prepared.schema.clone();
    let mut reader = RowReader::new(prepared.stmt, rows, schema.clone(), batch_size.max(1));
    let first = match reader.next().await {
        Step::Last(batch) => {
            // Every row is here: the connection goes back before the caller reads.
            conn.done();
            drop(conn);
            let batches = futures::stream::iter(batch.map(Ok));
            return Ok(QueryStream {
                schema,
                batches: batches.boxed(),
            });
        }
        Step::Failed(e, ended) => {
            if ended {
                conn.done();
            }
            return Err(e);
        }
        Step::Batch(b) => b,
    };
    // Two batches in flight at most: a slow reader slows the database read.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return; // the caller went away; dropping `conn` cancels the statement
        }
        loop {
            let (item, last) = match reader.next().await {
                Step::Batch(b) => (Some(Ok(b)), false),
                Step::Last(b) => {
                    conn.done();
                    (b.map(Ok), true)
                }
                Step::Failed(e, ended) => {
                    if ended {
                        conn.done();
                    }
                    (Some(Err(e)), true)
                }
            };
            if let Some(item) = item {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            if last {
                return;
            }
        }
    });
    Ok(QueryStream {
        schema,
        batches: ReceiverStream::new(rx).boxed(),
    })
}

/// The statement of `sql` and its running portal; a stale cache entry is prepared anew.
async fn bind<C: AsClient>(conn: &C, sql: &str, params: &[Param]) -> Result<(Prepared, RowStream)> {
    let client = conn.client();
    let run =
        |stmt: Statement| async move { client.query_raw(&stmt, params.iter().map(PgParam)).await };
    conn.cache()
        .run(client, sql, params, conn.may_rerun(), run)
        .await
}

/// Rows the column builders have room for at first.
const INITIAL_CAPACITY: usize = 256;

/// What one read of up to a batch of rows gave.
enum Step {
    /// A full batch; more rows may follow.
    Batch(RecordBatch),
    /// The statement ended: the rows since the last batch, if any.
    Last(Option<RecordBatch>),
    /// An error; `true` when the statement ended with it (nothing left to cancel).
    Failed(Error, bool),
}

/// Turns the rows of a running statement into record batches.
struct RowReader {
    stmt: Statement,
    rows: Pin<Box<RowStream>>,
    schema: SchemaRef,
    decoders: Vec<Decoder>,
    batch_size: usize,
}

impl RowReader {
    fn new(stmt: Statement, rows: RowStream, schema: SchemaRef, batch_size: usize) -> Self {
        // Builders start small and grow by doubling (as they do after every `finish`): a
        // one-row result must not allocate a whole batch's worth per column.
        let capacity = batch_size.min(INITIAL_CAPACITY);
        let decoders = stmt
            .columns()
            .iter()
            .map(|c| Decoder::new(c.type_(), c.type_modifier(), capacity))
            .collect();
        RowReader {
            stmt,
            rows: Box::pin(rows),
            schema,
            decoders,
            batch_size,
        }
    }

    async fn next(&mut self) -> Step {
        let mut n = 0usize;
        while let Some(row) = self.rows.next().await {
            let row = match row {
                Ok(r) => r,
                Err(e) => return Step::Failed(pg(e), true),
            };
            for (i, d) in self.decoders.iter_mut().enumerate() {
                let raw = row.try_get::<_, Option<Raw>>(i).map(|r| r.map(|r| r.0));
                if let Err(m) = raw.map_err(|e| e.to_string()).and_then(|raw| d.append(raw)) {
                    let col = self.stmt.columns()[i].name();
                    // A value Arrow cannot hold (NaN numeric, infinite timestamp): the
                    // caller can cast it in SQL.
                    let e = Error::invalid("sql", format!("column `{col}`: {m}; cast it in SQL"));
                    return Step::Failed(e, false);
                }
            }
            n += 1;
            if n == self.batch_size {
                return match self.finish() {
                    Ok(b) => Step::Batch(b),
                    Err(e) => Step::Failed(e, false),
                };
            }
        }
        if n == 0 {
            return Step::Last(None);
        }
        match self.finish() {
            Ok(b) => Step::Last(Some(b)),
            Err(e) => Step::Failed(e, true),
        }
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let columns = self.decoders.iter_mut().map(|d| d.finish()).collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// Any value as its raw binary bytes; `convert` decodes them by column type.
struct Raw<'a>(&'a [u8]);

impl<'a> postgres_types::FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &postgres_types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &postgres_types::Type) -> bool {
        true
    }
}
