//! TLS on the daemon's port (`[server.tls]`): the rustls server config built from the
//! PEM files, rebuilt when they change (cert-manager rotates them) by a task that
//! polls them, and the handshake of an accepted connection. A connection keeps the
//! config it was accepted with; only new connections see a new certificate.
mod handshake;
mod subject;

use crate::server::clock::Ticker;
use dbpool_config::ServerTls;
use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) use handshake::accept;
pub(crate) use subject::subject_of;

/// How often the watcher reads the files again.
pub(crate) const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("server.tls.{key} `{path}`: {source}")]
    Read {
        /// `cert_file`, `key_file` or `client_ca_file`.
        key: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM block of the kind expected.
    #[error("server.tls.{key} `{path}`: {message}")]
    Pem {
        /// `cert_file`, `key_file` or `client_ca_file`.
        key: &'static str,
        /// The file.
        path: String,
        /// What is missing or malformed.
        message: String,
    },
    /// rustls refused the certificate and key (e.g. they do not belong together).
    #[error("server.tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA file cannot verify clients.
    #[error("server.tls.client_ca_file: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

/// The bytes of the files a config was built from.
#[derive(PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Option<Vec<u8>>,
}

/// The current rustls config and where it comes from.
pub(crate) struct TlsState {
    paths: ServerTls,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The files last looked at (whether they built a config or not).
    seen: Mutex<Files>,
}

impl TlsState {
    /// Reads the files and builds the first config; an error stops the server's start.
    pub(crate) fn load(paths: &ServerTls) -> Result<Arc<TlsState>, TlsError> {
        let files = read(paths)?;
        let config = build(paths, &files)?;
        Ok(Arc::new(TlsState {
            paths: paths.clone(),
            current: RwLock::new(config),
            seen: Mutex::new(files),
        }))
    }

    /// The config for a new connection.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.read().clone())
    }

    /// Reads the files again; when they changed, builds and swaps in the new config.
    /// Files that do not build a config leave the old one serving (with a warning once
    /// per change); files half-written by a rotation are simply tried again next time.
    pub(crate) fn reload(&self) {
        let files = match read(&self.paths) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "TLS files unreadable; keeping the current certificate");
                return;
            }
        };
        let mut seen = self.seen.lock();
        if *seen == files {
            return;
        }
        match build(&self.paths, &files) {
            Ok(config) => {
                *self.current.write() = config;
                tracing::info!(cert_file = %self.paths.cert_file.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "new TLS files refused; keeping the current certificate")
            }
        }
        *seen = files;
    }
}

/// Polls the files every tick until cancelled.
pub(crate) async fn watch(state: Arc<TlsState>, mut tick: Ticker, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => state.reload(),
        }
    }
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.display().to_string(),
        source,
    })
}

fn read(paths: &ServerTls) -> Result<Files, TlsError> {
    Ok(Files {
        cert: read_file("cert_file", &paths.cert_file)?,
        key: read_file("key_file", &paths.key_file)?,
        ca: match &paths.client_ca_file {
            Some(p) => Some(read_file("client_ca_file", p)?),
            None => None,
        },
    })
}

/// Every certificate of a PEM file; at least one.
fn certs(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::Pem {
        key,
        path: path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The rustls server config of `files`: TLS 1.2 and 1.3 on ring, HTTP/2 by ALPN, client
/// certificates required when a client CA is given.
fn build(paths: &ServerTls, files: &Files) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs("cert_file", &paths.cert_file, &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| TlsError::Pem {
        key: "key_file",
        path: paths.key_file.display().to_string(),
        message: format!("no private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match (&paths.client_ca_file, &files.ca) {
        (Some(path), Some(pem)) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certs("client_ca_file", path, pem)? {
                roots.add(ca)?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
