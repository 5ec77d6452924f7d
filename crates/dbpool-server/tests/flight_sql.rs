//! Flight SQL statements run where the spec puts them: GetFlightInfo of a statement or a
//! prepared statement touches no database (its FlightInfo has no schema), DoGet runs it
//! exactly once — queries and statements that write alike — and malformed Flight SQL
//! messages are the client's INVALID_ARGUMENT.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionBeginTransactionResult, ActionEndTransactionRequest, Any,
    CommandStatementQuery, EndTransaction, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{Action, FlightClient, FlightDescriptor, FlightInfo, Ticket};
use common::flight_sql::*;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_testkit::PgDb;
use prost::Message;
use tonic::Code;

/// The embedded SQLite pool and a PostgreSQL database, with `?` / `$1` placeholders.
async fn backends() -> (PgDb, [(&'static str, &'static str); 2]) {
    (PgDb::create().await, [("default", "?"), ("pg", "$1")])
}

async fn execute(server: &TestServer, pool: &str, sql: &str) {
    let req = pb::ExecuteRequest {
        pool_id: pool.into(),
        sql: sql.into(),
        ..Default::default()
    };
    server.pools().await.execute(req).await.unwrap();
}

async fn count(server: &TestServer, pool: &str, table: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let b = query_ipc(&mut server.pools().await, pool, &sql, vec![])
        .await
        .unwrap();
    let n = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    n.as_primitive::<Int64Type>().value(0)
}

/// Connections the pool handed out so far: each database round trip takes one.
async fn acquires(server: &TestServer, pool: &str) -> u64 {
    let req = pb::GetMetricsRequest {
        pool_id: pool.into(),
    };
    let m = server.pools().await.get_metrics(req).await.unwrap();
    m.into_inner().metrics[0]
        .acquire_wait_seconds
        .as_ref()
        .unwrap()
        .count
}

fn ints(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64).unwrap();
            c.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect()
}

/// A statement's FlightInfo: one endpoint, no schema (the stream carries it).
fn assert_deferred(info: &FlightInfo) {
    assert!(info.schema.is_empty(), "no schema before it runs: {info:?}");
    assert_eq!(info.endpoint.len(), 1);
}

/// Checks the FlightInfo `fi` of an INSERT into `t` left `t` at `n` rows and its DoGet
/// added one; the rows the DoGet returned.
async fn runs_on_do_get(
    server: &TestServer,
    pool: &str,
    f: &mut FlightClient,
    fi: FlightInfo,
    n: i64,
) -> Vec<i64> {
    assert_deferred(&fi);
    assert_eq!(
        count(server, pool, "t").await,
        n,
        "{pool}: GetFlightInfo wrote"
    );
    let rows = ints(&fetch(f, &fi).await.unwrap());
    assert_eq!(
        count(server, pool, "t").await,
        n + 1,
        "{pool}: not one write"
    );
    rows
}

#[tokio::test]
async fn get_flight_info_writes_nothing_and_do_get_writes_once() {
    let (db, backends) = backends().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let sqlite = TestServer::start(&[]).await;
    for (pool, ph) in backends {
        let server = if pool == "pg" { &server } else { &sqlite };
        execute(server, pool, "CREATE TABLE t (v INTEGER)").await;
        let mut f = client_on(server, pool).await;
        // A statement (CommandStatementQuery) that writes, and one that returns rows too.
        let fi = statement_info(&mut f, "INSERT INTO t VALUES (1)").await;
        let rows = runs_on_do_get(server, pool, &mut f, fi.unwrap(), 0).await;
        assert!(rows.is_empty(), "{pool}");
        let fi = statement_info(&mut f, "INSERT INTO t VALUES (5) RETURNING v").await;
        let rows = runs_on_do_get(server, pool, &mut f, fi.unwrap(), 1).await;
        assert_eq!(rows, [5], "{pool}");
        // A prepared statement with a bound parameter row.
        let sql = format!("INSERT INTO t VALUES ({ph})");
        let created = prepare_described(&mut f, &sql).await.unwrap();
        assert_eq!(count(server, pool, "t").await, 2, "{pool}: preparing wrote");
        let h = created.prepared_statement_handle;
        bind(&mut f, &h, param_rows(7..8)).await.unwrap();
        let fi = info(&mut f, &h).await.unwrap();
        runs_on_do_get(server, pool, &mut f, fi, 2).await;
        let mut pools = server.pools().await;
        let b = query_ipc(&mut pools, pool, "SELECT v FROM t ORDER BY v", vec![]);
        assert_eq!(ints(&b.await.unwrap()), [1, 5, 7], "{pool}");
    }
}

