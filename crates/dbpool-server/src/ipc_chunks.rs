//! A query result as chunks of one Arrow IPC stream (`Query` with `ARROW_IPC`), in as few
//! gRPC messages as streaming allows.
use crate::ipc_encode::{schema_has_dictionary, BatchEncoder};
use crate::schema_cache::SchemaMessages;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::writer::{write_message, EncodedData, StreamWriter};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, QueryStream};
use dbpool_proto::v1 as pb;
use futures::stream::BoxStream;
use futures::StreamExt;
use tonic::Status;

/// Responses of a `Query` call.
pub type QueryStreamOut = BoxStream<'static, Result<pb::QueryResponse, Status>>;

/// A message grows by whatever is ready at once up to this size; one batch larger than
/// it goes out alone. Well under gRPC's usual 4 MiB receive limit.
const COALESCE_BYTES: usize = 1 << 20;

/// Batches ready at the same moment that are considered together.
const READY_AT_ONCE: usize = 16;

fn chunk(bytes: Vec<u8>) -> pb::QueryResponse {
    pb::QueryResponse {
        payload: Some(pb::query_response::Payload::ArrowIpc(bytes)),
    }
}

/// Encodes the result: schema, batches, end marker. What is ready together goes out in
/// one message — a small result is a single message instead of three — while a large
/// one still streams batch by batch as the database produces it. The schema message
/// comes from the server's `schemas`.
pub fn ipc_stream(q: QueryStream, schemas: &SchemaMessages) -> Result<QueryStreamOut, Error> {
    // The schema stays in the writer's buffer and leaves with the first batch.
    let writer = Writer::new(&q.schema, schemas)?;
    let groups = q
        .batches
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .ready_chunks(READY_AT_ONCE);
    let out = groups.scan(Some(writer), |writer, group| {
        let Some(w) = writer.as_mut() else {
            return futures::future::ready(None);
        };
        let mut msgs = Vec::new();
        let mut failed = None;
        for item in group {
            let step = match item {
                Some(Ok(batch)) => w.write(&batch).map_err(|e| Error::from(e).into()),
                Some(Err(e)) => Err(e.into()),
                None => w.finish().map_err(|e| Error::from(e).into()),
            };
            if let Err(s) = step {
                failed = Some(s);
                break;
            }
            if w.buffered() >= COALESCE_BYTES {
                msgs.push(Ok(chunk(w.take())));
            }
        }
        if w.buffered() > 0 {
            msgs.push(Ok(chunk(w.take())));
        }
        if let Some(s) = failed {
            msgs.push(Err(s));
            *writer = None;
        }
        futures::future::ready(Some(futures::stream::iter(msgs)))
    });
    Ok(out.flatten().boxed())
}

/// An Arrow IPC stream writer into a buffer that is taken message by message.
enum Writer {
    /// The schema message comes from the cache; batches are encoded directly.
    Cached { buf: Vec<u8>, encoder: BatchEncoder },
    /// Dictionary-encoded columns need the writer's dictionary bookkeeping.
    Stream(StreamWriter<Vec<u8>>),
}

impl Writer {
    fn new(schema: &SchemaRef, schemas: &SchemaMessages) -> Result<Self, ArrowError> {
        if schema_has_dictionary(schema) {
            return StreamWriter::try_new(Vec::new(), schema).map(Writer::Stream);
        }
        let encoder = BatchEncoder::default();
        let mut buf = Vec::new();
        let head = EncodedData {
            ipc_message: schemas.get(schema).to_vec(),
            arrow_data: Vec::new(),
        };
        write_message(&mut buf, head, encoder.options())?;
        Ok(Writer::Cached { buf, encoder })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        match self {
            Writer::Stream(w) => w.write(batch),
            Writer::Cached { buf, encoder } => {
                let message = encoder.encode(batch)?;
                write_message(buf, message, encoder.options()).map(|_| ())
            }
        }
    }

    fn finish(&mut self) -> Result<(), ArrowError> {
        match self {
            Writer::Stream(w) => w.finish(),
            // End of stream: the continuation marker and a zero length.
            Writer::Cached { buf, .. } => {
                buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
                Ok(())
            }
        }
    }

    fn buffered(&self) -> usize {
        match self {
            Writer::Stream(w) => w.get_ref().len(),
            Writer::Cached { buf, .. } => buf.len(),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Writer::Stream(w) => std::mem::take(w.get_mut()),
            Writer::Cached { buf, .. } => std::mem::take(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use arrow::ipc::reader::StreamReader;
    use std::sync::Arc;

    /// Writes `batches` through a Writer and reads the bytes back with arrow's reader.
    fn round_trip(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<RecordBatch> {
        let mut w = Writer::new(schema, &SchemaMessages::default()).unwrap();
        let mut bytes = Vec::new();
        for b in batches {
            w.write(b).unwrap();
            bytes.extend(w.take());
        }
        w.finish().unwrap();
        bytes.extend(w.take());
        let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        assert_eq!(&reader.schema(), schema);
        reader.map(|b| b.unwrap()).collect()
    }

    #[test]
    fn cached_schema_streams_read_back_exactly() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = |from: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(vec![Some(from), None, Some(from + 2)])),
                    Arc::new(StringArray::from(vec![Some("a"), Some("bé"), None])),
                ],
            )
            .unwrap()
        };
        let batches = [batch(1), batch(10)];
        // Twice: the second stream takes the schema message from the cache.
        assert_eq!(round_trip(&schema, &batches), batches);
        assert!(matches!(
            Writer::new(&schema, &SchemaMessages::default()).unwrap(),
            Writer::Cached { .. }
        ));
        assert_eq!(round_trip(&schema, &batches), batches);
        assert_eq!(round_trip(&schema, &[]), vec![]);
    }

    #[test]
    fn dictionary_columns_use_the_stream_writer() {
        let dict: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "tag",
            dict.data_type().clone(),
            false,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(dict)]).unwrap();
        assert!(matches!(
            Writer::new(&schema, &SchemaMessages::default()).unwrap(),
            Writer::Stream(_)
        ));
        assert_eq!(
            round_trip(&schema, std::slice::from_ref(&batch)),
            vec![batch]
        );
    }
}
