//! Who is calling: the authentication hook of every service, and the checks of the
//! credentials a caller presents (bearer JWTs in [`jwt`]).
pub mod jwt;

use tonic::metadata::MetadataMap;
use tonic::Status;

/// Accepts or refuses a call by its metadata (`authorization: Bearer …`). Accepts all now.
pub fn check(_metadata: &MetadataMap) -> Result<(), Status> {
    Ok(())
}
