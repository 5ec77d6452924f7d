//! Flight SQL metadata: catalogs, schemas, tables (with their Arrow schemas), table types
//! and primary keys, answered by the backend of the addressed pool.
use super::sql::SqlService;
use super::sql_support::info;
use super::{flight_stream, Out};
use crate::schema_cache::SchemaMessages;
use arrow::array::{Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::error::FlightError;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTableTypes,
    CommandGetTables, ProstMessageExt,
};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo};
use dbpool_core::{PoolEntry, QueryStream, Result};
use futures::StreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// The table types GetTableTypes lists.
pub const TABLE_TYPES: [&str; 3] = ["TABLE", "VIEW", "MATERIALIZED VIEW"];

/// The FlightInfo of a metadata command: the result's schema, and the command itself
/// (Any-wrapped) as the ticket DoGet brings back.
pub(super) fn meta_info(
    schema: &Schema,
    cmd: &impl ProstMessageExt,
    req: Request<FlightDescriptor>,
) -> std::result::Result<Response<FlightInfo>, Status> {
    let ticket = cmd.as_any().encode_to_vec();
    Ok(Response::new(info(schema, ticket, req.into_inner())?))
}

/// A metadata result as DoGet answers it.
pub(super) fn meta_reply(
    r: Result<Out<FlightData>>,
) -> std::result::Result<Response<Out<FlightData>>, Status> {
    r.map(Response::new).map_err(Status::from)
}

/// The batch a Flight SQL result builder built, as a Flight stream.
pub(super) fn built(
    batch: std::result::Result<RecordBatch, FlightError>,
) -> Result<Out<FlightData>> {
    Ok(one_batch(batch.map_err(flight_err)?))
}

/// The GetTableTypes result: `TABLE_TYPES`.
pub(super) fn table_types(q: CommandGetTableTypes) -> Result<Out<FlightData>> {
    let mut b = q.into_builder();
    for t in TABLE_TYPES {
        b.append(t);
    }
    built(b.build())
}

/// One record batch as a Flight stream.
pub fn one_batch(batch: RecordBatch) -> Out<FlightData> {
    // A one-off result: its schema message is encoded, not kept.
    let q = QueryStream {
        schema: batch.schema(),
        batches: futures::stream::once(async { Ok(batch) }).boxed(),
    };
    flight_stream(q, &SchemaMessages::new(0))
}

/// The schema of a GetPrimaryKeys result, as the Flight SQL specification defines it.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

fn flight_err(e: FlightError) -> dbpool_core::Error {
    dbpool_core::Error::Internal(format!("flight: {e}"))
}

/// SQL LIKE matching (`%` any run, `_` one character), as Flight SQL filter patterns use.
pub fn like(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('_', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    go(&p, &s)
}

/// A metadata command DoGet answers from the backend of the addressed pool.
pub(super) enum Meta {
    /// GetCatalogs: the pool's catalog.
    Catalogs(CommandGetCatalogs),
    /// GetDbSchemas: its schemas.
    Schemas(CommandGetDbSchemas),
    /// GetTables: its tables.
    Tables(CommandGetTables),
    /// GetPrimaryKeys: a table's key columns.
    PrimaryKeys(CommandGetPrimaryKeys),
}

impl SqlService {
    /// Answers a metadata command on the pool the call header names.
    pub(super) async fn meta(&self, cmd: Meta, md: &MetadataMap) -> Result<Out<FlightData>> {
        // Admitted as a read of the pool: another tenant's catalog is not this one's.
        let e = self.calls.read_pool(&self.pool_of(md)?).await?;
        let catalog = e.backend.catalog_name().await?;
        match cmd {
            Meta::Catalogs(q) => {
                let mut b = q.into_builder();
                b.append(catalog);
                built(b.build())
            }
            Meta::Schemas(q) => {
                let mut b = q.into_builder();
                for s in e.backend.list_schemas().await? {
                    b.append(&catalog, s);
                }
                built(b.build())
            }
            Meta::Tables(q) => tables(&e, &catalog, q).await,
            Meta::PrimaryKeys(q) => primary_keys(&e, &catalog, q).await,
        }
    }
}

/// GetTables: the tables the filters match, with their Arrow schemas when asked.
async fn tables(e: &PoolEntry, catalog: &str, q: CommandGetTables) -> Result<Out<FlightData>> {
    let schema_pat = q.db_schema_filter_pattern.clone();
    let table_pat = q.table_name_filter_pattern.clone();
    let include_schema = q.include_schema;
    let mut b = q.into_builder();
    for t in e.backend.list_tables().await? {
        // Filter before fetching schemas; the builder filters again, exactly.
        if schema_pat
            .as_deref()
            .is_some_and(|p| !like(p, &t.db_schema))
            || table_pat.as_deref().is_some_and(|p| !like(p, &t.name))
        {
            continue;
        }
        let schema = if include_schema {
            e.backend.table_schema(&t.db_schema, &t.name).await?
        } else {
            Arc::new(Schema::empty())
        };
        b.append(catalog, &t.db_schema, &t.name, &t.kind, &schema)
            .map_err(flight_err)?;
    }
    built(b.build())
}

/// GetPrimaryKeys: the key columns of one table, in key order.
async fn primary_keys(
    e: &PoolEntry,
    catalog: &str,
    q: CommandGetPrimaryKeys,
) -> Result<Out<FlightData>> {
    let db_schema = q.db_schema.clone().unwrap_or_default();
    let keys = e.backend.primary_keys(&db_schema, &q.table).await?;
    let (mut cat, mut sch, mut tab, mut col, mut name) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut seq = Int32Builder::new();
    for (i, k) in keys.iter().enumerate() {
        cat.append_value(catalog);
        sch.append_value(&db_schema);
        tab.append_value(&q.table);
        col.append_value(k);
        name.append_null();
        seq.append_value(i as i32 + 1);
    }
    let batch = RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            Arc::new(cat.finish()),
            Arc::new(sch.finish()),
            Arc::new(tab.finish()),
            Arc::new(col.finish()),
            Arc::new(name.finish()),
            Arc::new(seq.finish()),
        ],
    )?;
    Ok(one_batch(batch))
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_patterns() {
        assert!(like("%", "anything"));
        assert!(like("us_rs", "users"));
        assert!(like("pub%", "public"));
        assert!(!like("pub%", "private"));
        assert!(like("a%b%c", "aXbYc"));
    }
}
