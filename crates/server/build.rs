//! Rebuilds the crate when the embedded web app (`web/`) changes.

fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
