//! Interactive transactions: the `Transaction` a backend hands out, and the registry that
//! finds them by id, rolls back idle ones and those of clients that went away.
use crate::{Error, Executor, PoolEntry, Result};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
// tokio's clock, so idle reaping follows paused time in tests.
use tokio::time::Instant;

/// Isolation levels; a backend rejects the ones it does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// The database's default.
    #[default]
    Default,
    /// READ UNCOMMITTED.
    ReadUncommitted,
    /// READ COMMITTED.
    ReadCommitted,
    /// REPEATABLE READ.
    RepeatableRead,
    /// SERIALIZABLE.
    Serializable,
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOptions {
    /// Isolation level.
    pub isolation: Isolation,
    /// Refuse writes.
    pub read_only: bool,
}

/// A transaction on a pinned connection: the statement verbs of `Executor`, run inside
/// it, plus its end. Calls are serialised on the connection; a transaction dropped
/// without `commit`/`rollback` is rolled back.
#[async_trait]
pub trait Transaction: Executor {
    /// Commits and releases the connection.
    async fn commit(&self) -> Result<()>;
    /// Rolls back and releases the connection.
    async fn rollback(&self) -> Result<()>;
}

/// Who began a transaction: the daemon-wide unique id of the client connection (never
/// reused, unlike a peer address whose port comes back), or none for internal callers.
pub type Owner = Option<u64>;

/// A registered transaction.
pub struct TxEntry {
    /// Its id.
    pub id: String,
    /// The pool it runs on (kept alive while the transaction is).
    pub pool: Arc<PoolEntry>,
    /// The backend's transaction.
    pub tx: Box<dyn Transaction>,
    /// The client connection that began it: the only one that may use it, and the one
    /// whose close rolls it back.
    pub owner: Owner,
    idle_timeout: Duration,
    last_used: Mutex<Instant>,
}

impl TxEntry {
    /// Marks the transaction used now.
    pub fn touch(&self) {
        *self.last_used.lock() = Instant::now();
    }
    fn idle_for(&self) -> Duration {
        self.last_used.lock().elapsed()
    }
}

/// Open transactions by id.
pub struct TxRegistry {
    open: Mutex<HashMap<String, Arc<TxEntry>>>,
    max_per_owner: usize,
}

impl Default for TxRegistry {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

/// A transaction id as echoed in an error: unknown and foreign ids read the same.
fn not_found(id: &str) -> Error {
    Error::TransactionNotFound(crate::clip(id))
}

impl TxRegistry {
    /// A registry that lets one client connection hold at most `max_per_owner`
    /// transactions at once.
    pub fn new(max_per_owner: usize) -> Self {
        TxRegistry {
            open: Mutex::new(HashMap::new()),
            max_per_owner,
        }
    }

    fn owned_by(open: &HashMap<String, Arc<TxEntry>>, owner: Owner) -> usize {
        open.values().filter(|e| e.owner == owner).count()
    }

    /// Refuses with RESOURCE_EXHAUSTED when `owner` holds its maximum already; asked
    /// before a connection is taken from the pool for a new transaction.
    pub fn check_room(&self, owner: Owner) -> Result<()> {
        let open = self.open.lock();
        if owner.is_some() && Self::owned_by(&open, owner) >= self.max_per_owner {
            return Err(Error::ResourceExhausted(format!(
                "this client connection holds {} open transactions, the most \
                 server.limits.max_transactions_per_connection allows",
                self.max_per_owner
            )));
        }
        Ok(())
    }

    /// Registers a transaction that `pool` began for `owner`; returns its id, or gives the
    /// transaction back when the owner reached its maximum meanwhile (the caller rolls
    /// it back).
    #[allow(clippy::result_large_err)]
    pub fn register(
        &self,
        pool: Arc<PoolEntry>,
        tx: Box<dyn Transaction>,
        owner: Owner,
        idle_timeout: Duration,
    ) -> std::result::Result<String, (Error, Box<dyn Transaction>)> {
        if let Err(e) = self.check_room(owner) {
            return Err((e, tx));
        }
        let id = format!("tx-{}", uuid::Uuid::new_v4().simple());
        let entry = Arc::new(TxEntry {
            id: id.clone(),
            pool,
            tx,
            owner,
            idle_timeout,
            last_used: Mutex::new(Instant::now()),
        });
        self.open.lock().insert(id.clone(), entry);
        Ok(id)
    }

    /// The open transaction with this id, if `owner` began it; marks it used. Another
    /// connection's transaction is NOT_FOUND, exactly like an unknown id, so ids cannot
    /// be probed.
    pub fn get(&self, id: &str, owner: Owner) -> Result<Arc<TxEntry>> {
        let entry = self
            .open
            .lock()
            .get(id)
            .filter(|e| e.owner == owner)
            .cloned()
            .ok_or_else(|| not_found(id))?;
        crate::call::note_pool(&entry.pool.id);
        entry.touch();
        Ok(entry)
    }

    /// Ends a transaction `owner` began: commit or roll back, then forget it.
    pub async fn end(&self, id: &str, commit: bool, owner: Owner) -> Result<()> {
        let entry = {
            let mut open = self.open.lock();
            match open.get(id) {
                Some(e) if e.owner == owner => open.remove(id),
                _ => None,
            }
        }
        .ok_or_else(|| not_found(id))?;
        crate::call::note_pool(&entry.pool.id);
        if commit {
            entry.tx.commit().await
        } else {
            entry.tx.rollback().await
        }
    }

    /// Number of open transactions.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Whether no transaction is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take_where(&self, pred: impl Fn(&Arc<TxEntry>) -> bool) -> Vec<Arc<TxEntry>> {
        let mut open = self.open.lock();
        let ids: Vec<String> = open
            .values()
            .filter(|e| pred(e))
            .map(|e| e.id.clone())
            .collect();
        ids.iter().filter_map(|id| open.remove(id)).collect()
    }

    async fn roll_back_all(entries: Vec<Arc<TxEntry>>, why: &str) -> usize {
        let n = entries.len();
        for e in entries {
            tracing::info!(transaction = %e.id, pool = %e.pool.id, reason = why, "rolling back");
            if let Err(err) = e.tx.rollback().await {
                tracing::warn!(transaction = %e.id, error = %err, "rollback failed");
            }
        }
        n
    }

    /// Rolls back transactions idle longer than their timeout; returns how many.
    pub async fn reap_idle(&self) -> usize {
        // A call holding the entry (a running statement, a stream being read) is not idle.
        let expired =
            self.take_where(|e| Arc::strong_count(e) == 1 && e.idle_for() > e.idle_timeout);
        Self::roll_back_all(expired, "idle timeout").await
    }

    /// Rolls back every transaction begun over this client connection.
    pub async fn owner_gone(&self, owner: u64) -> usize {
        let gone = self.take_where(|e| e.owner == Some(owner));
        Self::roll_back_all(gone, "client disconnected").await
    }

    /// Rolls back everything (shutdown).
    pub async fn rollback_all(&self) -> usize {
        let all = self.take_where(|_| true);
        Self::roll_back_all(all, "shutdown").await
    }
}
