//! The `isms` command line.
fn main() {}
