//! Arrow IPC sent by a client (DoPut: bulk insert, Flight SQL ingest, prepared-statement
//! parameters) turned into record batches: every message is checked and every array
//! fully validated before a batch reaches a backend, and what one stream may make the
//! daemon hold (columns, dictionaries, rows of buffer-less columns) is bounded.
use arrow::array::{Array, ArrayRef};
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{read_dictionary_impl, RecordBatchDecoder};
use arrow::ipc::{root_as_message, MessageHeader};
use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use dbpool_core::{Error, QueryStream, Result};
use futures::stream::Stream;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::Status;

/// What one DoPut stream may make the daemon hold.
#[derive(Debug, Clone, Copy)]
pub struct IpcLimits {
    /// Fields of the schema, nested ones included (`server.limits.max_params`).
    pub max_fields: usize,
    /// Bytes all dictionaries of the stream may hold together, deltas included
    /// (`server.limits.max_message_bytes`).
    pub max_dictionary_bytes: usize,
    /// Rows a batch may claim beyond 8 per body byte: only columns without buffers
    /// (Null type, empty structs, run-end encoded) can be longer than their body is in
    /// bits, and such a batch could otherwise claim 2^63 rows (`server.limits.max_batch_rows`).
    pub max_bufferless_rows: usize,
}

impl IpcLimits {
    /// The bounds `[server.limits]` sets.
    pub fn from_config(l: &dbpool_config::Limits) -> Self {
        IpcLimits {
            max_fields: l.max_params,
            max_dictionary_bytes: l.max_message_bytes,
            max_bufferless_rows: l.max_batch_rows as usize,
        }
    }
}

/// What one message decoded to.
#[derive(Debug)]
pub enum Decoded {
    /// The stream's schema (only ever the first message).
    Schema(SchemaRef),
    /// A batch, fully validated.
    Batch(RecordBatch),
    /// A dictionary or a metadata-only message: nothing to hand on.
    Nothing,
}

/// Decodes one stream's messages in order; the state is the schema and dictionaries.
pub struct IpcDecoder {
    limits: IpcLimits,
    schema: Option<SchemaRef>,
    dictionaries: HashMap<i64, ArrayRef>,
    /// Index of the next message, for error messages.
    index: usize,
}

/// Counts fields, children included, stopping past `budget`; the flatbuffer verifier
/// already bounded the nesting depth (64), so the recursion is bounded too.
fn count_fields<'a>(
    fields: &mut dyn Iterator<Item = arrow::ipc::Field<'a>>,
    budget: usize,
) -> usize {
    let mut n = 0;
    for f in fields {
        let mut children = f.children().into_iter().flat_map(|v| v.iter());
        n += 1 + count_fields(&mut children, budget);
        if n > budget {
            break;
        }
    }
    n
}

/// Runs one of arrow's decoding steps, turning a panic into an error. The last line of
/// defence, not the check: everything known to panic is refused before (see
/// `check_buffers`). Still needed for arrow-data 60's `ArrayData::typed_buffer`, which
/// asserts (in `Buffer::typed_data`) that an offsets buffer's length is a multiple of
/// the offset width; a mutated schema whose field types no longer match their buffers
/// reaches it (1 stream in 10,000 of the mutation test).
fn last_defence<T>(f: impl FnOnce() -> Result<T, arrow::error::ArrowError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("arrow could not decode it (it panicked; the data is inconsistent)".into()),
    }
}

/// The body as an Arrow buffer, copied when it does not start 64-byte aligned (where
/// the protobuf decoder left it), so the 8-byte-aligned buffers in it are aligned too.
fn aligned(body: &bytes::Bytes) -> Buffer {
    if (body.as_ptr() as usize).is_multiple_of(64) {
        Buffer::from(body.clone())
    } else {
        Buffer::from(body.as_ref())
    }
}

/// Every buffer the header declares lies inside the body: arrow slices the body with
/// these numbers and panics on a slice past its end (found by the mutation test:
/// `Buffer::slice_with_length` in arrow-buffer 60), so they are checked first.
fn check_buffers(batch: &arrow::ipc::RecordBatch<'_>, body_len: usize) -> Result<(), String> {
    for (i, b) in batch.buffers().into_iter().flatten().enumerate() {
        let (offset, length) = (b.offset(), b.length());
        let end = u64::try_from(offset)
            .ok()
            .zip(u64::try_from(length).ok())
            .and_then(|(o, l)| o.checked_add(l));
        if end.is_none_or(|e| e > body_len as u64) {
            return Err(format!(
                "buffer {i} (offset {offset}, length {length}) lies outside the {body_len}-byte body"
            ));
        }
        // The format pads every buffer to 8 bytes; an odd offset otherwise reaches an
        // alignment assertion in arrow's offset validation (found by the mutation test).
        if offset % 8 != 0 {
            return Err(format!(
                "buffer {i} starts at offset {offset}, not a multiple of 8"
            ));
        }
    }
    Ok(())
}

