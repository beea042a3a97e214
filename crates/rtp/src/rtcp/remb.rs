//! Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03 §2.2):
//! PSFB FMT 15 with the "REMB" identifier, the receiver's estimate of what
//! the sender may send. Read as a fallback when a peer offers no
//! transport-wide feedback.

use super::{packet_type, write_packet, Body};
use crate::{be32, ParseError, WriteError};

/// §2.2: the unique identifier, ASCII "REMB".
const IDENTIFIER: &[u8; 4] = b"REMB";
/// §2.2: the mantissa is 18 bits.
const MANTISSA_BITS: u32 = 18;

/// A REMB message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Remb {
    /// Who estimated.
    pub sender_ssrc: u32,
    /// The estimate in bits per second (mantissa × 2^exponent; saturates at
    /// `u64::MAX` for exponents the field allows but `u64` does not hold).
    pub bitrate: u64,
    /// The streams the estimate applies to (at most 255).
    pub ssrcs: Vec<u32>,
}

impl Remb {
    /// FMT of application layer feedback in a PSFB packet (RFC 4585 §6.4).
    pub const FORMAT: u8 = 15;

    /// Whether a PSFB FMT 15 body is a REMB (other application layer
    /// feedback is kept opaque).
    pub(super) fn is_remb(body: &Body<'_>) -> bool {
        body.data.get(8..12) == Some(&IDENTIFIER[..])
    }

    pub(super) fn parse(body: Body<'_>) -> Result<Self, ParseError> {
        let fixed = body.get(0..16, "REMB header")?;
        let count = usize::from(fixed[12]);
        let exponent = u32::from(fixed[13] >> 2);
        let mantissa = u64::from(be32(fixed, 12) & ((1 << MANTISSA_BITS) - 1));
        let bitrate = if mantissa == 0 {
            0
        } else if mantissa.leading_zeros() < exponent {
            u64::MAX
        } else {
            mantissa << exponent
        };
        let ssrcs = body
            .get(16..16 + 4 * count, "REMB SSRCs")?
            .chunks_exact(4)
            .map(|s| be32(s, 0))
            .collect();
        Ok(Self {
            sender_ssrc: be32(fixed, 0),
            bitrate,
            ssrcs,
        })
    }

    /// Appends the packet to `out`, with the smallest exponent that holds
    /// the bitrate (rounded down to what the mantissa keeps).
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        let count = u8::try_from(self.ssrcs.len()).map_err(|_| WriteError::TooMany {
            what: "REMB SSRCs",
            count: self.ssrcs.len(),
            max: 255,
        })?;
        let exponent = (64 - self.bitrate.leading_zeros()).saturating_sub(MANTISSA_BITS);
        let mantissa = (self.bitrate >> exponent) as u32;
        write_packet(out, usize::from(Self::FORMAT), packet_type::PSFB, |out| {
            out.extend_from_slice(&self.sender_ssrc.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(IDENTIFIER);
            let fields = u32::from(count) << 24 | exponent << MANTISSA_BITS | mantissa;
            out.extend_from_slice(&fields.to_be_bytes());
            for ssrc in &self.ssrcs {
                out.extend_from_slice(&ssrc.to_be_bytes());
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CompoundPacket, RtcpPacket};
    use super::*;

    /// Chrome watching a 6 Mbit/s stream (pion/rtcp's capture): mantissa
    /// 139487, exponent 6.
    const CHROME_REMB: [u8; 24] = [
        143, 206, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 82, 69, 77, 66, 1, 26, 32, 223, 72, 116, 237, 22,
    ];

    #[test]
    fn parses_chrome_remb_and_writes_it_back() {
        let packets: Vec<_> = CompoundPacket::new(&CHROME_REMB)
            .collect::<Result<_, _>>()
            .unwrap();
        let [RtcpPacket::Remb(remb)] = &packets[..] else {
            panic!("{packets:?}")
        };
        assert_eq!(remb.sender_ssrc, 1);
        assert_eq!(remb.bitrate, 139_487 << 6);
        assert_eq!(remb.ssrcs, [1_215_622_422]);
        let mut out = Vec::new();
        remb.write(&mut out).unwrap();
        assert_eq!(out, CHROME_REMB);
    }

    #[test]
    fn huge_exponents_saturate_and_small_rates_are_exact() {
        let mut max = CHROME_REMB;
        max[17..20].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        let packets: Vec<_> = CompoundPacket::new(&max).collect::<Result<_, _>>().unwrap();
        assert!(matches!(&packets[0], RtcpPacket::Remb(r) if r.bitrate == u64::MAX));
        for bitrate in [0, 1, 262_143, 300_000, 2_500_000] {
            let remb = Remb {
                sender_ssrc: 9,
                bitrate,
                ssrcs: vec![],
            };
            let mut out = Vec::new();
            remb.write(&mut out).unwrap();
            let parsed: Vec<_> = CompoundPacket::new(&out).collect::<Result<_, _>>().unwrap();
            let RtcpPacket::Remb(back) = &parsed[0] else {
                panic!()
            };
            // Rounded down to 18 significant bits.
            assert!(back.bitrate <= bitrate && back.bitrate as f64 >= bitrate as f64 * 0.99999);
        }
    }
}
