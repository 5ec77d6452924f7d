//! Call dispatch through the real server over fake backends, on paused time: each
//! PoolService and Flight call reaches the fake with its verb, each typed error the
//! backend returns reaches the client with its gRPC code, and the authorizer and the
//! middleware chain see, rewrite or refuse calls before the backend does.
mod common;
mod fake_server;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use arrow_flight::Ticket;
use common::{begin, end, query_ipc, wait_until_sync, WAIT};
use dbpool_core::{Error, UnavailableCause};
use dbpool_proto::v1 as pb;
use dbpool_server::hooks::{Authorizer, Call, Middleware, Outcome};
use dbpool_testkit::{Step, Verb};
use fake_server::{config, execute, FakeServer};
use futures::TryStreamExt;
use parking_lot::Mutex;
use prost::Message;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;

/// The values of column `n` of every batch, in order.
fn values(batches: &[arrow::record_batch::RecordBatch]) -> Vec<i64> {
    let column = |b: &arrow::record_batch::RecordBatch| {
        b.column(0).as_primitive::<Int64Type>().values().to_vec()
    };
    batches.iter().flat_map(column).collect()
}

#[tokio::test(start_paused = true)]
async fn pool_service_calls_reach_the_fake_with_their_verbs() {
    let server = FakeServer::start(config(&["p"]), |b| b).await;
    let fake = server.fake("p");
    fake.set_default(Step::ok(3));
    let mut c = server.pools().await;

    let rows = query_ipc(&mut c, "p", "SELECT n", vec![]).await.unwrap();
    assert_eq!(values(&rows), [0, 1, 2]);
    assert_eq!(execute(&mut c, "p", "", "UPDATE t").await.unwrap(), 3);
    let statement = |sql: &str| pb::Statement {
        sql: sql.into(),
        params: vec![],
    };
    let batch = c
        .execute_batch(pb::ExecuteBatchRequest {
            pool_id: "p".into(),
            statements: vec![statement("INSERT 1"), statement("INSERT 2")],
            transaction: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.total_rows_affected, 6);
    assert!(batch.results.iter().all(|r| r.ok && r.rows_affected == 3));
    let verbs = [Verb::Query, Verb::Execute, Verb::Batch, Verb::Schema];
    assert_eq!(verbs.map(|v| fake.calls(v)), [1, 1, 1, 0]);

    // A transaction's statements run on it, and it ends on the fake.
    let tx = begin(&mut c, "p").await;
    // The query stream above lets its connection go once the server drops it.
    let held = || fake.in_flight() == 1;
    wait_until_sync(WAIT, "only the transaction holding a connection", held).await;
    assert_eq!(execute(&mut c, "", &tx, "UPDATE t").await.unwrap(), 3);
    let mut q = c
        .query(pb::QueryRequest {
            sql: "SELECT n".into(),
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while q.message().await.unwrap().is_some() {}
    c.commit(end(&tx)).await.unwrap();
    let tx = begin(&mut c, "p").await;
    c.rollback(end(&tx)).await.unwrap();
    let verbs = [Verb::Begin, Verb::Commit, Verb::Rollback, Verb::Execute];
    assert_eq!(verbs.map(|v| fake.calls(v)), [2, 1, 1, 2]);
    assert_eq!(fake.calls(Verb::Query), 2);
    wait_until_sync(WAIT, "every connection given back", || {
        fake.in_flight() == 0
    })
    .await;
    let e = execute(&mut c, "", &tx, "UPDATE t").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "an ended transaction is gone");
    server.stop().await;
}

fn ticket(pool: &str, sql: &str, batch_size: u32) -> Ticket {
    let t = pb::QueryTicket {
        pool_id: pool.into(),
        sql: sql.into(),
        batch_size,
        ..Default::default()
    };
    Ticket::new(t.encode_to_vec())
}

#[tokio::test(start_paused = true)]
async fn flight_do_get_streams_the_fakes_rows_from_one_query() {
    let server = FakeServer::start(config(&["p"]), |b| b).await;
    let fake = server.fake("p");
    fake.then(Verb::Query, Step::ok(2500));
    let mut f = server.flight().await;
    let stream = f.do_get(ticket("p", "SELECT n", 1000)).await.unwrap();
    let batches: Vec<_> = stream.try_collect().await.unwrap();
    let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    assert_eq!(values(&batches), (0..2500).collect::<Vec<i64>>());
    assert_eq!((fake.calls(Verb::Query), fake.calls(Verb::Schema)), (1, 0));

    fake.then(Verb::Query, Step::down());
    let e = f.do_get(ticket("p", "SELECT n", 0)).await.err().unwrap();
    let arrow_flight::error::FlightError::Tonic(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_error_of_the_backend_reaches_the_client_with_its_code() {
    let server = FakeServer::start(config(&["p"]), |b| b).await;
    let fake = server.fake("p");
    let database = || Error::Database {
        message: "relation \"t\" does not exist".into(),
        code: Some("42P01".into()),
    };
    let circuit = || Error::unavailable(UnavailableCause::CircuitOpen, "circuit open (fake)");
    let aborted = || Error::Aborted {
        message: "deadlock detected".into(),
        code: "40P01".into(),
    };
    let cases = [
        (Code::Unavailable, Step::down()),
        (Code::Unavailable, Step::fail(circuit)),
        (Code::InvalidArgument, Step::fail(database)),
        (Code::Aborted, Step::fail(aborted)),
        (
            Code::ResourceExhausted,
            Step::fail(|| Error::AcquireTimeout(Duration::from_secs(1))),
        ),
        (
            Code::ResourceExhausted,
            Step::fail(|| Error::ResourceExhausted("queue full".into())),
        ),
        (
            Code::NotFound,
            Step::fail(|| Error::TransactionNotFound("tx-gone".into())),
        ),
        (
            Code::DeadlineExceeded,
            Step::fail(|| Error::StatementTimeout("canceled".into())),
        ),
        (
            Code::Unauthenticated,
            Step::fail(|| Error::AuthFailed("password".into())),
        ),
        (
            Code::PermissionDenied,
            Step::fail(|| Error::PermissionDenied("denylist".into())),
        ),
        (
            Code::Unimplemented,
            Step::fail(|| Error::Unsupported("no".into())),
        ),
        (Code::Internal, Step::fail(|| Error::Internal("bug".into()))),
    ];
    let mut c = server.pools().await;
    for (i, (code, step)) in cases.into_iter().enumerate() {
        fake.then(Verb::Execute, step.clone());
        let e = execute(&mut c, "p", "", "UPDATE t").await.unwrap_err();
        assert_eq!(e.code(), code, "case {i}: {e:?}");
        // A query fails the same way, when its stream opens.
        fake.then(Verb::Query, step);
        let e = query_ipc(&mut c, "p", "SELECT n", vec![])
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "query, case {i}: {e:?}");
    }
    let e = execute(&mut c, "p", "", "UPDATE t").await.unwrap();
    assert_eq!(e, 1, "the fake answers again once its script is spent");
    fake.then(Verb::Execute, Step::fail(database));
    let e = execute(&mut c, "p", "", "SELECT * FROM t")
        .await
        .unwrap_err();
    assert!(e.message().contains("42P01"), "{e:?}");
    server.stop().await;
}

/// What a middleware saw: `method sql` before, `after method rows code` after.
type Log = Arc<Mutex<Vec<String>>>;

/// Records every call; refuses SQL holding `DROP` when asked; tags the rest when asked.
struct Recorder {
    log: Log,
    tag: Option<&'static str>,
    refuse_drop: bool,
}

impl Middleware for Recorder {
    fn before(&self, call: &mut Call<'_>) -> dbpool_core::Result<()> {
        let sql = call.sql.as_deref().unwrap_or_default().to_string();
        self.log
            .lock()
            .push(format!("{} {sql}", call.method.name()));
        if self.refuse_drop && sql.contains("DROP") {
            return Err(Error::PermissionDenied("no DROP here".into()));
        }
        if let Some(tag) = self.tag {
            call.sql = Some(Cow::Owned(format!("/* {tag} */ {sql}")));
        }
        Ok(())
    }

    fn after(&self, call: &Call<'_>, outcome: &Outcome<'_>) {
        let code = outcome.error.map(Error::code_name).unwrap_or("OK");
        let line = format!("after {} {} {code}", call.method.name(), outcome.rows);
        self.log.lock().push(line);
    }
}

fn recorder(log: &Log, tag: Option<&'static str>, refuse_drop: bool) -> Arc<Recorder> {
    Arc::new(Recorder {
        log: log.clone(),
        tag,
        refuse_drop,
    })
}

#[tokio::test(start_paused = true)]
async fn middleware_rewrites_refuses_and_sees_the_outcome() {
    let (first, second): (Log, Log) = Default::default();
    let server = FakeServer::start(config(&["p"]), |b| {
        b.middleware(recorder(&first, Some("app"), false))
            .middleware(recorder(&second, None, true))
    })
    .await;
    let fake = server.fake("p");
    fake.set_default(Step::ok(2));
    let mut c = server.pools().await;

    assert_eq!(execute(&mut c, "p", "", "UPDATE t").await.unwrap(), 2);
    let rows = query_ipc(&mut c, "p", "SELECT n", vec![]).await.unwrap();
    assert_eq!(values(&rows), [0, 1]);
    assert_eq!(
        fake.statements(),
        ["/* app */ UPDATE t", "/* app */ SELECT n"],
        "the database got the rewritten SQL"
    );
    // The second link saw the first one's rewrite; `after` ran last to first.
    assert_eq!(
        *second.lock(),
        [
            "execute /* app */ UPDATE t",
            "after execute 2 OK",
            "query /* app */ SELECT n",
            "after query 0 OK",
        ]
    );

    // The second link refuses: the fake never sees the call, the first link sees the
    // refusal once as the call's outcome, the refusing link none.
    first.lock().clear();
    second.lock().clear();
    let e = execute(&mut c, "p", "", "DROP TABLE t").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("no DROP here"), "{e:?}");
    assert_eq!(fake.calls(Verb::Execute), 1);
    assert_eq!(
        *first.lock(),
        ["execute DROP TABLE t", "after execute 0 PERMISSION_DENIED"]
    );
    assert_eq!(*second.lock(), ["execute /* app */ DROP TABLE t"]);

    // A failed call's outcome carries its error.
    first.lock().clear();
    fake.then(Verb::Execute, Step::down());
    let e = execute(&mut c, "p", "", "UPDATE t").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(
        *first.lock(),
        ["execute UPDATE t", "after execute 0 UNAVAILABLE"]
    );
    server.stop().await;
}

/// Allows only reads on pool `ro`.
struct ReadOnly;

impl Authorizer for ReadOnly {
    fn authorize(&self, call: &Call<'_>) -> dbpool_core::Result<()> {
        if call.pool_id == "ro" && call.method.writes() {
            return Err(Error::PermissionDenied(format!(
                "{} on pool ro",
                call.method.name()
            )));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_authorizer_refuses_before_the_backend_and_the_middleware() {
    let log: Log = Default::default();
    let server = FakeServer::start(config(&["ro", "rw"]), |b| {
        b.authorizer(Arc::new(ReadOnly))
            .middleware(recorder(&log, None, false))
    })
    .await;
    let (ro, rw) = (server.fake("ro"), server.fake("rw"));
    let mut c = server.pools().await;
    let e = execute(&mut c, "ro", "", "UPDATE t").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("execute on pool ro"), "{e:?}");
    assert_eq!(ro.calls(Verb::Execute), 0);
    assert!(log.lock().is_empty(), "{:?}", log.lock());
    // Reads on `ro` and writes elsewhere pass.
    assert_eq!(
        query_ipc(&mut c, "ro", "SELECT n", vec![])
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(execute(&mut c, "rw", "", "UPDATE t").await.unwrap(), 1);
    assert_eq!((ro.calls(Verb::Query), rw.calls(Verb::Execute)), (1, 1));
    server.stop().await;
}
