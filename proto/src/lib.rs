//! Rust types generated from `proto/`: the signed event body, the ISMS event kinds and the
//! gRPC services. Nothing here is written by hand except this module wrapper.

#![allow(missing_debug_implementations)]

pub mod codec;

/// `package isms.ledger.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
    tonic::include_proto!("isms.ledger.v1");
}

/// The encoded `FileDescriptorSet` of every `.proto` file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("isms_descriptor");
