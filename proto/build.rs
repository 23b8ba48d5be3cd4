//! Compiles the `.proto` files with protox (pure Rust, no system `protoc`) and generates the
//! prost messages and tonic services from the resulting descriptor set.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "isms/ledger/v1/envelope.proto",
    "isms/ledger/v1/events.proto",
    "isms/ledger/v1/ledger.proto",
    "isms/ledger/v1/registers.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;

    // Kept beside the generated code so the server can offer gRPC reflection.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("isms_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Undecodable requests are the client's fault: INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::IsmsCodec")
        .compile_fds(fds)?;
    Ok(())
}
