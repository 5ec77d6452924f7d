//! Text columns as Arrow string views for clients that ask (`QueryTicket.string_view`):
//! Polars keeps its strings as views, so it adopts such columns without a copy.
use arrow::array::{Array, ArrayRef, AsArray, StringViewArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
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

/// Longest string a view holds inline (no data buffer needed).
const INLINE_MAX: u32 = 12;

/// A view array whose strings are all inline, without the data buffer the cast shared
/// from the Utf8 array: nothing points into it, yet it would be sent and kept by the
/// client (short text columns: ~10 MB of 116 MB in the 1M-row benchmark frame).
fn without_unused_buffers(array: ArrayRef) -> Result<ArrayRef, ArrowError> {
    let Some(views) = array.as_string_view_opt() else {
        return Ok(array);
    };
    if views.data_buffers().is_empty() || views.views().iter().any(|&v| v as u32 > INLINE_MAX) {
        return Ok(array);
    }
    let (views, _, nulls) = views.clone().into_parts();
    Ok(Arc::new(StringViewArray::try_new(views, vec![], nulls)?))
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
                false => cast(c, f.data_type()).and_then(without_unused_buffers),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(out.clone(), columns)?)
    });
    QueryStream {
        schema,
        batches: batches.boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use futures::stream;

    async fn viewed(values: Vec<Option<&str>>) -> StringViewArray {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values))])
            .unwrap();
        let q = string_views(QueryStream {
            schema,
            batches: stream::iter(vec![Ok(batch)]).boxed(),
        });
        assert_eq!(q.schema.field(0).data_type(), &DataType::Utf8View);
        let out: Vec<_> = q.batches.collect().await;
        let batch = out.into_iter().next().unwrap().unwrap();
        batch.column(0).as_string_view().clone()
    }

    #[tokio::test]
    async fn short_strings_leave_the_unused_data_buffer_behind() {
        let a = viewed(vec![Some("name-1"), None, Some("exactly12chr"), Some("")]).await;
        assert!(a.data_buffers().is_empty());
        let got: Vec<_> = a.iter().collect();
        assert_eq!(
            got,
            vec![Some("name-1"), None, Some("exactly12chr"), Some("")]
        );
    }

    #[tokio::test]
    async fn long_strings_keep_sharing_the_text_bytes() {
        let long = "a string longer than twelve bytes";
        let a = viewed(vec![Some("short"), Some(long), None]).await;
        assert_eq!(a.data_buffers().len(), 1);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![Some("short"), Some(long), None]
        );
    }
}
