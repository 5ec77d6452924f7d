//! Accepted client connections: each gets a daemon-wide unique id (the owner of the
//! transactions it begins), must send its first bytes within the handshake timeout, and
//! reports when it closes so its transactions are rolled back. Each request runs as a
//! [`Call`] naming its connection and method.
use dbpool_core::call::Call;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Sleep;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::Connected;

/// Ids of client connections; never reused while the daemon runs (a peer address is:
/// its port comes back), so a transaction cannot pass to a later connection.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The client connection of the request being served, or `None` outside one (internal
/// callers, tests of the call layer). Set by [`WithConnId`] around every PoolService and
/// Flight call, so the call layer knows the owner without each handler passing it on.
pub fn current() -> Option<u64> {
    dbpool_core::call::conn()
}

/// What tonic puts in a request's extensions for a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The connection's unique id.
    pub id: u64,
}

/// A client connection. On drop its id goes to `closed` and the live count goes down.
pub struct TrackedStream {
    inner: TcpStream,
    info: ConnInfo,
    closed: UnboundedSender<u64>,
    live: Arc<AtomicUsize>,
    /// Until the first bytes arrive: when the client must have sent them.
    handshake: Option<Pin<Box<Sleep>>>,
}

impl TrackedStream {
    /// Wraps an accepted stream that `live` already counts (the count is released on drop).
    pub fn new(
        inner: TcpStream,
        closed: UnboundedSender<u64>,
        live: Arc<AtomicUsize>,
        handshake_timeout: Duration,
    ) -> Self {
        let _ = inner.set_nodelay(true);
        let info = ConnInfo {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
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

/// Wraps a tonic service so each call runs as a [`Call`]: its connection's id in
/// [`current`], its method and pool in the log line of a failure. The response body is
/// polled in the same scope, so an error met mid-stream is told apart too.
#[derive(Clone)]
pub struct WithConnId<S>(pub S);

impl<S: NamedService> NamedService for WithConnId<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for WithConnId<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = req.extensions().get::<ConnInfo>().map(|c| c.id);
        let path = req.uri().path();
        let call = Call::new(id, path.strip_prefix('/').unwrap_or(path));
        let response = call.clone().scope(self.0.call(req));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| tonic::body::Body::new(Scoped { call, inner })))
        })
    }
}

/// A response body whose frames are produced inside its call's scope.
struct Scoped {
    call: Arc<Call>,
    inner: tonic::body::Body,
}

impl http_body::Body for Scoped {
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
