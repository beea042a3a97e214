//! The driver task: owns the core and the UDP socket, moves datagrams,
//! timers, commands and events (with back-pressure) between them.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore, TryAcquireError};
use tracing::debug;

use crate::Rtc;
use crate::SessionDescription;
use crate::{AccessError, RtcError};
use crate::{ChannelRef, DataChannelInfo, DataChannelState};
use crate::{MediaRef, RtpPacket};
use crate::{PeerConnectionState, RtcEvent};
use realtimer_proto::payload_len;

use super::data_channel::{Inbound, SendGate};
use super::mdns::{MdnsRegistration, MdnsService};
use super::media::{PlayoutStats, RtpSender, SenderEnd, TrackRemote, TRACK_QUEUE};
use super::turn_stream::TurnStreams;
use super::udp::{Outgoing, Transport};
use super::{
    now, ChannelStatus, Command, DataChannel, DataChannelEvent, HostListing, PcStatus,
    PeerConnectionEvent, Reply, CHANNEL_QUEUE,
};

/// The driver's side of one channel.
#[derive(Debug)]
pub(super) struct ChannelEnd {
    events: mpsc::Sender<Inbound>,
    /// Bytes of received messages the user may hold unread.
    budget: Arc<Semaphore>,
    status: watch::Sender<ChannelStatus>,
    /// The handles' bytes queued to the driver ([`DataChannel::buffered_amount`]).
    queued: Arc<AtomicUsize>,
    /// Of those, what the driver took since it last published the status.
    taken: usize,
}

/// A data-channel event its reader has not taken yet.
#[derive(Debug)]
pub(super) enum Pending {
    Channel(ChannelRef, DataChannelEvent),
}

pub(super) struct Driver {
    pub(super) rtc: Rtc,
    pub(super) socket: Transport,
    pub(super) bases: Vec<SocketAddr>,
    /// Lists the host addresses again at an ICE restart (when they were
    /// listed from the interfaces, not given).
    pub(super) relisting: Option<HostListing>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) command_tx: mpsc::WeakSender<Command>,
    pub(super) events: mpsc::Sender<Box<PeerConnectionEvent>>,
    pub(super) mdns_tx: mpsc::Sender<(String, Option<IpAddr>)>,
    pub(super) mdns_rx: mpsc::Receiver<(String, Option<IpAddr>)>,
    /// Our published `.local` names, unpublished when the driver ends.
    pub(super) mdns_names: Vec<MdnsRegistration>,
    pub(super) status: watch::Sender<PcStatus>,
    pub(super) channels: HashMap<ChannelRef, ChannelEnd>,
    pub(super) pending: VecDeque<Pending>,
    /// PeerConnection events waiting for room in `events` (see
    /// [`Driver::notify`]); at most [`PC_BACKLOG`].
    pub(super) pc_backlog: VecDeque<PeerConnectionEvent>,
    /// TCP and TLS connections to TURN servers.
    pub(super) turn: TurnStreams,
    /// What handles may send without a round trip.
    pub(super) gate: SendGate,
    /// The peer's tracks: where their RTP packets go.
    pub(super) tracks: HashMap<MediaRef, mpsc::Sender<RtpPacket>>,
    /// Our tracks: where the peer's keyframe requests go.
    pub(super) local_tracks: HashMap<MediaRef, SenderEnd>,
    /// The peer's tracks' latest sender report clocks.
    pub(super) remote_clocks: HashMap<MediaRef, watch::Sender<Option<crate::SenderClock>>>,
    /// The peer's tracks' playout counters (jitter buffer, decoder), by
    /// mid, for `get_stats`.
    pub(super) playout: HashMap<MediaRef, (String, Arc<Mutex<PlayoutStats>>)>,
}

/// Most timeouts handled in a row without waiting (a core whose timeout
/// stays in the past cannot spin the driver).
const MAX_DUE_NOW: u32 = 8;

/// Most further commands handled in one wakeup.
const COMMAND_BATCH: usize = 64;

/// Bytes of received messages one channel holds for its reader: past
/// this the driver stops reading the socket (the peer's SCTP window
/// closes) instead of queueing; a reader that keeps up finds its messages
/// in memory that is still warm.
const RECEIVE_BUDGET: usize = 2 * 1024 * 1024;

