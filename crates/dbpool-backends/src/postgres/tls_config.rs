//! The rustls client config of a PostgreSQL pool from its libpq TLS keys: the roots of
//! `sslrootcert`, the client certificate of `sslcert`/`sslkey`, and the server check
//! each `sslmode` asks for (none, the chain, or the chain and the host name).
use dbpool_config::{PgTls, RootCert};
use dbpool_core::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{Error as TlsError, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Reads a file named by a TLS key. The message names the key, the path and the
/// operating system's reason; never anything the file holds.
fn read(key: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::invalid(key, format!("cannot read `{}`: {e}", path.display())))
}

/// The certificates of a PEM file (at least one).
fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(key, path)?;
    let not_pem = || {
        Error::invalid(
            key,
            format!("`{}` holds no PEM certificate", path.display()),
        )
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        // The PEM error may quote a line of the file: not shown.
        .map_err(|_| not_pem())?;
    if certs.is_empty() {
        return Err(not_pem());
    }
    Ok(certs)
}

/// The trusted roots of `sslrootcert`.
fn roots(root: &RootCert) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            for cert in certificates("sslrootcert", path)? {
                store.add(cert).map_err(|e| {
                    Error::invalid(
                        "sslrootcert",
                        format!("`{}`: not a usable CA certificate: {e}", path.display()),
                    )
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(Error::invalid(
                    "sslrootcert",
                    "`system`: no trusted root certificates found on this machine",
                ));
            }
        }
    }
    Ok(store)
}

/// The ring provider, as every backend of the daemon uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client config of `tls`: files are read now, so a pool with a missing or
/// bad file fails when it is created, naming the key.
pub fn client_config(tls: &PgTls) -> Result<ClientConfig> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match (&tls.root_cert, tls.verifies_chain()) {
        (Some(root), true) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::invalid("sslrootcert", e.to_string()))?;
            if tls.verifies_host() {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
        _ => Arc::new(Unverified(provider.clone())),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &tls.client_cert {
        Some((cert, key)) => {
            let certs = certificates("sslcert", cert)?;
            let pem = read("sslkey", key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                Error::invalid(
                    "sslkey",
                    format!(
                        "`{}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                        key.display()
                    ),
                )
            })?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| Error::invalid("sslkey", format!("does not fit sslcert: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    // Harmless on the usual negotiation; what `sslnegotiation=direct` needs.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// verify-ca: the chain is checked against the roots, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, TlsError> {
        // webpki checks the chain before the name: a name error means the chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// prefer and require without `sslrootcert`: encryption without checking who the server
/// is (libpq's behaviour); the handshake signatures are still verified.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
