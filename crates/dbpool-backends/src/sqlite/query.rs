//! Queries and statements on an SQLite connection, run on the blocking pool: parameters
//! bound, rows read in batches into Arrow, result shapes described without running.
use super::session::{settle, SqliteSession};
use super::{convert, sq, threads, ColType};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Param, QueryStream, Result};
use futures::StreamExt;
use rusqlite::types::Value;
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// A `Param` as an SQLite value: booleans are 0/1, timestamps ISO-8601 text in UTC
/// (what SQLite's date functions read), decimals text.
fn to_value(p: &Param) -> Value {
    match p {
        Param::Null => Value::Null,
        Param::Bool(b) => Value::Integer(*b as i64),
        Param::Int64(v) => Value::Integer(*v),
        Param::Double(v) => Value::Real(*v),
        Param::String(s) | Param::Decimal(s) => Value::Text(s.clone()),
        Param::Bytes(b) => Value::Blob(b.clone()),
        Param::TimestampMicros(us) => Value::Text(
            chrono::DateTime::from_timestamp_micros(*us)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
                .unwrap_or_default(),
        ),
    }
}

fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Param]) -> Result<()> {
    if stmt.parameter_count() != params.len() {
        return Err(Error::invalid(
            "params",
            format!(
                "the statement has {} placeholders but {} parameters were given",
                stmt.parameter_count(),
                params.len()
            ),
        ));
    }
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_value(p)).map_err(sq)?;
    }
    Ok(())
}

pub(crate) fn execute_on(conn: &Connection, sql: &str, params: &[Param]) -> Result<u64> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    let mut stmt = match conn.prepare(sql) {
        // Several statements and no parameters: a script.
        Err(rusqlite::Error::MultipleStatement) if params.is_empty() => {
            conn.execute_batch(sql).map_err(sq)?;
            return Ok(0);
        }
        other => other.map_err(sq)?,
    };
    bind(&mut stmt, params)?;
    Ok(stmt.raw_execute().map_err(sq)? as u64)
}

/// Reads the query's rows in batches and sends them; the first message decides the
/// schema. Runs on the blocking pool.
fn read_rows(
    conn: &Connection,
    sql: &str,
    params: &[Param],
    batch_size: usize,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    let mut stmt = conn.prepare(sql).map_err(sq)?;
    bind(&mut stmt, params)?;
    if stream_batches(&mut stmt, batch_size, tx)? {
        return Ok(());
    }
    // No row at all: the statement was stepped (and re-prepared if the schema changed),
    // so its columns are current; send one empty batch that carries the schema.
    let _ = tx.blocking_send(Ok(RecordBatch::new_empty(declared_schema(&stmt))));
    Ok(())
}

