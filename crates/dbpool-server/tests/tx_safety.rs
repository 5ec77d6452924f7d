//! Issue 15 end to end, against real PostgreSQL and SQLite: transaction-control SQL is
//! refused outside the transaction RPCs, a pooled connection never goes back inside a
//! transaction (another caller's write survives the pool being removed and recreated),
//! and Commit never answers OK for a transaction that was aborted or ended behind it.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::PgDb;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

type Client = PoolServiceClient<Channel>;

/// Creates `id` with one connection, so every call shares it.
async fn create(c: &mut Client, id: &str, url: &str) {
    create_pool_of_one(c, id, url).await.unwrap();
}

async fn remove(c: &mut Client, id: &str) {
    c.remove_pool(pb::RemovePoolRequest { pool_id: id.into() })
        .await
        .unwrap();
}

async fn exec(c: &mut Client, pool: &str, tx: &str, sql: &str) -> Result<u64, tonic::Status> {
    c.execute(pb::ExecuteRequest {
        pool_id: pool.into(),
        transaction_id: tx.into(),
        sql: sql.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().rows_affected)
}

/// Runs `sql` inside transaction `tx`; it must succeed.
async fn run(c: &mut Client, tx: &str, sql: &str) {
    exec(c, "", tx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// A fresh database with an empty table `t`, a daemon, and its pool `pg` with one
/// connection, on the database's URL followed by `url_tail`.
async fn pg_setup(url_tail: &str) -> (PgDb, TestServer, Client) {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8)").await;
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    create(&mut c, "pg", &format!("{}{url_tail}", db.url)).await;
    (db, server, c)
}

/// Another caller's write on `pool` counts one row and survives removing the pool
/// and recreating it on `url`: it is the only row of `t`.
async fn write_survives_recreate(c: &mut Client, pool: &str, url: &str) {
    assert_eq!(
        exec(c, pool, "", "INSERT INTO t VALUES (1)").await.unwrap(),
        1
    );
    remove(c, pool).await;
    create(c, pool, url).await;
    assert_eq!(ids(c, pool).await, vec![1]);
}

/// Commits `tx`; afterwards `t` on `pool` holds exactly `want`.
async fn commit_keeps(c: &mut Client, tx: &str, pool: &str, want: &[i64]) {
    c.commit(end(tx)).await.unwrap();
    assert_eq!(ids(c, pool).await, want);
}

/// The ids in `t`, in order.
async fn ids(c: &mut Client, pool: &str) -> Vec<i64> {
    let sql = "SELECT CAST(id AS BIGINT) AS id FROM t ORDER BY id";
    let batches = query_ipc(c, pool, sql, vec![]).await.unwrap();
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// Asserts the refusal of a transaction-control statement.
fn assert_refused(r: Result<impl std::fmt::Debug, tonic::Status>, sql: &str, field: &str) {
    let e = r.expect_err(sql);
    assert_eq!(e.code(), Code::InvalidArgument, "{sql}: {e:?}");
    let info = e.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "TRANSACTION_CONTROL_STATEMENT", "{sql}");
    assert_eq!(info.metadata["field"], field, "{sql}");
    assert!(e.message().contains("BeginTransaction") || e.message().contains("Commit"));
}

/// Asserts the error of a transaction that cannot commit.
fn assert_rolled_back(r: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), Code::Aborted, "{what}: {e:?}");
    let reason = e.get_details_error_info().expect("ErrorInfo").reason;
    assert_eq!(reason, "TRANSACTION_ROLLED_BACK", "{what}");
}

async fn in_use(c: &mut Client, pool: &str) -> u32 {
    let s = c
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: pool.into(),
        })
        .await
        .unwrap()
        .into_inner();
    s.in_use
}

