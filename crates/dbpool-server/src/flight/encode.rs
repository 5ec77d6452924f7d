//! Query results as Flight data: the cached schema message, then each batch encoded
//! straight into `FlightData`, split so that no message outgrows gRPC's usual limits.
//!
//! arrow-flight's `FlightDataEncoder` encodes the schema anew on every call and goes
//! through its general dictionary machinery; results without dictionary columns (all of
//! ours but Flight SQL metadata) skip both here, which a one-row `DoGet` pays for at
//! every call.
use super::Out;
use crate::ipc_encode::{schema_has_dictionary, BatchEncoder};
use crate::schema_cache::SchemaMessages;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::{FlightDataEncoderBuilder, GRPC_TARGET_MAX_FLIGHT_SIZE_BYTES};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use dbpool_core::QueryStream;
use futures::{stream, StreamExt, TryStreamExt};
use tonic::Status;

/// Encodes a query result as Flight data, the schema message from the server's
/// `schemas`; an error mid-stream ends it with its status.
pub(crate) fn flight_stream(q: QueryStream, schemas: &SchemaMessages) -> Out<FlightData> {
    if schema_has_dictionary(&q.schema) {
        return general_stream(q);
    }
    let head = FlightData {
        data_header: schemas.get(&q.schema),
        ..Default::default()
    };
    let mut encoder = BatchEncoder::default();
    let body = q
        .batches
        .map(move |item| {
            item.map_err(Status::from).and_then(|batch| {
                encode(&mut encoder, &batch).map_err(|e| Status::from(dbpool_core::Error::from(e)))
            })
        })
        // Nothing follows an error.
        .scan(false, |failed, item| {
            let out = (!*failed).then(|| {
                *failed = item.is_err();
                item
            });
            futures::future::ready(out)
        })
        .flat_map(|item| match item {
            Ok(messages) => stream::iter(messages.into_iter().map(Ok)).left_stream(),
            Err(status) => stream::once(futures::future::ready(Err(status))).right_stream(),
        });
    stream::once(futures::future::ready(Ok(head)))
        .chain(body)
        .boxed()
}

/// arrow-flight's encoder, which hydrates dictionary columns.
fn general_stream(q: QueryStream) -> Out<FlightData> {
    let batches = q
        .batches
        .map_err(|e| FlightError::Tonic(Box::new(e.into())));
    FlightDataEncoderBuilder::new()
        .with_schema(q.schema)
        .build(batches)
        .map_err(Status::from)
        .boxed()
}

/// One Flight message per slice of `batch` of at most about 2 MiB of column buffers.
fn encode(encoder: &mut BatchEncoder, batch: &RecordBatch) -> Result<Vec<FlightData>, ArrowError> {
    split(batch, GRPC_TARGET_MAX_FLIGHT_SIZE_BYTES)
        .iter()
        .map(|part| encoder.encode(part).map(FlightData::from))
        .collect()
}

