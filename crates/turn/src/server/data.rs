//! Relayed data (RFC 8656 §11, §12): Send indications and ChannelData from
//! clients to peers, Data indications and ChannelData from peers to clients.

use super::*;

impl Server {
    /// Handles one datagram that `peer` sent to the relayed address `relay`
    /// (RFC 8656 §11.3, §12.6).
    pub fn handle_peer(&mut self, now: Instant, relay: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let Some(&tuple) = self.by_relay.get(&relay) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        let mut out = self.buffer();
        let Some(allocation) = self.allocations.get_mut(&tuple) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        if !allocation.is_live(now) || !allocation.permits(peer.ip(), now) {
            self.metrics.dropped_no_route += 1;
            return;
        }
        if !allocation.take_bandwidth(now, data.len()) {
            self.metrics.dropped_bandwidth += 1;
            return;
        }
        if let Some(channel) = allocation.channel_for(peer, now) {
            if !ChannelData::encode(channel, data, tuple.transport.is_stream(), &mut out) {
                self.metrics.dropped_malformed += 1;
                return;
            }
        } else {
            let transaction = self.next_transaction_id();
            let mut enc =
                MessageEncoder::new(&mut out, Class::Indication, Method::DATA, transaction);
            let ok = enc.add(&XorPeerAddress(peer)).is_ok() && enc.add(&Data(data)).is_ok();
            if !ok {
                self.metrics.dropped_malformed += 1;
                return;
            }
            enc.finish();
        }
        self.metrics.packets_to_clients += 1;
        self.metrics.bytes_to_clients += data.len() as u64;
        self.send_to_client(tuple, out);
    }

    pub(super) fn channel_data_from_client(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        datagram: &[u8],
    ) {
        let message = match ChannelData::decode(datagram) {
            Ok(m) => m,
            Err(e) => {
                debug!(client = %tuple.client, "dropped ChannelData: {e}");
                self.metrics.dropped_malformed += 1;
                return;
            }
        };
        let Some(allocation) = self.allocations.get_mut(&tuple) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        let peer = match allocation.peer_for(message.channel, now) {
            Some(peer) if allocation.is_live(now) && allocation.permits(peer.ip(), now) => peer,
            _ => {
                self.metrics.dropped_no_route += 1;
                return;
            }
        };
        let relay = allocation.relay;
        self.relay_to_peer(now, tuple, relay, peer, message.data);
    }

    pub(super) fn send_indication(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) {
        let (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(data)))) =
            (message.get::<XorPeerAddress>(), message.get::<Data>())
        else {
            self.metrics.dropped_malformed += 1;
            return;
        };
        let Some(allocation) = self.allocations.get(&tuple) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        if !allocation.is_live(now)
            || allocation.tcp
            || peer.is_ipv4() != allocation.relay.is_ipv4()
            || !allocation.permits(peer.ip(), now)
        {
            self.metrics.dropped_no_route += 1;
            return;
        }
        // RFC 8656 §11.2: DONT-FRAGMENT that this relay cannot honour (its
        // socket lets datagrams fragment) discards the indication, as an
        // unknown comprehension-required attribute would.
        if message.contains(AttributeType::DONT_FRAGMENT) && !allocation.dont_fragment {
            self.metrics.dropped_malformed += 1;
            return;
        }
        let relay = allocation.relay;
        self.relay_to_peer(now, tuple, relay, peer, data);
    }

    pub(super) fn relay_to_peer(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
    ) {
        let allowed = self
            .allocations
            .get_mut(&tuple)
            .is_some_and(|a| a.take_bandwidth(now, data.len()));
        if !allowed {
            self.metrics.dropped_bandwidth += 1;
            return;
        }
        let mut out = self.buffer();
        out.extend_from_slice(data);
        self.metrics.packets_to_peers += 1;
        self.metrics.bytes_to_peers += data.len() as u64;
        self.push_transmit(Transport::Udp, relay, peer, out);
    }
}
