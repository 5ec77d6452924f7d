//! Arrow IPC encoding shared by `Query` and Flight `DoGet` for results without dictionary
//! columns: schema messages (cached per server by `schema_cache`) and record batches
//! encoded straight to IPC messages.
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::{
    DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

/// The flatbuffer `Message` (header only, no framing) of `schema` under the default
/// write options, encoded now; [`crate::schema_cache::SchemaMessages`] keeps them.
///
/// Only for schemas without dictionary columns (see [`has_dictionary`]): those need a
/// dictionary tracker that lives with the stream.
pub fn encode_schema_message(schema: &SchemaRef) -> Bytes {
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        &IpcWriteOptions::default(),
    );
    Bytes::from(encoded.ipc_message)
}

/// Encodes record batches without dictionary columns into IPC messages, under the
/// default write options (those of [`encode_schema_message`]).
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
    use arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn dictionaries_are_found_when_nested() {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let list = DataType::List(Arc::new(Field::new("item", dict.clone(), true)));
        assert!(has_dictionary(&dict));
        assert!(has_dictionary(&list));
        assert!(!has_dictionary(&DataType::Utf8));
    }
}
