//! Which peers a relay may talk to (RFC 8656 §21.3, "Attacks on internal
//! networks"): by default none on loopback, private, link-local, multicast or
//! unspecified addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address prefix such as `127.0.0.1/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    address: IpAddr,
    prefix: u8,
}

/// Why a prefix did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an address prefix like 127.0.0.1/8 or fd00::/8: {reason}")]
pub struct IpNetParseError {
    input: String,
    reason: &'static str,
}

impl IpNet {
    /// A prefix; `None` when the length is longer than the address.
    pub fn new(address: IpAddr, prefix: u8) -> Option<Self> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { address, prefix })
    }

    /// True when `ip` lies inside the prefix. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is compared as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = IpNetParseError;

    /// `a.b.c.d/len`, `x::y/len`, or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |reason| IpNetParseError {
            input: s.to_owned(),
            reason,
        };
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = address.parse().map_err(|_| error("bad address"))?;
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| error("bad prefix length"))?,
            None if address.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(address, prefix).ok_or_else(|| error("prefix longer than the address"))
    }
}

/// `::ffff:a.b.c.d` becomes `a.b.c.d`, so a mapped address cannot slip past
/// an IPv4 rule.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The relay's rule for peer addresses: what is denied by default, what an
/// operator allows back, and what an operator denies on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Prefixes allowed even though the defaults deny them (tests allow
    /// `127.0.0.1/8`).
    pub allow: Vec<IpNet>,
    /// Prefixes denied on top of the defaults.
    pub deny: Vec<IpNet>,
}

impl PeerPolicy {
    /// True when relaying to `ip` is allowed: an explicit deny wins, then an
    /// explicit allow, then the defaults of [`is_denied_by_default`].
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|n| n.contains(ip)) {
            return false;
        }
        if self.allow.iter().any(|n| n.contains(ip)) {
            return true;
        }
        !is_denied_by_default(ip)
    }
}

/// The addresses a relay refuses unless allow-listed: loopback
/// (127.0.0.0/8, ::1), unspecified (0.0.0.0/8, ::), private (RFC 1918:
/// 10/8, 172.16/12, 192.168/16; unique local fc00::/7), shared (RFC 6598:
/// 100.64/10), link-local (169.254/16, fe80::/10), multicast (224/4, ff00::/8),
/// broadcast and the reserved 240/4, and IPv4 addresses hidden in IPv6
/// (mapped, NAT64 64:ff9b::/96, 6to4 2002::/16 carrying any of the above).
pub fn is_denied_by_default(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_denied(v4),
        IpAddr::V6(v6) => v6_denied(v6),
    }
}

fn v4_denied(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
}

fn v6_denied(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return true;
    }
    // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 old site-local.
    if (s[0] & 0xFE00) == 0xFC00 || (s[0] & 0xFFC0) == 0xFE80 || (s[0] & 0xFFC0) == 0xFEC0 {
        return true;
    }
    // NAT64 well-known prefix: the last 32 bits are an IPv4 address.
    if s[0] == 0x0064 && s[1] == 0xFF9B && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return v4_denied(v4);
    }
    // 6to4: bits 16..48 are an IPv4 address.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return v4_denied(v4);
    }
    // IPv4-compatible (deprecated) ::a.b.c.d.
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_deny_internal_networks() {
        let policy = PeerPolicy::default();
        for denied in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
        ] {
            assert!(!policy.allows(ip(denied)), "{denied} should be denied");
        }
        for allowed in [
            "8.8.8.8",
            "172.32.0.1",
            "192.0.2.1",
            "2001:db8::1",
            "2a00::1",
        ] {
            assert!(policy.allows(ip(allowed)), "{allowed} should be allowed");
        }
    }

    #[test]
    fn allow_list_overrides_and_deny_list_wins() {
        let policy = PeerPolicy {
            allow: vec!["127.0.0.1/8".parse().unwrap(), "::1".parse().unwrap()],
            deny: vec![
                "127.0.0.2/32".parse().unwrap(),
                "8.8.0.0/16".parse().unwrap(),
            ],
        };
        assert!(policy.allows(ip("127.0.0.1")));
        assert!(policy.allows(ip("::ffff:127.0.0.1")));
        assert!(policy.allows(ip("::1")));
        assert!(!policy.allows(ip("127.0.0.2")));
        assert!(!policy.allows(ip("8.8.8.8")));
        assert!(!policy.allows(ip("10.0.0.1")));
    }

    #[test]
    fn prefixes_parse_and_reject_garbage() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.200.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert_eq!(net.to_string(), "10.0.0.0/8");
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("2001:db8::1")));
        for bad in ["10.0.0.0/33", "::/129", "hello/8", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }
}
