//! DoPut of our bulk-insert command, as the Python client sends it.
#![allow(dead_code)]
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{FlightClient, FlightDescriptor, PutResult};
use dbpool_proto::v1::{BulkInsertCommand, BulkInsertResult, InsertMode};
use futures::TryStreamExt;
use prost::Message;
use tonic::Status;

/// DoPut of `batches` into `pool`.`table`; the rows inserted, or the call's status.
pub async fn do_put(
    f: &mut FlightClient,
    pool: &str,
    table: &str,
    mode: InsertMode,
    batches: Vec<RecordBatch>,
) -> Result<u64, Status> {
    let cmd = BulkInsertCommand {
        pool_id: pool.into(),
        table: table.into(),
        mode: mode as i32,
    };
    // Wrapped in an Any, the Flight SQL convention for custom commands.
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: cmd.encode_to_vec(),
    };
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(any.encode_to_vec())))
        .build(futures::stream::iter(batches.into_iter().map(Ok)));
    let results: Vec<PutResult> = f
        .do_put(data)
        .await
        .map_err(super::flight_sql::status)?
        .try_collect()
        .await
        .map_err(super::flight_sql::status)?;
    assert_eq!(results.len(), 1, "one PutResult");
    let r = BulkInsertResult::decode(results[0].app_metadata.clone()).unwrap();
    Ok(r.rows_inserted)
}
