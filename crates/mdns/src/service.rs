//! The mDNS responder and querier, on the caller's clock.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_net::Transmit;
use tracing::{debug, trace};

use crate::message::{valid_name, Message, Question, Record, RecordData};

/// RFC 6762 §3: the mDNS port.
pub const MDNS_PORT: u16 = 5353;
/// RFC 6762 §3: the IPv4 group.
pub const MDNS_V4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// RFC 6762 §3: the IPv6 group.
pub const MDNS_V6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// RFC 6762 §6.7: legacy unicast answers carry a TTL of at most 10 s.
const LEGACY_TTL: u32 = 10;

/// Settings; `MdnsConfig::default()` suits ICE.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MdnsConfig {
    /// Where queries and multicast answers go: the IPv4 group by default.
    pub group: SocketAddr,
    /// TTL of our address records (RFC 6762 §10: 120 s for host records).
    pub record_ttl: u32,
    /// The first query is resent after this, then at doubling intervals
    /// (RFC 6762 §5.2: at least one second apart, doubling).
    pub first_retry: Duration,
    /// A name not answered within this is reported as not found.
    pub resolve_timeout: Duration,
    /// Most names published at once.
    pub max_names: usize,
    /// Most names being resolved at once.
    pub max_pending: usize,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            group: SocketAddr::new(IpAddr::V4(MDNS_V4_GROUP), MDNS_PORT),
            record_ttl: 120,
            first_retry: Duration::from_secs(1),
            resolve_timeout: Duration::from_secs(5),
            max_names: 1024,
            max_pending: 256,
        }
    }
}

/// What [`Mdns`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsEvent {
    /// A name asked with [`Mdns::resolve`] has this address.
    Resolved {
        /// The name, lower-cased.
        name: String,
        /// Its address.
        address: IpAddr,
    },
    /// Nobody answered for the name within the timeout, or it is not a
    /// `.local` name we can ask for.
    NotFound {
        /// The name, lower-cased.
        name: String,
    },
}

/// Why a name could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Not a `.local` name of valid labels.
    #[error("{0:?} is not a valid .local name")]
    BadName(String),
    /// [`MdnsConfig::max_names`] are published already.
    #[error("already publishing {0} names")]
    TooMany(usize),
}

#[derive(Debug)]
struct Pending {
    next_send: Instant,
    interval: Duration,
    deadline: Instant,
    /// The interfaces to ask on.
    interfaces: Vec<IpAddr>,
}

/// An mDNS endpoint: publishes names and resolves names.
#[derive(Debug)]
pub struct Mdns {
    config: MdnsConfig,
    names: HashMap<String, IpAddr>,
    pending: HashMap<String, Pending>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MdnsEvent>,
}

impl Mdns {
    /// An endpoint with nothing published and nothing asked.
    pub fn new(config: MdnsConfig) -> Self {
        Self {
            config,
            names: HashMap::new(),
            pending: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Publishes `name` for `address` and announces it once (RFC 6762
    /// §8.3). Random UUID names need no probing.
    pub fn register(&mut self, name: &str, address: IpAddr) -> Result<(), RegisterError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !is_local(&name) {
            return Err(RegisterError::BadName(name));
        }
        if !self.names.contains_key(&name) && self.names.len() >= self.config.max_names {
            return Err(RegisterError::TooMany(self.names.len()));
        }
        debug!(%name, %address, "mDNS name published");
        self.names.insert(name.clone(), address);
        self.announce(&name, address, self.config.record_ttl);
        Ok(())
    }

    /// Stops publishing `name`, with a goodbye (TTL 0, RFC 6762 §10.1).
    pub fn unregister(&mut self, name: &str) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(address) = self.names.remove(&name) {
            self.announce(&name, address, 0);
        }
    }

    /// How many names are published.
    pub fn published(&self) -> usize {
        self.names.len()
    }

    /// Asks the links of `interfaces` (local addresses) for `name`'s
    /// address; the answer comes as [`MdnsEvent::Resolved`] or
    /// [`MdnsEvent::NotFound`]. Asking again while a query runs adds
    /// interfaces to it.
    pub fn resolve(&mut self, now: Instant, name: &str, interfaces: &[IpAddr]) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(p) = self.pending.get_mut(&name) {
            let new: Vec<IpAddr> = interfaces
                .iter()
                .filter(|i| !p.interfaces.contains(i))
                .copied()
                .collect();
            p.interfaces.extend(&new);
            self.query(&name, &new);
            return;
        }
        if !is_local(&name)
            || interfaces.is_empty()
            || self.pending.len() >= self.config.max_pending
        {
            self.events.push_back(MdnsEvent::NotFound { name });
            return;
        }
        self.query(&name, interfaces);
        self.pending.insert(
            name,
            Pending {
                next_send: now + self.config.first_retry,
                interval: self.config.first_retry,
                deadline: now + self.config.resolve_timeout,
                interfaces: interfaces.to_vec(),
            },
        );
    }

