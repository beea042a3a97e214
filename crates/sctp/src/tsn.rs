//! Serial-number arithmetic (RFC 1982) for TSNs and SSNs: 32-bit TSNs are
//! unwrapped into 64-bit counters so comparisons stay simple.

/// Unwraps a 32-bit serial number to the 64-bit value nearest `reference`.
pub(crate) fn unwrap_tsn(tsn: u32, reference: u64) -> u64 {
    let candidate = (reference & !0xFFFF_FFFF) | u64::from(tsn);
    let half = 1u64 << 31;
    if candidate + half < reference && candidate.checked_add(1 << 32).is_some() {
        candidate + (1 << 32)
    } else if candidate > reference + half && candidate >= 1 << 32 {
        candidate - (1 << 32)
    } else {
        candidate
    }
}

/// RFC 1982: `a` is after `b` in 16-bit serial order.
pub(crate) fn ssn_after(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_across_the_32_bit_boundary() {
        let base = 1u64 << 32;
        assert_eq!(unwrap_tsn(5, base + 3), base + 5);
        assert_eq!(unwrap_tsn(u32::MAX, base + 3), base - 1);
        assert_eq!(unwrap_tsn(2, base + u64::from(u32::MAX) - 1), 2 * base + 2);
        assert!(ssn_after(1, 0));
        assert!(ssn_after(0, u16::MAX));
        assert!(!ssn_after(0, 1));
        assert!(!ssn_after(7, 7));
    }
}
