//! Lifecycle benchmark (filled in later).
fn main() {}
