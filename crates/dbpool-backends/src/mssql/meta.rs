//! SQL Server catalog queries for Flight SQL metadata, through INFORMATION_SCHEMA.
use super::manager::MssqlConn;
use super::params::{bind, refs};
use super::stream::{first_schema, settle};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dbpool_core::{Param, Result, TableRef};
use std::sync::Arc;

/// Schemas that hold the system's objects or are role schemas, never user tables.
const SYSTEM_SCHEMAS: &str = "'sys', 'INFORMATION_SCHEMA', 'guest', 'db_owner', \
     'db_accessadmin', 'db_securityadmin', 'db_ddladmin', 'db_backupoperator', \
     'db_datareader', 'db_datawriter', 'db_denydatareader', 'db_denydatawriter'";

/// `[schema].[table]`, or `[table]` when the schema is empty; `]` doubled.
pub fn qualified(db_schema: &str, table: &str) -> String {
    let q = |s: &str| format!("[{}]", s.replace(']', "]]"));
    if db_schema.is_empty() {
        q(table)
    } else {
        format!("{}.{}", q(db_schema), q(table))
    }
}

/// Rows of strings from a catalog query.
async fn strings(c: &mut MssqlConn, sql: &str, params: &[Param]) -> Result<Vec<Vec<String>>> {
    let bound = bind(params)?;
    c.broken = true;
    let r = async { c.query(sql, &refs(&bound)).await?.into_first_result().await }.await;
    let rows = settle(c, r)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<&str, _>(i).unwrap_or_default().to_string())
                .collect()
        })
        .collect())
}

/// The database the pool connects to.
pub async fn catalog_name(c: &mut MssqlConn) -> Result<String> {
    let rows = strings(c, "SELECT DB_NAME()", &[]).await?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default())
}

/// Non-system schemas.
pub async fn list_schemas(c: &mut MssqlConn) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA \
         WHERE SCHEMA_NAME NOT IN ({SYSTEM_SCHEMAS}) ORDER BY SCHEMA_NAME"
    );
    Ok(strings(c, &sql, &[])
        .await?
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect())
}

/// Tables and views outside the system schemas.
pub async fn list_tables(c: &mut MssqlConn) -> Result<Vec<TableRef>> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES \
         WHERE TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS}) ORDER BY TABLE_SCHEMA, TABLE_NAME"
    );
    Ok(strings(c, &sql, &[])
        .await?
        .into_iter()
        .map(|r| TableRef {
            db_schema: r[0].clone(),
            name: r[1].clone(),
            kind: if r[2].eq_ignore_ascii_case("VIEW") {
                "VIEW"
            } else {
                "TABLE"
            }
            .into(),
        })
        .collect())
}

/// The Arrow schema of a table's rows: its result columns, with the scale of decimal
/// columns from INFORMATION_SCHEMA (an empty result has no value to read it from).
pub async fn table_schema(c: &mut MssqlConn, db_schema: &str, table: &str) -> Result<SchemaRef> {
    let sql = format!("SELECT TOP 0 * FROM {}", qualified(db_schema, table));
    let schema = first_schema(c, &sql, &[], 1).await?;
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Decimal128(38, _)))
    {
        return Ok(schema);
    }
    let scales = strings(
        c,
        "SELECT COLUMN_NAME, CAST(NUMERIC_SCALE AS nvarchar(10)) FROM INFORMATION_SCHEMA.COLUMNS \
         WHERE TABLE_NAME = @P1 AND (@P2 = '' OR TABLE_SCHEMA = @P2) \
         AND DATA_TYPE IN ('decimal', 'numeric')",
        &[Param::String(table.into()), Param::String(db_schema.into())],
    )
    .await?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let scale = scales
                .iter()
                .find(|r| &r[0] == f.name())
                .and_then(|r| r[1].parse::<i8>().ok());
            match (f.data_type(), scale) {
                (DataType::Decimal128(38, _), Some(s)) => f
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Decimal128(38, s)),
                _ => f.as_ref().clone(),
            }
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Primary key columns in key order.
pub async fn primary_keys(c: &mut MssqlConn, db_schema: &str, table: &str) -> Result<Vec<String>> {
    let rows = strings(
        c,
        "SELECT k.COLUMN_NAME FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS t \
         JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k \
           ON k.CONSTRAINT_NAME = t.CONSTRAINT_NAME AND k.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA \
         WHERE t.CONSTRAINT_TYPE = 'PRIMARY KEY' AND t.TABLE_NAME = @P1 \
           AND (@P2 = '' OR t.TABLE_SCHEMA = @P2) \
         ORDER BY k.ORDINAL_POSITION",
        &[Param::String(table.into()), Param::String(db_schema.into())],
    )
    .await?;
    Ok(rows.into_iter().map(|mut r| r.remove(0)).collect())
}
