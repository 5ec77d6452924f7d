//! Errors as gRPC statuses. The conversion itself is dbpool-core's
//! `impl From<Error> for tonic::Status` (feature `grpc`), so handlers use `?`; it also
//! writes the log line of the failure, naming the call's pool, method and code.
use dbpool_core::Error;

/// The gRPC code of an error, as a metric label (`INVALID_ARGUMENT`, …).
pub fn code_name(e: &Error) -> &'static str {
    e.code_name()
}
