//! A query result as chunks of one Arrow IPC stream (`Query` with `ARROW_IPC`), in as few
//! gRPC messages as streaming allows.
use crate::status::to_status;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::{
    write_message, DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
    StreamWriter,
};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, QueryStream};
use dbpool_proto::v1 as pb;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
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
/// one still streams batch by batch as the database produces it.
pub fn ipc_stream(q: QueryStream) -> Result<QueryStreamOut, Error> {
    // The schema stays in the writer's buffer and leaves with the first batch.
    let writer = Writer::new(&q.schema)?;
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
                Some(Ok(batch)) => w.write(&batch).map_err(|e| to_status(&e.into())),
                Some(Err(e)) => Err(to_status(&e)),
                None => w.finish().map_err(|e| to_status(&e.into())),
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

/// Encoded schema messages by schema: a statement's result has the same schema on every
/// call, and encoding it was ~8 % of the daemon's instructions per small query.
static SCHEMA_MESSAGES: LazyLock<Mutex<HashMap<SchemaRef, Arc<[u8]>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Schemas kept at most; the map starts over beyond it.
const SCHEMA_CACHE_SIZE: usize = 1024;

/// An Arrow IPC stream writer into a buffer that is taken message by message.
enum Writer {
    /// The schema message comes from the cache; batches are encoded directly.
    Cached {
        buf: Vec<u8>,
        generator: IpcDataGenerator,
        tracker: DictionaryTracker,
        context: IpcWriteContext,
        options: IpcWriteOptions,
    },
    /// Dictionary-encoded columns need the writer's dictionary bookkeeping.
    Stream(StreamWriter<Vec<u8>>),
}

impl Writer {
    fn new(schema: &SchemaRef) -> Result<Self, ArrowError> {
        if schema
            .fields()
            .iter()
            .any(|f| has_dictionary(f.data_type()))
        {
            return StreamWriter::try_new(Vec::new(), schema).map(Writer::Stream);
        }
        let options = IpcWriteOptions::default();
        let head = schema_message(schema, &options)?;
        Ok(Writer::Cached {
            buf: head.to_vec(),
            generator: IpcDataGenerator::default(),
            tracker: DictionaryTracker::new(false),
            context: IpcWriteContext::default(),
            options,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        match self {
            Writer::Stream(w) => w.write(batch),
            Writer::Cached {
                buf,
                generator,
                tracker,
                context,
                options,
            } => {
                let (dictionaries, message) = generator.encode(batch, tracker, options, context)?;
                debug_assert!(dictionaries.is_empty());
                write_message(buf, message, options).map(|_| ())
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

/// The encoded schema message of `schema`, from the cache or encoded now.
fn schema_message(schema: &SchemaRef, options: &IpcWriteOptions) -> Result<Arc<[u8]>, ArrowError> {
    if let Some(m) = SCHEMA_MESSAGES.lock().expect("schema cache").get(schema) {
        return Ok(m.clone());
    }
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        options,
    );
    let mut bytes = Vec::new();
    write_message(&mut bytes, encoded, options)?;
    let bytes: Arc<[u8]> = bytes.into();
    let mut cache = SCHEMA_MESSAGES.lock().expect("schema cache");
    if cache.len() >= SCHEMA_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(schema.clone(), bytes.clone());
    Ok(bytes)
}

fn has_dictionary(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => has_dictionary(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| has_dictionary(f.data_type())),
        DataType::RunEndEncoded(_, v) => has_dictionary(v.data_type()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{Field, Int32Type, Schema};
    use arrow::ipc::reader::StreamReader;

    /// Writes `batches` through a Writer and reads the bytes back with arrow's reader.
    fn round_trip(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<RecordBatch> {
        let mut w = Writer::new(schema).unwrap();
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
            Writer::new(&schema).unwrap(),
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
        assert!(matches!(Writer::new(&schema).unwrap(), Writer::Stream(_)));
        assert_eq!(
            round_trip(&schema, std::slice::from_ref(&batch)),
            vec![batch]
        );
    }
}
