//! Parameters of INIT, INIT ACK and RE-CONFIG (RFC 9260 §3.3.2, RFC 3758
//! §3.1, RFC 5061 §4.2.7, RFC 6525 §4).

use bytes::{BufMut, Bytes};

use crate::error::ParseError;

const STATE_COOKIE: u16 = 7;
const SUPPORTED_EXTENSIONS: u16 = 0x8008;
const FORWARD_TSN_SUPPORTED: u16 = 0xC000;
const ZERO_CHECKSUM_ACCEPTABLE: u16 = 0x8001;
const OUTGOING_RESET_REQUEST: u16 = 13;
const INCOMING_RESET_REQUEST: u16 = 14;
const RECONFIG_RESPONSE: u16 = 16;
/// The most parameters one chunk may carry.
const MAX_PARAMS: usize = 64;

/// RFC 9653 §7: the Error Detection Method Identifier of SCTP over DTLS
/// (RFC 8261), whose record authentication makes the CRC32c redundant.
pub const EDMID_DTLS: u32 = 1;

/// An INIT / INIT ACK parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Param {
    /// State Cookie (INIT ACK only).
    StateCookie(Bytes),
    /// Supported Extensions (RFC 5061 §4.2.7): chunk types the sender knows.
    SupportedExtensions(Bytes),
    /// Forward-TSN-Supported (RFC 3758 §3.1).
    ForwardTsnSupported,
    /// Zero Checksum Acceptable (RFC 9653 §4): the sender accepts packets
    /// with a checksum of zero when this alternate error detection method
    /// protects them ([`EDMID_DTLS`] for SCTP over DTLS).
    ZeroChecksumAcceptable {
        /// Error Detection Method Identifier.
        edmid: u32,
    },
    /// Anything else, kept as it came.
    Unknown {
        /// The parameter type.
        param_type: u16,
        /// Its value.
        value: Bytes,
    },
}

/// A RE-CONFIG parameter (RFC 6525 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconfigParam {
    /// Outgoing SSN Reset Request (§4.1): the sender resets these outgoing
    /// streams (all when empty) after `last_tsn`.
    OutgoingReset {
        /// Request sequence number.
        request_seq: u32,
        /// Response sequence number.
        response_seq: u32,
        /// The sender's last assigned TSN.
        last_tsn: u32,
        /// The streams.
        streams: Vec<u16>,
    },
    /// Incoming SSN Reset Request (§4.2).
    IncomingReset {
        /// Request sequence number.
        request_seq: u32,
        /// The streams.
        streams: Vec<u16>,
    },
    /// Re-configuration Response (§4.4).
    Response {
        /// The request answered.
        response_seq: u32,
        /// 0 nothing to do, 1 performed, 2 denied, 3 wrong SSN, 4 in progress, 5 bad sequence, 6 in progress.
        result: u32,
    },
    /// Another parameter, kept raw.
    Unknown {
        /// The parameter type.
        param_type: u16,
        /// Its value.
        value: Bytes,
    },
}

/// Walks TLV parameters in `data[start..end]`.
fn walk(
    data: &Bytes,
    start: usize,
    end: usize,
    mut each: impl FnMut(u16, Bytes) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut offset = start;
    let mut count = 0;
    while offset + 4 <= end {
        let param_type = u16::from_be_bytes([data[offset], data[offset + 1]]);
        let length = usize::from(u16::from_be_bytes([data[offset + 2], data[offset + 3]]));
        if length < 4 || offset + length > end {
            return Err(ParseError::BadParam {
                param_type,
                what: "length below 4 or past the chunk's end",
            });
        }
        count += 1;
        if count > MAX_PARAMS {
            return Err(ParseError::TooMany(MAX_PARAMS));
        }
        each(param_type, data.slice(offset + 4..offset + length))?;
        offset += (length + 3) & !3;
    }
    Ok(())
}

fn write_tlv(out: &mut Vec<u8>, param_type: u16, value: &[u8]) {
    out.put_u16(param_type);
    out.put_u16((4 + value.len()) as u16);
    out.put_slice(value);
    out.resize(out.len() + pad(value.len()), 0);
}

fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

fn tlv_len(value_len: usize) -> usize {
    4 + value_len + pad(value_len)
}

