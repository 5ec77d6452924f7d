//! The authentication hook of every service. dbpool has no authentication yet: it
//! listens on localhost as a sidecar. Token checks go here, called by the Flight
//! handshake and (later) by an interceptor on every service.
use tonic::metadata::MetadataMap;
use tonic::Status;

/// Accepts or refuses a call by its metadata (`authorization: Bearer …`). Accepts all now.
pub fn check(_metadata: &MetadataMap) -> Result<(), Status> {
    Ok(())
}