fn dictionaries_size(d: &HashMap<i64, ArrayRef>) -> usize {
    d.values().map(|a| a.get_array_memory_size()).sum()
}

impl IpcDecoder {
    /// A decoder expecting the schema first.
    pub fn new(limits: IpcLimits) -> Self {
        IpcDecoder {
            limits,
            schema: None,
            dictionaries: HashMap::new(),
            index: 0,
        }
    }

    /// The schema, once decoded.
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// Decodes the next message; errors name the message's index and what was wrong.
    pub fn push(&mut self, header: &[u8], body: &bytes::Bytes) -> Result<Decoded> {
        let index = self.index;
        self.index += 1;
        self.decode(header, body).map_err(|m| {
            Error::invalid(
                format!("flight_data[{index}]"),
                format!("not valid Arrow IPC: {m}"),
            )
        })
    }

    fn decode(&mut self, header: &[u8], body: &bytes::Bytes) -> Result<Decoded, String> {
        if header.is_empty() {
            // app_metadata only: allowed by Flight, carries no data.
            return Ok(Decoded::Nothing);
        }
        let message =
            root_as_message(header).map_err(|e| format!("header is not an IPC message: {e}"))?;
        let declared = message.bodyLength();
        if declared < 0 || declared as u64 > body.len() as u64 {
            return Err(format!(
                "truncated body: the header declares {declared} bytes, the message carries {}",
                body.len()
            ));
        }
        match message.header_type() {
            MessageHeader::NONE => Ok(Decoded::Nothing),
            MessageHeader::Schema => self.schema_message(header, message),
            MessageHeader::DictionaryBatch => self.dictionary_message(message, body),
            MessageHeader::RecordBatch => self.batch_message(message, body),
            other => Err(format!(
                "unexpected message type {}",
                other.variant_name().unwrap_or("UNKNOWN")
            )),
        }
    }

    fn schema_message(
        &mut self,
        header: &[u8],
        message: arrow::ipc::Message<'_>,
    ) -> Result<Decoded, String> {
        if self.schema.is_some() {
            return Err("a second schema: the schema comes once, first".into());
        }
        let fb = message.header_as_schema().ok_or("schema header missing")?;
        let max = self.limits.max_fields;
        let n = count_fields(&mut fb.fields().into_iter().flat_map(|v| v.iter()), max);
        if n > max {
            return Err(format!(
                "the schema has more than {max} fields (server.limits.max_params)"
            ));
        }
        if n == 0 {
            return Err("the schema has no fields".into());
        }
        let schema = arrow::ipc::convert::try_schema_from_flatbuffer_bytes(header)
            .map_err(|e| format!("schema: {e}"))?;
        let schema = Arc::new(schema);
        self.schema = Some(schema.clone());
        Ok(Decoded::Schema(schema))
    }

    fn schema_or_err(&self, what: &str) -> Result<SchemaRef, String> {
        self.schema
            .clone()
            .ok_or_else(|| format!("a {what} before the schema: the schema comes first"))
    }

    fn dictionary_message(
        &mut self,
        message: arrow::ipc::Message<'_>,
        body: &bytes::Bytes,
    ) -> Result<Decoded, String> {
        let schema = self.schema_or_err("dictionary batch")?;
        let batch = message
            .header_as_dictionary_batch()
            .ok_or("dictionary batch header missing")?;
        let max = self.limits.max_dictionary_bytes;
        // Checked before arrow concatenates a delta onto what is held.
        if dictionaries_size(&self.dictionaries).saturating_add(body.len()) > max {
            return Err(format!(
                "the stream's dictionaries would exceed {max} bytes (server.limits.max_message_bytes)"
            ));
        }
        let data = batch.data().ok_or("dictionary batch without data")?;
        check_buffers(&data, body.len()).map_err(|e| format!("dictionary batch: {e}"))?;
        let buffer = aligned(body);
        let dictionaries = &mut self.dictionaries;
        last_defence(|| {
            read_dictionary_impl(
                &buffer,
                batch,
                &schema,
                dictionaries,
                &message.version(),
                false,
                Default::default(),
            )
        })
        .map_err(|e| format!("dictionary batch (id {}): {e}", batch.id()))?;
        let values = &self.dictionaries[&batch.id()];
        values
            .to_data()
            .validate_full()
            .map_err(|e| format!("dictionary batch (id {}): {e}", batch.id()))?;
        if dictionaries_size(&self.dictionaries) > max {
            return Err(format!(
                "the stream's dictionaries exceed {max} bytes (server.limits.max_message_bytes)"
            ));
        }
        Ok(Decoded::Nothing)
    }

