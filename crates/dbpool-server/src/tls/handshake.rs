//! The TLS handshake of an accepted connection, under the handshake timeout, and a clear
//! answer to a client that speaks plaintext to the TLS port: its first gRPC call gets
//! UNAVAILABLE saying that the port requires TLS (an HTTP/1 client a 400), instead of a
//! bare reset.
use crate::stream::Stream;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// What a plaintext client is told.
const MESSAGE: &str =
    "this dbpool port requires TLS (server.tls): connect with grpcs:// or https://";

/// Runs the handshake; `None` (logged at debug) when it failed or timed out.
pub(crate) async fn accept(
    acceptor: TlsAcceptor,
    stream: Stream,
    timeout: Duration,
) -> Option<TlsStream<Stream>> {
    let deadline = tokio::time::Instant::now() + timeout;
    if let Stream::Tcp(tcp) = &stream {
        if let Ok(Some(kind)) = tokio::time::timeout_at(deadline, plaintext(tcp)).await {
            tracing::debug!(kind, "a plaintext client on the TLS port: told to use TLS");
            if let Stream::Tcp(tcp) = stream {
                let _ = tokio::time::timeout_at(deadline, refuse(tcp)).await;
            }
            return None;
        }
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out (server.limits.handshake_timeout_ms)");
            None
        }
    }
}

/// Whether the client's first bytes are HTTP rather than a TLS record: `Some("http2")`
/// for the HTTP/2 preface, `Some("http1")` for a request line.
async fn plaintext(tcp: &TcpStream) -> Option<&'static str> {
    let mut head = [0u8; 4];
    let n = tcp.peek(&mut head).await.ok()?;
    match &head[..n] {
        b"PRI " => Some("http2"),
        [b'A'..=b'Z', ..] => Some("http1"),
        _ => None,
    }
}

/// Tells a plaintext client why it is refused, then closes: an HTTP/2 client gets its
/// first call answered with UNAVAILABLE and the message (then a GOAWAY), an HTTP/1
/// client a 400. Bounded by the caller's deadline and by [`MAX_PLAINTEXT_BYTES`].
async fn refuse(mut tcp: TcpStream) {
    let mut head = [0u8; PREFACE.len()];
    if tcp.read_exact(&mut head).await.is_err() {
        return;
    }
    if &head != PREFACE {
        let reply = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{MESSAGE}",
            MESSAGE.len()
        );
        let _ = tcp.write_all(reply.as_bytes()).await;
        let _ = tcp.shutdown().await;
        return;
    }
    // Our SETTINGS (empty): the client waits for them before it sends a call.
    if tcp.write_all(&frame(0x4, 0, 0, &[])).await.is_err() {
        return;
    }
    let mut budget = MAX_PLAINTEXT_BYTES;
    loop {
        let mut header = [0u8; 9];
        if tcp.read_exact(&mut header).await.is_err() {
            return;
        }
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        if len > budget {
            return;
        }
        budget -= len;
        let mut payload = vec![0u8; len];
        if tcp.read_exact(&mut payload).await.is_err() {
            return;
        }
        // SETTINGS (not an ACK): acknowledge it.
        let settings = kind == 0x4 && flags & 0x1 == 0;
        if settings && tcp.write_all(&frame(0x4, 0x1, 0, &[])).await.is_err() {
            return;
        }
        // HEADERS: the first call. Answer it with a gRPC status, then go away.
        if kind != 0x1 {
            continue;
        }
        let mut out = frame(0x1, 0x5, stream, &trailers());
        let mut goaway = stream.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0u32.to_be_bytes()); // NO_ERROR
        goaway.extend_from_slice(MESSAGE.as_bytes());
        out.extend(frame(0x7, 0, 0, &goaway));
        let _ = tcp.write_all(&out).await;
        let _ = tcp.shutdown().await;
        // Read what else comes, so that closing does not reset the connection
        // before the client read the answer.
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        return;
    }
}

/// The client connection preface of HTTP/2.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The most a plaintext client may send before its first call is answered.
const MAX_PLAINTEXT_BYTES: usize = 64 * 1024;

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A trailers-only gRPC response, UNAVAILABLE with [`MESSAGE`], HPACK-encoded as
/// literals without indexing (no table state to keep).
fn trailers() -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "14"),
        ("grpc-message", MESSAGE),
    ] {
        out.push(0);
        for text in [name, value] {
            // 7-bit length prefix, no Huffman: every string here is shorter than 127.
            out.push(u8::try_from(text.len()).unwrap_or(0));
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_trailers_are_well_formed() {
        assert_eq!(frame(0x4, 0x1, 0, &[]), [0, 0, 0, 4, 1, 0, 0, 0, 0]);
        let f = frame(0x1, 0x5, 3, &[9, 9]);
        assert_eq!(&f[..9], &[0, 0, 2, 1, 5, 0, 0, 0, 3]);
        let t = trailers();
        assert!(MESSAGE.len() < 127);
        assert_eq!(&t[..9], b"\0\x07:status");
        assert!(t.windows(MESSAGE.len()).any(|w| w == MESSAGE.as_bytes()));
    }
}
