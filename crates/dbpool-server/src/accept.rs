//! The accept loop: caps client connections at `server.limits.max_client_connections`,
//! sets TCP keepalive, and backs off (instead of spinning) when accept fails — at the
//! file-descriptor limit accept fails at once, every time, until a descriptor is freed.
use crate::conn::TrackedStream;
use dbpool_config::Limits;
use dbpool_core::LogLimiter;
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;

/// First pause after a failed accept; doubled per failure in a row up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between accept attempts while they keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line per this interval for each kind of accept trouble.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Connections accepted and served, as tonic's incoming stream. The loop ends (and the
/// listening socket closes) when tonic drops the stream at shutdown.
pub fn incoming(
    listener: TcpListener,
    limits: &Limits,
    closed: mpsc::UnboundedSender<u64>,
) -> ReceiverStream<std::io::Result<TrackedStream>> {
    let keepalive =
        (limits.tcp_keepalive_ms > 0).then(|| Duration::from_millis(limits.tcp_keepalive_ms));
    let mut tcp = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(keepalive);
    let max = limits.max_client_connections;
    let handshake = limits.handshake_timeout();
    // Accepted connections wait here for tonic; one slot keeps the loop in step with it.
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let live = Arc::new(AtomicUsize::new(0));
        let refused_log = LogLimiter::new(LOG_INTERVAL);
        let error_log = LogLimiter::new(LOG_INTERVAL);
        let mut backoff = MIN_BACKOFF;
        loop {
            let next = tokio::select! {
                next = tcp.next() => next,
                _ = tx.closed() => break,
            };
            match next {
                None => break,
                Some(Ok(stream)) => {
                    backoff = MIN_BACKOFF;
                    // Counted before it is handed on; the stream releases it on drop.
                    if live.fetch_add(1, Ordering::AcqRel) >= max {
                        live.fetch_sub(1, Ordering::AcqRel);
                        if let Some(suppressed) = refused_log.check() {
                            tracing::warn!(
                                max_client_connections = max,
                                refused_since_last_log = suppressed,
                                "client connection refused: server.limits.max_client_connections reached"
                            );
                        }
                        drop(stream);
                        continue;
                    }
                    let s = TrackedStream::new(stream, closed.clone(), live.clone(), handshake);
                    if tx.send(Ok(s)).await.is_err() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    if let Some(suppressed) = error_log.check() {
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
    });
    ReceiverStream::new(rx)
}
