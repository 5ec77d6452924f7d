//! A query on PostgreSQL: bound in one round trip when its statement is cached, binary
//! rows decoded straight into Arrow builders. A result that fits in one batch is read
//! inline and its connection goes back to the pool before the caller sees it; a larger
//! one streams from a task that owns the connection, two batches ahead at most.
use super::cancel::Cancelling;
use super::params::PgParam;
use super::session::{Prepared, Target};
use super::{client, pg, schema_of_columns, Decoder, PgSession};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Param, QueryStream, Result};
use futures::StreamExt;
use std::pin::Pin;
use tokio_postgres::{Column, RowStream};
use tokio_stream::wrappers::ReceiverStream;

/// Binds and starts the query on `conn`, then reads its first batch.
pub(crate) async fn start_query(
    conn: PgSession,
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
    let mut reader = match RowReader::new(prepared, rows, batch_size.max(1)) {
        Ok(r) => r,
        Err(e) => {
            conn.done();
            return Err(e);
        }
    };
    let first = match reader.next().await {
        Step::Last(batch) => {
            // Every row is here: the connection goes back before the caller reads.
            conn.done();
            let schema = match (&batch, reader.schema()) {
                (Some(b), _) => b.schema(),
                (None, Some(schema)) => schema,
                // An unnamed statement without rows told nothing about its columns.
                (None, None) => {
                    let c = conn.inner();
                    c.cache()
                        .describe_unnamed(client(c), sql, c.in_transaction())
                        .await?
                }
            };
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
    let schema = first.schema();
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

/// The statement of `sql` (none when unnamed) and its running portal; a stale cache
/// entry is prepared anew.
async fn bind<'s>(
    conn: &PgSession,
    sql: &'s str,
    params: &[Param],
) -> Result<(Option<Prepared>, RowStream)> {
    let client = client(conn);
    let run = |target: Target<'s>| async move {
        match target {
            Target::Named(stmt) => client.query_raw(&stmt, params.iter().map(PgParam)).await,
            Target::Unnamed(sql) => {
                let typed = params.iter().map(|p| {
                    let p = PgParam(p);
                    let ty = p.unnamed_type();
                    (p, ty)
                });
                client.query_typed_raw(sql, typed).await
            }
        }
    };
    // A stale statement runs again, unless a transaction it aborted is open.
    let rerun = !conn.in_transaction();
    conn.cache().run(client, sql, params, rerun, run).await
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

/// Schema and decoders of a result's columns.
struct Columns {
    schema: SchemaRef,
    decoders: Vec<Decoder>,
}

impl Columns {
    fn new(columns: &[Column], schema: Option<SchemaRef>, capacity: usize) -> Result<Self> {
        let decoders = columns
            .iter()
            .map(|c| {
                Decoder::new(c.type_(), c.type_modifier(), capacity).map_err(|m| {
                    Error::invalid("sql", format!("column `{}`: {m}; cast it in SQL", c.name()))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Columns {
            schema: schema.unwrap_or_else(|| schema_of_columns(columns)),
            decoders,
        })
    }
}

/// Turns the rows of a running statement into record batches.
struct RowReader {
    rows: Pin<Box<RowStream>>,
    /// From the named statement, or from the first row of an unnamed one.
    columns: Option<Columns>,
    batch_size: usize,
}

impl RowReader {
    fn new(prepared: Option<Prepared>, rows: RowStream, batch_size: usize) -> Result<Self> {
        let columns = match prepared {
            Some(p) => Some(Columns::new(
                p.stmt.columns(),
                Some(p.schema),
                Self::capacity(batch_size),
            )?),
            None => None,
        };
        Ok(RowReader {
            rows: Box::pin(rows),
            columns,
            batch_size,
        })
    }

    /// Builders start small and grow by doubling (as they do after every `finish`): a
    /// one-row result must not allocate a whole batch's worth per column.
    fn capacity(batch_size: usize) -> usize {
        batch_size.min(INITIAL_CAPACITY)
    }

    /// The result schema, once known.
    fn schema(&self) -> Option<SchemaRef> {
        self.columns.as_ref().map(|c| c.schema.clone())
    }

    async fn next(&mut self) -> Step {
        let mut n = 0usize;
        while let Some(row) = self.rows.next().await {
            let row = match row {
                Ok(r) => r,
                Err(e) => return Step::Failed(pg(e), true),
            };
            let columns = match &mut self.columns {
                Some(c) => c,
                empty => {
                    let capacity = Self::capacity(self.batch_size);
                    match Columns::new(row.columns(), None, capacity) {
                        Ok(c) => empty.insert(c),
                        Err(e) => return Step::Failed(e, false),
                    }
                }
            };
            for (i, d) in columns.decoders.iter_mut().enumerate() {
                let raw = row.try_get::<_, Option<Raw>>(i).map(|r| r.map(|r| r.0));
                if let Err(m) = raw.map_err(|e| e.to_string()).and_then(|raw| d.append(raw)) {
                    let fields = columns.schema.fields();
                    let col = fields.get(i).map_or("?", |f| f.name().as_str());
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
        let Some(c) = &mut self.columns else {
            return Err(Error::Internal("a batch without columns".into()));
        };
        let columns = c.decoders.iter_mut().map(|d| d.finish()).collect();
        Ok(RecordBatch::try_new(c.schema.clone(), columns)?)
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