/// PeerConnection events kept beyond the event queue for a user who
/// reads them late (or never): past this the oldest is dropped.
const PC_BACKLOG: usize = 1024;

/// The sender a pending event goes to, and the budget it needs there.
enum Target {
    Channel(mpsc::Sender<Inbound>, Arc<Semaphore>, u32),
}

/// What an event costs of its channel's [`RECEIVE_BUDGET`].
fn cost(event: &DataChannelEvent) -> u32 {
    match event {
        DataChannelEvent::Message(m) => {
            u32::try_from(payload_len(m).min(RECEIVE_BUDGET as u64)).unwrap_or(u32::MAX)
        }
        _ => 0,
    }
}

impl Driver {
    pub(super) async fn run(mut self: Box<Self>) {
        let far = || now() + Duration::from_secs(3600);
        let mut armed = far();
        let sleep = tokio::time::sleep_until(armed.into());
        tokio::pin!(sleep);
        let mut due_now = 0;
        loop {
            self.flush().await;
            self.drain_events();
            self.refresh_status();
            if self.rtc.connection_state() == PeerConnectionState::Closed
                && self.pending.is_empty()
                && self.pc_backlog.is_empty()
            {
                debug!("driver done");
                break;
            }
            let deadline = self.rtc.poll_timeout().unwrap_or_else(far);
            // A timeout already due (the first ICE check right after the
            // remote candidates came) runs now: a tokio timer would fire at
            // the next millisecond tick of the timer wheel at best.
            if deadline <= now() && due_now < MAX_DUE_NOW {
                due_now += 1;
                self.rtc.handle_timeout(now());
                continue;
            }
            due_now = 0;
            if deadline != armed {
                armed = deadline;
                sleep.as_mut().reset(deadline.into());
            }
            let target = self.pending.front().and_then(|p| self.target(p));
            let can_read = self.pending.is_empty();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => {
                        self.handle_command(cmd);
                        // Whatever else the handles queued, in one go.
                        for _ in 0..COMMAND_BATCH {
                            match self.commands.try_recv() {
                                Ok(cmd) => self.handle_command(cmd),
                                Err(_) => break,
                            }
                        }
                        // A description set or an ICE restart may bring a
                        // new local ufrag: a shared socket routes it here.
                        self.socket.claim_ufrag(self.rtc.local_ufrag());
                    }
                    None => {
                        debug!("every handle dropped: closing");
                        self.rtc.close(now());
                    }
                },
                Some(io) = self.turn.recv() => self.turn.handle(&mut self.rtc, io),
                Some((name, ip)) = self.mdns_rx.recv() => {
                    self.rtc.resolve_mdns_name(now(), &name, ip);
                }
                permit = self.events.clone().reserve_owned(), if !self.pc_backlog.is_empty() => {
                    match permit {
                        Ok(permit) => self.deliver_backlog(permit),
                        // Nobody will read them.
                        Err(_) => self.pc_backlog.clear(),
                    }
                }
                ok = wait_target(target), if !can_read => {
                    if let Some(p) = self.pending.pop_front() {
                        if ok {
                            self.deliver(p);
                        }
                    }
                }
                r = self.socket.readable(), if can_read => match r {
                    Ok(()) => self.receive(),
                    Err(e) => debug!("UDP receive: {e}"),
                },
                () = &mut sleep => {
                    self.rtc.handle_timeout(now());
                    armed = far();
                }
            }
        }
        // Anything the user still holds sees the channels closed.
        for (_, end) in self.channels.drain() {
            end.status
                .send_modify(|s| s.state = DataChannelState::Closed);
        }
    }

    /// Feeds what the socket holds to the core (one batch: the driver
    /// sends the answers before it reads more).
    fn receive(&mut self) {
        let Driver {
            rtc, socket, bases, ..
        } = self;
        let port = bases.first().map_or(0, SocketAddr::port);
        // Read after the receive: no datagram of the batch came later.
        let mut t = None;
        let r = socket.try_recv(|from, to_ip, d, arrival| {
            let t = *t.get_or_insert_with(now);
            let to = match to_ip {
                Some(ip) if bases.iter().any(|b| b.ip() == ip) => SocketAddr::new(ip, port),
                _ => base_for(bases, from),
            };
            rtc.handle_receive_arrived(t, arrival, from, to, d);
        });
        if let Err(e) = r {
            debug!("UDP receive: {e}");
        }
    }

    async fn flush(&mut self) {
        let rtc = &mut self.rtc;
        self.socket
            .send_all(|| {
                rtc.poll_transmit().map(|t| Outgoing {
                    destination: t.destination,
                    contents: t.contents,
                })
            })
            .await;
        self.turn.flush(&mut self.rtc);
    }

    fn target(&self, p: &Pending) -> Option<Target> {
        match p {
            Pending::Channel(r, e) => self
                .channels
                .get(r)
                .map(|c| Target::Channel(c.events.clone(), c.budget.clone(), cost(e))),
        }
    }

    fn deliver(&mut self, p: Pending) {
        let result = match p {
            Pending::Channel(r, event) => match self.channels.get(&r) {
                Some(end) => {
                    let permit = match cost(&event) {
                        0 => Ok(None),
                        n => end.budget.clone().try_acquire_many_owned(n).map(Some),
                    };
                    match permit {
                        Err(TryAcquireError::NoPermits) => Err(Some(Pending::Channel(r, event))),
                        Err(TryAcquireError::Closed) => Ok(()),
                        Ok(permit) => end
                            .events
                            .try_send(Inbound {
                                event,
                                _permit: permit,
                            })
                            .map_err(|e| match e {
                                mpsc::error::TrySendError::Full(i) => {
                                    Some(Pending::Channel(r, i.event))
                                }
                                mpsc::error::TrySendError::Closed(_) => None,
                            }),
                    }
                }
                None => Ok(()),
            },
        };
        if let Err(Some(back)) = result {
            self.pending.push_front(back);
        }
    }

    /// Gives the user a PeerConnection event, in order behind any waiting
    /// ones. Unlike a channel's messages (whose unread bytes stop the
    /// socket's reading, so the peer's SCTP window closes), these never
    /// hold the connection up: a user who does not read them (or not
    /// now) must not stall the transport, as a browser never does. So
    /// those the queue has no room for wait in `pc_backlog`, where a
    /// bandwidth estimate replaces the one still waiting (only the latest
    /// matters) and past [`PC_BACKLOG`] the oldest is dropped.
    fn notify(&mut self, event: PeerConnectionEvent) {
        let event = if self.pc_backlog.is_empty() {
            match self.events.try_send(Box::new(event)) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => *event,
            }
        } else {
            event
        };
        if matches!(event, PeerConnectionEvent::BandwidthEstimate(_)) {
            self.pc_backlog
                .retain(|e| !matches!(e, PeerConnectionEvent::BandwidthEstimate(_)));
        }
        if self.pc_backlog.len() >= PC_BACKLOG {
            let dropped = self.pc_backlog.pop_front();
            debug!(
                ?dropped,
                "PeerConnection events unread: dropping the oldest"
            );
        }
        self.pc_backlog.push_back(event);
    }

    /// Sends the waiting PeerConnection events the queue has room for.
    fn deliver_backlog(&mut self, permit: mpsc::OwnedPermit<Box<PeerConnectionEvent>>) {
        let Some(first) = self.pc_backlog.pop_front() else {
            return;
        };
        permit.send(Box::new(first));
        while let Some(event) = self.pc_backlog.pop_front() {
            if let Err(e) = self.events.try_send(Box::new(event)) {
                if let mpsc::error::TrySendError::Full(event) = e {
                    self.pc_backlog.push_front(*event);
                }
                break;
            }
        }
    }

    /// Queues a channel's event for its reader, in order behind any
    /// waiting ones.
    fn dispatch(&mut self, p: Pending) {
        if self.pending.is_empty() {
            self.deliver(p);
        } else {
            self.pending.push_back(p);
        }
    }

    fn new_channel(&mut self, r: ChannelRef, info: DataChannelInfo) -> DataChannel {
        let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let (status_tx, status_rx) = watch::channel(ChannelStatus {
            state: self.rtc.channel_state(r),
            id: info.id,
            buffered_amount: 0,
            low_threshold: 0,
        });
        self.channels.insert(
            r,
            ChannelEnd {
                events: tx,
                budget: Arc::new(Semaphore::new(RECEIVE_BUDGET)),
                status: status_tx,
                queued: queued.clone(),
                taken: 0,
            },
        );
        let commands = self.command_sender();
        DataChannel {
            channel: r,
            info,
            commands,
            status: status_rx,
            events: Arc::new(tokio::sync::Mutex::new(rx)),
            gate: self.gate.shared.clone(),
            queued,
        }
    }

    /// A sender of commands for a new handle (a dead one if every handle
    /// is gone).
    fn command_sender(&self) -> mpsc::Sender<Command> {
        self.command_tx
            .upgrade()
            .unwrap_or_else(|| mpsc::channel(1).0)
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.rtc.poll_event() {
            match event {
                RtcEvent::IceCandidate(c) => self.notify(PeerConnectionEvent::IceCandidate(c)),
                RtcEvent::IceGatheringState(s) => {
                    self.notify(PeerConnectionEvent::IceGatheringStateChange(s));
                }
                RtcEvent::IceConnectionState(s) => {
                    self.notify(PeerConnectionEvent::IceConnectionStateChange(s));
                }
                RtcEvent::ConnectionState(s) => {
                    self.notify(PeerConnectionEvent::ConnectionStateChange(s));
                }
                RtcEvent::SignalingState(s) => {
                    self.notify(PeerConnectionEvent::SignalingStateChange(s));
                }
                RtcEvent::NegotiationNeeded => self.notify(PeerConnectionEvent::NegotiationNeeded),
                RtcEvent::DataChannel(r, info) => {
                    let dc = self.new_channel(r, info);
                    self.notify(PeerConnectionEvent::DataChannel(dc));
                }
                RtcEvent::ChannelOpen(r, id) => {
                    if let Some(end) = self.channels.get(&r) {
                        end.status.send_modify(|s| {
                            s.state = DataChannelState::Open;
                            s.id = Some(id);
                        });
                    }
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Open));
                }
                RtcEvent::ChannelMessage(r, data) => {
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Message(data)));
                }
                RtcEvent::ChannelBufferedAmountLow(r) => {
                    self.dispatch(Pending::Channel(r, DataChannelEvent::BufferedAmountLow));
                }
                RtcEvent::ChannelClosing(r) => {
                    if let Some(end) = self.channels.get(&r) {
                        end.status
                            .send_modify(|s| s.state = DataChannelState::Closing);
                    }
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Closing));
                }
                RtcEvent::ChannelError(r, e) => {
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Error(e)));
                }
                RtcEvent::ChannelClosed(r) => {
                    if let Some(end) = self.channels.get(&r) {
                        end.status.send_modify(|s| {
                            s.state = DataChannelState::Closed;
                            s.buffered_amount = 0;
                        });
                    }
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Close));
                }
                RtcEvent::ResolveMdnsName(name) => {
                    let tx = self.mdns_tx.clone();
                    // Asked on the links our host candidates are on.
                    let interfaces = self.bases.iter().map(|b| b.ip()).collect();
                    tokio::spawn(async move {
                        // Our own mDNS endpoint, then the system resolver
                        // (nss-mdns, if the host has it).
                        let mut ip = match MdnsService::get() {
                            Some(service) => service.resolve(name.clone(), interfaces).await,
                            None => None,
                        };
                        if ip.is_none() {
                            let lookup = tokio::net::lookup_host((name.as_str(), 0));
                            if let Ok(Ok(mut addrs)) =
                                tokio::time::timeout(Duration::from_secs(3), lookup).await
                            {
                                ip = addrs.next().map(|a| a.ip());
                            }
                        }
                        debug!(%name, ?ip, "mDNS name resolved");
                        let _ = tx.send((name, ip)).await;
                    });
                }
                RtcEvent::OpenTurnConnection {
                    server,
                    address,
                    transport,
                } => self.turn.open(server, address, transport),
                RtcEvent::Track(r, info) => {
                    let (tx, rx) = mpsc::channel(TRACK_QUEUE);
                    self.tracks.insert(r, tx);
                    let (clock_tx, clock) = watch::channel(None);
                    self.remote_clocks.insert(r, clock_tx);
                    let playout = Arc::default();
                    self.playout
                        .insert(r, (info.mid.clone(), Arc::clone(&playout)));
                    let track =
                        TrackRemote::new(info, r, self.command_sender(), rx, clock, playout);
                    self.notify(PeerConnectionEvent::Track(track));
                }
                RtcEvent::Rtp(r, packet) => {
                    // Late media is useless: a reader that falls behind
                    // loses the newest packets, never stalls the socket.
                    if let Some(Err(mpsc::error::TrySendError::Full(p))) =
                        self.tracks.get(&r).map(|t| t.try_send(packet))
                    {
                        debug!(%r, seq = p.sequence_number, "RTP packet dropped: the track's reader is behind");
                    }
                }
                RtcEvent::Feedback(r, feedback) => {
                    if let Some(t) = self.local_tracks.get(&r) {
                        t.on_feedback(feedback);
                    }
                }
                RtcEvent::SenderReport(r, clock) => {
                    if let Some(c) = self.remote_clocks.get(&r) {
                        c.send_replace(Some(clock));
                    }
                }
                RtcEvent::BandwidthEstimate(bps) => {
                    self.notify(PeerConnectionEvent::BandwidthEstimate(bps));
                }
                RtcEvent::TargetBitrate(r, bps) => {
                    if let Some(t) = self.local_tracks.get(&r) {
                        t.on_target(bps);
                        if t.is_simulcast() {
                            t.on_layer_targets(self.rtc.layer_targets(r));
                        }
                    }
                }
                RtcEvent::RegisterMdnsName(name, address) => match MdnsService::get() {
                    Some(service) => self.mdns_names.push(service.register(name, address)),
                    None => debug!(%name, "no mDNS endpoint: the name will not resolve"),
                },
                // RtcEvent is non-exhaustive: an event this driver does not
                // know yet is logged, not acted on.
                // One per received audio packet: not worth a log line.
                RtcEvent::AudioLevel(..) => {}
                other => debug!(?other, "event not handled by the PeerConnection driver"),
            }
        }
        // Channels that are closed and delivered are forgotten.
        let rtc = &self.rtc;
        let pending = &self.pending;
        self.channels.retain(|r, end| {
            rtc.channel_state(*r) != DataChannelState::Closed
                || end.status.borrow().state != DataChannelState::Closed
                || pending
                    .iter()
                    .any(|p| matches!(p, Pending::Channel(x, _) if x == r))
        });
    }

    fn refresh_status(&mut self) {
        for (r, end) in &mut self.channels {
            let amount = self.rtc.buffered_amount(*r);
            // Released before the status goes out, and always announced,
            // so a waiter on bufferedAmount sees both parts move.
            let taken = std::mem::take(&mut end.taken);
            if taken > 0 {
                end.queued.fetch_sub(taken, Ordering::AcqRel);
            }
            end.status.send_if_modified(|s| {
                let changed = s.buffered_amount != amount || taken > 0;
                s.buffered_amount = amount;
                changed
            });
        }
        self.gate.publish(self.rtc.send_room());
        // Compared in place and cloned only when changed: this runs after
        // every wakeup.
        let rtc = &self.rtc;
        self.status.send_if_modified(|s| {
            sync(&mut s.signaling, rtc.signaling_state())
                | sync(&mut s.ice_connection, rtc.ice_connection_state())
                | sync(&mut s.ice_gathering, rtc.ice_gathering_state())
                | sync(&mut s.connection, rtc.connection_state())
                | sync_description(&mut s.current_local, rtc.current_local_description())
                | sync_description(&mut s.current_remote, rtc.current_remote_description())
                | sync_description(&mut s.pending_local, rtc.pending_local_description())
                | sync_description(&mut s.pending_remote, rtc.pending_remote_description())
        });
    }

    /// Answers a call once the status the handles read is up to date
    /// (W3C: `signalingState` has changed when `setLocalDescription`'s
    /// promise resolves, on any thread).
    fn reply<T>(&mut self, r: Reply<T>, result: Result<T, RtcError>) {
        self.refresh_status();
        let _ = r.send(result);
    }

    fn handle_command(&mut self, cmd: Command) {
        let t = now();
        match cmd {
            Command::CreateOffer(r) => {
                let result = self.rtc.create_offer();
                self.reply(r, result);
            }
            Command::CreateAnswer(r) => {
                let result = self.rtc.create_answer();
                self.reply(r, result);
            }
            Command::SetLocal(d, r) => {
                let result = self.rtc.set_local_description(t, d);
                self.tell_tracks_their_codecs();
                self.reply(r, result);
            }
            Command::SetRemote(d, r) => {
                let result = self.rtc.set_remote_description(t, d);
                self.tell_tracks_their_codecs();
                self.reply(r, result);
            }
            Command::AddCandidate(c, r) => {
                let result = self.rtc.add_ice_candidate(t, c.as_ref());
                self.reply(r, result);
            }
            Command::CreateChannel(label, init, r) => {
                let result = self.rtc.create_data_channel(t, &label, &init).map(|ch| {
                    let info =
                        self.rtc
                            .channel_info(ch)
                            .cloned()
                            .unwrap_or_else(|| DataChannelInfo {
                                label: label.clone(),
                                protocol: init.protocol.clone(),
                                id: None,
                                ordered: init.ordered,
                                max_retransmits: init.max_retransmits,
                                max_packet_life_time: init.max_packet_life_time,
                                negotiated: init.negotiated,
                                priority: init.priority,
                            });
                    self.new_channel(ch, info)
                });
                self.reply(r, result);
            }
            Command::Send(ch, data, r) => {
                let result = self.rtc.send(t, ch, data);
                self.reply(r, result);
            }
            Command::SendChecked(ch, data, len) => {
                // Refused only when the channel closed meanwhile: a browser
                // drops what was queued on a closing channel too.
                if let Err(e) = self.rtc.send(t, ch, data) {
                    debug!(%ch, "queued message dropped: {e}");
                }
                self.gate.took(len);
                if let Some(end) = self.channels.get_mut(&ch) {
                    end.taken += len;
                }
            }
            Command::SetLowThreshold(ch, threshold) => {
                self.rtc.set_buffered_amount_low_threshold(ch, threshold);
                if let Some(end) = self.channels.get(&ch) {
                    end.status.send_modify(|s| s.low_threshold = threshold);
                }
            }
            Command::CloseChannel(ch) => self.rtc.close_channel(t, ch),
            Command::GetStats(r) => {
                let mut report = self.rtc.stats(t);
                self.fill_playout_stats(&mut report);
                let result = Ok(report);
                self.reply(r, result);
            }
            Command::RestartIce(r) => {
                let result = self.rtc.restart_ice();
                if result.is_ok() {
                    self.add_new_host_addresses(t);
                }
                self.reply(r, result);
            }
            Command::SetTurnServers(servers, names, r) => {
                let first = self.rtc.set_turn_servers(servers);
                self.turn.set_names_from(first, names);
                self.reply(r, Ok(()));
            }
            Command::AddTrack(track, r) => {
                let added = if track.layers().is_empty() {
                    self.rtc
                        .add_track(track.kind(), track.stream_id(), track.track_id())
                } else {
                    self.rtc.add_simulcast_track(
                        track.kind(),
                        track.stream_id(),
                        track.track_id(),
                        track.layers(),
                    )
                };
                let result = added
                    .and_then(|media| {
                        let preferred = track.preferred_codecs();
                        if !preferred.is_empty() {
                            self.rtc.set_codec_preferences(media, &preferred)?;
                        }
                        Ok(media)
                    })
                    .and_then(|media| {
                        let end = track
                            .bind(media, self.command_sender())
                            .ok_or(AccessError::TrackInUse)?;
                        end.on_negotiated(self.rtc.transceiver_codecs(media));
                        self.local_tracks.insert(media, end);
                        Ok(RtpSender { track })
                    });
                self.reply(r, result);
            }
            Command::SetCodecPreferences(media, codecs, r) => {
                let result = self.rtc.set_codec_preferences(media, &codecs);
                self.reply(r, result);
            }
            Command::WriteRtp(media, packet) => {
                if let Err(e) = self.rtc.write_rtp(t, media, &packet) {
                    debug!(%media, "RTP packet not sent: {e}");
                }
            }
            Command::WriteRtpLayer(media, rid, packet) => {
                if let Err(e) = self.rtc.write_rtp_layer(t, media, &rid, &packet) {
                    debug!(%media, %rid, "RTP packet not sent: {e}");
                }
            }
            Command::WriteSample(media, rid, packets) => {
                for packet in &packets {
                    let written = match &rid {
                        None => self.rtc.write_rtp(t, media, packet),
                        Some(rid) => self.rtc.write_rtp_layer(t, media, rid, packet),
                    };
                    // The rest of a frame whose packet was refused is
                    // of no use to the peer: dropped with it.
                    if let Err(e) = written {
                        debug!(%media, ?rid, "sample not sent: {e}");
                        break;
                    }
                }
            }
            Command::RequestKeyframe(media, r) => {
                let result = self.rtc.request_keyframe(media);
                self.reply(r, result);
            }
            Command::RequestRetransmission(media, lost, r) => {
                let result = self.rtc.request_retransmission(media, &lost);
                self.reply(r, result);
            }
            Command::Close(r) => {
                self.rtc.close(t);
                let result = Ok(());
                self.reply(r, result);
            }
        }
    }
}

