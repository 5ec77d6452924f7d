//! Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the docs and
//! free to change). They are the request decoders the services run, not copies of them.
use dbpool_core::{Param, Result};

/// The decoder DoPut uses (the `flight_ipc` target and the IPC mutation test).
pub use crate::flight::ipc_in::{decode_framed, frame, IpcDecoder, IpcLimits};
use dbpool_proto::v1 as pb;

/// PoolService parameters → core parameters (`convert::params`).
pub fn params(ps: &[pb::Param]) -> Result<Vec<Param>> {
    crate::convert::params(ps, "params")
}

/// Flight SQL parameter batches → one `Vec<Param>` per row (`flight::params::rows`).
pub fn param_rows(batch: &arrow::record_batch::RecordBatch) -> Result<Vec<Vec<Param>>> {
    crate::flight::params::rows(batch)
}

/// Ticket / descriptor bytes as DoGet classifies them: `Ok(None)` for a Flight SQL
/// command (handed to the Flight SQL service), else the query ticket and its parameters.
pub fn ticket(bytes: &[u8]) -> Result<Option<(pb::QueryTicket, Vec<Param>)>> {
    use crate::flight::commands::{classify, Command};
    Ok(match classify(bytes, "ticket")? {
        Command::FlightSql => None,
        Command::Query(t, p) => Some((t, p)),
    })
}

/// An Any-wrapped BulkInsertCommand as DoPut decodes it.
pub fn bulk_insert(any: &arrow_flight::sql::Any) -> Result<pb::BulkInsertCommand> {
    crate::flight::commands::bulk_insert(any)
}

/// The CreatePool request → pool config mapping (`convert::pool_config`).
pub fn pool_config(r: &pb::CreatePoolRequest) -> Result<dbpool_config::PoolConfig> {
    crate::convert::pool_config(r, &dbpool_config::Limits::default())
}
