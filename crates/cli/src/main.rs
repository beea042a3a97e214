//! The `realtimer` command.
fn main() {}