/// The schema of the statement's result when it has no rows: each column named, typed by
/// its declaration, Utf8 where it has none (an expression). Reads no row.
fn declared_schema(stmt: &rusqlite::Statement<'_>) -> SchemaRef {
    let decl: Vec<Option<ColType>> = stmt
        .columns()
        .iter()
        .map(|c| ColType::declared(c.decl_type()))
        .collect();
    let t = convert::infer(&decl, &[]);
    let fields: Vec<Field> = stmt
        .column_names()
        .iter()
        .zip(&t)
        .map(|(n, ty)| Field::new(*n, ty.data_type(), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Sends the rows in batches; false when the statement returned no row at all.
fn stream_batches(
    stmt: &mut rusqlite::Statement<'_>,
    batch_size: usize,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<bool> {
    let mut rows = stmt.raw_query();
    let mut types: Option<(Vec<ColType>, SchemaRef)> = None;
    let mut buf: Vec<Vec<Value>> = Vec::with_capacity(batch_size);
    let mut sent_rows = 0usize;
    let mut columns_of: Option<(Vec<String>, Vec<Option<ColType>>)> = None;
    loop {
        let row = rows.next().map_err(sq)?;
        let done = row.is_none();
        if let Some(row) = row {
            // Names and declared types are read at the first row: a statement prepared
            // against a schema another connection changed is re-prepared by that step.
            columns_of.get_or_insert_with(|| {
                let stmt = row.as_ref();
                let names = stmt.column_names().iter().map(|s| s.to_string()).collect();
                let decl = stmt
                    .columns()
                    .iter()
                    .map(|c| ColType::declared(c.decl_type()))
                    .collect();
                (names, decl)
            });
            let values = (0..row.as_ref().column_count())
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sq)?;
            buf.push(values);
            if buf.len() < batch_size {
                continue;
            }
        }
        let (t, schema) = match &mut types {
            Some(t) => t,
            None => {
                let Some((names, decl)) = &columns_of else {
                    return Ok(false);
                };
                let t = convert::infer(decl, &buf);
                let fields: Vec<Field> = names
                    .iter()
                    .zip(&t)
                    .map(|(n, ty)| Field::new(n, ty.data_type(), true))
                    .collect();
                types.insert((t, Arc::new(Schema::new(fields))))
            }
        };
        let ncols = t.len();
        if !buf.is_empty() || sent_rows == 0 {
            let columns = (0..ncols)
                .map(|i| convert::column(t[i], schema.field(i).name(), &buf, i, sent_rows))
                .collect::<std::result::Result<Vec<_>, String>>()
                .map_err(|m| Error::invalid("sql", m))?;
            let batch = RecordBatch::try_new_with_options(
                schema.clone(),
                columns,
                &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(buf.len())),
            )?;
            sent_rows += buf.len();
            buf.clear();
            if tx.blocking_send(Ok(batch)).is_err() {
                return Ok(true); // the caller went away
            }
        }
        if done {
            return Ok(true);
        }
    }
}

/// Prepares `sql` to learn its result shape and never runs it: a statement without
/// columns (or a script of several, when no parameters are bound) has an empty schema,
/// others their [`declared_schema`]. SQLite types values, not columns, so the stream of a
/// query may carry other types (read from its first batch); the columns are the same.
pub(crate) fn describe(c: &Connection, sql: &str, bound_params: usize) -> Result<SchemaRef> {
    match c.prepare(sql) {
        Err(rusqlite::Error::MultipleStatement) if bound_params == 0 => {
            Ok(Arc::new(Schema::empty()))
        }
        other => Ok(declared_schema(&other.map_err(sq)?)),
    }
}

/// Runs the query on the blocking pool with `conn`, streaming batches back. Dropping
/// the stream (or this future) before the end stops the read; on a pooled connection
/// it also interrupts a statement still working towards its next row.
pub(crate) async fn start_query(
    conn: SqliteSession,
    sql: &str,
    params: Vec<Param>,
    batch_size: usize,
) -> Result<QueryStream> {
    let sql = sql.to_string();
    let (tx, mut rx) = mpsc::channel(2);
    let (abandon, flag) = threads::abandon_on_drop();
    tokio::task::spawn_blocking(move || {
        let read =
            |c: &SqliteSession| settle(c, read_rows(c, &sql, &params, batch_size.max(1), &tx));
        // Not inside a transaction: an interrupted write makes SQLite roll back the
        // whole transaction, and its next statements would silently run outside one.
        let r = if conn.in_transaction() {
            read(&conn)
        } else {
            read(threads::Watched::new(conn, flag).get())
        };
        if let Err(e) = r {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // The first batch (possibly empty) fixes the schema, or the first error arrives.
    let first = rx
        .recv()
        .await
        .ok_or_else(|| Error::Internal("sqlite reader ended without a result".into()))??;
    let schema = first.schema();
    let rest = ReceiverStream::new(rx);
    let batches = futures::stream::once(async move { Ok(first) })
        .chain(rest)
        .filter(move |b| {
            let _owned_by_the_stream = &abandon;
            futures::future::ready(!matches!(b, Ok(b) if b.num_rows() == 0))
        })
        .boxed();
    Ok(QueryStream { schema, batches })
}
