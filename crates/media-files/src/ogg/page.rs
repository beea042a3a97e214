//! Ogg pages and the packets they carry (RFC 3533).

use std::io::{self, Read, Write};

use super::OggError;
use crate::read_exact_bounded;

/// RFC 3533 §6: every page starts with the capture pattern.
const CAPTURE_PATTERN: &[u8; 4] = b"OggS";
/// Bytes before the segment table.
const HEADER_LEN: usize = 27;
/// Byte offset of the CRC in a page.
const CRC_OFFSET: usize = 22;
/// RFC 3533 §6: at most 255 lacing values on a page.
const MAX_SEGMENTS: usize = 255;

/// RFC 3533 §6, header_type_flag.
const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;

/// RFC 3533 §6: the granule position of a page on which no packet ends.
pub const NO_GRANULE: i64 = -1;

/// RFC 3533 §6: CRC-32 with polynomial 0x04c11db7, initial value 0, no
/// reflection and no final XOR, over the page with its CRC field zeroed.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

fn crc_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize];
    }
    crc
}

/// One page as read: its header fields and where its packets end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggPage {
    /// The page continues a packet begun on an earlier page.
    pub continued: bool,
    /// First page of its logical stream.
    pub bos: bool,
    /// Last page of its logical stream.
    pub eos: bool,
    /// Codec-defined position of the last packet ending on this page, or
    /// [`NO_GRANULE`].
    pub granule_position: i64,
    /// Logical stream.
    pub serial: u32,
    /// Page number within the logical stream.
    pub sequence: u32,
    /// The lacing values.
    pub segments: Vec<u8>,
    /// The page's body.
    pub body: Vec<u8>,
}

/// Reads pages from a byte stream, checking each page's CRC.
#[derive(Debug)]
pub struct OggPageReader<R> {
    reader: R,
    pages_read: u64,
}

impl<R: Read> OggPageReader<R> {
    /// Reads pages from `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            pages_read: 0,
        }
    }

    /// The next page, or `None` at the end of the stream. A page is at most
    /// 65,307 bytes by construction, so nothing here allocates more.
    pub fn next_page(&mut self) -> Result<Option<OggPage>, OggError> {
        let page = self.pages_read;
        let mut header = Vec::with_capacity(HEADER_LEN + MAX_SEGMENTS);
        if !read_exact_bounded(&mut self.reader, HEADER_LEN, &mut header)? {
            if header.is_empty() {
                return Ok(None);
            }
            return Err(OggError::Truncated {
                what: "a page header",
                page,
            });
        }
        if &header[0..4] != CAPTURE_PATTERN {
            return Err(OggError::BadCapturePattern { page });
        }
        if header[4] != 0 {
            return Err(OggError::UnsupportedVersion {
                page,
                version: header[4],
            });
        }
        let flags = header[5];
        let mut granule = [0u8; 8];
        granule.copy_from_slice(&header[6..14]);
        let le_u32 = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let serial = le_u32(14);
        let sequence = le_u32(18);
        let crc = le_u32(CRC_OFFSET);
        let segment_count = usize::from(header[26]);
        let mut segments = Vec::new();
        if !read_exact_bounded(&mut self.reader, segment_count, &mut segments)? {
            return Err(OggError::Truncated {
                what: "a segment table",
                page,
            });
        }
        let body_len = segments.iter().map(|&s| usize::from(s)).sum();
        let mut body = Vec::new();
        if !read_exact_bounded(&mut self.reader, body_len, &mut body)? {
            return Err(OggError::Truncated {
                what: "a page body",
                page,
            });
        }
        header[CRC_OFFSET..CRC_OFFSET + 4].fill(0);
        let computed = crc_update(crc_update(crc_update(0, &header), &segments), &body);
        if computed != crc {
            return Err(OggError::BadCrc {
                page,
                expected: crc,
                computed,
            });
        }
        self.pages_read += 1;
        Ok(Some(OggPage {
            continued: flags & FLAG_CONTINUED != 0,
            bos: flags & FLAG_BOS != 0,
            eos: flags & FLAG_EOS != 0,
            granule_position: i64::from_le_bytes(granule),
            serial,
            sequence,
            segments,
            body,
        }))
    }
}

/// A packet reassembled from pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggPacket {
    /// The packet's bytes.
    pub data: Vec<u8>,
    /// The page's granule position when this packet is the last to end on
    /// its page, else `None` (RFC 3533 §6: the granule position belongs to
    /// the last packet that ends on a page).
    pub granule_position: Option<i64>,
    /// The packet ends on the last page of its stream.
    pub eos: bool,
}