async fn idle_in_transaction(db: &PgDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

const PG_REFUSED: &[&str] = &[
    "BEGIN",
    "BEGIN; SELECT 1",
    "begin /* c */ ;",
    "START TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "END",
    "ABORT",
    "SELECT 1; BEGIN",
    "PREPARE TRANSACTION 'x'",
    "COMMIT PREPARED 'x'",
    "SAVEPOINT a",
];

/// Every refused statement on every path, then another caller's write on the one
/// connection survives removing and recreating the pool.
#[tokio::test]
async fn transaction_statements_are_refused_and_no_write_is_lost_on_postgres() {
    let (db, server, mut c) = pg_setup("").await;
    for sql in PG_REFUSED {
        assert_refused(exec(&mut c, "pg", "", sql).await, sql, "sql");
        assert_refused(query_ipc(&mut c, "pg", sql, vec![]).await, sql, "sql");
    }
    let batch = |transaction| pb::ExecuteBatchRequest {
        pool_id: "pg".into(),
        statements: ["INSERT INTO t VALUES (99)", "COMMIT"]
            .iter()
            .map(|s| pb::Statement {
                sql: s.to_string(),
                ..Default::default()
            })
            .collect(),
        transaction,
    };
    for transaction in [false, true] {
        let r = c.execute_batch(batch(transaction)).await;
        assert_refused(r, "batch with COMMIT", "statements[1].sql");
    }
    // Flight DoGet goes through the same guard.
    let mut f = server.flight().await;
    let ticket = pb::QueryTicket {
        pool_id: "pg".into(),
        sql: "BEGIN".into(),
        ..Default::default()
    };
    let ticket = arrow_flight::Ticket::new(prost::Message::encode_to_vec(&ticket));
    let Err(e) = f.do_get(ticket).await else {
        panic!("DoGet of BEGIN must be refused");
    };
    assert!(e.to_string().contains("BeginTransaction"), "{e}");
    // Nothing ran: the one connection is outside any transaction.
    assert_eq!(idle_in_transaction(&db).await, 0);
    write_survives_recreate(&mut c, "pg", &db.url).await;
}

/// COMMIT/ROLLBACK/BEGIN inside an interactive transaction are refused and the
/// statements after them still run inside it; savepoints work.
#[tokio::test]
async fn interactive_transactions_keep_their_statements_on_postgres() {
    let (_db, _server, mut c) = pg_setup("").await;
    let tx = begin(&mut c, "pg").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (1)").await;
    for sql in ["COMMIT", "ROLLBACK", "END", "BEGIN", "SELECT 1; COMMIT"] {
        assert_refused(exec(&mut c, "", &tx, sql).await, sql, "sql");
    }
    run(&mut c, &tx, "SAVEPOINT s").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (2)").await;
    run(&mut c, &tx, "ROLLBACK TO SAVEPOINT s").await;
    run(&mut c, &tx, "RELEASE SAVEPOINT s").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (3)").await;
    // The refused COMMIT did not commit: rolling back keeps nothing.
    c.rollback(end(&tx)).await.unwrap();
    assert_eq!(ids(&mut c, "pg").await, Vec::<i64>::new());
    let tx = begin(&mut c, "pg").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (1)").await;
    run(
        &mut c,
        &tx,
        "SAVEPOINT s; INSERT INTO t VALUES (2); ROLLBACK TO s",
    )
    .await;
    commit_keeps(&mut c, &tx, "pg", &[1]).await;
    assert_eq!(in_use(&mut c, "pg").await, 0);
}

/// PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK; Commit must
/// not answer OK. After ROLLBACK TO a savepoint the transaction is healthy again.
#[tokio::test]
async fn commit_after_a_failed_statement_is_an_error_on_postgres() {
    let (db, _server, mut c) = pg_setup("").await;
    let tx = begin(&mut c, "pg").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (1)").await;
    let e = exec(&mut c, "", &tx, "SELECT 1/0").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_rolled_back(c.commit(end(&tx)).await, "commit of an aborted transaction");
    assert_eq!(ids(&mut c, "pg").await, Vec::<i64>::new());
    assert_eq!(idle_in_transaction(&db).await, 0);
    // Recovered through a savepoint, the transaction commits.
    let tx = begin(&mut c, "pg").await;
    run(&mut c, &tx, "SAVEPOINT s").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (1)").await;
    exec(&mut c, "", &tx, "SELECT 1/0").await.unwrap_err();
    run(&mut c, &tx, "ROLLBACK TO SAVEPOINT s").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (2)").await;
    commit_keeps(&mut c, &tx, "pg", &[2]).await;
    assert_eq!(in_use(&mut c, "pg").await, 0);
}

/// `BEGIN` inside DO blocks and function bodies is no transaction statement.
#[tokio::test]
async fn do_blocks_and_function_bodies_still_run_on_postgres() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8)").await;
    let server = TestServer::start(&[("pg", &db.url)]).await;
    let mut c = server.pools().await;
    for sql in [
        "DO $$ BEGIN INSERT INTO t VALUES (7); END $$",
        "CREATE FUNCTION f() RETURNS int8 LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$",
        "CREATE FUNCTION g() RETURNS int8 LANGUAGE sql BEGIN ATOMIC SELECT 2; END",
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (8); END; CALL p()",
    ] {
        exec(&mut c, "pg", "", sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    let b = query_ipc(&mut c, "pg", "SELECT f() + g() AS n", vec![])
        .await
        .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 3);
    assert_eq!(ids(&mut c, "pg").await, vec![7, 8]);
}

