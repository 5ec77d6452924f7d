//! What every backend's pool shares: a bb8 manager wrapper that tells connect failures
//! apart and retires connections at a jittered age, and an acquire through the pool's
//! admission (resilience/admission.rs: breaker, fair bounded queue, fail fast).
use crate::resilience::admission::{Admission, ConnectWatch};
use dbpool_config::PoolOptions;
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

/// A pooled connection and the moment it retires; derefs to the driver's connection.
#[derive(Debug)]
pub struct Aged<C> {
    conn: C,
    retire_at: Option<Instant>,
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
        conn.retire_at.is_some_and(|t| Instant::now() >= t) || self.inner.has_broken(&mut conn.conn)
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
}

/// A connection checked out of a `PoolHandle`; on drop it returns to the pool, then
/// passes its turn to the next caller in line. Derefs to the driver's connection.
pub struct Conn<M: bb8::ManageConnection> {
    // Field order is drop order: the connection is back before the next turn starts.
    conn: bb8::PooledConnection<'static, Managed<M>>,
    _turn: OwnedSemaphorePermit,
}

impl<M: bb8::ManageConnection> std::ops::Deref for Conn<M> {
    type Target = Aged<M::Connection>;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<M: bb8::ManageConnection> std::ops::DerefMut for Conn<M> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
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
        }
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
        let (turn, conn) = self.admission.admit(checkout).await?;
        Ok(Conn { conn, _turn: turn })
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
