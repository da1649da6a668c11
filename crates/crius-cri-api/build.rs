//! Generates the CRI v1 messages, clients and servers from `proto/api.proto`.
//!
//! The field option `debug_redact` (used on AuthConfig's secrets) needs protoc 22 or newer;
//! Debian's protoc is 3.21. The option only changes how a text dump prints the field, never the
//! wire format, so older protoc gets a copy of the file without it.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let proto = fs::read_to_string("proto/api.proto")?;
    let compatible = proto.replace(" [debug_redact = true]", "");
    let dir = PathBuf::from(env::var("OUT_DIR")?).join("proto");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("api.proto"), compatible)?;
    tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .compile_protos(&[dir.join("api.proto")], &[dir])?;
    Ok(())
}
