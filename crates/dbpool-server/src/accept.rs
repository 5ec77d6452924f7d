//! The accept loops, one per listener (TCP or a Unix domain socket), with the TLS
//! handshake when configured: caps client connections at
//! `server.limits.max_client_connections`, sets TCP keepalive, and backs off (instead of
//! spinning) when accept fails — at the file-descriptor limit accept fails at once,
//! every time, until a descriptor is freed.
use crate::conn::TrackedStream;
use crate::listener::Accepting;
use crate::stream::Stream;
use crate::tls::TlsState;
use dbpool_config::Limits;
use dbpool_core::LogLimiter;
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;

/// First pause after a failed accept; doubled per failure in a row up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between accept attempts while they keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line per this interval for each kind of accept trouble.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The connections tonic serves.
pub(crate) type Incoming = ReceiverStream<std::io::Result<TrackedStream>>;

/// Connections accepted on every listener and served, as tonic's incoming stream. One
/// loop per listener; the connection cap and its count are shared. The loops end (and
/// the listening sockets close) when tonic drops the stream at shutdown.
pub(crate) fn incoming(
    listeners: Vec<Accepting>,
    limits: &Limits,
    closed: mpsc::UnboundedSender<u64>,
    tls: Option<Arc<TlsState>>,
) -> Incoming {
    let keepalive =
        (limits.tcp_keepalive_ms > 0).then(|| Duration::from_millis(limits.tcp_keepalive_ms));
    // Accepted connections wait here for tonic; one slot keeps the loops in step with it.
    let (tx, rx) = mpsc::channel(1);
    let shared = Arc::new(Shared {
        live: Arc::new(AtomicUsize::new(0)),
        max: limits.max_client_connections,
        handshake: limits.handshake_timeout(),
        closed,
        tls,
        refused_log: LogLimiter::new(LOG_INTERVAL),
        error_log: LogLimiter::new(LOG_INTERVAL),
    });
    for listener in listeners {
        let source = match listener {
            Accepting::Tcp(l) => Source::Tcp(
                TcpIncoming::from(l)
                    .with_nodelay(Some(true))
                    .with_keepalive(keepalive),
            ),
            Accepting::Unix(l) => Source::Unix(l),
        };
        tokio::spawn(accept_loop(source, shared.clone(), tx.clone()));
    }
    ReceiverStream::new(rx)
}

/// What the accept loops of one server share.
struct Shared {
    /// Connections open now, on every listener.
    live: Arc<AtomicUsize>,
    /// `server.limits.max_client_connections`.
    max: usize,
    /// `server.limits.handshake_timeout_ms`.
    handshake: Duration,
    /// Where a connection's id goes when it closes.
    closed: mpsc::UnboundedSender<u64>,
    /// `[server.tls]`: connections are handed on once their TLS handshake is done.
    tls: Option<Arc<TlsState>>,
    /// Paces the log line of refused connections.
    refused_log: LogLimiter,
    /// Paces the log line of failed accepts.
    error_log: LogLimiter,
}

impl Shared {
    /// An accepted connection, already counted in `live`, for tonic.
    fn track(&self, stream: Stream) -> TrackedStream {
        TrackedStream::new(
            stream,
            self.closed.clone(),
            self.live.clone(),
            self.handshake,
        )
    }
}

/// Accepts on `source` until tonic drops the incoming stream.
async fn accept_loop(
    mut source: Source,
    shared: Arc<Shared>,
    tx: mpsc::Sender<std::io::Result<TrackedStream>>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let next = tokio::select! {
            next = source.next() => next,
            _ = tx.closed() => break,
        };
        match next {
            None => break,
            Some(Ok(stream)) => {
                backoff = MIN_BACKOFF;
                // Counted before it is handed on; the stream releases it on drop.
                if shared.live.fetch_add(1, Ordering::AcqRel) >= shared.max {
                    shared.live.fetch_sub(1, Ordering::AcqRel);
                    if let Some(suppressed) = shared.refused_log.check() {
                        tracing::warn!(
                            max_client_connections = shared.max,
                            refused_since_last_log = suppressed,
                            "client connection refused: server.limits.max_client_connections reached"
                        );
                    }
                    drop(stream);
                    continue;
                }
                if let Some(tls) = &shared.tls {
                    // Off the loop: a slow handshake must not hold up the next accept.
                    let (acceptor, shared, tx) = (tls.acceptor(), shared.clone(), tx.clone());
                    tokio::spawn(async move {
                        match crate::tls::accept(acceptor, stream, shared.handshake).await {
                            Some(s) => {
                                let _ = tx.send(Ok(shared.track(Stream::Tls(Box::new(s))))).await;
                            }
                            None => {
                                shared.live.fetch_sub(1, Ordering::AcqRel);
                            }
                        }
                    });
                    continue;
                }
                if tx.send(Ok(shared.track(stream))).await.is_err() {
                    break;
                }
            }
            Some(Err(e)) => {
                if let Some(suppressed) = shared.error_log.check() {
                    tracing::warn!(
                        error = %e,
                        failed_since_last_log = suppressed,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "accepting a client connection failed"
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = tx.closed() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Where accepted connections come from.
enum Source {
    /// tonic's TCP acceptor (nodelay, keepalive).
    Tcp(TcpIncoming),
    /// A Unix domain socket.
    Unix(UnixListener),
}

impl Source {
    /// The next accepted connection, or why accepting failed; `None` when the
    /// listener is gone.
    async fn next(&mut self) -> Option<std::io::Result<Stream>> {
        match self {
            Source::Tcp(t) => t.next().await.map(|r| r.map(Stream::Tcp)),
            Source::Unix(l) => Some(l.accept().await.map(|(s, _)| Stream::Unix(s))),
        }
    }
}
