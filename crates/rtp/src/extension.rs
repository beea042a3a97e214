//! RTP header extensions (RFC 3550 §5.3.1) in the general mechanism of
//! RFC 8285: the one-byte form (profile 0xBEDE, §4.2) and the two-byte form
//! (profile 0x100X, §4.3).

use crate::{be16, ParseError, WriteError};

/// RFC 8285 §4.2: the "defined by profile" value of the one-byte form.
const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// RFC 8285 §4.3: the two-byte form is 0x100 followed by 4 "appbits".
const TWO_BYTE_PROFILE_MASK: u16 = 0xFFF0;
const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Which form the extension block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionForm {
    /// RFC 8285 §4.2: ids 1..=14, 1..=16 bytes of data.
    OneByte,
    /// RFC 8285 §4.3: ids 1..=255, 0..=255 bytes of data; the low 4 bits
    /// of the profile are application bits.
    TwoByte {
        /// The 4 "appbits".
        app_bits: u8,
    },
    /// A profile RFC 8285 does not define: the data is opaque.
    Other {
        /// The 16-bit "defined by profile" field.
        profile: u16,
    },
}

impl ExtensionForm {
    fn from_profile(profile: u16) -> Self {
        if profile == ONE_BYTE_PROFILE {
            Self::OneByte
        } else if profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
            Self::TwoByte {
                app_bits: (profile & 0xF) as u8,
            }
        } else {
            Self::Other { profile }
        }
    }
}

/// The header extension block of a parsed packet: its form and the
/// elements' bytes (already checked to be well formed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extensions<'a> {
    form: ExtensionForm,
    /// The data after the 4-byte extension header.
    data: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Parses the block whose 4-byte header starts at `offset` of `packet`;
    /// returns it and the offset just past it.
    pub(crate) fn parse(packet: &'a [u8], offset: usize) -> Result<(Self, usize), ParseError> {
        let header = packet
            .get(offset..offset + 4)
            .ok_or(ParseError::Truncated {
                offset,
                expected: "header extension header",
            })?;
        let form = ExtensionForm::from_profile(be16(header, 0));
        let len = usize::from(be16(header, 2)) * 4;
        let start = offset + 4;
        let data = packet
            .get(start..start + len)
            .ok_or(ParseError::Truncated {
                offset: start,
                expected: "header extension data",
            })?;
        let mut at = 0;
        while let Some((_, _, next)) =
            next_element(form, data, at).map_err(|Shift(offset, what)| ParseError::Malformed {
                offset: start + offset,
                what,
            })?
        {
            at = next;
        }
        Ok((Self { form, data }, start + len))
    }

    /// The form of the block.
    pub fn form(&self) -> ExtensionForm {
        self.form
    }

    /// The raw element data (after the 4-byte extension header), for a
    /// profile RFC 8285 does not define.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The elements as (id, data), padding skipped. Empty for a form other
    /// than RFC 8285's.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let (form, data) = (self.form, self.data);
        let mut at = 0;
        std::iter::from_fn(move || {
            // Checked when parsed, so no error can come back here.
            let (id, range, next) = next_element(form, data, at).ok()??;
            at = next;
            Some((id, &data[range]))
        })
    }

    /// The data of the element with this id, if present.
    pub fn get(&self, id: u8) -> Option<&'a [u8]> {
        self.iter().find(|(i, _)| *i == id).map(|(_, d)| d)
    }
}

/// A malformed element: its offset in the extension data and what is wrong.
struct Shift(usize, &'static str);

/// Walks one element from `at`: `Ok(None)` at the end of the elements,
/// otherwise the id, the data's range and where the next element starts.
fn next_element(
    form: ExtensionForm,
    data: &[u8],
    mut at: usize,
) -> Result<Option<(u8, std::ops::Range<usize>, usize)>, Shift> {
    loop {
        let Some(&first) = data.get(at) else {
            return Ok(None);
        };
        // RFC 8285 §4.2, §4.3: a zero byte between elements is padding.
        if first == 0 {
            at += 1;
            continue;
        }
        let (id, len, header) = match form {
            ExtensionForm::OneByte => {
                // RFC 8285 §4.2: id 15 is reserved; parsing stops there.
                if first >> 4 == 15 {
                    return Ok(None);
                }
                (first >> 4, usize::from(first & 0xF) + 1, 1)
            }
            ExtensionForm::TwoByte { .. } => {
                let len = *data
                    .get(at + 1)
                    .ok_or(Shift(at, "two-byte extension length"))?;
                (first, usize::from(len), 2)
            }
            ExtensionForm::Other { .. } => return Ok(None),
        };
        // One-byte form: a zero id with non-zero length is not padding.
        if id == 0 {
            return Err(Shift(at, "extension id 0 with data"));
        }
        let start = at + header;
        if start + len > data.len() {
            return Err(Shift(at, "extension element longer than the block"));
        }
        return Ok(Some((id, start..start + len, start + len)));
    }
}

/// One header extension element to write (RFC 8285 §4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extension {
    /// The id negotiated with `a=extmap` (1..=14 for the one-byte form,
    /// 1..=255 for the two-byte form).
    pub id: u8,
    /// The element's data.
    pub data: Vec<u8>,
}

/// Picks the form for `elements`: one-byte when every element fits it
/// (RFC 8285 §4.2), otherwise two-byte (§4.3, which needs
/// `a=extmap-allow-mixed` in SDP).
fn pick_form(elements: &[Extension]) -> ExtensionForm {
    if elements
        .iter()
        .all(|e| (1..=14).contains(&e.id) && (1..=16).contains(&e.data.len()))
    {
        ExtensionForm::OneByte
    } else {
        ExtensionForm::TwoByte { app_bits: 0 }
    }
}

