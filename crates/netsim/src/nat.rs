//! NAT behaviour for UDP (RFC 4787): mapping, filtering, timeouts, port
//! allocation.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::stats::DropCause;

/// How a NAT's mapping or filtering depends on the remote endpoint
/// (RFC 4787 §4.1, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NatBehavior {
    /// Mapping: one external port per internal address and port, whatever
    /// the destination. Filtering: anyone may send to a mapping.
    EndpointIndependent,
    /// Mapping: a new external port per remote IP. Filtering: only IPs the
    /// internal endpoint has sent to may send back.
    AddressDependent,
    /// Mapping: a new external port per remote IP and port ("symmetric").
    /// Filtering: only IP and port pairs the internal endpoint has sent to
    /// may send back.
    AddressAndPortDependent,
}

/// How a NAT picks the external port of a new mapping (RFC 4787 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PortAllocation {
    /// The next free port of the range, in order.
    Sequential,
    /// A random free port of the range (from the network's seeded RNG).
    Random,
    /// The internal port if it is free and in range, else the next free one.
    Preserve,
}

/// A NAT's behaviour. [`NatConfig::new`] gives a common home router:
/// endpoint-independent mapping (RFC 4787 REQ-1) with
/// address-and-port-dependent filtering ("port-restricted cone").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatConfig {
    /// The NAT's public addresses, at most one per family is used: a
    /// mapping takes the first one of the destination's family (paired
    /// pooling, RFC 4787 REQ-2).
    pub public_ips: Vec<IpAddr>,
    /// How mappings are reused across destinations.
    pub mapping: NatBehavior,
    /// Who may send through a mapping.
    pub filtering: NatBehavior,
    /// How long a mapping and its filter entries live after the last
    /// outbound datagram; inbound traffic does not refresh them (RFC 4787
    /// REQ-5, REQ-6: at least 2 minutes, refreshed outbound).
    pub mapping_timeout: Duration,
    /// Whether datagrams from inside to the NAT's own public address are
    /// looped back inside, with the sender's mapped source (REQ-9).
    pub hairpinning: bool,
    /// How external ports are chosen.
    pub port_allocation: PortAllocation,
    /// The external ports the NAT uses.
    pub port_range: RangeInclusive<u16>,
}

impl NatConfig {
    /// Endpoint-independent mapping, address-and-port-dependent filtering,
    /// a 2-minute timeout, no hairpinning, sequential ports 49152–65535.
    pub fn new(public_ip: IpAddr) -> Self {
        NatConfig {
            public_ips: vec![public_ip],
            mapping: NatBehavior::EndpointIndependent,
            filtering: NatBehavior::AddressAndPortDependent,
            mapping_timeout: Duration::from_secs(120),
            hairpinning: false,
            port_allocation: PortAllocation::Sequential,
            port_range: 49152..=65535,
        }
    }

    /// RFC 3489's "full cone": endpoint-independent mapping and filtering.
    pub fn full_cone(public_ip: IpAddr) -> Self {
        NatConfig::new(public_ip).filtering(NatBehavior::EndpointIndependent)
    }

    /// RFC 3489's "restricted cone": endpoint-independent mapping,
    /// address-dependent filtering.
    pub fn restricted_cone(public_ip: IpAddr) -> Self {
        NatConfig::new(public_ip).filtering(NatBehavior::AddressDependent)
    }

    /// RFC 3489's "port-restricted cone": endpoint-independent mapping,
    /// address-and-port-dependent filtering.
    pub fn port_restricted_cone(public_ip: IpAddr) -> Self {
        NatConfig::new(public_ip)
    }

    /// RFC 3489's "symmetric": address-and-port-dependent mapping and
    /// filtering.
    pub fn symmetric(public_ip: IpAddr) -> Self {
        NatConfig::new(public_ip).mapping(NatBehavior::AddressAndPortDependent)
    }

    /// Adds a public address (e.g. an IPv6 one next to the IPv4 one).
    pub fn with_public_ip(mut self, ip: IpAddr) -> Self {
        self.public_ips.push(ip);
        self
    }

    /// Sets the mapping behaviour.
    pub fn mapping(mut self, behavior: NatBehavior) -> Self {
        self.mapping = behavior;
        self
    }

    /// Sets the filtering behaviour.
    pub fn filtering(mut self, behavior: NatBehavior) -> Self {
        self.filtering = behavior;
        self
    }

    /// Sets how long an idle mapping lives.
    pub fn mapping_timeout(mut self, timeout: Duration) -> Self {
        self.mapping_timeout = timeout;
        self
    }

