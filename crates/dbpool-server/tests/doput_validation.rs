//! DoPut with broken Arrow IPC against the real server: a truncated body, an empty body
//! after the schema, invalid UTF-8, mutated headers. Each is INVALID_ARGUMENT naming the
//! message, nothing reaches the table (counted in real PostgreSQL and SQLite), and the
//! server answers the next call.
mod common;

use arrow::array::*;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightData, FlightDescriptor, PutResult};
use common::*;
use dbpool_proto::v1::{BulkInsertCommand, BulkInsertResult, InsertMode};
use dbpool_testkit::PgDb;
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::{Code, Status};

fn rows(from: i64, n: i64, text: &str) -> RecordBatch {
    let ids = from..from + n;
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(ids.clone())) as ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from_iter_values(
                ids.map(|i| format!("{text}{i}")),
            )),
        ),
    ])
    .unwrap()
}

/// Schema and batch messages of `batches`, the descriptor on the first.
fn messages(pool: &str, table: &str, batches: Vec<RecordBatch>) -> Vec<FlightData> {
    let cmd = BulkInsertCommand {
        pool_id: pool.into(),
        table: table.into(),
        mode: InsertMode::AppendUnspecified as i32,
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: cmd.encode_to_vec(),
    };
    let mut msgs =
        arrow_flight::utils::batches_to_flight_data(&batches[0].schema(), &batches).unwrap();
    msgs[0].flight_descriptor = Some(FlightDescriptor::new_cmd(any.encode_to_vec()));
    msgs
}

/// Sends raw messages; the rows inserted, or the call's status.
async fn put(f: &mut FlightClient, msgs: Vec<FlightData>) -> Result<u64, Status> {
    let status = |e: FlightError| match e {
        FlightError::Tonic(s) => *s,
        other => panic!("not a status: {other:?}"),
    };
    let input = futures::stream::iter(msgs.into_iter().map(Ok));
    let results: Vec<PutResult> = f
        .do_put(input)
        .await
        .map_err(status)?
        .try_collect()
        .await
        .map_err(status)?;
    assert_eq!(results.len(), 1, "one PutResult");
    Ok(BulkInsertResult::decode(results[0].app_metadata.clone())
        .unwrap()
        .rows_inserted)
}

/// Flight SQL ingest of raw messages into `t` of the pool named by the call header.
async fn ingest(f: &mut FlightClient, msgs: Vec<FlightData>) -> Result<i64, Status> {
    use arrow_flight::sql::{CommandStatementIngest, DoPutUpdateResult, ProstMessageExt};
    let cmd = CommandStatementIngest {
        table: "t".into(),
        ..Default::default()
    };
    let meta = common::flight_sql::put(f, cmd.as_any(), msgs).await?;
    Ok(DoPutUpdateResult::decode(meta).unwrap().record_count)
}

async fn count(server: &TestServer, pool: &str) -> i64 {
    let mut c = server.pools().await;
    let b = query_ipc(&mut c, pool, "SELECT count(*) AS n FROM t", vec![])
        .await
        .unwrap();
    b[0].column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0)
}