impl Driver {
    /// At an ICE restart: addresses the interfaces gained since the
    /// connection listed them become bases, so the restart's gathering
    /// offers them (the peer can no longer reach an address we lost; the
    /// restart's checks settle on a pair that works). Bases are not taken
    /// away: the core keeps its list, and a lost address's candidate just
    /// fails its checks.
    fn add_new_host_addresses(&mut self, t: Instant) {
        let Some(listing) = self.relisting else {
            return;
        };
        for address in listing.list() {
            if !self.bases.contains(&address) {
                debug!(%address, "new host address for the ICE restart");
                self.bases.push(address);
                self.rtc.add_local_address(t, address);
            }
        }
    }

    /// After a description: each of our tracks learns the codec its
    /// samples are packetized for.
    fn tell_tracks_their_codecs(&self) {
        for (media, end) in &self.local_tracks {
            end.on_negotiated(self.rtc.transceiver_codecs(*media));
            if end.is_simulcast() {
                // The answer may have paused layers the peer won't receive.
                end.on_layer_targets(self.rtc.layer_targets(*media));
            }
        }
    }

    /// Adds what each of the peer's tracks played out (jitter buffer,
    /// decoder) to the inbound-rtp entry of its mid: the SSRC that
    /// brought the most packets (with simulcast, the layer read).
    fn fill_playout_stats(&self, report: &mut crate::StatsReport) {
        for (mid, playout) in self.playout.values() {
            let best = report
                .inbound_rtp
                .iter_mut()
                .filter(|s| s.mid.as_deref() == Some(mid.as_str()))
                .max_by_key(|s| s.packets_received);
            if let Some(stats) = best {
                playout
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .fill(stats);
            }
        }
    }
}