/// Reassembles the packets of one logical stream (the first one that
/// starts), skipping pages of other streams.
#[derive(Debug)]
pub struct OggPacketReader<R> {
    pages: OggPageReader<R>,
    serial: Option<u32>,
    max_packet_len: usize,
    /// The current page and the next lacing value to read in it.
    page: Option<(OggPage, usize, usize)>,
    partial: Vec<u8>,
    /// `partial` holds the start of a packet that a later page continues.
    in_packet: bool,
}

impl<R: Read> OggPacketReader<R> {
    /// Packets of at most `max_packet_len` bytes from `reader`.
    pub fn new(reader: R, max_packet_len: usize) -> Self {
        Self {
            pages: OggPageReader::new(reader),
            serial: None,
            max_packet_len,
            page: None,
            partial: Vec::new(),
            in_packet: false,
        }
    }

    /// The serial number of the stream read, once its first page is read.
    pub fn serial(&self) -> Option<u32> {
        self.serial
    }

    /// The next whole packet, or `None` at the end of the stream. A packet
    /// cut by the end of the file is dropped, as RFC 3533 §6 asks.
    pub fn next_packet(&mut self) -> Result<Option<OggPacket>, OggError> {
        loop {
            let Some((page, segment, offset)) = &mut self.page else {
                let Some(page) = self.next_page_of_stream()? else {
                    return Ok(None);
                };
                let (mut segment, mut offset) = (0, 0);
                if !page.continued {
                    // A packet left unfinished by the previous page is lost.
                    self.partial.clear();
                    self.in_packet = false;
                } else if !self.in_packet {
                    // The page continues a packet whose start we never
                    // saw (a lost page, or a file cut mid-stream): skip
                    // its tail.
                    while let Some(&len) = page.segments.get(segment) {
                        segment += 1;
                        offset += usize::from(len);
                        if len < 255 {
                            break;
                        }
                    }
                }
                self.page = Some((page, segment, offset));
                continue;
            };
            while *segment < page.segments.len() {
                let len = usize::from(page.segments[*segment]);
                let last_of_page = *segment + 1 == page.segments.len();
                if self.partial.len() + len > self.max_packet_len {
                    return Err(OggError::PacketTooLarge {
                        limit: self.max_packet_len,
                    });
                }
                self.partial
                    .extend_from_slice(&page.body[*offset..*offset + len]);
                *segment += 1;
                *offset += len;
                self.in_packet = len == 255;
                if len < 255 {
                    let ends_last = !page.segments[*segment..].iter().any(|&s| s < 255);
                    let packet = OggPacket {
                        data: std::mem::take(&mut self.partial),
                        granule_position: ends_last.then_some(page.granule_position),
                        eos: page.eos && last_of_page,
                    };
                    return Ok(Some(packet));
                }
            }
            self.page = None;
        }
    }

    fn next_page_of_stream(&mut self) -> Result<Option<OggPage>, OggError> {
        while let Some(page) = self.pages.next_page()? {
            match self.serial {
                None if page.bos => {
                    self.serial = Some(page.serial);
                    return Ok(Some(page));
                }
                None => return Err(OggError::MissingBos),
                Some(serial) if serial == page.serial => return Ok(Some(page)),
                Some(_) => {}
            }
        }
        Ok(None)
    }
}

/// Writes the packets of one logical stream into pages.
#[derive(Debug)]
pub struct OggStreamWriter<W> {
    writer: W,
    serial: u32,
    sequence: u32,
    segments: Vec<u8>,
    body: Vec<u8>,
    /// Granule position of the last packet that ended in the pending page.
    granule_position: i64,
    /// The pending page's first segment continues a packet.
    continued: bool,
    /// No page written yet: the next is the beginning of the stream.
    first_page: bool,
}

impl<W: Write> OggStreamWriter<W> {
    /// A stream numbered `serial`.
    pub fn new(writer: W, serial: u32) -> Self {
        Self {
            writer,
            serial,
            sequence: 0,
            segments: Vec::with_capacity(MAX_SEGMENTS),
            body: Vec::new(),
            granule_position: NO_GRANULE,
            continued: false,
            first_page: true,
        }
    }

    /// Adds `packet` ending at `granule_position` to the pending page,
    /// writing out full pages as it goes (a packet of 255 bytes or more
    /// spans lacing values, and pages if need be).
    pub fn write_packet(&mut self, packet: &[u8], granule_position: i64) -> io::Result<()> {
        let mut rest = packet;
        loop {
            if self.segments.len() == MAX_SEGMENTS {
                let continues = self.segments.last() == Some(&255);
                self.write_page(false)?;
                self.continued = continues;
            }
            let take = rest.len().min(255);
            self.segments.push(take as u8);
            self.body.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if take < 255 {
                self.granule_position = granule_position;
                return Ok(());
            }
        }
    }

    /// Packets waiting in the pending page.
    pub fn pending_segments(&self) -> usize {
        self.segments.len()
    }