    fn batch_message(
        &mut self,
        message: arrow::ipc::Message<'_>,
        body: &bytes::Bytes,
    ) -> Result<Decoded, String> {
        let schema = self.schema_or_err("record batch")?;
        let batch = message
            .header_as_record_batch()
            .ok_or("record batch header missing")?;
        let rows = batch.length();
        let most = (body.len() as u64)
            .saturating_mul(8)
            .max(self.limits.max_bufferless_rows as u64);
        if rows < 0 || rows as u64 > most {
            return Err(format!(
                "the batch claims {rows} rows, more than its {} body bytes can hold",
                body.len()
            ));
        }
        check_buffers(&batch, body.len()).map_err(|e| format!("record batch: {e}"))?;
        let buffer = aligned(body);
        let version = message.version();
        let dictionaries = &self.dictionaries;
        let decoded = last_defence(|| {
            RecordBatchDecoder::try_new(&buffer, batch, schema, dictionaries, &version)?
                .read_record_batch()
        })
        .map_err(|e| format!("record batch: {e}"))?;
        for (i, c) in decoded.columns().iter().enumerate() {
            c.to_data().validate_full().map_err(|e| {
                format!(
                    "record batch column {i} (`{}`): {e}",
                    decoded.schema().field(i).name()
                )
            })?;
        }
        Ok(Decoded::Batch(decoded))
    }
}

/// The schema and the validated batches of a DoPut stream: the first message must be
/// the schema; a bad message ends the batch stream with INVALID_ARGUMENT naming it (the
/// backends roll back a bulk insert whose stream fails).
pub async fn decode_put<S>(stream: S, limits: IpcLimits) -> Result<QueryStream>
where
    S: Stream<Item = std::result::Result<FlightData, Status>> + Send + Unpin + 'static,
{
    let mut stream = stream;
    let mut decoder = IpcDecoder::new(limits);
    let first = stream
        .next()
        .await
        .transpose()
        .map_err(|s| Error::invalid("stream", s.message().to_string()))?
        .ok_or_else(|| Error::invalid("stream", "DoPut sent no data"))?;
    let schema = match decoder.push(&first.data_header, &first.data_body)? {
        Decoded::Schema(s) => s,
        _ => {
            return Err(Error::invalid(
                "flight_data[0]",
                "the first message must carry the Arrow schema",
            ))
        }
    };
    let batches = stream
        .map(move |m| {
            let m = m.map_err(|s| Error::invalid("stream", s.message().to_string()))?;
            decoder.push(&m.data_header, &m.data_body)
        })
        .try_filter_map(|d| async move {
            Ok(match d {
                Decoded::Batch(b) => Some(b),
                _ => None,
            })
        })
        .boxed();
    Ok(QueryStream { schema, batches })
}

/// Decodes `input` as a sequence of messages framed `u32 header length, header, u32 body
/// length, body` (little-endian; lengths are clamped to what is left) through the same
/// decoder DoPut uses, returning every batch accepted. For the fuzz target and the
/// mutation test: it must never panic, and whatever it accepts must be valid Arrow.
#[doc(hidden)]
pub fn decode_framed(input: &[u8], limits: IpcLimits) -> Vec<Result<RecordBatch>> {
    let mut decoder = IpcDecoder::new(limits);
    let mut rest = input;
    let take = |rest: &mut &[u8]| -> Vec<u8> {
        let mut len = [0u8; 4];
        let n = rest.len().min(4);
        len[..n].copy_from_slice(&rest[..n]);
        *rest = &rest[n..];
        let len = (u32::from_le_bytes(len) as usize).min(rest.len());
        let (part, tail) = rest.split_at(len);
        *rest = tail;
        part.to_vec()
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let header = take(&mut rest);
        let body = bytes::Bytes::from(take(&mut rest));
        match decoder.push(&header, &body) {
            Ok(Decoded::Batch(b)) => out.push(Ok(b)),
            Ok(_) => {}
            Err(e) => {
                out.push(Err(e));
                break;
            }
        }
    }
    out
}

/// Frames messages the way [`decode_framed`] reads them.
#[doc(hidden)]
pub fn frame(messages: &[FlightData]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        for part in [&m.data_header[..], &m.data_body[..]] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}
