//! What every backend's pool shares: a bb8 manager wrapper that tells connect failures
//! apart and retires connections at a jittered age, an acquire through the pool's
//! admission (resilience/admission.rs: breaker, fair bounded queue, fail fast), and the
//! reset of a connection whose session a caller changed before anyone else gets it.
use crate::resilience::admission::{Admission, ConnectWatch};
use dbpool_config::{PoolOptions, ResetSessions};
use dbpool_core::{Error, LogLimiter, PoolState, Result, UnavailableCause};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Wraps a bb8 manager so the error sink can tell a failed connect from a failed check,
/// and so each connection retires at its own, jittered, age.
#[derive(Debug)]
pub struct Managed<M> {
    inner: M,
    max_lifetime: Option<Duration>,
}

/// A pooled connection, the moment it retires, and the state of its session; derefs to
/// the driver's connection.
#[derive(Debug)]
pub struct Aged<C> {
    conn: C,
    retire_at: Option<Instant>,
    /// A caller ran SQL that may have changed the session: it is reset (or closed)
    /// before the connection is reused.
    dirty: bool,
    /// Closed instead of going back to the pool (a reset that failed or never ran).
    discard: bool,
}

impl<C> Aged<C> {
    /// The reset worked: the connection may go back to the pool.
    pub fn keep(&mut self) {
        self.discard = false;
    }
}

impl<C> std::ops::Deref for Aged<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> std::ops::DerefMut for Aged<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

/// A lifetime shortened by up to 15 %, differently for each connection, so connections
/// opened together (start-up, after an outage) do not all reconnect at the same moment.
fn jittered(lifetime: Duration) -> Duration {
    lifetime.mul_f64(1.0 - 0.15 * fastrand::f64())
}

/// An error of the wrapped manager, by where it happened.
#[derive(Debug)]
pub enum ManagedError<E> {
    /// Opening a new connection failed.
    Connect(E),
    /// Checking an existing connection failed.
    Check(E),
    /// The connection was found closed at checkout (no round trip needed).
    Broken,
}

impl<M: bb8::ManageConnection> bb8::ManageConnection for Managed<M> {
    type Connection = Aged<M::Connection>;
    type Error = ManagedError<M::Error>;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let conn = self.inner.connect().await.map_err(ManagedError::Connect)?;
        Ok(Aged {
            conn,
            retire_at: self.max_lifetime.map(|l| Instant::now() + jittered(l)),
            dirty: false,
            discard: false,
        })
    }

    /// Cheap validation at checkout: a connection the driver knows is closed, or that
    /// reached its age, is replaced; no round trip on the hot path.
    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        if self.has_broken(conn) {
            Err(ManagedError::Broken)
        } else {
            Ok(())
        }
    }

    /// Also asked when a connection comes back: an aged one is closed then.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.discard
            || conn.retire_at.is_some_and(|t| Instant::now() >= t)
            || self.inner.has_broken(&mut conn.conn)
    }
}

/// At most one "connection failed" line per pool per this interval: a pool whose
/// database is down fails every connect (health checks, waiters, the minimum-idle filler).
const CONNECT_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Forwards connect failures to the pool's admission; bb8 reports them nowhere else.
struct Sink<E: 'static> {
    watch: Arc<ConnectWatch>,
    log: Arc<LogLimiter>,
    classify: fn(&E) -> Error,
}

impl<E> std::fmt::Debug for Sink<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl<E: std::error::Error + Send + Sync + 'static> bb8::ErrorSink<ManagedError<E>> for Sink<E> {
    fn sink(&self, error: ManagedError<E>) {
        let (ManagedError::Connect(e) | ManagedError::Check(e)) = &error else {
            return;
        };
        let classified = connect_error((self.classify)(e));
        if let Some(suppressed) = self.log.check() {
            tracing::warn!(error = %classified, suppressed_since_last_log = suppressed, "connection failed");
        }
        if let ManagedError::Connect(e) = error {
            self.watch.publish(classified.with_source(e));
        }
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<ManagedError<E>>> {
        Box::new(Sink {
            watch: self.watch.clone(),
            log: self.log.clone(),
            classify: self.classify,
        })
    }
}

/// A connect failure is never the statement's fault: anything but bad credentials is
/// "unavailable to connect" to the caller, whatever the driver's classifier made of it.
fn connect_error(e: Error) -> Error {
    match e {
        Error::AuthFailed(_) => e,
        Error::Unavailable {
            message, source, ..
        } => Error::Unavailable {
            cause: UnavailableCause::Connect,
            message,
            source,
        },
        other => Error::unavailable(UnavailableCause::Connect, other.to_string()),
    }
}

/// A bb8 pool plus the bookkeeping bb8 does not do: waiters, timeouts, fast failure.
pub struct PoolHandle<M: bb8::ManageConnection> {
    pool: bb8::Pool<Managed<M>>,
    classify: fn(&M::Error) -> Error,
    admission: Admission,
    options: PoolOptions,
    reset: Reset<M>,
}

/// Brings a dirty connection back to the state of a fresh one, usually on a task of its
/// own that holds it (and the pool's turn) until done, then drops it. It comes marked
/// to be closed: only a reset that worked calls `Aged::keep` to let it back in the pool.
pub type Reset<M> = fn(Conn<M>);

/// The reset of a database that has no exact one: the connection is closed.
fn close(conn: Conn<impl bb8::ManageConnection>) {
    drop(conn);
}

