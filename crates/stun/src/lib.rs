//! STUN (RFC 8489): messages, attributes, credentials, and client transactions.
