//! Arrow IPC encoding shared by `Query` and Flight `DoGet` for results without dictionary
//! columns: schema messages cached by schema (a statement's result has the same schema
//! on every call, and encoding it was ~8 % of the daemon's instructions per small query)
//! and record batches encoded straight to IPC messages.
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::{
    DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Schemas kept at most; the map starts over beyond it.
const SCHEMA_CACHE_SIZE: usize = 1024;

static SCHEMA_MESSAGES: LazyLock<Mutex<HashMap<SchemaRef, Bytes>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The flatbuffer `Message` (header only, no framing) of `schema` under the default
/// write options, from the cache or encoded now. Cloning the result is a reference count.
///
/// Only for schemas without dictionary columns (see [`has_dictionary`]): those need a
/// dictionary tracker that lives with the stream.
pub fn schema_message(schema: &SchemaRef) -> Bytes {
    if let Some(m) = SCHEMA_MESSAGES.lock().get(schema) {
        return m.clone();
    }
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        &IpcWriteOptions::default(),
    );
    let bytes = Bytes::from(encoded.ipc_message);
    let mut cache = SCHEMA_MESSAGES.lock();
    if cache.len() >= SCHEMA_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(schema.clone(), bytes.clone());
    bytes
}

/// Encodes record batches without dictionary columns into IPC messages, under the
/// default write options (those of [`schema_message`]).
pub struct BatchEncoder {
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    context: IpcWriteContext,
    options: IpcWriteOptions,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        BatchEncoder {
            generator: IpcDataGenerator::default(),
            tracker: DictionaryTracker::new(false),
            context: IpcWriteContext::default(),
            options: IpcWriteOptions::default(),
        }
    }
}

impl BatchEncoder {
    /// The record batch message of `batch` (header and body, unframed).
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<EncodedData, ArrowError> {
        let (dictionaries, data) =
            self.generator
                .encode(batch, &mut self.tracker, &self.options, &mut self.context)?;
        debug_assert!(
            dictionaries.is_empty(),
            "only for schemas without dictionaries"
        );
        Ok(data)
    }

    /// The write options the messages are encoded with.
    pub fn options(&self) -> &IpcWriteOptions {
        &self.options
    }
}

/// Whether any field of `schema`, at any depth, is dictionary-encoded.
pub fn schema_has_dictionary(schema: &SchemaRef) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| has_dictionary(f.data_type()))
}

/// Whether `t` is, or nests, a dictionary type.
pub fn has_dictionary(t: &DataType) -> bool {
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
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn same_schema_gives_the_same_shared_bytes() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let a = schema_message(&schema);
        let b = schema_message(&schema);
        assert!(!a.is_empty());
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "second call must come from the cache"
        );
        let msg = arrow::ipc::root_as_message(&a).unwrap();
        let decoded =
            arrow::ipc::convert::try_fb_to_schema(msg.header_as_schema().unwrap()).unwrap();
        assert_eq!(&decoded, schema.as_ref());
    }

    #[test]
    fn dictionaries_are_found_when_nested() {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let list = DataType::List(Arc::new(Field::new("item", dict.clone(), true)));
        assert!(has_dictionary(&dict));
        assert!(has_dictionary(&list));
        assert!(!has_dictionary(&DataType::Utf8));
    }
}