impl Param {
    pub(crate) fn parse_all(
        data: &Bytes,
        start: usize,
        end: usize,
    ) -> Result<Vec<Param>, ParseError> {
        let mut params = Vec::new();
        walk(data, start, end, |param_type, value| {
            params.push(match param_type {
                STATE_COOKIE => Param::StateCookie(value),
                SUPPORTED_EXTENSIONS => Param::SupportedExtensions(value),
                FORWARD_TSN_SUPPORTED => Param::ForwardTsnSupported,
                ZERO_CHECKSUM_ACCEPTABLE if value.len() == 4 => Param::ZeroChecksumAcceptable {
                    edmid: be32(&value, 0),
                },
                _ => Param::Unknown { param_type, value },
            });
            Ok(())
        })?;
        Ok(params)
    }

    pub(crate) fn padded_len(&self) -> usize {
        match self {
            Param::StateCookie(v) | Param::SupportedExtensions(v) => tlv_len(v.len()),
            Param::ForwardTsnSupported => 4,
            Param::ZeroChecksumAcceptable { .. } => 8,
            Param::Unknown { value, .. } => tlv_len(value.len()),
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Param::StateCookie(v) => write_tlv(out, STATE_COOKIE, v),
            Param::SupportedExtensions(v) => write_tlv(out, SUPPORTED_EXTENSIONS, v),
            Param::ForwardTsnSupported => write_tlv(out, FORWARD_TSN_SUPPORTED, &[]),
            Param::ZeroChecksumAcceptable { edmid } => {
                write_tlv(out, ZERO_CHECKSUM_ACCEPTABLE, &edmid.to_be_bytes())
            }
            Param::Unknown { param_type, value } => write_tlv(out, *param_type, value),
        }
    }
}

fn be32(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

fn streams(v: &[u8]) -> Vec<u16> {
    v.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

impl ReconfigParam {
    pub(crate) fn parse_all(
        data: &Bytes,
        start: usize,
        end: usize,
    ) -> Result<Vec<ReconfigParam>, ParseError> {
        let mut params = Vec::new();
        walk(data, start, end, |param_type, v| {
            let short = ParseError::BadParam {
                param_type,
                what: "value too short",
            };
            params.push(match param_type {
                OUTGOING_RESET_REQUEST => {
                    if v.len() < 12 {
                        return Err(short);
                    }
                    ReconfigParam::OutgoingReset {
                        request_seq: be32(&v, 0),
                        response_seq: be32(&v, 4),
                        last_tsn: be32(&v, 8),
                        streams: streams(&v[12..]),
                    }
                }
                INCOMING_RESET_REQUEST => {
                    if v.len() < 4 {
                        return Err(short);
                    }
                    ReconfigParam::IncomingReset {
                        request_seq: be32(&v, 0),
                        streams: streams(&v[4..]),
                    }
                }
                RECONFIG_RESPONSE => {
                    if v.len() < 8 {
                        return Err(short);
                    }
                    ReconfigParam::Response {
                        response_seq: be32(&v, 0),
                        result: be32(&v, 4),
                    }
                }
                _ => ReconfigParam::Unknown {
                    param_type,
                    value: v,
                },
            });
            Ok(())
        })?;
        Ok(params)
    }

    pub(crate) fn padded_len(&self) -> usize {
        match self {
            ReconfigParam::OutgoingReset { streams, .. } => tlv_len(12 + 2 * streams.len()),
            ReconfigParam::IncomingReset { streams, .. } => tlv_len(4 + 2 * streams.len()),
            ReconfigParam::Response { .. } => tlv_len(8),
            ReconfigParam::Unknown { value, .. } => tlv_len(value.len()),
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut value = Vec::new();
        let param_type = match self {
            ReconfigParam::OutgoingReset {
                request_seq,
                response_seq,
                last_tsn,
                streams,
            } => {
                value.put_u32(*request_seq);
                value.put_u32(*response_seq);
                value.put_u32(*last_tsn);
                streams.iter().for_each(|s| value.put_u16(*s));
                OUTGOING_RESET_REQUEST
            }
            ReconfigParam::IncomingReset {
                request_seq,
                streams,
            } => {
                value.put_u32(*request_seq);
                streams.iter().for_each(|s| value.put_u16(*s));
                INCOMING_RESET_REQUEST
            }
            ReconfigParam::Response {
                response_seq,
                result,
            } => {
                value.put_u32(*response_seq);
                value.put_u32(*result);
                RECONFIG_RESPONSE
            }
            ReconfigParam::Unknown {
                param_type,
                value: v,
            } => {
                value.extend_from_slice(v);
                *param_type
            }
        };
        write_tlv(out, param_type, &value);
    }
}
