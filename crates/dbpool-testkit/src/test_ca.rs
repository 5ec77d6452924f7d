//! A throwaway certificate authority for TLS tests (rcgen, ring): a CA certificate and
//! the server and client certificates it signs, as PEM.
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A CA and its key, able to sign certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// What a signed certificate is for.
#[derive(Debug, Clone, Copy)]
pub enum CertUse {
    /// A TLS server (extended key usage serverAuth).
    Server,
    /// A TLS client (extended key usage clientAuth).
    Client,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("a CA key");
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        TestCa {
            cert: p.self_signed(&key).expect("a CA certificate"),
            key,
        }
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate with common name `cn` for `names` (DNS names or IP addresses in
    /// its subject alternative names): `(certificate PEM, private key PEM)`.
    pub fn sign(&self, cn: &str, names: &[&str], usage: CertUse) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = names
            .iter()
            .map(|n| match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("a DNS name")),
            })
            .collect();
        p.extended_key_usages = vec![match usage {
            CertUse::Server => ExtendedKeyUsagePurpose::ServerAuth,
            CertUse::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let cert = p
            .signed_by(&key, &self.cert, &self.key)
            .expect("a signed certificate");
        (cert.pem(), key.serialize_pem())
    }
}
