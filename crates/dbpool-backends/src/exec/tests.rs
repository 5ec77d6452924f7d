//! The generic layer against a scripted driver: batch semantics, and the rollback of a
//! transaction whose call or client went away.
use super::*;
use dbpool_core::Backend;
use futures::FutureExt;
use parking_lot::Mutex;
use std::sync::Arc;

/// What the fake database saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

struct FakePool(Log);

struct FakeConn(Log);

/// A session marked dirty shows in the log, where the reset would come.
impl crate::pool::Dirty for FakeConn {
    fn mark_dirty(&mut self) {
        self.0.lock().push("dirty".into());
    }
}

impl ConnPool for FakePool {
    type Conn = FakeConn;

    async fn acquire(&self) -> Result<FakeConn> {
        Ok(FakeConn(self.0.clone()))
    }

    fn state(&self) -> PoolState {
        PoolState::default()
    }
}

/// Statements by name: `ok` affects a row, `bad` fails, `down` loses the connection,
/// `hang` never ends.
struct Fake(FakePool);

impl Fake {
    fn new() -> (Self, Log) {
        let log = Log::default();
        (Fake(FakePool(log.clone())), log)
    }
}

fn note(s: &Session<FakeConn>, what: &str) {
    let tx = if s.in_transaction() { " (tx)" } else { "" };
    s.0.lock().push(format!("{what}{tx}"));
}

impl Driver for Fake {
    type Conn = FakeConn;
    type Pool = FakePool;
    const KIND: BackendKind = BackendKind::Sqlite;

    fn open(_: &str, _: &ResolvedPool) -> Result<Self> {
        Err(Error::Internal("not opened from config".into()))
    }

    fn pool(&self) -> &FakePool {
        &self.0
    }

    async fn query(
        &self,
        _: Session<FakeConn>,
        _: &str,
        _: Vec<Param>,
        _: usize,
    ) -> Result<QueryStream> {
        Err(Error::Unsupported("query".into()))
    }

    async fn schema(&self, _: Session<FakeConn>, _: &str, _: Vec<Param>) -> Result<SchemaRef> {
        Err(Error::Unsupported("schema".into()))
    }

    async fn execute(&self, s: &mut Session<FakeConn>, sql: &str, _: Vec<Param>) -> Result<u64> {
        note(s, sql);
        match sql {
            "bad" => Err(Error::Database {
                message: "bad".into(),
                code: None,
            }),
            "down" => Err(Error::unavailable(
                dbpool_core::UnavailableCause::Closed,
                "down",
            )),
            "hang" => futures::future::pending().await,
            _ => Ok(1),
        }
    }

    async fn bulk_insert(
        &self,
        _: Session<FakeConn>,
        _: BulkInsert,
        _: QueryStream,
    ) -> Result<u64> {
        Err(Error::Unsupported("bulk insert".into()))
    }

    async fn begin(&self, s: &mut Session<FakeConn>, _: TxOptions) -> Result<()> {
        note(s, "BEGIN");
        Ok(())
    }

    async fn end(&self, s: &mut Session<FakeConn>, commit: bool) -> Result<()> {
        note(s, if commit { "COMMIT" } else { "ROLLBACK" });
        Ok(())
    }

    fn abandon(conn: FakeConn) {
        conn.0.lock().push("abandoned".into());
    }

    async fn health_check(&self) -> Result<()> {
        Ok(())
    }
}

fn batch(sqls: &[&str]) -> Vec<Statement> {
    sqls.iter()
        .map(|s| Statement {
            sql: s.to_string(),
            params: vec![],
        })
        .collect()
}

fn seen(log: &Log) -> Vec<String> {
    log.lock().clone()
}

#[tokio::test]
async fn a_transactional_batch_rolls_back_at_its_first_failure() {
    let (fake, log) = Fake::new();
    let b = PoolBackend::from_driver(fake);
    let e = b
        .execute_batch(batch(&["ok", "bad", "ok"]), true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BatchStatement { index: 1, .. }), "{e:?}");
    assert_eq!(
        seen(&log),
        ["BEGIN", "ok (tx)", "bad (tx)", "ROLLBACK (tx)"]
    );
    log.lock().clear();
    let out = b.execute_batch(batch(&["ok", "ok"]), true).await.unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(seen(&log), ["BEGIN", "ok (tx)", "ok (tx)", "COMMIT (tx)"]);
}

#[tokio::test]
async fn a_batch_without_transaction_reports_each_outcome_until_the_connection_fails() {
    let (fake, log) = Fake::new();
    let b = PoolBackend::from_driver(fake);
    let out = b
        .execute_batch(batch(&["ok", "bad", "ok"]), false)
        .await
        .unwrap();
    let failed: Vec<bool> = out.iter().map(|r| r.outcome.is_err()).collect();
    assert_eq!(failed, [false, true, false]);
    let e = b
        .execute_batch(batch(&["ok", "down", "ok"]), false)
        .await
        .unwrap_err();
    assert!(e.is_connection_error(), "{e:?}");
    assert_eq!(seen(&log), ["ok", "bad", "ok", "ok", "down"]);
}

#[tokio::test]
async fn a_batch_dropped_inside_its_transaction_is_rolled_back() {
    let (fake, log) = Fake::new();
    let b = PoolBackend::from_driver(fake);
    assert!(b
        .execute_batch(batch(&["ok", "hang"]), true)
        .now_or_never()
        .is_none());
    assert_eq!(seen(&log), ["BEGIN", "ok (tx)", "hang (tx)", "abandoned"]);
}

#[tokio::test]
async fn a_transaction_runs_on_its_pinned_connection_and_rolls_back_if_dropped() {
    let (fake, log) = Fake::new();
    let b = PoolBackend::from_driver(fake);
    let tx = b.begin(TxOptions::default()).await.unwrap();
    tx.execute("ok", vec![]).await.unwrap();
    tx.commit().await.unwrap();
    let e = tx.execute("ok", vec![]).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "ended: {e:?}");
    let tx = b.begin(TxOptions::default()).await.unwrap();
    drop(tx);
    assert_eq!(
        seen(&log),
        ["BEGIN", "ok (tx)", "COMMIT (tx)", "BEGIN", "abandoned"]
    );
}

/// SQL that may change the session marks it dirty before it runs, on every path (the
/// fake is SQLite: a PRAGMA counts); ordinary SQL does not.
#[tokio::test]
async fn session_changes_mark_the_session_dirty() {
    use dbpool_core::Executor;
    let (fake, log) = Fake::new();
    let b = PoolBackend::from_driver(fake);
    b.execute("ok", vec![]).await.unwrap();
    b.execute("PRAGMA foreign_keys = OFF", vec![])
        .await
        .unwrap();
    b.execute_batch(batch(&["ok", "CREATE TEMP TABLE t (a)"]), false)
        .await
        .unwrap();
    assert_eq!(
        seen(&log),
        [
            "ok",
            "dirty",
            "PRAGMA foreign_keys = OFF",
            "ok",
            "dirty",
            "CREATE TEMP TABLE t (a)"
        ]
    );
}