/// The net behind the guard: with `standard_conforming_strings = off` a backslash
/// escapes a quote, so the guard (which lexes standard strings) misses a BEGIN that
/// PostgreSQL runs. The script's transaction is found open, rolled back, and the call
/// fails; the next caller's write is kept.
#[tokio::test]
async fn a_script_that_leaves_a_transaction_open_is_rolled_back_on_postgres() {
    let off = "?options=-c%20standard_conforming_strings%3Doff";
    let (db, _server, mut c) = pg_setup(off).await;
    let sneaky = r"SELECT 1; SELECT '\' , ' ; BEGIN ; INSERT INTO t VALUES (5); SELECT 'x'";
    assert_rolled_back(exec(&mut c, "pg", "", sneaky).await, "hidden BEGIN");
    assert_eq!(idle_in_transaction(&db).await, 0);
    write_survives_recreate(&mut c, "pg", &db.url).await;
}

/// SQLite: the same refusals, another caller's write survives, and a transaction
/// SQLite itself rolled back (`INSERT OR ROLLBACK`) cannot be committed.
#[tokio::test]
async fn sqlite_refuses_transaction_statements_and_detects_a_lost_transaction() {
    // Relative: a runtime SQLite pool lives in the server's data directory.
    let url = "sqlite://tx.db".to_string();
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    create(&mut c, "lite", &url).await;
    exec(
        &mut c,
        "lite",
        "",
        "CREATE TABLE t (id INTEGER PRIMARY KEY)",
    )
    .await
    .unwrap();
    for sql in [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "begin /* c */ ;",
        "BEGIN DEFERRED TRANSACTION; SELECT 1",
        "END TRANSACTION",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT a",
    ] {
        assert_refused(exec(&mut c, "lite", "", sql).await, sql, "sql");
    }
    write_survives_recreate(&mut c, "lite", &url).await;
    // Inside a transaction: COMMIT refused, savepoints work.
    let tx = begin(&mut c, "lite").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (2)").await;
    assert_refused(exec(&mut c, "", &tx, "COMMIT").await, "COMMIT", "sql");
    run(
        &mut c,
        &tx,
        "SAVEPOINT s; INSERT INTO t VALUES (3); ROLLBACK TO s; RELEASE s",
    )
    .await;
    commit_keeps(&mut c, &tx, "lite", &[1, 2]).await;
    // A conflict clause that rolls back the whole transaction ends it behind the
    // daemon's back: the call, later calls and Commit fail; nothing is kept.
    let tx = begin(&mut c, "lite").await;
    run(&mut c, &tx, "INSERT INTO t VALUES (4)").await;
    let r = exec(&mut c, "", &tx, "INSERT OR ROLLBACK INTO t VALUES (1)").await;
    assert_rolled_back(r, "INSERT OR ROLLBACK");
    let r = exec(&mut c, "", &tx, "INSERT INTO t VALUES (5)").await;
    assert_rolled_back(r, "a statement after the transaction ended");
    assert_rolled_back(c.commit(end(&tx)).await, "commit of an ended transaction");
    assert_eq!(ids(&mut c, "lite").await, vec![1, 2]);
    assert_eq!(in_use(&mut c, "lite").await, 0);
}
