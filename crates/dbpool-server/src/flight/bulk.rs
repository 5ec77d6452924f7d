//! DoPut bulk insert: an Any-wrapped `dbpool.v1.BulkInsertCommand` descriptor, then the
//! record batches; one PutResult with a BulkInsertResult answers.
use super::ipc_in::decode_put;
use super::sql::SqlService;
use super::{commands, Out};
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::PutResult;
use dbpool_core::{BulkInsert, Error, InsertMode};
use dbpool_proto::v1::{self as pb, BulkInsertResult};
use futures::StreamExt;
use prost::Message;
use tonic::{Request, Response, Status};

/// Runs a bulk insert DoPut.
pub async fn do_put(
    svc: &SqlService,
    req: Request<PeekableFlightDataStream>,
    message: arrow_flight::sql::Any,
) -> Result<Response<Out<PutResult>>, Status> {
    let cmd = commands::bulk_insert(&message)?;
    let rows = decode_put(req.into_inner(), svc.ipc).await?;
    // An unknown mode is refused, not read as the default (append).
    let mode = pb::InsertMode::try_from(cmd.mode).map_err(|_| {
        Status::from(Error::invalid(
            "mode",
            format!("{} is not a known insert mode", cmd.mode),
        ))
    })?;
    let mode = match mode {
        pb::InsertMode::AppendUnspecified => InsertMode::Append,
        pb::InsertMode::Create => InsertMode::Create,
        pb::InsertMode::Replace => InsertMode::Replace,
    };
    let target = BulkInsert {
        table: cmd.table.clone(),
        mode,
    };
    let inserted = svc.calls.bulk_insert(&cmd.pool_id, target, rows).await?;
    let result = PutResult {
        app_metadata: BulkInsertResult {
            rows_inserted: inserted,
        }
        .encode_to_vec()
        .into(),
    };
    Ok(Response::new(
        futures::stream::once(async { Ok(result) }).boxed(),
    ))
}
