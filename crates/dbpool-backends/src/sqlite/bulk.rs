//! Bulk insert into SQLite: one IMMEDIATE transaction and one prepared INSERT on the
//! blocking pool, fed record batches through a bounded channel.
use super::session::SqliteSession;
use super::{sq, ColType};
use arrow::array::{Array, AsArray};
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use dbpool_core::normalize::{
    create_table_sql, insert_ddl, no_column_type, normalize_rows, quote_ident, quote_table,
};
use dbpool_core::{BulkInsert, Error, QueryStream, Result};
use futures::StreamExt;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::TransactionBehavior;
use tokio::sync::mpsc;

/// How values of one Arrow column are stored (docs/types.md, "Bulk insert").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    /// Arrow Null: NULL whatever the column.
    Null,
    /// Boolean → INTEGER 0/1.
    Bool,
    /// Int16/32/64 → INTEGER.
    Int,
    /// Float32/64 → REAL.
    Float,
    /// Decimal128 → exact decimal TEXT.
    DecimalText,
    /// Decimal128 → REAL, for REAL and NUMERIC columns.
    DecimalReal,
    /// Utf8 → TEXT.
    Text,
    /// Binary → BLOB.
    Blob,
    /// Date32 → TEXT `YYYY-MM-DD`.
    Date,
    /// Time64(µs) → TEXT `HH:MM:SS.ffffff`.
    Time,
    /// Timestamp(µs) → TEXT `YYYY-MM-DD HH:MM:SS.ffffff`, the instant in UTC when zoned.
    Timestamp,
    /// Duration(µs) → INTEGER microseconds.
    Duration,
}

/// How a canonical Arrow type is stored in a column read as `col` (None: declared
/// BLOB or without a type, which takes anything); None when the reader could not
/// read it back.
fn plan(dt: &DataType, col: Option<ColType>) -> Option<Enc> {
    use ColType as C;
    use DataType as D;
    Some(match (dt, col) {
        (D::Null, _) => Enc::Null,
        (D::Boolean, None | Some(C::Bool | C::Int | C::Real)) => Enc::Bool,
        (D::Int16 | D::Int32 | D::Int64, None | Some(C::Int | C::Real)) => Enc::Int,
        (D::Float32 | D::Float64, None | Some(C::Real)) => Enc::Float,
        (D::Decimal128(..), Some(C::Real)) => Enc::DecimalReal,
        (D::Decimal128(..), None | Some(C::Text)) => Enc::DecimalText,
        (D::Utf8, None | Some(C::Text)) => Enc::Text,
        (D::Binary, None | Some(C::Blob)) => Enc::Blob,
        (D::Date32, None | Some(C::Text)) => Enc::Date,
        (D::Time64(_), None | Some(C::Text)) => Enc::Time,
        (D::Timestamp(..), None | Some(C::Text)) => Enc::Timestamp,
        (D::Duration(_), None | Some(C::Int)) => Enc::Duration,
        _ => return None,
    })
}

/// The declared type `CREATE TABLE` gives a canonical Arrow type.
fn sqlite_type(name: &str, dt: &DataType) -> Result<&'static str> {
    Ok(match dt {
        DataType::Boolean => "BOOLEAN",
        DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Duration(_) => "INTEGER",
        DataType::Float32 | DataType::Float64 => "REAL",
        DataType::Decimal128(..) | DataType::Utf8 => "TEXT",
        DataType::Binary => "BLOB",
        DataType::Date32 => "DATE",
        DataType::Time64(_) => "TIME",
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Null => return Err(no_column_type(name, dt, "SQLite")),
        other => return Err(unsupported(name, other)),
    })
}

fn unsupported(name: &str, dt: &DataType) -> Error {
    Error::invalid(name, format!("Arrow type {dt} cannot be stored in SQLite"))
}

/// What the async side hands the writer.
enum Msg {
    /// Rows to insert (normalized and checked).
    Batch(RecordBatch),
    /// The stream ended: commit. Without it a closed channel means roll back.
    End,
}

