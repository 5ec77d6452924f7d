//! Bulk insert into PostgreSQL: record batches streamed through `COPY … FROM STDIN
//! (FORMAT binary)` in one transaction, after the schema was checked against the table.
mod encode;
mod numeric;

use super::{pg, PgSession};
use arrow::datatypes::{DataType, Schema};
use dbpool_core::normalize::{
    create_table_sql, insert_ddl, no_column_type, normalize_rows, quote_ident, quote_table,
};
use dbpool_core::{BulkInsert, Error, QueryStream, Result};
use encode::{plan, CellError, Column, Enc, Row};
use futures::{pin_mut, StreamExt};
use postgres_types::Type;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::Transaction;

/// Writes `rows` into `target`: every row or, on any error, none (the transaction
/// rolls back, undoing a create or replace too). Not inside a transaction: COPY runs in
/// one of its own.
pub async fn bulk_insert(
    mut conn: PgSession,
    target: BulkInsert,
    rows: QueryStream,
) -> Result<u64> {
    conn.refuse_in_transaction("bulk insert", "postgres")?;
    // Everything that can be refused without the database is refused first.
    let QueryStream {
        schema,
        mut batches,
    } = normalize_rows(rows)?;
    let table = quote_table(&target.table)?;
    let ddl = insert_ddl(target.mode, &table, || {
        create_table_sql(&table, &schema, pg_type)
    })?;
    let tx = conn.transaction().await.map_err(pg)?;
    if let Some(ddl) = ddl {
        tx.batch_execute(&ddl).await.map_err(pg)?;
    }
    let (types, encs) = plan_columns(&tx, &table, &target.table, &schema).await?;
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| quote_ident(f.name()))
        .collect();
    let copy = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        cols.join(", ")
    );
    let sink = tx.copy_in(&copy).await.map_err(pg)?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let mut written = 0usize;
    // An early return drops the writer (the server gets CopyFail) and then `tx`
    // (ROLLBACK), in that order.
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        let columns: Vec<Column<'_>> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .zip(&encs)
            .map(|((array, field), enc)| Column {
                name: field.name(),
                array: array.as_ref(),
                enc,
                base: written,
            })
            .collect();
        for row in 0..batch.num_rows() {
            writer
                .as_mut()
                .write_raw(Row {
                    cols: columns.iter(),
                    row,
                })
                .await
                .map_err(copy_error)?;
        }
        written += batch.num_rows();
    }
    let rows = writer.finish().await.map_err(copy_error)?;
    tx.commit().await.map_err(pg)?;
    Ok(rows)
}

/// Matches every Arrow field to a column of the table and plans its encoding; columns
/// the stream does not name take their defaults.
async fn plan_columns(
    tx: &Transaction<'_>,
    quoted: &str,
    table: &str,
    schema: &Schema,
) -> Result<(Vec<Type>, Vec<Enc>)> {
    // Preparing resolves enum, domain and array types; LIMIT 0 reads nothing.
    let stmt = tx
        .prepare(&format!("SELECT * FROM {quoted} LIMIT 0"))
        .await
        .map_err(pg)?;
    let mut types = Vec::new();
    let mut encs = Vec::new();
    for f in schema.fields() {
        let col = stmt
            .columns()
            .iter()
            .find(|c| c.name() == f.name())
            .ok_or_else(|| {
                Error::invalid(
                    f.name(),
                    format!("table `{table}` has no column `{}`", f.name()),
                )
            })?;
        let enc = plan(f.data_type(), col.type_()).ok_or_else(|| {
            Error::invalid(
                f.name(),
                format!(
                    "Arrow type {} cannot be written into column `{}` of PostgreSQL type {}",
                    f.data_type(),
                    f.name(),
                    col.type_()
                ),
            )
        })?;
        types.push(col.type_().clone());
        encs.push(enc);
    }
    Ok((types, encs))
}

/// The column type a canonical Arrow type creates (docs/types.md, "Bulk insert").
fn pg_type(name: &str, dt: &DataType) -> Result<String> {
    Ok(match dt {
        DataType::Boolean => "bool".into(),
        DataType::Int16 => "int2".into(),
        DataType::Int32 => "int4".into(),
        DataType::Int64 => "int8".into(),
        DataType::Float32 => "float4".into(),
        DataType::Float64 => "float8".into(),
        DataType::Decimal128(p, s) => format!("numeric({p}, {s})"),
        DataType::Utf8 => "text".into(),
        DataType::Binary => "bytea".into(),
        DataType::Date32 => "date".into(),
        DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Duration(_) => "interval".into(),
        DataType::List(item) if !matches!(item.data_type(), DataType::List(_)) => {
            format!("{}[]", pg_type(name, item.data_type())?)
        }
        other => return Err(no_column_type(name, other, "PostgreSQL")),
    })
}

/// A value we could not encode is the caller's (INVALID_ARGUMENT naming the column);
/// anything else is the database's or the connection's.
fn copy_error(e: tokio_postgres::Error) -> Error {
    let cell = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<CellError>());
    match cell {
        Some(c) => Error::invalid(&c.column, c.message.clone()),
        None => pg(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn create_table_from_schema() {
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Price", DataType::Decimal128(12, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("tags", DataType::List(item), true),
        ]);
        assert_eq!(
            dbpool_core::normalize::create_table_sql("\"s\".\"t\"", &schema, pg_type).unwrap(),
            "CREATE TABLE \"s\".\"t\" (\"id\" int8 NOT NULL, \"Price\" numeric(12, 2), \
             \"at\" timestamptz, \"tags\" text[])"
        );
        let null = Schema::new(vec![Field::new("n", DataType::Null, true)]);
        let e = dbpool_core::normalize::create_table_sql("t", &null, pg_type).unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { field, .. } if field == "n"));
    }
}
