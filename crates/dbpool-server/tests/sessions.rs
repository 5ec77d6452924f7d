//! Issue 17, clean sessions, end to end against real PostgreSQL: on a pool of one
//! connection, what caller A changes in its session — settings, role, search_path,
//! temporary tables, advisory locks, LISTEN, SQL-level PREPARE, held cursors — is gone
//! when caller B gets the connection, also after an interactive transaction (committed,
//! rolled back or abandoned); the daemon's own prepared statements survive the reset;
//! `reset_sessions = "always"` catches what only a function body shows.
mod common;

use arrow::array::AsArray;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::{unique_name, PgDb};
use tonic::transport::Channel;

type Client = PoolServiceClient<Channel>;

/// A fresh database, a daemon, and its pool `pg` with one connection (so A and B share
/// it) and `reset` as its `reset_sessions`.
async fn setup(reset: pb::ResetSessions) -> (PgDb, TestServer, Client) {
    let db = PgDb::create().await;
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    c.create_pool(pb::CreatePoolRequest {
        pool_id: "pg".into(),
        url: db.url.clone(),
        options: Some(pb::PoolOptions {
            max_connections: 1,
            reset_sessions: reset.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    (db, server, c)
}

async fn exec(c: &mut Client, tx: &str, sql: &str) {
    c.execute(pb::ExecuteRequest {
        pool_id: if tx.is_empty() {
            "pg".into()
        } else {
            "".into()
        },
        transaction_id: tx.into(),
        sql: sql.into(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// The first column of the first row of `sql` (which must return text) on `pg`.
async fn text(c: &mut Client, sql: &str, params: Vec<pb::Param>) -> String {
    let batches = query_ipc(c, "pg", sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let col = batches[0].column(0);
    match col.data_type() {
        arrow::datatypes::DataType::Utf8View => col.as_string_view().value(0).to_string(),
        _ => col.as_string::<i32>().value(0).to_string(),
    }
}

/// Caller A runs `change`; caller B's `check` answers `want`, as on a fresh connection
/// (and as B saw before A's change).
async fn a_then_b(c: &mut Client, change: &str, check: &str, want: &str) {
    assert_eq!(text(c, check, vec![]).await, want, "before {change}");
    exec(c, "", change).await;
    assert_eq!(text(c, check, vec![]).await, want, "after {change}");
}

const APP_NAME: &str = "SHOW application_name";

#[tokio::test]
async fn session_settings_do_not_reach_the_next_caller() {
    let (_db, _server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    let fresh = "dbpool:pg";
    a_then_b(
        &mut c,
        "SET application_name = 'leaked_from_caller_A'",
        APP_NAME,
        fresh,
    )
    .await;
    a_then_b(
        &mut c,
        "set search_path to pg_catalog",
        "SHOW search_path",
        "\"$user\", public",
    )
    .await;
    a_then_b(
        &mut c,
        "SET statement_timeout = 1234",
        "SHOW statement_timeout",
        "0",
    )
    .await;
    // set_config() in a query, through Query rather than Execute.
    let _ = text(
        &mut c,
        "SELECT set_config('application_name', 'via_set_config', false)",
        vec![],
    )
    .await;
    assert_eq!(text(&mut c, APP_NAME, vec![]).await, fresh);
}

/// A role the test creates (cluster-wide: a unique name), dropped when it goes out of
/// scope, also after a failed assertion.
struct Role(String);

impl Role {
    async fn create(db: &PgDb) -> Role {
        let name = unique_name("dbpool_role");
        db.exec(&format!("CREATE ROLE {name}")).await;
        Role(name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        dbpool_testkit::admin_exec_blocking(format!("DROP ROLE IF EXISTS {}", self.0));
    }
}

#[tokio::test]
async fn set_role_and_session_authorization_do_not_reach_the_next_caller() {
    let (db, server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    let role = Role::create(&db).await;
    let who = "SELECT current_user::text || '/' || session_user::text";
    let me = text(&mut c, who, vec![]).await;
    a_then_b(&mut c, &format!("SET ROLE {}", role.0), who, &me).await;
    a_then_b(
        &mut c,
        &format!("SET SESSION AUTHORIZATION {}", role.0),
        who,
        &me,
    )
    .await;
    // The pool's connections end before the role is dropped.
    drop(server);
    drop(role);
}

#[tokio::test]
async fn temporary_tables_listen_prepare_and_cursors_are_gone_for_the_next_caller() {
    let (_db, _server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    a_then_b(
        &mut c,
        "CREATE TEMP TABLE leaked_tmp (a int)",
        "SELECT count(*)::text FROM pg_class WHERE relname = 'leaked_tmp'",
        "0",
    )
    .await;
    a_then_b(
        &mut c,
        "LISTEN leaked_channel",
        "SELECT count(*)::text FROM pg_listening_channels()",
        "0",
    )
    .await;
    a_then_b(
        &mut c,
        "PREPARE leaked_stmt AS SELECT 1",
        "SELECT count(*)::text FROM pg_prepared_statements WHERE from_sql",
        "0",
    )
    .await;
    a_then_b(
        &mut c,
        "DECLARE leaked_cursor CURSOR WITH HOLD FOR SELECT 1",
        "SELECT count(*)::text FROM pg_cursors WHERE name = 'leaked_cursor'",
        "0",
    )
    .await;
}

/// Whether another connection can take advisory lock `key` (and gives it back).
async fn lock_is_free(db: &PgDb, key: i64) -> bool {
    let client = db.client().await;
    let free: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    if free {
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .unwrap();
    }
    free
}

/// An advisory lock key no other test (or run) uses.
fn lock_key() -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    unique_name("lock").hash(&mut h);
    i64::from_ne_bytes(h.finish().to_ne_bytes())
}

#[tokio::test]
async fn advisory_locks_are_released_before_the_next_caller() {
    let (db, _server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    let key = lock_key();
    let _ = text(
        &mut c,
        &format!("SELECT pg_advisory_lock({key})::text"),
        vec![],
    )
    .await;
    // B's call gets the connection only once A's reset is done.
    assert_eq!(text(&mut c, "SELECT 'b'", vec![]).await, "b");
    assert!(
        lock_is_free(&db, key).await,
        "A's advisory lock is still held"
    );
}

#[tokio::test]
async fn an_interactive_transaction_is_reset_when_it_ends() {
    let (db, _server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    // Committed: a session-level SET made inside it outlives the commit in PostgreSQL.
    let tx = begin(&mut c, "pg").await;
    exec(&mut c, &tx, "SET application_name = 'set_in_tx'").await;
    c.commit(end(&tx)).await.unwrap();
    assert_eq!(text(&mut c, APP_NAME, vec![]).await, "dbpool:pg");
    // Rolled back: a session-level advisory lock survives a rollback.
    let key = lock_key();
    let tx = begin(&mut c, "pg").await;
    exec(&mut c, &tx, &format!("SELECT pg_advisory_lock({key})")).await;
    c.rollback(end(&tx)).await.unwrap();
    assert_eq!(text(&mut c, "SELECT 'b'", vec![]).await, "b");
    assert!(
        lock_is_free(&db, key).await,
        "the lock outlived the rollback"
    );
}

#[tokio::test]
async fn an_abandoned_transaction_is_reset_too() {
    let (db, server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    let key = lock_key();
    {
        // Caller A on a client connection of its own, gone without Commit or Rollback.
        let mut a = server.pools().await;
        let tx = begin(&mut a, "pg").await;
        exec(&mut a, &tx, &format!("SELECT pg_advisory_lock({key})")).await;
        exec(&mut a, &tx, "SET application_name = 'abandoned'").await;
    }
    // B waits for the connection, which comes back only rolled back and reset.
    assert_eq!(text(&mut c, APP_NAME, vec![]).await, "dbpool:pg");
    assert!(
        lock_is_free(&db, key).await,
        "the abandoned lock is still held"
    );
}

#[tokio::test]
async fn the_daemons_prepared_statements_survive_a_reset() {
    let (_db, _server, mut c) = setup(pb::ResetSessions::AutoUnspecified).await;
    let sql = "SELECT ($1::int8 + 1)::text";
    let pid = "SELECT pg_backend_pid()::text";
    let name = "SELECT name::text FROM pg_prepared_statements \
                WHERE NOT from_sql AND statement = 'SELECT ($1::int8 + 1)::text'";
    assert_eq!(text(&mut c, sql, vec![p_int(41)]).await, "42");
    let (pid_before, name_before) = (
        text(&mut c, pid, vec![]).await,
        text(&mut c, name, vec![]).await,
    );
    exec(&mut c, "", "SET search_path = pg_catalog").await;
    exec(&mut c, "", "DISCARD TEMP").await;
    assert_eq!(text(&mut c, sql, vec![p_int(1)]).await, "2");
    // The same connection, reset rather than replaced, and the statement prepared before
    // the reset is still there under its name (not prepared anew).
    assert_eq!(text(&mut c, pid, vec![]).await, pid_before);
    assert_eq!(text(&mut c, name, vec![]).await, name_before);
    assert_eq!(text(&mut c, APP_NAME, vec![]).await, "dbpool:pg");
}

/// SQL that changes the session where the lexer cannot see it: a function body.
#[tokio::test]
async fn always_resets_what_only_a_function_shows() {
    let (db, _server, mut c) = setup(pb::ResetSessions::Always).await;
    db.exec(
        "CREATE FUNCTION hide_it() RETURNS text LANGUAGE sql AS \
         $$ SELECT set_config('application_name', 'hidden', false) $$",
    )
    .await;
    assert_eq!(text(&mut c, "SELECT hide_it()", vec![]).await, "hidden");
    assert_eq!(text(&mut c, APP_NAME, vec![]).await, "dbpool:pg");
    let info = c
        .list_pools(pb::ListPoolsRequest {})
        .await
        .unwrap()
        .into_inner();
    let pool = info.pools.iter().find(|p| p.pool_id == "pg").unwrap();
    let options = pool.options.unwrap();
    assert_eq!(options.reset_sessions(), pb::ResetSessions::Always);
}