/// Writes `rows` into `target` in one transaction: every row or none. Not inside a
/// transaction: the insert runs in one of its own.
pub async fn bulk_insert(
    conn: SqliteSession,
    target: BulkInsert,
    rows: QueryStream,
) -> Result<u64> {
    conn.refuse_in_transaction("bulk insert", "sqlite")?;
    let QueryStream {
        schema,
        mut batches,
    } = normalize_rows(rows)?;
    for f in schema.fields() {
        if matches!(f.data_type(), DataType::List(_)) {
            return Err(unsupported(f.name(), f.data_type()));
        }
    }
    let table = quote_table(&target.table)?;
    let ddl = insert_ddl(target.mode, &table, || {
        create_table_sql(&table, &schema, sqlite_type)
    })?;
    // Two batches in flight at most: a slow disk slows the sender.
    let (tx, rx) = mpsc::channel(2);
    let writer = {
        let schema = schema.clone();
        tokio::task::spawn_blocking(move || write(conn, &table, ddl.as_deref(), &schema, rx))
    };
    let mut failed = None;
    loop {
        let msg = match batches.next().await {
            None => Msg::End,
            Some(Ok(b)) => Msg::Batch(b),
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
        };
        let end = matches!(msg, Msg::End);
        // A closed channel means the writer failed; its error comes from the join.
        if tx.send(msg).await.is_err() || end {
            break;
        }
    }
    // Without `End` the writer rolls back; wait for it so the table is settled.
    drop(tx);
    let written = writer
        .await
        .map_err(|e| Error::Internal(format!("sqlite bulk insert task: {e}")))?;
    match failed {
        Some(e) => Err(e),
        None => written,
    }
}

/// The blocking side: transaction, DDL, schema check, then one INSERT per row.
fn write(
    mut conn: SqliteSession,
    table: &str,
    ddl: Option<&str>,
    schema: &Schema,
    mut rx: mpsc::Receiver<Msg>,
) -> Result<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sq)?;
    if let Some(ddl) = ddl {
        tx.execute_batch(ddl).map_err(sq)?;
    }
    let encs = plan_columns(&tx, table, schema)?;
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| quote_ident(f.name()))
        .collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        cols.join(", "),
        marks.join(", ")
    );
    let mut stmt = tx.prepare(&sql).map_err(sq)?;
    let mut written = 0usize;
    loop {
        let batch = match rx.blocking_recv() {
            Some(Msg::Batch(b)) => b,
            Some(Msg::End) => break,
            // Dropping `tx` rolls back.
            None => return Err(Error::Internal("bulk insert aborted".into())),
        };
        for row in 0..batch.num_rows() {
            for (i, (col, enc)) in batch.columns().iter().zip(&encs).enumerate() {
                let v = value(*enc, col.as_ref(), row).map_err(|m| {
                    let name = schema.field(i).name();
                    Error::invalid(name, format!("row {}: {m}", written + row))
                })?;
                stmt.raw_bind_parameter(i + 1, v).map_err(sq)?;
            }
            stmt.raw_execute().map_err(sq)?;
        }
        written += batch.num_rows();
    }
    drop(stmt);
    tx.commit().map_err(sq)?;
    Ok(written as u64)
}

/// Matches every field to a column and plans its storage; the declared types are read
/// the way `query` reads them, so what goes in comes back.
fn plan_columns(conn: &rusqlite::Connection, table: &str, schema: &Schema) -> Result<Vec<Enc>> {
    let stmt = conn
        .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
        .map_err(sq)?;
    let columns = stmt.columns();
    schema
        .fields()
        .iter()
        .map(|f| {
            let col = columns
                .iter()
                .find(|c| c.name() == f.name())
                .ok_or_else(|| {
                    Error::invalid(
                        f.name(),
                        format!("table `{table}` has no column `{}`", f.name()),
                    )
                })?;
            let declared = ColType::declared(col.decl_type());
            plan(f.data_type(), declared).ok_or_else(|| {
                Error::invalid(
                    f.name(),
                    format!(
                        "Arrow type {} cannot be written into column `{}` declared `{}`",
                        f.data_type(),
                        f.name(),
                        col.decl_type().unwrap_or("")
                    ),
                )
            })
        })
        .collect()
}

const DAYS_CE_TO_UNIX: i32 = 719_163;

