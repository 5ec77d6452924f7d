//! SQLite catalog queries for Flight SQL metadata. Following the ADBC SQLite driver, the
//! catalog is `main` and the schema name is empty.
use super::sq;
use dbpool_core::{quote_ident, Result, TableRef};
use rusqlite::Connection;

/// Tables and views of the main database, internal `sqlite_*` tables left out.
pub fn list_tables(c: &Connection) -> Result<Vec<TableRef>> {
    let mut stmt = c
        .prepare(
            "SELECT name, CASE type WHEN 'view' THEN 'VIEW' ELSE 'TABLE' END FROM sqlite_master
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .map_err(sq)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(TableRef {
                db_schema: String::new(),
                name: r.get(0)?,
                kind: r.get(1)?,
            })
        })
        .map_err(sq)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sq)
}

/// Primary key columns in key order.
pub fn primary_keys(c: &Connection, table: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT name FROM pragma_table_info({}) WHERE pk > 0 ORDER BY pk",
        quote_literal(table)
    );
    let mut stmt = c.prepare(&sql).map_err(sq)?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(sq)?;
    rows.collect::<rusqlite::Result<Vec<String>>>().map_err(sq)
}

/// `SELECT * FROM "table" LIMIT 0`, whose declared types give the table's schema.
pub fn empty_select(table: &str) -> String {
    format!("SELECT * FROM {} LIMIT 0", quote_ident(table))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