    /// Turns hairpinning on or off.
    pub fn hairpinning(mut self, on: bool) -> Self {
        self.hairpinning = on;
        self
    }

    /// Sets how external ports are chosen.
    pub fn port_allocation(mut self, allocation: PortAllocation) -> Self {
        self.port_allocation = allocation;
        self
    }

    /// Sets the external port range.
    pub fn port_range(mut self, range: RangeInclusive<u16>) -> Self {
        self.port_range = range;
        self
    }
}

/// The part of the remote endpoint a mapping or filter entry depends on.
fn remote_key(behavior: NatBehavior, remote: SocketAddr) -> Option<SocketAddr> {
    match behavior {
        NatBehavior::EndpointIndependent => None,
        NatBehavior::AddressDependent => Some(SocketAddr::new(remote.ip(), 0)),
        NatBehavior::AddressAndPortDependent => Some(remote),
    }
}

#[derive(Debug, Clone)]
struct Mapping {
    internal: SocketAddr,
    /// The key in `Nat::by_internal`.
    remote: Option<SocketAddr>,
    expires: Instant,
    /// Remote endpoints allowed in (filter key, expiry); unused under
    /// endpoint-independent filtering.
    permissions: Vec<(SocketAddr, Instant)>,
}

/// The most filter entries a mapping keeps; the oldest goes first.
const MAX_PERMISSIONS: usize = 1024;

/// A NAT's translation state.
#[derive(Debug)]
pub(crate) struct NatTable {
    config: NatConfig,
    by_external: HashMap<SocketAddr, Mapping>,
    by_internal: HashMap<(SocketAddr, Option<SocketAddr>), SocketAddr>,
    next_port: u16,
}

impl NatTable {
    pub(crate) fn new(config: NatConfig) -> Self {
        assert!(
            !config.public_ips.is_empty(),
            "NatConfig: a NAT needs at least one public IP"
        );
        assert!(
            !config.port_range.is_empty(),
            "NatConfig: the port range {:?} is empty",
            config.port_range
        );
        let next_port = *config.port_range.start();
        NatTable {
            config,
            by_external: HashMap::new(),
            by_internal: HashMap::new(),
            next_port,
        }
    }

    pub(crate) fn config(&self) -> &NatConfig {
        &self.config
    }

    pub(crate) fn is_public_ip(&self, ip: IpAddr) -> bool {
        self.config.public_ips.contains(&ip)
    }

    /// Translates an outbound datagram's source, making or refreshing its
    /// mapping and the filter entry for `remote`.
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        internal: SocketAddr,
        remote: SocketAddr,
        rng: &mut ChaCha8Rng,
    ) -> Result<SocketAddr, DropCause> {
        let key = (internal, remote_key(self.config.mapping, remote));
        let live = self.by_internal.get(&key).copied().filter(|external| {
            self.by_external
                .get(external)
                .is_some_and(|m| m.expires > now)
        });
        let external = match live {
            Some(external) => external,
            None => {
                if let Some(stale) = self.by_internal.remove(&key) {
                    self.by_external.remove(&stale);
                }
                let external = self.allocate(now, internal, remote, rng)?;
                self.by_internal.insert(key, external);
                self.by_external.insert(
                    external,
                    Mapping {
                        internal,
                        remote: key.1,
                        expires: now,
                        permissions: Vec::new(),
                    },
                );
                tracing::debug!(%internal, %external, %remote, "netsim: new NAT mapping");
                external
            }
        };
        let expires = now + self.config.mapping_timeout;
        let filter = remote_key(self.config.filtering, remote);
        if let Some(mapping) = self.by_external.get_mut(&external) {
            mapping.expires = expires;
            if let Some(filter) = filter {
                permit(&mut mapping.permissions, now, filter, expires);
            }
        }
        Ok(external)
    }

    /// Translates an inbound datagram from `remote` to the NAT's
    /// `external` address back to the internal endpoint, if a mapping and
    /// the filter allow it.
    pub(crate) fn inbound(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        external: SocketAddr,
    ) -> Result<SocketAddr, DropCause> {
        let Some(mapping) = self.by_external.get(&external) else {
            return Err(DropCause::NatNoMapping);
        };
        if mapping.expires <= now {
            self.remove(external);
            return Err(DropCause::NatNoMapping);
        }
        let allowed = match remote_key(self.config.filtering, remote) {
            None => true,
            Some(filter) => mapping
                .permissions
                .iter()
                .any(|&(key, expires)| key == filter && expires > now),
        };
        if allowed {
            Ok(mapping.internal)
        } else {
            Err(DropCause::NatFiltering)
        }
    }

    fn remove(&mut self, external: SocketAddr) {
        if let Some(mapping) = self.by_external.remove(&external) {
            self.by_internal.remove(&(mapping.internal, mapping.remote));
        }
    }

    /// Picks a free external address for a new mapping, reclaiming expired
    /// ones.
    fn allocate(
        &mut self,
        now: Instant,
        internal: SocketAddr,
        remote: SocketAddr,
        rng: &mut ChaCha8Rng,
    ) -> Result<SocketAddr, DropCause> {
        let ip = self
            .config
            .public_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() == remote.is_ipv4())
            .ok_or(DropCause::NatExhausted)?;
        let (low, high) = (
            *self.config.port_range.start(),
            *self.config.port_range.end(),
        );
        let size = u32::from(high - low) + 1;
        let first = match self.config.port_allocation {
            PortAllocation::Sequential => self.next_port,
            PortAllocation::Random => rng.random_range(low..=high),
            PortAllocation::Preserve => {
                if self.config.port_range.contains(&internal.port()) {
                    internal.port()
                } else {
                    self.next_port
                }
            }
        };
        // Walk the range once from `first`; the first free port wins.
        for i in 0..size {
            let offset = (u32::from(first - low) + i) % size;
            let port = low + u16::try_from(offset).unwrap_or(0);
            let candidate = SocketAddr::new(ip, port);
            let free = match self.by_external.get(&candidate) {
                None => true,
                Some(m) if m.expires <= now => {
                    self.remove(candidate);
                    true
                }
                Some(_) => false,
            };
            if free {
                if self.config.port_allocation != PortAllocation::Random {
                    self.next_port = if port == high { low } else { port + 1 };
                }
                return Ok(candidate);
            }
        }
        Err(DropCause::NatExhausted)
    }
}

