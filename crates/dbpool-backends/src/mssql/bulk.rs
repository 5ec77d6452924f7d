//! Bulk insert into SQL Server through the TDS bulk load (`INSERT BULK`, tiberius's
//! `bulk_insert`), inside a transaction or savepoint the caller ends: every row or none.
mod encode;

use super::manager::MssqlConn;
use super::meta::qualified;
use super::stream::batch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use dbpool_core::normalize::{
    check_batch, check_names, insert_ddl, no_column_type, normalize, normalize_schema,
};
use dbpool_core::{BulkInsert, Error, Result};
use encode::{columns_of, plan_fields, row};
use futures::stream::BoxStream;
use futures::StreamExt;

/// What can be checked before touching the database.
pub struct Plan {
    table: String,
    name: String,
    schema: SchemaRef,
    ddl: Option<String>,
}

impl Plan {
    /// Normalises the schema and builds the DDL a `create`/`replace` needs.
    pub fn new(target: &BulkInsert, schema: &Schema) -> Result<Plan> {
        let schema = normalize_schema(schema)?;
        check_names(&schema)?;
        let (db_schema, name) = match target.table.split_once('.') {
            Some((s, t)) => (s, t),
            None => ("", target.table.as_str()),
        };
        if name.is_empty() || target.table.matches('.').count() > 1 {
            return Err(Error::invalid(
                "table",
                format!(
                    "`{}` is not a table name (name or schema.name)",
                    target.table
                ),
            ));
        }
        let table = qualified(db_schema, name);
        let ddl = insert_ddl(target.mode, &table, || create_sql(&table, &schema))?;
        Ok(Plan {
            table,
            name: target.table.clone(),
            schema,
            ddl,
        })
    }
}

/// Loads `batches`; the caller commits or rolls back (and closes a broken connection).
pub async fn load(
    conn: &mut MssqlConn,
    plan: &Plan,
    mut batches: BoxStream<'static, Result<RecordBatch>>,
) -> Result<u64> {
    if let Some(ddl) = &plan.ddl {
        batch(conn, ddl).await?;
    }
    // From INSERT BULK until the final DONE the connection is mid-request.
    conn.broken = true;
    let mut req = conn
        .bulk_insert(&plan.table)
        .await
        .map_err(|e| super::error::classify(&e))?;
    let columns = columns_of(&req)?;
    // Every field is matched and its values planned before the first row goes out.
    let slots = plan_fields(&plan.name, &plan.schema, &columns)?;
    let mut written = 0u64;
    while let Some(b) = batches.next().await {
        let b = normalize(&b?)?;
        check_batch(&plan.schema, &b)?;
        for i in 0..b.num_rows() {
            let r = row(&slots, &columns, &b, i, written as usize)?;
            req.send(r).await.map_err(|e| super::error::classify(&e))?;
        }
        written += b.num_rows() as u64;
    }
    let done = req
        .finalize()
        .await
        .map_err(|e| super::error::classify(&e))?;
    conn.broken = false;
    Ok(done.total().max(written))
}

/// `CREATE TABLE` for the (normalized) schema; non-nullable fields become NOT NULL.
fn create_sql(table: &str, schema: &Schema) -> Result<String> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = sql_type(f.name(), f.data_type())?;
            let null = if f.is_nullable() { "NULL" } else { "NOT NULL" };
            Ok(format!("{} {ty} {null}", qualified("", f.name())))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("CREATE TABLE {table} ({})", cols.join(", ")))
}

/// The column type a canonical Arrow type creates (docs/types.md, "Bulk insert").
fn sql_type(name: &str, dt: &DataType) -> Result<String> {
    Ok(match dt {
        DataType::Boolean => "bit".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "float".into(),
        DataType::Decimal128(p, s) if *s >= 0 => format!("decimal({p}, {s})"),
        DataType::Utf8 => "nvarchar(max)".into(),
        DataType::Binary => "varbinary(max)".into(),
        DataType::Date32 => "date".into(),
        DataType::Time64(_) => "time(6)".into(),
        DataType::Timestamp(_, None) => "datetime2(6)".into(),
        DataType::Timestamp(_, Some(_)) => "datetimeoffset(6)".into(),
        other => return Err(no_column_type(name, other, "SQL Server")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};
    use dbpool_core::InsertMode;

    #[test]
    fn create_table_from_schema() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Price", DataType::Decimal128(12, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]);
        let t = BulkInsert {
            table: "s.t]x".into(),
            mode: InsertMode::Replace,
        };
        let p = Plan::new(&t, &schema).unwrap();
        assert_eq!(
            p.ddl.unwrap(),
            "DROP TABLE IF EXISTS [s].[t]]x]; CREATE TABLE [s].[t]]x] ([id] bigint NOT NULL, \
             [Price] decimal(12, 2) NULL, [at] datetimeoffset(6) NULL)"
        );
        let bad = Schema::new(vec![Field::new("n", DataType::Null, true)]);
        let t = BulkInsert {
            table: "t".into(),
            mode: InsertMode::Create,
        };
        assert!(
            matches!(Plan::new(&t, &bad), Err(Error::InvalidArgument { field, .. }) if field == "n")
        );
    }
}
