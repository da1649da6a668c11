//! Generates the NRI protocol messages (prost) from `proto/api.proto`, NRI v0.12.2's
//! `pkg/api/api.proto`, kept unmodified. Only messages are generated: the ttrpc services are
//! spoken by hand in `src/ttrpc.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_protos(&["proto/api.proto"], &["proto"])?;
    Ok(())
}
