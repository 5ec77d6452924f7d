//! Accepted client connections: each gets a daemon-wide unique id (the owner of the
//! transactions it begins), must send its first bytes within the handshake timeout, and
//! reports when it closes so its transactions are rolled back. Every call runs in a
//! scope that names its connection and carries its server's per-call settings, and as a
//! [`Call`] naming its connection and method for the log line of a failure.
use crate::stream::Stream;
use dbpool_core::call::Call;
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
use tonic::codegen::http::{Request, Response};
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::Connected;

/// Ids of client connections; never reused while the daemon runs (a peer address is:
/// its port comes back), so a transaction cannot pass to a later connection. Global,
/// not per server: ids stay unique across the servers of one process.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// What a call runs with: set by [`InCall`] around every PoolService and Flight call.
#[derive(Debug, Clone)]
struct Scope {
    conn: Option<ConnInfo>,
    /// The server's switch of per-call spans (see [`call_spans`]).
    call_spans: bool,
}

tokio::task_local! {
    /// The scope of the call this task is serving.
    static SCOPE: Scope;
}

/// The client connection of the request being served, or `None` outside one (internal
/// callers, tests of the call layer). Set by [`InCall`] around every PoolService and
/// Flight call, so the call layer knows the owner without each handler passing it on.
pub fn current() -> Option<u64> {
    current_info().map(|c| c.id)
}

/// The client connection (id and peer) of the request being served, as [`current`].
pub fn current_info() -> Option<ConnInfo> {
    SCOPE.try_with(|s| s.conn.clone()).ok().flatten()
}

/// Whether the server serving this call makes per-call spans (`grpc`, `db`): only
/// traces use them, and creating, entering and closing them was ~6 % of the daemon's
/// instructions on a small query. On outside a call.
pub fn call_spans() -> bool {
    SCOPE.try_with(|s| s.call_spans).unwrap_or(true)
}

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

/// Wraps a tonic service so each call runs in its scope and as a [`Call`]: its
/// connection (see [`current`]), its server's per-call settings, and its connection id,
/// method and pool for the log line of a failure. The response body is polled in the
/// call's scope too, so an error met mid-stream is told apart. One layer, one boxed
/// future per call.
#[derive(Clone)]
pub struct InCall<S> {
    inner: S,
    call_spans: bool,
}

impl<S> InCall<S> {
    /// Wraps `inner` for a server that makes per-call spans when `call_spans`.
    pub fn new(inner: S, call_spans: bool) -> Self {
        InCall { inner, call_spans }
    }
}

impl<S: NamedService> NamedService for InCall<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for InCall<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let conn = req.extensions().get::<ConnInfo>().cloned();
        let path = req.uri().path();
        let call = Call::new(
            conn.as_ref().map(|c| c.id),
            path.strip_prefix('/').unwrap_or(path),
        );
        let scope = Scope {
            conn,
            call_spans: self.call_spans,
        };
        let response = SCOPE.scope(scope, call.clone().scope(self.inner.call(req)));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| tonic::body::Body::new(CallBody { call, inner })))
        })
    }
}

/// A response body whose frames are produced inside its call's scope.
struct CallBody {
    call: Arc<Call>,
    inner: tonic::body::Body,
}

impl http_body::Body for CallBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let inner = &mut this.inner;
        this.call
            .clone()
            .sync_scope(|| Pin::new(inner).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// Answers with what the call's scope says, in its response headers.
    #[derive(Clone)]
    struct Probe;

    impl Service<Request<()>> for Probe {
        type Response = Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            // Like a tonic handler: the work runs in the future, inside the scope.
            Box::pin(async {
                let seen = format!(
                    "{:?} {} {:?}",
                    current_info(),
                    call_spans(),
                    dbpool_core::call::describe()
                );
                let mut r = Response::new(tonic::body::Body::empty());
                r.headers_mut().insert("seen", seen.parse().unwrap());
                Ok(r)
            })
        }
    }

    async fn seen(req: Request<()>, call_spans: bool) -> String {
        let r = InCall::new(Probe, call_spans).call(req).await.unwrap();
        r.headers()["seen"].to_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_call_runs_in_its_connections_and_servers_scope() {
        assert_eq!(
            (current_info(), call_spans()),
            (None, true),
            "outside a call"
        );
        let conn = ConnInfo {
            id: 7,
            peer: Some("127.0.0.1:4000".parse().unwrap()),
            transport: Transport::Tcp,
            client_subject: None,
        };
        let mut req = Request::builder()
            .uri("/dbpool.v1.PoolService/Query")
            .body(())
            .unwrap();
        req.extensions_mut().insert(conn.clone());
        assert_eq!(
            seen(req, false).await,
            format!(
                "{:?} false (\"dbpool.v1.PoolService/Query\", \"\")",
                Some(conn)
            )
        );
        assert_eq!(seen(Request::new(()), true).await, "None true (\"\", \"\")");
    }
}