    /// Writes the pending page (if any packet is in it, or `eos` asks for a
    /// last page).
    pub fn flush_page(&mut self, eos: bool) -> io::Result<()> {
        if self.segments.is_empty() && !eos {
            return Ok(());
        }
        self.write_page(eos)?;
        self.continued = false;
        Ok(())
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The underlying writer; pending packets are dropped.
    pub fn into_inner(self) -> W {
        self.writer
    }

    fn write_page(&mut self, eos: bool) -> io::Result<()> {
        let mut flags = 0;
        if self.continued {
            flags |= FLAG_CONTINUED;
        }
        if self.first_page {
            flags |= FLAG_BOS;
        }
        if eos {
            flags |= FLAG_EOS;
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(CAPTURE_PATTERN);
        header[5] = flags;
        header[6..14].copy_from_slice(&self.granule_position.to_le_bytes());
        header[14..18].copy_from_slice(&self.serial.to_le_bytes());
        header[18..22].copy_from_slice(&self.sequence.to_le_bytes());
        header[26] = self.segments.len() as u8;
        let crc = crc_update(
            crc_update(crc_update(0, &header), &self.segments),
            &self.body,
        );
        header[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        self.writer.write_all(&header)?;
        self.writer.write_all(&self.segments)?;
        self.writer.write_all(&self.body)?;
        self.segments.clear();
        self.body.clear();
        self.granule_position = NO_GRANULE;
        self.sequence = self.sequence.wrapping_add(1);
        self.first_page = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // The CRC of "123456789" under Ogg's parameters (CRC-32/MPEG-2
        // without its initial and final inversion): the standard check value.
        assert_eq!(crc_update(0, b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn packets_of_any_size_survive_pages() {
        let sizes = [0usize, 1, 254, 255, 256, 510, 70_000, 3, 255 * 255, 17];
        let packets: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b + i) as u8).collect())
            .collect();
        let mut w = OggStreamWriter::new(Vec::new(), 0x1234);
        for (i, p) in packets.iter().enumerate() {
            w.write_packet(p, i as i64 * 10).unwrap();
            if i % 3 == 2 {
                w.flush_page(false).unwrap();
            }
        }
        w.flush_page(true).unwrap();
        let bytes = w.into_inner();
        let mut r = OggPacketReader::new(&bytes[..], 1 << 20);
        for (i, p) in packets.iter().enumerate() {
            let got = r.next_packet().unwrap().unwrap();
            assert_eq!(got.data, *p, "packet {i}");
            if let Some(g) = got.granule_position {
                assert_eq!(g, i as i64 * 10);
            }
        }
        assert!(r.next_packet().unwrap().is_none());
        assert_eq!(r.serial(), Some(0x1234));
    }

    #[test]
    fn a_page_that_continues_an_unseen_packet_is_skipped_to_the_next_packet() {
        let mut w = OggStreamWriter::new(Vec::new(), 3);
        w.write_packet(&[0], 0).unwrap();
        w.flush_page(false).unwrap();
        let first_page = w.get_mut().len();
        // 300 x 255 bytes: more lacing values than a page holds.
        w.write_packet(&[7; 300 * 255], 1).unwrap();
        w.write_packet(b"next", 2).unwrap();
        w.flush_page(true).unwrap();
        let bytes = w.into_inner();
        // Drop the page that starts the long packet.
        let second_page = OggPageReader::new(&bytes[first_page..])
            .next_page()
            .unwrap()
            .unwrap();
        let second_len = 27 + second_page.segments.len() + second_page.body.len();
        assert!(!second_page.continued && second_page.segments.len() == 255);
        let mut cut = bytes[..first_page].to_vec();
        cut.extend_from_slice(&bytes[first_page + second_len..]);
        let mut r = OggPacketReader::new(&cut[..], 1 << 20);
        assert_eq!(r.next_packet().unwrap().unwrap().data, [0]);
        assert_eq!(r.next_packet().unwrap().unwrap().data, b"next");
        assert!(r.next_packet().unwrap().is_none());
    }

    #[test]
    fn corrupt_pages_give_typed_errors() {
        let mut w = OggStreamWriter::new(Vec::new(), 7);
        w.write_packet(b"hello", 0).unwrap();
        w.flush_page(true).unwrap();
        let good = w.into_inner();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            OggPageReader::new(&bad[..]).next_page(),
            Err(OggError::BadCrc { page: 0, .. })
        ));
        assert!(matches!(
            OggPageReader::new(&good[..good.len() - 1]).next_page(),
            Err(OggError::Truncated {
                what: "a page body",
                ..
            })
        ));
        assert!(matches!(
            OggPageReader::new(&b"RIFF and more bytes than a page header"[..]).next_page(),
            Err(OggError::BadCapturePattern { page: 0 })
        ));
        assert!(matches!(
            OggPacketReader::new(&good[..], 4).next_packet(),
            Err(OggError::PacketTooLarge { limit: 4 })
        ));
    }
}
