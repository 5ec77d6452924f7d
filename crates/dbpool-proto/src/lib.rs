//! Generated types and services of the `dbpool.v1` contract (proto/dbpool/v1).
#![allow(missing_docs, clippy::all)]

pub mod codec;

/// `dbpool.v1`: PoolService, its messages and the Flight ticket.
pub mod v1 {
    tonic::include_proto!("dbpool.v1");
}

/// Encoded `FileDescriptorSet` of proto/, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dbpool_descriptor.bin"));
