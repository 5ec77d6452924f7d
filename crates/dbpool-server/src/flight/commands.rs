//! Our Flight commands on the wire: `dbpool.v1.QueryTicket` and `BulkInsertCommand`,
//! wrapped in google.protobuf.Any (the Flight SQL convention for custom commands); a bare
//! QueryTicket is accepted too.
use dbpool_core::{Error, Param};
use dbpool_proto::v1::{BulkInsertCommand, QueryTicket};
use prost::Message;
use prost_types::Any;

/// Type URL of an Any-wrapped QueryTicket.
pub const QUERY_TICKET_URL: &str = "type.googleapis.com/dbpool.v1.QueryTicket";
/// Type URL of an Any-wrapped BulkInsertCommand.
pub const BULK_INSERT_URL: &str = "type.googleapis.com/dbpool.v1.BulkInsertCommand";
const FLIGHT_SQL_PREFIX: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// What a ticket or descriptor command holds.
pub enum Command {
    /// A Flight SQL command: handled by the Flight SQL service.
    FlightSql,
    /// Our query ticket.
    Query(QueryTicket, Vec<Param>),
}

/// Classifies ticket/descriptor bytes.
pub fn classify(bytes: &[u8], what: &str) -> Result<Command, Error> {
    if let Ok(any) = Any::decode(bytes) {
        if any.type_url.starts_with(FLIGHT_SQL_PREFIX) {
            return Ok(Command::FlightSql);
        }
        if any.type_url == QUERY_TICKET_URL {
            return query_ticket(&any.value, what);
        }
    }
    query_ticket(bytes, what)
}

fn query_ticket(bytes: &[u8], what: &str) -> Result<Command, Error> {
    let t = QueryTicket::decode(bytes)
        .map_err(|e| Error::invalid(what, format!("not a dbpool.v1.QueryTicket: {e}")))?;
    let params = crate::convert::params(&t.params, "params")?;
    Ok(Command::Query(t, params))
}

/// Decodes an Any-wrapped BulkInsertCommand.
pub fn bulk_insert(any: &arrow_flight::sql::Any) -> Result<BulkInsertCommand, Error> {
    if any.type_url != BULK_INSERT_URL {
        return Err(Error::invalid(
            "descriptor.cmd",
            format!(
                "expected a Flight SQL command or an Any of type `{BULK_INSERT_URL}`, got `{}`",
                any.type_url
            ),
        ));
    }
    BulkInsertCommand::decode(any.value.as_ref()).map_err(|e| {
        Error::invalid(
            "descriptor.cmd",
            format!("not a dbpool.v1.BulkInsertCommand: {e}"),
        )
    })
}