#[tokio::test]
async fn a_sqlite_query_touches_the_database_once() {
    let server = TestServer::start(&[]).await;
    execute(&server, "default", "CREATE TABLE t (v INTEGER)").await;
    execute(&server, "default", "INSERT INTO t VALUES (1), (2), (3)").await;
    let mut f = client_on(&server, "default").await;
    let before = acquires(&server, "default").await;
    let fi = statement_info(&mut f, "SELECT v FROM t ORDER BY v")
        .await
        .unwrap();
    assert_deferred(&fi);
    assert_eq!(
        acquires(&server, "default").await,
        before,
        "GetFlightInfo ran it"
    );
    assert_eq!(ints(&fetch(&mut f, &fi).await.unwrap()), [1, 2, 3]);
    assert_eq!(acquires(&server, "default").await, before + 1, "run once");
    // A prepared query: describing it at CreatePreparedStatement never runs a statement
    // with placeholders, and its FlightInfo does not either.
    let h = prepare(&mut f, "SELECT v FROM t WHERE v >= ? ORDER BY v")
        .await
        .unwrap();
    bind(&mut f, &h, param_rows(2..3)).await.unwrap();
    let before = acquires(&server, "default").await;
    let fi = info(&mut f, &h).await.unwrap();
    assert_deferred(&fi);
    assert_eq!(
        acquires(&server, "default").await,
        before,
        "GetFlightInfo ran it"
    );
    assert_eq!(ints(&fetch(&mut f, &fi).await.unwrap()), [2, 3]);
    assert_eq!(acquires(&server, "default").await, before + 1, "run once");
}

/// CreatePreparedStatement describes an SQLite query by preparing it, never by running
/// it: a query that fails only when it runs is prepared and its `dataset_schema` names
/// its columns; it runs once, on DoGet, where it fails.
#[tokio::test]
async fn a_sqlite_prepared_query_is_described_without_running() {
    let server = TestServer::start(&[]).await;
    execute(&server, "default", "CREATE TABLE t (v INTEGER)").await;
    execute(&server, "default", "INSERT INTO t VALUES (1)").await;
    let mut f = client_on(&server, "default").await;
    let sql = "SELECT v, json('not json') AS j FROM t";
    let created = prepare_described(&mut f, sql).await.unwrap();
    let described =
        arrow::datatypes::Schema::try_from(arrow_flight::IpcMessage(created.dataset_schema))
            .unwrap();
    let names: Vec<&str> = described
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["v", "j"]);
    let fi = info(&mut f, &created.prepared_statement_handle)
        .await
        .unwrap();
    assert!(fetch(&mut f, &fi).await.is_err(), "it fails when it runs");
}

#[tokio::test]
async fn a_postgres_query_with_a_side_effect_runs_once() {
    let db = PgDb::create().await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    execute(&server, "pg", "CREATE TABLE calls (n INTEGER)").await;
    execute(
        &server,
        "pg",
        "CREATE FUNCTION bump() RETURNS integer LANGUAGE sql VOLATILE AS \
         $$ INSERT INTO calls VALUES (1) RETURNING 42 $$",
    )
    .await;
    let mut f = client_on(&server, "pg").await;
    let fi = statement_info(&mut f, "SELECT bump() AS v").await.unwrap();
    assert_eq!(count(&server, "pg", "calls").await, 0);
    assert_eq!(ints(&fetch(&mut f, &fi).await.unwrap()), [42]);
    assert_eq!(count(&server, "pg", "calls").await, 1);
    let h = prepare(&mut f, "SELECT bump() AS v").await.unwrap();
    let fi = info(&mut f, &h).await.unwrap();
    assert_eq!(
        count(&server, "pg", "calls").await,
        1,
        "prepare or GetFlightInfo ran it"
    );
    assert_eq!(ints(&fetch(&mut f, &fi).await.unwrap()), [42]);
    assert_eq!(count(&server, "pg", "calls").await, 2);
}

/// Bytes that do not decode as any protobuf message (a field longer than the buffer).
const GARBAGE: &[u8] = &[0x0a, 0x05, 0x01];

