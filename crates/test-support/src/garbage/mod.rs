//! Arbitrary bytes into a running protocol core, the way a hostile peer
//! would send them: each driver sets a core up, then feeds it the input as
//! datagrams or packets it can get past the first checks (right keys, tags
//! and checksums). A crate's property test and its fuzz target (`fuzz/`)
//! call the same driver, so what the fuzzer explores the tests keep.

#[cfg(feature = "ice")]
pub mod ice;
#[cfg(feature = "sctp")]
pub mod sctp;
