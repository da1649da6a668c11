//! `cargo run -p crius-testutil --example mkbundle -- DIR ARGS...`: writes a busybox bundle by hand.
fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "bundle".to_string());
    let rest: Vec<String> = args.collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    crius_testutil::write_bundle(std::path::Path::new(&dir), &rest)?;
    Ok(())
}
