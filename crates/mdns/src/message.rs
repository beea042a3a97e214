//! DNS messages as mDNS uses them (RFC 1035 §4, RFC 6762 §18): header,
//! questions and answers; names with compression on decode.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record types we read and write (RFC 1035 §3.2.2, RFC 3596 §2.1).
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_ANY: u16 = 255;
/// Class IN (RFC 1035 §3.2.4).
const CLASS_IN: u16 = 1;
/// RFC 6762 §5.4 / §10.2: the top bit of a question's class asks for a
/// unicast answer; of a record's class, flushes caches.
const CLASS_TOP_BIT: u16 = 0x8000;
/// RFC 1035 §4.1.1: QR (response) and AA (authoritative) flags.
const FLAG_RESPONSE: u16 = 0x8000;
const FLAG_AUTHORITATIVE: u16 = 0x0400;

/// RFC 6762 §17: a message may be up to 9000 bytes.
pub const MAX_MESSAGE: usize = 9000;
/// Most questions plus records read from one message.
const MAX_ENTRIES: usize = 64;
/// RFC 1035 §2.3.4: names are at most 255 bytes, labels 63.
const MAX_NAME: usize = 255;
/// Compression pointers followed in one name before giving up (loops).
const MAX_JUMPS: usize = 16;

/// A question: the name and whether it asks for `A`, `AAAA` or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name, lower-cased, without the final dot.
    pub name: String,
    /// The type asked for (1 = A, 28 = AAAA, 255 = ANY; others kept).
    pub record_type: u16,
    /// RFC 6762 §5.4: the asker wants a unicast answer.
    pub unicast_response: bool,
}

/// The data of a record we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// An address (`A` or `AAAA`).
    Address(IpAddr),
    /// Any other type, with its raw data.
    Other {
        /// The record type.
        record_type: u16,
        /// The raw RDATA.
        data: Vec<u8>,
    },
}

/// A resource record of the answer, authority or additional section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name, lower-cased, without the final dot.
    pub name: String,
    /// What it holds.
    pub data: RecordData,
    /// Seconds the record may be cached.
    pub ttl: u32,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The query identifier (0 in multicast mDNS, RFC 6762 §18.1).
    pub id: u16,
    /// A response (QR set) rather than a query.
    pub response: bool,
    /// The questions.
    pub questions: Vec<Question>,
    /// The records of every section, in order.
    pub records: Vec<Record>,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Shorter than its header or its own counts say.
    #[error("message truncated at byte {0}")]
    Truncated(usize),
    /// Larger than RFC 6762 §17 allows.
    #[error("message of {0} bytes exceeds 9000")]
    TooLarge(usize),
    /// More questions and records than we read.
    #[error("{0} questions and records, more than 64")]
    TooManyEntries(usize),
    /// A name that is too long, loops or uses a reserved label type.
    #[error("bad name at byte {0}")]
    BadName(usize),
    /// An `A` or `AAAA` record whose data has the wrong length.
    #[error("address record of {0} bytes")]
    BadAddress(usize),
}

