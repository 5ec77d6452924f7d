//! Accepted client connections: each gets a daemon-wide unique id (the owner of the
//! transactions it begins), must send its first bytes within the handshake timeout, and
//! reports when it closes so its transactions are rolled back. The scope each call runs
//! in (its connection, its caller) is `call_scope.rs`, re-exported here.
pub use crate::call_scope::{
    call_spans, current, current_caller, current_conn_and_caller, note_refused, note_statement,
    note_write, Access, InCall,
};
use crate::stream::Stream;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Sleep;
use tonic::transport::server::Connected;

/// Ids of client connections; never reused while the daemon runs (a peer address is:
/// its port comes back), so a transaction cannot pass to a later connection. Global,
/// not per server: ids stay unique across the servers of one process.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// What tonic puts in a request's extensions for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection's unique id.
    pub id: u64,
    /// The client's address, when the socket knew it (`None` over a Unix socket).
    pub peer: Option<SocketAddr>,
    /// What carries the connection.
    pub transport: Transport,
    /// The subject of the client certificate that TLS verified (mutual TLS, RFC 4514
    /// form, e.g. `CN=orders,O=example`); `None` without one.
    pub client_subject: Option<Arc<str>>,
    /// The credentials the connection proved last (see [`crate::auth::memo`]).
    pub memo: Arc<crate::auth::memo::AuthMemo>,
}

/// What carries a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// A Unix domain socket (file permissions were the gate).
    Unix,
    /// TLS (over TCP or a Unix socket).
    Tls,
}

/// A client connection. On drop its id goes to `closed` and the live count goes down.
pub struct TrackedStream {
    inner: Stream,
    info: ConnInfo,
    closed: UnboundedSender<u64>,
    live: Arc<AtomicUsize>,
    /// Until the first bytes arrive: when the client must have sent them.
    handshake: Option<Pin<Box<Sleep>>>,
}

impl TrackedStream {
    /// Wraps an accepted stream that `live` already counts (the count is released on drop).
    pub fn new(
        inner: Stream,
        closed: UnboundedSender<u64>,
        live: Arc<AtomicUsize>,
        handshake_timeout: Duration,
    ) -> Self {
        let peer_of = |s: &Stream| match s {
            Stream::Tcp(s) => s.peer_addr().ok(),
            _ => None,
        };
        let (peer, transport, client_subject) = match &inner {
            Stream::Tcp(s) => (s.peer_addr().ok(), Transport::Tcp, None),
            Stream::Unix(_) => (None, Transport::Unix, None),
            Stream::Tls(s) => {
                let (io, session) = s.get_ref();
                let subject = session
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| crate::tls::subject_of(c))
                    .map(Arc::from);
                (peer_of(io), Transport::Tls, subject)
            }
        };
        let info = ConnInfo {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            peer,
            transport,
            client_subject,
            memo: Arc::default(),
        };
        TrackedStream {
            inner,
            info,
            closed,
            live,
            handshake: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
        }
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        let _ = self.closed.send(self.info.id);
    }
}

impl Connected for TrackedStream {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.handshake.is_some() {
            match &r {
                // Bytes (or EOF, or an error) came: the handshake deadline is over.
                Poll::Ready(_) if buf.filled().len() > before => self.handshake = None,
                Poll::Ready(_) => {}
                Poll::Pending => {
                    let expired = self
                        .handshake
                        .as_mut()
                        .is_some_and(|s| s.as_mut().poll(cx).is_ready());
                    if expired {
                        self.handshake = None;
                        tracing::debug!(
                            conn = self.info.id,
                            "closing a client connection that sent nothing"
                        );
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no bytes within server.limits.handshake_timeout_ms",
                        )));
                    }
                }
            }
        }
        r
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
