//! RTP and RTCP packets (RFC 3550), sans-IO.
//!
//! - [`RtpPacket::parse`] borrows a datagram and checks its header, CSRCs,
//!   header extensions (RFC 8285 one-byte and two-byte forms) and padding
//!   without allocating; [`RtpHeader`] writes one.
//! - [`RtpPacketMut`] rewrites SSRC, payload type, sequence number,
//!   timestamp and marker in place, as an echo peer or an SFU forwarding a
//!   stream does.
//! - [`rtcp::CompoundPacket`] iterates an RTCP compound packet: sender and
//!   receiver reports, SDES, BYE (RFC 3550 §6.4-6.6), generic NACK
//!   (RFC 4585 §6.2.1), PLI (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1);
//!   other packets are kept as opaque bytes.
//! - [`ReceptionStats`] turns what a receiver saw of a source into report
//!   blocks (loss, extended highest sequence number, jitter, LSR/DLSR).
//! - [`NackRequester`] and [`RetransmitBuffer`] are the two ends of
//!   retransmission on generic NACK.
//! - Congestion control feedback: transport-wide feedback
//!   ([`rtcp::TransportFeedback`], built from arrivals by
//!   [`TransportFeedbackGenerator`]), RFC 8888
//!   ([`rtcp::CongestionControlFeedback`]) and REMB ([`rtcp::Remb`]).
//! - [`payload`] splits VP8, VP9 and H.264 frames into payloads and joins them
//!   back.
//! - [`AudioLevel`] reads the audio level extension (RFC 6464).
//! - [`is_rtcp`] tells RTP from RTCP on a muxed port (RFC 5761 §4).
//!
//! ```
//! use realtimer_rtp::{RtpHeader, RtpPacket};
//! let header = RtpHeader { payload_type: 111, sequence_number: 7, timestamp: 960, ssrc: 42, ..Default::default() };
//! let mut buf = Vec::new();
//! header.write_packet(b"opus", 0, &mut buf).unwrap();
//! let packet = RtpPacket::parse(&buf).unwrap();
//! assert_eq!((packet.payload_type(), packet.sequence_number(), packet.payload()), (111, 7, &b"opus"[..]));
//! ```

// Library code never unwraps: peer input gets typed errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod audio_level;
mod error;
mod extension;
mod nack;
mod packet;
pub mod payload;
mod reception;
pub mod rtcp;
mod twcc;

pub use audio_level::{AudioLevel, AUDIO_LEVEL_URI};
pub use error::{ParseError, WriteError};
pub use extension::{Extension, ExtensionForm, Extensions};
pub use nack::{NackRequester, RetransmitBuffer, MAX_MISSING, MAX_NACK_PACKETS};
pub use packet::{header_len, RtpHeader, RtpPacket, RtpPacketMut, MAX_CSRCS};
pub use reception::ReceptionStats;
pub use twcc::{
    parse_transport_sequence, FeedbackConfig, TransportFeedbackGenerator, MAX_PENDING_ARRIVALS,
    TRANSPORT_CC_URI,
};

/// RFC 5761 §4: on a port shared by RTP and RTCP, a packet whose second byte
/// (marker bit masked off) is in 64..=95 is RTCP (packet types 192..=223);
/// anything else is RTP. The caller has already sent non-RTP traffic (STUN,
/// DTLS) elsewhere by the first byte (RFC 7983).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.get(1).is_some_and(|b| matches!(b & 0x7f, 64..=95))
}

/// Reads a big-endian `u16` at `at`; the caller has checked the length.
fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Reads a big-endian `u32` at `at`; the caller has checked the length.
fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_by_second_byte() {
        // RTCP SR (200), RR (201), PSFB (206) with and without marker-like bit.
        for pt in [200u8, 201, 206, 192, 223] {
            assert!(is_rtcp(&[0x80, pt]), "{pt}");
        }
        // RTP: Opus 111, VP8 96 with marker, H264 102, PT 0.
        for byte in [111u8, 96 | 0x80, 102, 0, 0x80] {
            assert!(!is_rtcp(&[0x80, byte]), "{byte}");
        }
        assert!(!is_rtcp(&[0x80]));
    }
}
