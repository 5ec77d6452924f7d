//! TLS to PostgreSQL: tokio-postgres's `MakeTlsConnect` over tokio-rustls, built from a
//! pool's libpq keys (`tls_config.rs`), SCRAM channel binding (`tls_binding.rs`), and
//! the typed error of a failed handshake that says what failed (unknown CA, host name,
//! the server's refusal).
use super::tls_config::client_config;
use dbpool_config::{PgTls, SslMode};
use dbpool_core::Result;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

/// tokio-postgres's mode for ours: verify-ca and verify-full are `require` to the
/// driver, the checks are the connector's.
pub fn driver_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as D;
    match mode {
        SslMode::Disable => D::Disable,
        SslMode::Prefer => D::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => D::Require,
    }
}

/// Makes the TLS connector of each new connection (and cancel request) of a pool.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MakeRustls")
    }
}

impl MakeRustls {
    /// The connector of `tls`; reads its files now (a bad file fails the pool's creation).
    pub fn new(tls: &PgTls) -> Result<Self> {
        Ok(MakeRustls {
            config: Arc::new(client_config(tls)?),
        })
    }
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = PgTlsFailure;

    fn make_tls_connect(&mut self, host: &str) -> std::result::Result<RustlsConnect, PgTlsFailure> {
        // A name that is no TLS server name (a Unix socket's directory) fails only if TLS
        // is actually tried: sslmode=disable and a refusing server under prefer never do.
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| PgTlsFailure::BadHostName(host.to_string()));
        Ok(RustlsConnect {
            config: self.config.clone(),
            host: host.to_string(),
            name,
        })
    }
}

/// The TLS handshake of one connection.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    host: String,
    name: std::result::Result<ServerName<'static>, PgTlsFailure>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = PgTlsFailure;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<RustlsStream, PgTlsFailure>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.name?;
            tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
                .map_err(|e| PgTlsFailure::classify(e, self.host))
        })
    }
}

/// Why TLS to the server failed. The message never holds a secret or a file's content.
#[derive(Debug, thiserror::Error)]
pub enum PgTlsFailure {
    /// The host cannot be checked against a certificate (not a DNS name or IP address).
    #[error("`{0}` is not a host name TLS can check")]
    BadHostName(String),
    /// The server's certificate is not signed by a CA of `sslrootcert`.
    #[error("the server's certificate is not signed by a CA of sslrootcert (unknown CA): {0}")]
    UnknownCa(#[source] io::Error),
    /// The server's certificate does not name the host (sslmode=verify-full).
    #[error(
        "the server's certificate is not valid for host name `{host}` (host name mismatch, \
         checked by sslmode=verify-full): {source}"
    )]
    HostName {
        /// The host connected to.
        host: String,
        /// rustls's error.
        #[source]
        source: io::Error,
    },
    /// Any other failure of the handshake: a certificate expired, the server's alert
    /// (e.g. it refused our client certificate), the connection closed.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
}

impl PgTlsFailure {
    /// Tells the failures apart by rustls's error kind inside tokio-rustls's I/O error.
    fn classify(e: io::Error, host: String) -> Self {
        let cert = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|r| match r {
                rustls::Error::InvalidCertificate(c) => Some(c.clone()),
                _ => None,
            });
        match cert {
            Some(CertificateError::UnknownIssuer) => PgTlsFailure::UnknownCa(e),
            Some(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => PgTlsFailure::HostName { host, source: e },
            _ => PgTlsFailure::Handshake(e),
        }
    }
}

/// A TLS connection to the server.
pub struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM-SHA-256-PLUS binds the password exchange to this TLS session.
        let (_, session) = self.0.get_ref();
        let end_point = session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| super::tls_binding::server_end_point(cert));
        match end_point {
            Some(data) => ChannelBinding::tls_server_end_point(data),
            None => ChannelBinding::none(),
        }
    }
}