/// The broken streams: (what, messages). Each has a valid batch before the broken one,
/// so a backend that wrote as it read would show rows.
fn broken(pool: &str) -> Vec<(&'static str, Vec<FlightData>)> {
    let good = || messages(pool, "t", vec![rows(100, 5, "ok"), rows(200, 5, "héllo")]);
    let mut out = Vec::new();
    let mut m = good();
    let body = m[2].data_body.clone();
    m[2].data_body = body.slice(..body.len() / 2);
    out.push(("truncated body", m));
    let mut m = good();
    m[2].data_body = Default::default();
    out.push(("empty body", m));
    // Invalid UTF-8: the two bytes of `é` become 0xFF 0xFF, lengths unchanged.
    let mut m = good();
    let mut body = m[2].data_body.to_vec();
    let at = body
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .expect("é in the body");
    body[at..at + 2].copy_from_slice(&[0xFF, 0xFF]);
    m[2].data_body = body.into();
    out.push(("invalid UTF-8", m));
    // An offset past the end of the string data: the last offset of `name` made huge.
    let mut m = good();
    let mut body = m[2].data_body.to_vec();
    let len = 5 * "héllo20x".len() as i32; // five names of 8 bytes: "héllo200".."héllo204"
    let at = body
        .chunks_exact(4)
        .position(|w| w == len.to_le_bytes())
        .expect("the last offset")
        * 4;
    body[at..at + 4].copy_from_slice(&(1_000_000i32).to_le_bytes());
    m[2].data_body = body.into();
    out.push(("offset beyond the data", m));
    // Buffer lengths in the header beyond the body: the 40-byte buffer (five int8 ids)
    // declared 2^40 bytes long.
    let mut m = good();
    let mut h = m[2].data_header.to_vec();
    let mut changed = 0;
    for w in h.chunks_exact_mut(8) {
        if w == 40i64.to_le_bytes() {
            w.copy_from_slice(&(1i64 << 40).to_le_bytes());
            changed += 1;
        }
    }
    assert!(changed > 0, "a buffer length of 40 in the header");
    m[2].data_header = h.into();
    out.push(("buffer length beyond the body", m));
    // A batch before any schema: the schema message dropped.
    let mut m = good();
    let descriptor = m[0].flight_descriptor.clone();
    m.remove(0);
    m[0].flight_descriptor = descriptor;
    out.push(("no schema first", m));
    out
}

#[tokio::test]
async fn broken_ipc_is_refused_and_writes_nothing() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8, name text)").await;
    let dir = tempfile::tempdir().unwrap();
    let lite = format!("sqlite://{}/v.db", dir.path().display());
    let server = TestServer::start(&[("pg", &db.url), ("lite", &lite)]).await;
    let mut f = server.flight().await;
    let mut c = server.pools().await;
    c.execute(dbpool_proto::v1::ExecuteRequest {
        pool_id: "lite".into(),
        sql: "CREATE TABLE t (id INTEGER, name TEXT)".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    for pool in ["pg", "lite"] {
        for (what, msgs) in broken(pool) {
            let s = put(&mut f, msgs).await.unwrap_err();
            assert_eq!(s.code(), Code::InvalidArgument, "{pool} {what}: {s:?}");
            assert!(
                s.message().contains("flight_data["),
                "{pool} {what}: names the message: {s:?}"
            );
            assert_eq!(
                count(&server, pool).await,
                0,
                "{pool} {what}: nothing written"
            );
        }
        // Flight SQL ingest goes through the same decoder.
        f.add_header("x-dbpool-pool", pool).unwrap();
        for (what, msgs) in broken(pool) {
            let s = ingest(&mut f, msgs).await.unwrap_err();
            assert_eq!(
                s.code(),
                Code::InvalidArgument,
                "ingest {pool} {what}: {s:?}"
            );
            assert!(s.message().contains("flight_data["), "{s:?}");
        }
        assert_eq!(count(&server, pool).await, 0, "{pool}: nothing ingested");
        // The server still answers, and a good stream is written whole.
        let n = put(
            &mut f,
            messages(pool, "t", vec![rows(0, 3, "a"), rows(3, 4, "b")]),
        )
        .await
        .unwrap();
        assert_eq!(n, 7, "{pool}");
        assert_eq!(count(&server, pool).await, 7, "{pool}");
    }
    let c = db.client().await;
    let names: Vec<String> = c
        .query("SELECT name FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["a0", "a1", "a2", "b3", "b4", "b5", "b6"]);
}

#[tokio::test]
async fn schema_limits_and_messages_name_what_was_wrong() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_params = 4).await;
    let mut f = server.flight().await;
    let wide = RecordBatch::try_from_iter((0..5).map(|i| {
        (
            format!("c{i}"),
            Arc::new(Int64Array::from(vec![i])) as ArrayRef,
        )
    }))
    .unwrap();
    let s = put(&mut f, messages("default", "w", vec![wide]))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().contains("flight_data[0]") && s.message().contains("more than 4 fields"),
        "{s:?}"
    );
    // The truncated body names its message index and what was wrong.
    let mut m = messages("default", "w", vec![rows(0, 3, "x")]);
    let body = m[1].data_body.clone();
    m[1].data_body = body.slice(..8);
    let s = put(&mut f, m).await.unwrap_err();
    assert!(
        s.message().contains("flight_data[1]") && s.message().contains("truncated body"),
        "{s:?}"
    );
}
