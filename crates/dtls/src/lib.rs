//! DTLS 1.2 (RFC 6347) for WebRTC, sans-IO over OpenSSL.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