/// Adds or refreshes a filter entry.
fn permit(
    permissions: &mut Vec<(SocketAddr, Instant)>,
    now: Instant,
    key: SocketAddr,
    expires: Instant,
) {
    if let Some(entry) = permissions.iter_mut().find(|(k, _)| *k == key) {
        entry.1 = expires;
        return;
    }
    permissions.retain(|&(_, e)| e > now);
    if permissions.len() >= MAX_PERMISSIONS {
        if let Some(oldest) = permissions
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, e))| *e)
            .map(|(i, _)| i)
        {
            permissions.swap_remove(oldest);
        }
    }
    permissions.push((key, expires));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sequential_ports_wrap_and_skip_live_mappings() {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let config = NatConfig::symmetric("203.0.113.1".parse().unwrap()).port_range(100..=101);
        let mut nat = NatTable::new(config);
        let inside = addr("10.0.0.2:5000");
        let a = nat
            .outbound(now, inside, addr("192.0.2.1:1"), &mut rng)
            .unwrap();
        let b = nat
            .outbound(now, inside, addr("192.0.2.1:2"), &mut rng)
            .unwrap();
        assert_eq!((a.port(), b.port()), (100, 101));
        assert_eq!(
            nat.outbound(now, inside, addr("192.0.2.1:3"), &mut rng),
            Err(DropCause::NatExhausted)
        );
        // Expired mappings are reclaimed.
        let later = now + Duration::from_secs(121);
        let c = nat
            .outbound(later, inside, addr("192.0.2.1:3"), &mut rng)
            .unwrap();
        assert_eq!(c.port(), 100);
        assert_eq!(nat.inbound(later, addr("192.0.2.1:3"), c), Ok(inside));
        assert_eq!(
            nat.inbound(later, addr("192.0.2.1:1"), b),
            Err(DropCause::NatNoMapping)
        );
    }

    #[test]
    fn preserve_keeps_the_internal_port_when_free() {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let config = NatConfig::new("203.0.113.1".parse().unwrap())
            .port_allocation(PortAllocation::Preserve);
        let mut nat = NatTable::new(config);
        let a = nat
            .outbound(now, addr("10.0.0.2:50000"), addr("192.0.2.1:1"), &mut rng)
            .unwrap();
        let b = nat
            .outbound(now, addr("10.0.0.3:50000"), addr("192.0.2.1:1"), &mut rng)
            .unwrap();
        assert_eq!(a.port(), 50000);
        assert_ne!(b.port(), 50000);
    }
}