/// The SQLite value of the cell at `row`.
fn value(enc: Enc, a: &dyn Array, row: usize) -> std::result::Result<ToSqlOutput<'_>, String> {
    use ToSqlOutput::{Borrowed, Owned};
    if enc == Enc::Null || a.is_null(row) {
        return Ok(Owned(Value::Null));
    }
    let text = |s: String| Ok(Owned(Value::Text(s)));
    match enc {
        Enc::Null => Ok(Owned(Value::Null)),
        Enc::Bool => Ok(Owned(Value::Integer(a.as_boolean().value(row) as i64))),
        Enc::Int => Ok(Owned(Value::Integer(match a.data_type() {
            DataType::Int16 => a.as_primitive::<Int16Type>().value(row) as i64,
            DataType::Int32 => a.as_primitive::<Int32Type>().value(row) as i64,
            _ => a.as_primitive::<Int64Type>().value(row),
        }))),
        Enc::Float => Ok(Owned(Value::Real(match a.data_type() {
            DataType::Float32 => a.as_primitive::<Float32Type>().value(row) as f64,
            _ => a.as_primitive::<Float64Type>().value(row),
        }))),
        Enc::DecimalText => text(a.as_primitive::<Decimal128Type>().value_as_string(row)),
        Enc::DecimalReal => {
            let s = a.as_primitive::<Decimal128Type>().value_as_string(row);
            Ok(Owned(Value::Real(
                s.parse().map_err(|e| format!("{s}: {e}"))?,
            )))
        }
        Enc::Text => Ok(Borrowed(ValueRef::Text(
            a.as_string::<i32>().value(row).as_bytes(),
        ))),
        Enc::Blob => Ok(Borrowed(ValueRef::Blob(a.as_binary::<i32>().value(row)))),
        Enc::Date => {
            let d = a.as_primitive::<Date32Type>().value(row);
            let date = d
                .checked_add(DAYS_CE_TO_UNIX)
                .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                .ok_or_else(|| format!("date {d} is out of range"))?;
            text(date.format("%Y-%m-%d").to_string())
        }
        Enc::Time => {
            let us = a.as_primitive::<Time64MicrosecondType>().value(row);
            let t = u32::try_from(us.div_euclid(1_000_000))
                .ok()
                .and_then(|s| {
                    let nanos = (us.rem_euclid(1_000_000) * 1000) as u32;
                    chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, nanos)
                })
                .ok_or_else(|| format!("time {us}µs is out of range"))?;
            text(t.format("%H:%M:%S%.6f").to_string())
        }
        Enc::Timestamp => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
            let t = chrono::DateTime::from_timestamp_micros(us)
                .ok_or_else(|| format!("timestamp {us}µs is out of range"))?;
            text(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
        Enc::Duration => Ok(Owned(Value::Integer(
            a.as_primitive::<DurationMicrosecondType>().value(row),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::*;
    use std::sync::Arc;

    #[test]
    fn values_as_sqlite_stores_them() {
        let ts = TimestampMicrosecondArray::from(vec![1_709_214_330_123_456])
            .with_timezone("Europe/Paris");
        let v = value(Enc::Timestamp, &ts, 0).unwrap();
        assert_eq!(
            v,
            ToSqlOutput::Owned(Value::Text("2024-02-29 13:45:30.123456".into()))
        );
        let d = Date32Array::from(vec![19_782, i32::MIN]);
        let v = value(Enc::Date, &d, 0).unwrap();
        assert_eq!(v, ToSqlOutput::Owned(Value::Text("2024-02-29".into())));
        assert!(value(Enc::Date, &d, 1).is_err());
        let t = Time64MicrosecondArray::from(vec![49_530_500_000, -1]);
        let v = value(Enc::Time, &t, 0).unwrap();
        assert_eq!(v, ToSqlOutput::Owned(Value::Text("13:45:30.500000".into())));
        assert!(value(Enc::Time, &t, 1).is_err());
        let n = Decimal128Array::from(vec![-123_456])
            .with_precision_and_scale(10, 3)
            .unwrap();
        let v = value(Enc::DecimalText, &n, 0).unwrap();
        assert_eq!(v, ToSqlOutput::Owned(Value::Text("-123.456".into())));
        let v = value(Enc::DecimalReal, &n, 0).unwrap();
        assert_eq!(v, ToSqlOutput::Owned(Value::Real(-123.456)));
    }

    #[test]
    fn plans_follow_what_query_reads() {
        assert_eq!(
            plan(&DataType::Utf8, Some(ColType::Int)),
            None,
            "text into INTEGER would not read back"
        );
        assert_eq!(plan(&DataType::Int64, Some(ColType::Real)), Some(Enc::Int));
        assert_eq!(plan(&DataType::Binary, None), Some(Enc::Blob));
        for dt in [
            DataType::Boolean,
            DataType::Int16,
            DataType::Float32,
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Duration(TimeUnit::Microsecond),
        ] {
            let declared = ColType::declared(Some(sqlite_type("c", &dt).unwrap()));
            assert!(plan(&dt, declared).is_some(), "{dt} into what it creates");
        }
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert!(sqlite_type("l", &list).is_err());
    }
}