/// A connection checked out of a `PoolHandle`; on drop it returns to the pool (reset
/// first if a caller dirtied its session), then passes its turn to the next caller in
/// line. Derefs to the driver's connection.
pub struct Conn<M: bb8::ManageConnection> {
    // Field order is drop order: the connection is back before the next turn starts.
    // Both are `None` only inside `drop`.
    conn: Option<bb8::PooledConnection<'static, Managed<M>>>,
    turn: Option<OwnedSemaphorePermit>,
    reset: Reset<M>,
}

impl<M: bb8::ManageConnection> std::ops::Deref for Conn<M> {
    type Target = Aged<M::Connection>;

    fn deref(&self) -> &Self::Target {
        self.conn.as_ref().expect("taken only by drop")
    }
}

impl<M: bb8::ManageConnection> std::ops::DerefMut for Conn<M> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_mut().expect("taken only by drop")
    }
}

/// A connection whose session SQL may change.
pub trait Dirty {
    /// Marks the session as changed: it is reset (or the connection closed) before the
    /// connection is reused.
    fn mark_dirty(&mut self);
}

impl<M: bb8::ManageConnection> Dirty for Conn<M> {
    fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

/// A backend without connections (InfluxDB's HTTP client) has no session to dirty.
impl Dirty for () {
    fn mark_dirty(&mut self) {}
}

impl<M: bb8::ManageConnection> Drop for Conn<M> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !conn.dirty || conn.discard {
            // Back to the pool (or closed), before the turn passes on.
            return;
        }
        // Closed unless the reset succeeds; the turn stays with the connection, so the
        // next caller in line waits for the reset rather than racing it.
        conn.dirty = false;
        conn.discard = true;
        (self.reset)(Conn {
            conn: Some(conn),
            turn: self.turn.take(),
            reset: self.reset,
        });
    }
}

impl<M> PoolHandle<M>
where
    M: bb8::ManageConnection,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    /// Builds the pool without connecting; `classify` turns driver errors into ours.
    pub fn new(manager: M, options: &PoolOptions, classify: fn(&M::Error) -> Error) -> Self {
        let admission = Admission::new(options);
        let pool = bb8::Pool::builder()
            .max_size(options.max_connections)
            .min_idle((options.min_connections > 0).then_some(options.min_connections))
            .connection_timeout(options.acquire_timeout())
            .idle_timeout(PoolOptions::optional(options.idle_timeout_ms))
            .max_lifetime(PoolOptions::optional(options.max_lifetime_ms))
            // One attempt per acquire: the caller hears about a down database at once.
            .retry_connection(false)
            .test_on_check_out(true)
            .error_sink(Box::new(Sink {
                watch: admission.watch(),
                log: Arc::new(LogLimiter::new(CONNECT_LOG_INTERVAL)),
                classify,
            }))
            .build_unchecked(Managed {
                inner: manager,
                max_lifetime: PoolOptions::optional(options.max_lifetime_ms),
            });
        PoolHandle {
            pool,
            classify,
            admission,
            options: options.clone(),
            reset: close,
        }
    }

    /// How a connection whose session a caller changed is reset before it is reused;
    /// without one it is closed and the pool opens a fresh one.
    pub fn with_reset(mut self, reset: Reset<M>) -> Self {
        self.reset = reset;
        self
    }

    /// Checks a connection out. Fails with the database's error as soon as a connect
    /// attempt made on our behalf fails, and with `AcquireTimeout` when the pool stays full.
    pub async fn acquire(&self) -> Result<Conn<M>> {
        let checkout = async {
            self.pool.get_owned().await.map_err(|e| match e {
                bb8::RunError::TimedOut => Error::AcquireTimeout(self.options.acquire_timeout()),
                bb8::RunError::User(ManagedError::Connect(e) | ManagedError::Check(e)) => {
                    connect_error((self.classify)(&e)).with_source(e)
                }
                bb8::RunError::User(ManagedError::Broken) => {
                    Error::unavailable(UnavailableCause::Closed, "connection closed")
                }
            })
        };
        let (turn, mut conn) = self.admission.admit(checkout).await?;
        // `always`: every use is reset, for SQL that changes the session where the
        // lexer cannot see it (inside functions).
        conn.dirty = self.options.reset_sessions == ResetSessions::Always;
        Ok(Conn {
            conn: Some(conn),
            turn: Some(turn),
            reset: self.reset,
        })
    }

    /// Size, idle and waiters.
    pub fn state(&self) -> PoolState {
        let s = self.pool.state();
        PoolState {
            size: s.connections,
            idle: s.idle_connections,
            waiters: self.admission.waiters(),
            max_size: self.options.max_connections,
            connections_created: s.statistics.connections_created,
            acquire_timeouts: self.admission.timeouts(),
            circuit: self.admission.circuit(),
        }
    }

    /// How long acquires waited.
    pub fn acquire_wait(&self) -> dbpool_core::HistogramSnapshot {
        self.admission.waits()
    }

    /// The pool's options.
    pub fn options(&self) -> &PoolOptions {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Arrival order and the acquire timeout: tests/pool_fake.rs, on paused time.

    #[test]
    fn jitter_shortens_lifetimes_by_at_most_15_percent() {
        let lifetime = Duration::from_secs(1800);
        let seen: Vec<Duration> = (0..200).map(|_| jittered(lifetime)).collect();
        assert!(seen
            .iter()
            .all(|d| *d <= lifetime && *d >= lifetime.mul_f64(0.85)));
        // Spread, not one value: connections opened together retire apart.
        let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
        assert!(
            distinct.len() > 100,
            "{} distinct lifetimes",
            distinct.len()
        );
    }
}
