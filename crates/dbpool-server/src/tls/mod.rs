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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A self-signed certificate for `cn` as `name.pem` / `name.key` in `dir`.
    fn self_signed(dir: &Path, name: &str, cn: &str) {
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.join(format!("{name}.pem")))
            .output()
            .expect("the openssl command");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn current(state: &TlsState) -> Arc<rustls::ServerConfig> {
        state.current.read().clone()
    }

    #[test]
    fn changed_files_swap_the_config_and_bad_ones_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        self_signed(dir.path(), "a", "first");
        self_signed(dir.path(), "b", "second");
        let paths = ServerTls {
            cert_file: dir.path().join("served.pem"),
            key_file: dir.path().join("served.key"),
            client_ca_file: None,
        };
        let install = |name: &str| {
            for ext in ["pem", "key"] {
                let from = dir.path().join(format!("{name}.{ext}"));
                std::fs::copy(from, dir.path().join(format!("served.{ext}"))).unwrap();
            }
        };
        install("a");
        let state = TlsState::load(&paths).unwrap();
        let first = current(&state);
        state.reload();
        assert!(
            Arc::ptr_eq(&first, &current(&state)),
            "unchanged files: no rebuild"
        );

        install("b");
        state.reload();
        let second = current(&state);
        assert!(!Arc::ptr_eq(&first, &second), "changed files: a new config");

        // A key that does not belong to the certificate, then garbage: both refused.
        std::fs::copy(dir.path().join("a.key"), &paths.key_file).unwrap();
        state.reload();
        assert!(
            Arc::ptr_eq(&second, &current(&state)),
            "a mismatched key keeps the config"
        );
        std::fs::write(&paths.cert_file, "not a certificate").unwrap();
        state.reload();
        assert!(
            Arc::ptr_eq(&second, &current(&state)),
            "a bad file keeps the config"
        );

        // A missing file at start is an error naming the key.
        let missing = ServerTls {
            key_file: dir.path().join("nowhere.key"),
            ..paths
        };
        let e = TlsState::load(&missing).err().unwrap().to_string();
        assert!(
            e.contains("server.tls.key_file") && e.contains("nowhere.key"),
            "{e}"
        );
    }
}
