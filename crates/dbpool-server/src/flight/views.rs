//! Text columns as Arrow string views for clients that ask (`QueryTicket.string_view`):
//! Polars keeps its strings as views, so it adopts such columns without a copy.
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use dbpool_core::{QueryStream, Result};
use futures::StreamExt;
use std::sync::Arc;

/// `schema` with every Utf8 field turned into Utf8View.
pub fn view_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The result with Utf8 columns as Utf8View; the text bytes are shared, not copied.
pub fn string_views(q: QueryStream) -> QueryStream {
    let schema = view_schema(&q.schema);
    if schema == q.schema {
        return q;
    }
    let out = schema.clone();
    let batches = q.batches.map(move |b| -> Result<RecordBatch> {
        let b = b?;
        let columns = b
            .columns()
            .iter()
            .zip(out.fields())
            .map(|(c, f)| match c.data_type() == f.data_type() {
                true => Ok(c.clone()),
                false => cast(c, f.data_type()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(out.clone(), columns)?)
    });
    QueryStream {
        schema,
        batches: batches.boxed(),
    }
}
