//! The redis backend (not yet implemented; behind the `redis` feature).