/// Writes the extension block (header, elements, zero padding to a 32-bit
/// boundary) for `elements`, which must not be empty.
pub(crate) fn write_extensions(
    elements: &[Extension],
    out: &mut Vec<u8>,
) -> Result<(), WriteError> {
    let form = pick_form(elements);
    let start = out.len();
    let profile = match form {
        ExtensionForm::OneByte => ONE_BYTE_PROFILE,
        _ => TWO_BYTE_PROFILE,
    };
    out.extend_from_slice(&profile.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    for e in elements {
        if e.id == 0 {
            return Err(WriteError::Invalid {
                what: "extension id 0",
            });
        }
        let len = u8::try_from(e.data.len()).map_err(|_| WriteError::Invalid {
            what: "extension data over 255 bytes",
        })?;
        match form {
            ExtensionForm::OneByte => out.push(e.id << 4 | (len - 1)),
            _ => out.extend_from_slice(&[e.id, len]),
        }
        out.extend_from_slice(&e.data);
    }
    while (out.len() - start) % 4 != 0 {
        out.push(0);
    }
    let words = u16::try_from((out.len() - start - 4) / 4).map_err(|_| WriteError::Invalid {
        what: "header extension length",
    })?;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(block: &[u8]) -> Result<Extensions<'_>, ParseError> {
        Extensions::parse(block, 0).map(|(e, _)| e)
    }

    #[test]
    fn one_byte_form_with_padding() {
        // id 1 (1 byte: audio level), padding, id 3 (3 bytes: abs-send-time).
        let block = [0xBE, 0xDE, 0, 2, 0x10, 0xAA, 0, 0x32, 1, 2, 3, 0];
        let ext = parse(&block).unwrap();
        assert_eq!(ext.form(), ExtensionForm::OneByte);
        let elements: Vec<_> = ext.iter().collect();
        assert_eq!(elements, vec![(1, &[0xAA][..]), (3, &[1, 2, 3][..])]);
        assert_eq!(ext.get(3), Some(&[1, 2, 3][..]));
    }

    #[test]
    fn one_byte_id_15_stops_parsing() {
        let block = [0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0xF0, 0x55];
        let elements: Vec<_> = parse(&block).unwrap().iter().collect();
        assert_eq!(elements, vec![(1, &[0xAA][..])]);
    }

    #[test]
    fn two_byte_form_allows_empty_and_long_elements() {
        let block = [0x10, 0x07, 0, 2, 20, 0, 1, 3, 9, 8, 7, 0];
        let ext = parse(&block).unwrap();
        assert_eq!(ext.form(), ExtensionForm::TwoByte { app_bits: 7 });
        let elements: Vec<_> = ext.iter().collect();
        assert_eq!(elements, vec![(20, &[][..]), (1, &[9, 8, 7][..])]);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        // Element longer than the block.
        assert!(matches!(
            parse(&[0xBE, 0xDE, 0, 1, 0x13, 1, 2, 3]),
            Err(ParseError::Malformed { offset: 4, .. })
        ));
        // Length says 2 words, 1 present.
        assert!(matches!(
            parse(&[0xBE, 0xDE, 0, 2, 0x10, 1, 0, 0]),
            Err(ParseError::Truncated { offset: 4, .. })
        ));
        // Two-byte form cut after an id.
        assert!(parse(&[0x10, 0x00, 0, 1, 0, 0, 0, 5]).is_err());
        assert!(parse(&[0xBE]).is_err());
    }

    #[test]
    fn other_profile_is_opaque() {
        let ext = parse(&[0x12, 0x34, 0, 1, 1, 2, 3, 4]).unwrap();
        assert_eq!(ext.form(), ExtensionForm::Other { profile: 0x1234 });
        assert_eq!(ext.iter().count(), 0);
        assert_eq!(ext.data(), &[1, 2, 3, 4]);
    }

    #[test]
    fn writer_picks_the_form() {
        let mut out = Vec::new();
        let one = [
            Extension {
                id: 1,
                data: vec![0x7f],
            },
            Extension {
                id: 14,
                data: vec![1; 16],
            },
        ];
        write_extensions(&one, &mut out).unwrap();
        assert_eq!(&out[..2], &[0xBE, 0xDE]);
        assert_eq!(out.len() % 4, 0);
        let parsed: Vec<_> = parse(&out)
            .unwrap()
            .iter()
            .map(|(i, d)| (i, d.to_vec()))
            .collect();
        assert_eq!(parsed, vec![(1, vec![0x7f]), (14, vec![1; 16])]);

        out.clear();
        let two = [
            Extension {
                id: 200,
                data: vec![],
            },
            Extension {
                id: 2,
                data: vec![5; 40],
            },
        ];
        write_extensions(&two, &mut out).unwrap();
        assert_eq!(&out[..2], &[0x10, 0x00]);
        let parsed: Vec<_> = parse(&out)
            .unwrap()
            .iter()
            .map(|(i, d)| (i, d.to_vec()))
            .collect();
        assert_eq!(parsed, vec![(200, vec![]), (2, vec![5; 40])]);

        assert!(write_extensions(
            &[Extension {
                id: 0,
                data: vec![]
            }],
            &mut out
        )
        .is_err());
        assert!(write_extensions(
            &[Extension {
                id: 1,
                data: vec![0; 256]
            }],
            &mut out
        )
        .is_err());
    }
}
