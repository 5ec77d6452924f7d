//! Who is calling and what it may do: tenants and their principals (tokens, JWTs,
//! client certificates), rights per pool, quotas. Callers are recognised once per call
//! by [`crate::conn::InCall`]; what they may do is asked at the call layer's one
//! admission point (`Calls::admit`, the [`rights::TenantAuthorizer`]).
pub mod jwt;
pub mod memo;
pub mod quota;
pub mod rights;
pub mod tenant;
pub mod tenants;
pub mod upstreams;

pub use tenant::Tenant;
pub use tenants::{Caller, Principal, Tenants};

/// A new bearer token: 32 random bytes from the OS, in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex(&bytes)
}

/// The `token_sha256` of `token`: its SHA-256 in hex.
pub fn token_sha256(token: &str) -> String {
    hex(&sha256(token.as_bytes()))
}

/// SHA-256 of `bytes` (ring's, as TLS uses): tokens, and the keys of the JWT cache.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal in time that does not depend on where the bytes differ (lengths may show).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_hex_and_hash_as_sha256sum_does() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_ne!(a, b);
        assert!(a.len() == 64 && dbpool_config::is_sha256_hex(&a));
        // printf %s test | sha256sum
        assert_eq!(
            super::token_sha256("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
