//! H.264 over RTP (RFC 6184), packetization mode 1: single NAL unit
//! packets, STAP-A aggregates and FU-A fragments (§5.6-5.8). Frames are
//! Annex B byte streams (NAL units after 00 00 00 01 start codes).

use super::Depacketizer;
use crate::ParseError;

/// RFC 6184 §5.4: NAL unit types of the payload structures.
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
/// H.264 §7.4.1: NAL unit types of an IDR slice and a sequence parameter set.
const IDR: u8 = 5;
const SPS: u8 = 7;

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of an Annex B byte stream (start codes of 3 or 4 bytes).
pub fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = stream;
    std::iter::from_fn(move || loop {
        // Skip to just past the next start code.
        let at = rest.windows(3).position(|w| w == [0, 0, 1])?;
        rest = &rest[at + 3..];
        let end = rest
            .windows(3)
            .position(|w| w == [0, 0, 1] || w == [0, 0, 0])
            .unwrap_or(rest.len());
        let nal = &rest[..end];
        rest = &rest[end..];
        if !nal.is_empty() {
            return Some(nal);
        }
    })
}

/// Whether an access unit (Annex B) holds an IDR slice or an SPS, from
/// which a decoder can start.
pub fn is_keyframe(access_unit: &[u8]) -> bool {
    nal_units(access_unit).any(|nal| matches!(nal[0] & 0x1F, IDR | SPS))
}

/// Splits access units into payloads: a NAL unit that fits is sent alone
/// (§5.6), a larger one in FU-A fragments (§5.8).
#[derive(Debug, Clone, Copy, Default)]
pub struct H264Packetizer;

impl H264Packetizer {
    /// Appends the payloads of the Annex B `access_unit`, each at most
    /// `max_payload` bytes (at least 3), to `out`; the caller sends them
    /// with one timestamp and the marker bit on the last. The NAL units are
    /// an encoder's (types 1-23): types 24-31 would read as RTP payload
    /// structures on the other side.
    pub fn packetize(&self, access_unit: &[u8], max_payload: usize, out: &mut Vec<Vec<u8>>) {
        for nal in nal_units(access_unit) {
            if nal.len() <= max_payload {
                out.push(nal.to_vec());
                continue;
            }
            let (header, body) = (nal[0], &nal[1..]);
            let chunk = max_payload.saturating_sub(2).max(1);
            let count = body.len().div_ceil(chunk);
            for (i, part) in body.chunks(chunk).enumerate() {
                let start = if i == 0 { 0x80 } else { 0 };
                let end = if i + 1 == count { 0x40 } else { 0 };
                let mut payload = Vec::with_capacity(2 + part.len());
                payload.extend_from_slice(&[header & 0xE0 | FU_A, start | end | header & 0x1F]);
                payload.extend_from_slice(part);
                out.push(payload);
            }
        }
    }
}

/// Turns payloads back into Annex B NAL units.
#[derive(Debug, Clone, Copy, Default)]
pub struct H264Depacketizer;

fn malformed(offset: usize, what: &'static str) -> ParseError {
    ParseError::Malformed { offset, what }
}

impl Depacketizer for H264Depacketizer {
    fn depacketize(&mut self, payload: &[u8], frame: &mut Vec<u8>) -> Result<bool, ParseError> {
        let &header = payload.first().ok_or(ParseError::Truncated {
            offset: 0,
            expected: "H.264 NAL unit header",
        })?;
        match header & 0x1F {
            1..=23 => {
                frame.extend_from_slice(&START_CODE);
                frame.extend_from_slice(payload);
                Ok(true)
            }
            STAP_A => {
                // §5.7.1: 16-bit size, NAL unit, repeated.
                let mut at = 1;
                while at < payload.len() {
                    let size = payload
                        .get(at..at + 2)
                        .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
                        .ok_or(malformed(at, "STAP-A NAL unit size"))?;
                    let nal = payload
                        .get(at + 2..at + 2 + size)
                        .filter(|n| !n.is_empty())
                        .ok_or(malformed(at, "STAP-A NAL unit"))?;
                    frame.extend_from_slice(&START_CODE);
                    frame.extend_from_slice(nal);
                    at += 2 + size;
                }
                Ok(true)
            }
            FU_A => {
                // §5.8: FU indicator, FU header (S, E, R, type), fragment.
                let &fu = payload.get(1).ok_or(malformed(1, "FU-A header"))?;
                let start = fu & 0x80 != 0;
                if start {
                    frame.extend_from_slice(&START_CODE);
                    frame.push(header & 0xE0 | fu & 0x1F);
                }
                frame.extend_from_slice(&payload[2..]);
                Ok(start)
            }
            _ => Err(malformed(
                0,
                "H.264 payload type (mode 1 takes 1-24 and 28)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access_unit(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| START_CODE.iter().chain(n).copied())
            .collect()
    }

    #[test]
    fn splits_annex_b() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals: Vec<_> = nal_units(&stream).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5]]);
        assert!(is_keyframe(&stream));
        assert!(!is_keyframe(&[0, 0, 1, 0x41, 9]));
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn round_trip_with_fragments() {
        let sps = vec![0x67, 0x42, 0xe0, 0x1f];
        let pps = vec![0x68, 0xce, 0x3c, 0x80];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000u32).map(|i| (i % 251) as u8 + 1))
            .collect();
        let au = access_unit(&[sps.clone(), pps.clone(), idr.clone()]);
        let mut payloads = Vec::new();
        H264Packetizer.packetize(&au, 1200, &mut payloads);
        assert_eq!(payloads.len(), 2 + 5);
        assert!(payloads.iter().all(|p| p.len() <= 1200));
        assert_eq!(payloads[2][..2], [0x60 | FU_A, 0x80 | IDR]);
        assert_eq!(payloads[6][1], 0x40 | IDR);
        let mut frame = Vec::new();
        let starts: Vec<bool> = payloads
            .iter()
            .map(|p| H264Depacketizer.depacketize(p, &mut frame).unwrap())
            .collect();
        assert_eq!(frame, au);
        assert_eq!(starts, [true, true, true, false, false, false, false]);
    }

    #[test]
    fn stap_a_as_chromium_sends_sps_and_pps() {
        let stap = [0x78, 0, 3, 0x67, 0x42, 0x1f, 0, 2, 0x68, 0xce];
        let mut frame = Vec::new();
        assert!(H264Depacketizer.depacketize(&stap, &mut frame).unwrap());
        assert_eq!(
            frame,
            access_unit(&[vec![0x67, 0x42, 0x1f], vec![0x68, 0xce]])
        );
        for bad in [
            &[][..],
            &[0x78, 0],
            &[0x78, 0, 5, 1],
            &[0x78, 0, 0],
            &[0x7c],
            &[0x79, 1],
        ] {
            assert!(
                H264Depacketizer.depacketize(bad, &mut Vec::new()).is_err(),
                "{bad:?}"
            );
        }
    }
}
