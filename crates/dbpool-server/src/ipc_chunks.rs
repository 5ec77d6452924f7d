//! A query result as chunks of one Arrow IPC stream (`Query` with `ARROW_IPC`), in as few
//! gRPC messages as streaming allows.
use crate::status::to_status;
use arrow::ipc::writer::StreamWriter;
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
/// one still streams batch by batch as the database produces it.
pub fn ipc_stream(q: QueryStream) -> Result<QueryStreamOut, Error> {
    // The schema stays in the writer's buffer and leaves with the first batch.
    let writer = StreamWriter::try_new(Vec::new(), &q.schema)?;
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
            if w.get_ref().len() >= COALESCE_BYTES {
                msgs.push(Ok(chunk(std::mem::take(w.get_mut()))));
            }
        }
        if !w.get_ref().is_empty() {
            msgs.push(Ok(chunk(std::mem::take(w.get_mut()))));
        }
        if let Some(s) = failed {
            msgs.push(Err(s));
            *writer = None;
        }
        futures::future::ready(Some(futures::stream::iter(msgs)))
    });
    Ok(out.flatten().boxed())
}