impl Message {
    /// Parses a message (RFC 1035 §4.1).
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(MessageError::TooLarge(bytes.len()));
        }
        let header = bytes
            .get(..12)
            .ok_or(MessageError::Truncated(bytes.len()))?;
        let be16 = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let (id, flags) = (be16(0), be16(2));
        let questions = usize::from(be16(4));
        let records = usize::from(be16(6)) + usize::from(be16(8)) + usize::from(be16(10));
        if questions + records > MAX_ENTRIES {
            return Err(MessageError::TooManyEntries(questions + records));
        }
        let mut reader = Reader { bytes, at: 12 };
        let mut message = Message {
            id,
            response: flags & FLAG_RESPONSE != 0,
            questions: Vec::with_capacity(questions),
            records: Vec::with_capacity(records),
        };
        for _ in 0..questions {
            let name = reader.name()?;
            let record_type = reader.u16()?;
            let class = reader.u16()?;
            message.questions.push(Question {
                name,
                record_type,
                unicast_response: class & CLASS_TOP_BIT != 0,
            });
        }
        for _ in 0..records {
            let name = reader.name()?;
            let record_type = reader.u16()?;
            let _class = reader.u16()?;
            let ttl = reader.u32()?;
            let len = usize::from(reader.u16()?);
            let data = reader.take(len)?;
            let data = match record_type {
                TYPE_A => RecordData::Address(IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(data).map_err(|_| MessageError::BadAddress(len))?,
                ))),
                TYPE_AAAA => RecordData::Address(IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(data).map_err(|_| MessageError::BadAddress(len))?,
                ))),
                _ => RecordData::Other {
                    record_type,
                    data: data.to_vec(),
                },
            };
            message.records.push(Record { name, data, ttl });
        }
        Ok(message)
    }

    /// The message on the wire (names uncompressed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.id.to_be_bytes());
        let flags = if self.response {
            FLAG_RESPONSE | FLAG_AUTHORITATIVE
        } else {
            0
        };
        out.extend_from_slice(&flags.to_be_bytes());
        // Callers build messages of a few entries.
        out.extend_from_slice(&(self.questions.len() as u16).to_be_bytes());
        out.extend_from_slice(&(self.records.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        for q in &self.questions {
            write_name(&mut out, &q.name);
            out.extend_from_slice(&q.record_type.to_be_bytes());
            let class = CLASS_IN | if q.unicast_response { CLASS_TOP_BIT } else { 0 };
            out.extend_from_slice(&class.to_be_bytes());
        }
        for r in &self.records {
            write_name(&mut out, &r.name);
            let (record_type, data): (u16, Vec<u8>) = match &r.data {
                RecordData::Address(IpAddr::V4(a)) => (TYPE_A, a.octets().to_vec()),
                RecordData::Address(IpAddr::V6(a)) => (TYPE_AAAA, a.octets().to_vec()),
                RecordData::Other { record_type, data } => (*record_type, data.clone()),
            };
            out.extend_from_slice(&record_type.to_be_bytes());
            // RFC 6762 §10.2: our names are unique, so caches may flush.
            out.extend_from_slice(&(CLASS_IN | CLASS_TOP_BIT).to_be_bytes());
            out.extend_from_slice(&r.ttl.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
        out
    }
}

impl Question {
    /// Whether an answer of this address family satisfies the question.
    pub fn wants(&self, address: IpAddr) -> bool {
        match self.record_type {
            TYPE_ANY => true,
            TYPE_A => address.is_ipv4(),
            TYPE_AAAA => address.is_ipv6(),
            _ => false,
        }
    }

    /// An `A` question (or `AAAA`, `v6`) for `name`.
    pub fn address(name: &str, v6: bool) -> Self {
        Self {
            name: name.to_ascii_lowercase(),
            record_type: if v6 { TYPE_AAAA } else { TYPE_A },
            unicast_response: false,
        }
    }
}

/// Labels of `name` (dot-separated, no final dot); the caller validated
/// label lengths ([`valid_name`]).
fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// Whether `name` can be written: labels of 1..=63 bytes, at most 255 in all.
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() < MAX_NAME && name.split('.').all(|l| (1..=63).contains(&l.len()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let slice = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(MessageError::Truncated(self.at))?;
        self.at += n;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MessageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A name (RFC 1035 §4.1.4 compression), lower-cased.
    fn name(&mut self) -> Result<String, MessageError> {
        let mut name = String::new();
        let mut at = self.at;
        let mut jumps = 0;
        let mut end = None;
        loop {
            let &len = self.bytes.get(at).ok_or(MessageError::Truncated(at))?;
            match len {
                0 => {
                    at += 1;
                    break;
                }
                1..=63 => {
                    let label = self
                        .bytes
                        .get(at + 1..at + 1 + usize::from(len))
                        .ok_or(MessageError::Truncated(at))?;
                    if !name.is_empty() {
                        name.push('.');
                    }
                    name.extend(label.iter().map(|&b| char::from(b.to_ascii_lowercase())));
                    if name.len() >= MAX_NAME {
                        return Err(MessageError::BadName(at));
                    }
                    at += 1 + usize::from(len);
                }
                0xc0..=0xff => {
                    let &low = self.bytes.get(at + 1).ok_or(MessageError::Truncated(at))?;
                    jumps += 1;
                    if jumps > MAX_JUMPS {
                        return Err(MessageError::BadName(at));
                    }
                    end.get_or_insert(at + 2);
                    at = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                }
                _ => return Err(MessageError::BadName(at)),
            }
        }
        self.at = end.unwrap_or(at);
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_round_trips() {
        let message = Message {
            id: 0,
            response: true,
            questions: vec![],
            records: vec![
                Record {
                    name: "1f4712db-ea17-4bcf-a596-105139dfd8bf.local".into(),
                    data: RecordData::Address("192.0.2.7".parse().unwrap()),
                    ttl: 120,
                },
                Record {
                    name: "x.local".into(),
                    data: RecordData::Address("2001:db8::1".parse().unwrap()),
                    ttl: 10,
                },
            ],
        };
        assert_eq!(Message::parse(&message.to_bytes()).unwrap(), message);
    }

    #[test]
    fn compressed_names_are_followed_and_loops_refused() {
        // Header: 1 question, 1 answer. Question "a.local"; the answer's
        // name is a pointer to byte 12, lower-cased on the way.
        let mut m = vec![0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'A', 5, b'l', b'o', b'c', b'a', b'l', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4, 10, 0, 0, 1]);
        let parsed = Message::parse(&m).unwrap();
        assert_eq!(parsed.questions[0].name, "a.local");
        assert_eq!(parsed.records[0].name, "a.local");
        assert_eq!(
            parsed.records[0].data,
            RecordData::Address("10.0.0.1".parse().unwrap())
        );
        // A pointer to itself.
        let mut looped = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(matches!(
            Message::parse(&looped),
            Err(MessageError::BadName(_))
        ));
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(Message::parse(&[0; 5]), Err(MessageError::Truncated(5)));
        assert_eq!(
            Message::parse(&[0; 9001]),
            Err(MessageError::TooLarge(9001))
        );
        let many = [0, 0, 0, 0, 0, 65, 0, 0, 0, 0, 0, 0];
        assert_eq!(Message::parse(&many), Err(MessageError::TooManyEntries(65)));
        let mut bad_a = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        bad_a.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]);
        assert_eq!(Message::parse(&bad_a), Err(MessageError::BadAddress(3)));
    }
}
