//! Link options for the daemon's binaries.
//!
//! On glibc targets the binaries are linked with packed relative relocations (`DT_RELR`, glibc
//! 2.36 or later): a position-independent Rust binary carries one 24-byte `R_X86_64_RELATIVE`
//! entry for every pointer in its vtables and constant tables (about 0.8 MB for `crius`), which
//! the dynamic loader reads in full at every start, so they stay resident for the life of the
//! daemon. Packed, the same relocations take a few kilobytes. The binary stays a PIE (ASLR).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
