//! SCRAM channel binding over TLS (`tls-server-end-point`, RFC 5929): the hash of the
//! server's certificate, with the hash of its signature algorithm (SHA-256 for MD5 and
//! SHA-1), so a password exchange cannot be relayed through another TLS session.
use ring::digest;

/// DER of the signature algorithm OIDs we know, with the digest each binds with.
const ALGORITHMS: &[(&[u8], &digest::Algorithm)] = &[
    // md5WithRSAEncryption, sha1WithRSAEncryption: SHA-256 by the RFC's rule.
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
        &digest::SHA256,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        &digest::SHA256,
    ),
    // sha256/384/512WithRSAEncryption.
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        &digest::SHA256,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        &digest::SHA384,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        &digest::SHA512,
    ),
    // ecdsa-with-SHA1, ecdsa-with-SHA256/384/512.
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], &digest::SHA256),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        &digest::SHA256,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        &digest::SHA384,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        &digest::SHA512,
    ),
];

/// One DER element: (tag, content, what follows). `None` for anything malformed.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, b.get(header..end)?, b.get(end..)?))
}

/// The OID of a certificate's outer `signatureAlgorithm`.
fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (SEQUENCE, cert, _) = tlv(cert)? else {
        return None;
    };
    let (_, _tbs, rest) = tlv(cert)?;
    let (SEQUENCE, algorithm, _) = tlv(rest)? else {
        return None;
    };
    let (OID, oid, _) = tlv(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// The `tls-server-end-point` data of a server certificate (DER), or `None` when its
/// signature algorithm has no defined hash here (e.g. Ed25519, RSASSA-PSS): SCRAM then
/// runs without channel binding, as tokio-postgres's default `channel_binding=prefer`
/// allows.
pub fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_oid(cert)?;
    let (_, algorithm) = ALGORITHMS.iter().find(|(known, _)| *known == oid)?;
    Some(digest::digest(algorithm, cert).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_certificates_bind_nothing() {
        assert_eq!(server_end_point(&[]), None);
        assert_eq!(server_end_point(&[0x30, 0x82, 0xff]), None);
        assert_eq!(server_end_point(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
        assert_eq!(
            server_end_point(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn the_hash_follows_the_signature_algorithm() {
        // SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID ecdsa-with-SHA384 } }
        let mut cert = vec![0x30, 0x0e, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08];
        cert.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
        let bound = server_end_point(&cert).unwrap();
        assert_eq!(bound, digest::digest(&digest::SHA384, &cert).as_ref());
        // Ed25519 (1.3.101.112): no binding.
        let ed = [
            0x30, 0x09, 0x30, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
        ];
        assert_eq!(server_end_point(&ed), None);
    }
}
