//! The call a task is serving: the client connection, the RPC method and the pool it
//! touched. The server sets it around each RPC; the pool lookups fill in the pool; the
//! status conversion names all three in the log line of a failed call, traces or not.
use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CALL: Arc<Call>;
}

/// One RPC in progress.
#[derive(Debug, Default)]
pub struct Call {
    /// The client connection (the owner of the transactions it begins).
    pub conn: Option<u64>,
    /// The RPC, e.g. `dbpool.v1.PoolService/Query`.
    pub method: String,
    /// The pool the call looked up first.
    pool: Mutex<Option<String>>,
}

impl Call {
    /// A call of `method` over client connection `conn`.
    pub fn new(conn: Option<u64>, method: impl Into<String>) -> Arc<Self> {
        Arc::new(Call {
            conn,
            method: method.into(),
            pool: Mutex::new(None),
        })
    }

    /// Runs `fut` as this call.
    pub async fn scope<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        CALL.scope(self, fut).await
    }

    /// Runs `f` as this call (a poll of the call's response stream).
    pub fn sync_scope<R>(self: Arc<Self>, f: impl FnOnce() -> R) -> R {
        CALL.sync_scope(self, f)
    }

    /// The pool the call touched, if any.
    pub fn pool(&self) -> Option<String> {
        self.pool.lock().clone()
    }
}

/// The client connection of the call this task serves; `None` outside one (internal
/// callers, tests of the call layer).
pub fn conn() -> Option<u64> {
    CALL.try_with(|c| c.conn).ok().flatten()
}

/// Notes that the current call runs on pool `id` (the first pool noted stays).
pub fn note_pool(id: &str) {
    let _ = CALL.try_with(|c| {
        let mut pool = c.pool.lock();
        if pool.is_none() {
            *pool = Some(id.to_string());
        }
    });
}

/// The method and pool of the current call, for a log line; empty outside one.
pub fn describe() -> (String, String) {
    CALL.try_with(|c| (c.method.clone(), c.pool().unwrap_or_default()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_names_its_method_connection_and_first_pool() {
        assert_eq!(describe(), (String::new(), String::new()));
        note_pool("ignored outside a call");
        let call = Call::new(Some(7), "dbpool.v1.PoolService/Query");
        let seen = call
            .clone()
            .scope(async {
                note_pool("pg");
                note_pool("other");
                (conn(), describe())
            })
            .await;
        assert_eq!(
            seen,
            (Some(7), ("dbpool.v1.PoolService/Query".into(), "pg".into()))
        );
        assert_eq!(call.sync_scope(conn), Some(7));
        assert_eq!(conn(), None);
    }
}