fn garbage_any(type_url: &str) -> Vec<u8> {
    Any {
        type_url: type_url.into(),
        value: GARBAGE.to_vec().into(),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn malformed_flight_sql_messages_are_invalid_argument() {
    let server = TestServer::start_with(&[], |c| c.server.limits.max_sql_bytes = 64).await;
    let mut f = client_on(&server, "default").await;
    // A statement over the bounds is refused at GetFlightInfo already.
    let long = format!("SELECT '{}' AS x", "y".repeat(64));
    let s = statement_info(&mut f, &long).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("invalid `query`"), "{s:?}");
    let query_url = CommandStatementQuery::type_url();
    let d = FlightDescriptor::new_cmd(garbage_any(query_url));
    let s = status(f.get_flight_info(d.clone()).await.unwrap_err());
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("CommandStatementQuery"), "{s:?}");
    let s = status(f.get_schema(d).await.unwrap_err());
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let t = Ticket::new(garbage_any(TicketStatementQuery::type_url()));
    let s = status(f.do_get(t).await.err().unwrap());
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    // A well-formed ticket whose statement handle is not ours.
    let t = TicketStatementQuery {
        statement_handle: GARBAGE.to_vec().into(),
    };
    let s = status(
        f.do_get(Ticket::new(t.as_any().encode_to_vec()))
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    for name in [
        "CreatePreparedStatement",
        "ClosePreparedStatement",
        "BeginTransaction",
    ] {
        let url = format!("type.googleapis.com/arrow.flight.protocol.sql.Action{name}Request");
        let s = action(&mut f, Action::new(name, garbage_any(&url)))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{name}: {s:?}");
    }
    // A DoPut without its first message or without the descriptor naming its command.
    let s = status(f.do_put(futures::stream::empty()).await.err().unwrap());
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let mut msgs = param_rows(0..1);
    msgs[0].flight_descriptor = None;
    let s = status(
        f.do_put(futures::stream::iter(msgs.into_iter().map(Ok)))
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("flight_data[0]"), "{s:?}");
    // An unknown handle is NOT_FOUND.
    let s = info(&mut f, &bytes::Bytes::from_static(b"ps-nope"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
}

#[tokio::test]
async fn a_flight_sql_transaction_idles_out_after_the_configured_timeout() {
    let server = TestServer::start_with(&[], |c| c.server.transaction_idle_timeout_ms = 50).await;
    let mut f: FlightClient = client_on(&server, "default").await;
    let begin = ActionBeginTransactionRequest {};
    let out = action(
        &mut f,
        Action::new("BeginTransaction", begin.as_any().encode_to_vec()),
    )
    .await
    .unwrap();
    let any = Any::decode(out[0].clone()).unwrap();
    let tx: ActionBeginTransactionResult = any.unpack().unwrap().unwrap();
    // It pins a connection until the server's reaper rolls it back (no event to wait
    // for: the pool's status is polled).
    let pools = server.pools().await;
    common::wait_status(&pools, "default", "the connection back", |s| s.in_use == 0).await;
    let end = ActionEndTransactionRequest {
        transaction_id: tx.transaction_id,
        action: EndTransaction::Commit as i32,
    };
    let s = action(
        &mut f,
        Action::new("EndTransaction", end.as_any().encode_to_vec()),
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
}

/// Calls of a Redis command the server counted so far (INFO commandstats).
async fn redis_calls(server: &TestServer, command: &str) -> u64 {
    let b = query_ipc(&mut server.pools().await, "r", "INFO commandstats", vec![])
        .await
        .unwrap();
    let text = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    let text = text.as_string::<i32>().value(0).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn a_redis_read_runs_once() {
    let url = std::env::var("DBPOOL_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let server = TestServer::start(&[("r", &url)]).await;
    let key = dbpool_testkit::unique_name("dbpool_test_flight_sql");
    let mut f = client_on(&server, "r").await;
    let before = redis_calls(&server, "hstrlen").await;
    let fi = statement_info(&mut f, &format!("HSTRLEN {key} field"))
        .await
        .unwrap();
    assert_deferred(&fi);
    assert_eq!(
        redis_calls(&server, "hstrlen").await,
        before,
        "GetFlightInfo ran it"
    );
    assert_eq!(ints(&fetch(&mut f, &fi).await.unwrap()), [0]);
    assert_eq!(redis_calls(&server, "hstrlen").await, before + 1);
}