    /// A packet received on the mDNS socket from `source`.
    pub fn handle_input(&mut self, now: Instant, source: SocketAddr, packet: &[u8]) {
        let _ = now;
        let message = match Message::parse(packet) {
            Ok(m) => m,
            Err(e) => {
                trace!(%source, "dropping mDNS packet: {e}");
                return;
            }
        };
        if message.response {
            self.take_answers(&message);
        } else {
            self.answer(source, &message);
        }
    }

    /// Resends unanswered queries and gives up on those past the timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for (name, p) in &mut self.pending {
            if now >= p.deadline {
                expired.push(name.clone());
            } else if now >= p.next_send {
                p.interval *= 2;
                p.next_send = now + p.interval;
                resend.push((name.clone(), p.interfaces.clone()));
            }
        }
        for (name, interfaces) in resend {
            self.query(&name, &interfaces);
        }
        for name in expired {
            debug!(%name, "mDNS name not found");
            self.pending.remove(&name);
            self.events.push_back(MdnsEvent::NotFound { name });
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        self.events.pop_front()
    }

    /// When [`Mdns::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.next_send.min(p.deadline))
            .min()
    }

    /// Queries for both address families of `name` on each interface:
    /// one question per message, since some responders (Chromium's) read
    /// only single-question queries. Never with the unicast-response bit
    /// (RFC 6762 §5.4 makes it optional): a host often runs several mDNS
    /// stacks on port 5353 (a browser's, avahi, ours), and the kernel
    /// hands a unicast answer to only one of them, while a multicast
    /// answer reaches all.
    fn query(&mut self, name: &str, interfaces: &[IpAddr]) {
        for v6 in [false, true] {
            let contents = Message {
                questions: vec![Question::address(name, v6)],
                ..Message::default()
            }
            .to_bytes();
            let contents = Bytes::from(contents);
            for &interface in interfaces {
                self.push_transmit(Some(interface), self.config.group, contents.clone());
            }
        }
    }

    fn announce(&mut self, name: &str, address: IpAddr, ttl: u32) {
        let message = Message {
            response: true,
            records: vec![Record {
                name: name.to_owned(),
                data: RecordData::Address(address),
                ttl,
            }],
            ..Message::default()
        };
        self.push_transmit(Some(address), self.config.group, message.to_bytes().into());
    }

    /// RFC 6762 §6: answers the questions about names we publish.
    ///
    /// A query from a port other than 5353 is a legacy (one-shot) resolver
    /// (§6.7): it gets a direct answer echoing its id and question. Every
    /// other answer is multicast, even when the query asked for a unicast
    /// one (§5.4 allows it): the asker's host may run several mDNS stacks
    /// on port 5353, and a unicast answer would reach only one of them.
    fn answer(&mut self, source: SocketAddr, query: &Message) {
        let legacy = source.port() != MDNS_PORT;
        let mut records = Vec::new();
        let mut questions = Vec::new();
        let mut interface = None;
        for q in &query.questions {
            let Some(&address) = self.names.get(&q.name) else {
                continue;
            };
            if !q.wants(address) {
                continue;
            }
            interface.get_or_insert(address);
            questions.push(q.clone());
            let ttl = if legacy {
                self.config.record_ttl.min(LEGACY_TTL)
            } else {
                self.config.record_ttl
            };
            let record = Record {
                name: q.name.clone(),
                data: RecordData::Address(address),
                ttl,
            };
            if !records.contains(&record) {
                records.push(record);
            }
        }
        if records.is_empty() {
            return;
        }
        let response = Message {
            id: if legacy { query.id } else { 0 },
            response: true,
            questions: if legacy { questions } else { Vec::new() },
            records,
        };
        trace!(%source, legacy, "answering mDNS query");
        let (interface, destination) = if legacy {
            (None, source)
        } else {
            (interface, self.config.group)
        };
        self.push_transmit(interface, destination, response.to_bytes().into());
    }

    /// Queues a packet. Its source is the local interface (by its address)
    /// a multicast packet must leave by: the address a published name
    /// stands for, or one of those given to [`Mdns::resolve`]. Unicast
    /// answers have none (an unspecified IP): routing decides.
    fn push_transmit(
        &mut self,
        interface: Option<IpAddr>,
        destination: SocketAddr,
        contents: Bytes,
    ) {
        let ip = interface.unwrap_or(match destination {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let source = SocketAddr::new(ip, self.config.group.port());
        self.transmits
            .push_back(Transmit::udp(source, destination, contents));
    }

    fn take_answers(&mut self, response: &Message) {
        for record in &response.records {
            let RecordData::Address(address) = record.data else {
                continue;
            };
            if record.ttl == 0 {
                continue; // a goodbye
            }
            if self.pending.remove(&record.name).is_some() {
                debug!(name = %record.name, %address, "mDNS name resolved");
                self.events.push_back(MdnsEvent::Resolved {
                    name: record.name.clone(),
                    address,
                });
            }
        }
    }
}

/// RFC 6762 §3: names in `.local`, with valid labels.
fn is_local(name: &str) -> bool {
    name.ends_with(".local") && valid_name(name)
}