/// Sets `slot` to `now`; true if it changed.
fn sync<T: PartialEq>(slot: &mut T, now: T) -> bool {
    let changed = *slot != now;
    *slot = now;
    changed
}

/// [`sync`] for a description, cloned only when it changed.
fn sync_description(
    slot: &mut Option<SessionDescription>,
    now: Option<&SessionDescription>,
) -> bool {
    let changed = slot.as_ref() != now;
    if changed {
        *slot = now.cloned();
    }
    changed
}

/// Waits for room in the target queue; false when its reader is gone.
async fn wait_target(target: Option<Target>) -> bool {
    match target {
        Some(Target::Channel(tx, budget, cost)) => {
            budget.acquire_many(cost).await.is_ok() && tx.reserve().await.is_ok()
        }
        None => false,
    }
}

/// The local base a datagram from `from` arrived on. One wildcard socket
/// cannot tell, so: a base with the sender's IP (same host), else a
/// loopback base for a loopback sender, else the first base of the
/// sender's family.
fn base_for(bases: &[SocketAddr], from: SocketAddr) -> SocketAddr {
    let port = bases.first().map_or(0, SocketAddr::port);
    bases
        .iter()
        .find(|b| b.ip() == from.ip())
        .or_else(|| {
            bases.iter().find(|b| {
                b.is_ipv4() == from.is_ipv4() && b.ip().is_loopback() == from.ip().is_loopback()
            })
        })
        .or_else(|| bases.iter().find(|b| b.is_ipv4() == from.is_ipv4()))
        .copied()
        .unwrap_or_else(|| {
            SocketAddr::new(
                if from.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                },
                port,
            )
        })
}
