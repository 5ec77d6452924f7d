//! Accepted TCP connections that report when they close, so the transactions a client
//! began are rolled back when its connection goes away.
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A client connection; its peer address is sent to `closed` when it is dropped.
pub struct TrackedStream {
    inner: TcpStream,
    peer: Option<String>,
    closed: UnboundedSender<String>,
}

impl TrackedStream {
    /// Wraps an accepted stream.
    pub fn new(inner: TcpStream, closed: UnboundedSender<String>) -> Self {
        let _ = inner.set_nodelay(true);
        let peer = inner.peer_addr().ok().map(|a| a.to_string());
        TrackedStream {
            inner,
            peer,
            closed,
        }
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        if let Some(peer) = self.peer.take() {
            let _ = self.closed.send(peer);
        }
    }
}

impl Connected for TrackedStream {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
