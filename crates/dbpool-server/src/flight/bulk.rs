//! DoPut bulk insert: an Any-wrapped `dbpool.v1.BulkInsertCommand` descriptor, then the
//! record batches; one PutResult with a BulkInsertResult answers.
use super::sql::SqlService;
use super::{commands, Out};
use crate::status::to_status;
use arrow::datatypes::Schema;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::PutResult;
use dbpool_core::{BulkInsert, Error, InsertMode};
use dbpool_proto::v1::{self as pb, BulkInsertResult};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Runs a bulk insert DoPut.
pub async fn do_put(
    svc: &SqlService,
    req: Request<PeekableFlightDataStream>,
    message: arrow_flight::sql::Any,
) -> Result<Response<Out<PutResult>>, Status> {
    let st = |e: Error| to_status(&e);
    let cmd = commands::bulk_insert(&message).map_err(st)?;
    let mut stream = req.into_inner();
    let first = stream
        .peek()
        .await
        .cloned()
        .transpose()?
        .ok_or_else(|| st(Error::invalid("stream", "DoPut sent no data")))?;
    let schema = Arc::new(Schema::try_from(&first).map_err(|e| {
        st(Error::invalid(
            "stream",
            format!("the first message must carry the Arrow schema: {e}"),
        ))
    })?);
    // An unknown mode is refused, not read as the default (append).
    let mode = pb::InsertMode::try_from(cmd.mode).map_err(|_| {
        st(Error::invalid(
            "mode",
            format!("{} is not a known insert mode", cmd.mode),
        ))
    })?;
    let mode = match mode {
        pb::InsertMode::AppendUnspecified => InsertMode::Append,
        pb::InsertMode::Create => InsertMode::Create,
        pb::InsertMode::Replace => InsertMode::Replace,
    };
    let batches = FlightRecordBatchStream::new_from_flight_data(
        stream.map_err(|s| FlightError::Tonic(Box::new(s))),
    )
    .map_err(|e| match e {
        FlightError::Tonic(s) => Error::invalid("stream", s.message().to_string()),
        other => Error::invalid("stream", other.to_string()),
    })
    .boxed();
    let target = BulkInsert {
        table: cmd.table.clone(),
        mode,
    };
    let rows = svc
        .calls
        .bulk_insert(&cmd.pool_id, target, schema, batches)
        .await
        .map_err(st)?;
    let result = PutResult {
        app_metadata: BulkInsertResult {
            rows_inserted: rows,
        }
        .encode_to_vec()
        .into(),
    };
    Ok(Response::new(
        futures::stream::once(async { Ok(result) }).boxed(),
    ))
}
