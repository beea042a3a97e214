//! SDP (RFC 8866) with the attributes WebRTC uses.
