//! Our Flight commands on the wire: `dbpool.v1.QueryTicket` and `BulkInsertCommand`,
//! wrapped in google.protobuf.Any (the Flight SQL convention for custom commands); a bare
//! QueryTicket is accepted too. Flight SQL messages are checked to decode here, so a
//! malformed one is the client's INVALID_ARGUMENT rather than the Flight SQL
//! dispatcher's INTERNAL.
use arrow_flight::sql::Any;
use arrow_flight::Action;
use dbpool_core::{Error, Param};
use dbpool_proto::v1::{BulkInsertCommand, QueryTicket};
use prost::Message;

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
            flight_sql_message(any, what)?;
            return Ok(Command::FlightSql);
        }
        if any.type_url == QUERY_TICKET_URL {
            return query_ticket(&any.value, what);
        }
    }
    query_ticket(bytes, what)
}

/// Checks the body of a Flight SQL action (CreatePreparedStatement, BeginTransaction…)
/// decodes; other bodies are left to the service.
pub fn check_action(action: &Action) -> Result<(), Error> {
    match Any::decode(action.body.as_ref()) {
        Ok(any) if any.type_url.starts_with(FLIGHT_SQL_PREFIX) => {
            flight_sql_message(any, "action.body")
        }
        _ => Ok(()),
    }
}

/// A Flight SQL message of a known type must decode as that type.
fn flight_sql_message(any: Any, what: &str) -> Result<(), Error> {
    let url = dbpool_core::clip(&any.type_url);
    arrow_flight::sql::Command::try_from(any)
        .map(drop)
        .map_err(|e| Error::invalid(what, format!("not a valid `{url}`: {e}")))
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
