//! PostgreSQL catalog queries for Flight SQL metadata (schemas, tables, keys). Each is
//! one unnamed statement (`query_typed`): one round trip, and nothing named that a
//! transaction-mode pooler could route away from.
use super::pg;
use dbpool_core::{quote_ident, Error, Result, TableRef};
use postgres_types::Type;
use tokio_postgres::{Client, Row};

const USER_SCHEMAS: &str = "nspname NOT IN ('pg_catalog', 'information_schema') \
     AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'";

/// The database the pool connects to.
pub async fn catalog_name(c: &Client) -> Result<String> {
    let rows = c
        .query_typed("SELECT current_database()::text", &[])
        .await
        .map_err(pg)?;
    let row = rows
        .first()
        .ok_or_else(|| Error::Internal("current_database() returned no row".into()))?;
    text(row, 0)
}

/// Column `i` of a catalog row as text (a NULL or another type is an error, not a panic).
fn text(row: &Row, i: usize) -> Result<String> {
    row.try_get(i)
        .map_err(|e| Error::Internal(format!("catalog column {i}: {e}")))
}

/// Non-system schemas.
pub async fn list_schemas(c: &Client) -> Result<Vec<String>> {
    let sql = format!("SELECT nspname::text FROM pg_namespace WHERE {USER_SCHEMAS} ORDER BY 1");
    let rows = c.query_typed(&sql, &[]).await.map_err(pg)?;
    rows.iter().map(|r| text(r, 0)).collect()
}

/// Tables, views and materialized views outside the system schemas.
pub async fn list_tables(c: &Client) -> Result<Vec<TableRef>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text,
                CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMAS}
         ORDER BY 1, 2"
    );
    let rows = c.query_typed(&sql, &[]).await.map_err(pg)?;
    rows.iter()
        .map(|r| {
            Ok(TableRef {
                db_schema: text(r, 0)?,
                name: text(r, 1)?,
                kind: text(r, 2)?,
            })
        })
        .collect()
}

/// `"schema"."table"`, or just `"table"` when the schema is empty.
pub fn qualified(db_schema: &str, table: &str) -> String {
    if db_schema.is_empty() {
        quote_ident(table)
    } else {
        format!("{}.{}", quote_ident(db_schema), quote_ident(table))
    }
}

/// Primary key columns in key order.
pub async fn primary_keys(c: &Client, db_schema: &str, table: &str) -> Result<Vec<String>> {
    let table = qualified(db_schema, table);
    let rows = c
        .query_typed(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary
             ORDER BY array_position(i.indkey, a.attnum)",
            &[(&table, Type::TEXT)],
        )
        .await
        .map_err(pg)?;
    rows.iter().map(|r| text(r, 0)).collect()
}
