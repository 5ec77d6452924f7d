//! Flight tickets and descriptor commands: the bytes of a DoGet ticket or a
//! GetFlightInfo/GetSchema CMD descriptor through the server's classification
//! (Any-wrapped or bare dbpool.v1.QueryTicket, Flight SQL commands), an Any-wrapped
//! BulkInsertCommand as DoPut reads it, and the Flight SQL command decoding of the
//! arrow-flight service the server hands Flight SQL commands to.
#![no_main]
use arrow_flight::sql::{Any, Command, TicketStatementQuery};
use dbpool_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    use dbpool_server::fuzzing;
    if let Ok(Some((t, params))) = fuzzing::ticket(data) {
        assert_eq!(params.len(), t.params.len());
    }
    if let Ok(any) = Any::decode(data) {
        let _ = fuzzing::bulk_insert(&any);
        if let Ok(cmd) = Command::try_from(any) {
            // The statement tickets the server issues carry a QueryTicket as handle.
            if let Command::TicketStatementQuery(TicketStatementQuery { statement_handle }) = cmd {
                if let Ok(t) = pb::QueryTicket::decode(statement_handle.as_ref()) {
                    let _ = fuzzing::params(&t.params);
                }
            }
        }
    }
    // The same bytes as the value of each Any the server recognises.
    let wrapped = [
        "type.googleapis.com/dbpool.v1.QueryTicket",
        "type.googleapis.com/dbpool.v1.BulkInsertCommand",
    ];
    for url in wrapped {
        let any = prost_types::Any {
            type_url: url.into(),
            value: data.to_vec(),
        };
        let _ = fuzzing::ticket(&any.encode_to_vec());
        let any = Any {
            type_url: url.into(),
            value: data.to_vec().into(),
        };
        let _ = fuzzing::bulk_insert(&any);
    }
});