/// `batch` as zero-copy slices of at most ~`max_bytes` of buffers each (the rows are
/// shared out evenly; a batch that fits is returned whole).
fn split(batch: &RecordBatch, max_bytes: usize) -> Vec<RecordBatch> {
    let size: usize = batch
        .columns()
        .iter()
        .map(|c| c.get_buffer_memory_size())
        .sum();
    let parts = size.div_ceil(max_bytes).max(1);
    let rows = batch.num_rows();
    if parts == 1 || rows <= 1 {
        return vec![batch.clone()];
    }
    let per_part = rows.div_ceil(parts);
    (0..rows)
        .step_by(per_part)
        .map(|offset| batch.slice(offset, per_part.min(rows - offset)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
    use arrow_flight::decode::FlightRecordBatchStream;
    use dbpool_core::Error;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    fn batch(schema: &SchemaRef, from: i64, rows: usize) -> RecordBatch {
        let n: Int64Array = (0..rows as i64).map(|i| Some(from + i)).collect();
        let s: StringArray = (0..rows).map(|i| Some(format!("row {i}"))).collect();
        RecordBatch::try_new(schema.clone(), vec![Arc::new(n), Arc::new(s)]).unwrap()
    }

    /// Encodes `items`, decodes them with arrow-flight's client decoder.
    async fn round_trip(
        schema: SchemaRef,
        items: Vec<dbpool_core::Result<RecordBatch>>,
    ) -> (usize, Result<Vec<RecordBatch>, FlightError>) {
        let q = QueryStream {
            schema,
            batches: stream::iter(items).boxed(),
        };
        let messages: Vec<_> = flight_stream(q, &SchemaMessages::default()).collect().await;
        let count = messages.len();
        let decoded = FlightRecordBatchStream::new_from_flight_data(
            stream::iter(messages).map_err(FlightError::from),
        )
        .try_collect()
        .await;
        (count, decoded)
    }

    #[tokio::test]
    async fn batches_read_back_exactly_with_one_message_each() {
        let s = schema();
        let batches = vec![batch(&s, 0, 3), batch(&s, 100, 2)];
        let (count, decoded) = round_trip(s, batches.iter().cloned().map(Ok).collect()).await;
        assert_eq!(count, 3, "schema + one message per batch");
        assert_eq!(decoded.unwrap(), batches);
    }

    #[tokio::test]
    async fn an_empty_result_still_carries_its_schema() {
        let s = schema();
        let q = QueryStream {
            schema: s.clone(),
            batches: stream::empty().boxed(),
        };
        let messages: Vec<_> = flight_stream(q, &SchemaMessages::default()).collect().await;
        assert_eq!(messages.len(), 1);
        let mut decoder = FlightRecordBatchStream::new_from_flight_data(
            stream::iter(messages).map_err(FlightError::from),
        );
        assert!(decoder.next().await.is_none());
        assert_eq!(decoder.schema(), Some(&s));
    }

    #[tokio::test]
    async fn large_batches_are_split_and_rows_kept_in_order() {
        let s = schema();
        let big = batch(&s, 0, 200_000); // ~1.6 MB of ints + ~2.6 MB of text
        let (count, decoded) = round_trip(s, vec![Ok(big.clone())]).await;
        let decoded = decoded.unwrap();
        assert!(
            count >= 3,
            "expected the batch split in parts, got {count} messages"
        );
        assert_eq!(decoded.iter().map(|b| b.num_rows()).sum::<usize>(), 200_000);
        let parts: Vec<_> = decoded.iter().collect();
        assert_eq!(
            arrow::compute::concat_batches(&big.schema(), parts).unwrap(),
            big
        );
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_with_its_status() {
        let s = schema();
        let items = vec![
            Ok(batch(&s, 0, 2)),
            Err(Error::invalid("sql", "boom")),
            Ok(batch(&s, 10, 2)),
        ];
        let q = QueryStream {
            schema: s,
            batches: stream::iter(items).boxed(),
        };
        let messages: Vec<_> = flight_stream(q, &SchemaMessages::default()).collect().await;
        assert_eq!(
            messages.len(),
            3,
            "schema, first batch, the error; nothing after"
        );
        let status = messages[2].as_ref().unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("boom"), "{}", status.message());
    }

    #[tokio::test]
    async fn dictionary_columns_are_hydrated_by_the_general_encoder() {
        let dict: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let s = Arc::new(Schema::new(vec![Field::new(
            "tag",
            dict.data_type().clone(),
            false,
        )]));
        let b = RecordBatch::try_new(s.clone(), vec![Arc::new(dict)]).unwrap();
        let (_, decoded) = round_trip(s, vec![Ok(b)]).await;
        let decoded = decoded.unwrap();
        assert_eq!(decoded[0].num_rows(), 3);
        assert_eq!(decoded[0].schema().field(0).data_type(), &DataType::Utf8);
    }
}
