//! One DTLS connection: OpenSSL's state machine driven sans-IO, with our
//! own retransmission timer on the caller's clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openssl::ssl::{
    ErrorCode, SslContext, SslMethod, SslOptions, SslSessionCacheMode, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509VerifyResult;
use tracing::debug;

use crate::pipe::DatagramPipe;
use crate::protection::{self, ProtectedRecord, RecordProtection};
use crate::record::{self, MAX_DATAGRAM};
use crate::{DtlsConfig, DtlsError, Fingerprint, Role, SrtpProfile};

/// Cipher suites browsers offer for DTLS 1.2, AEAD only, ECDSA first
/// (RFC 8827 §6.5 requires ECDHE-ECDSA-AES128-GCM-SHA256; Chrome and
/// Firefox offer the rest).
pub(crate) const CIPHER_LIST: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-RSA-CHACHA20-POLY1305";

/// Key exchange groups, in browsers' order of preference.
const GROUPS: &str = "X25519:P-256:P-384";

/// RFC 5764 §4.2: the exporter label for SRTP keys.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// The most plaintext one record carries (RFC 5246 §6.2.1).
pub const MAX_APPLICATION_DATA: usize = 1 << 14;

/// OpenSSL reports a received alert as reason `SSL_AD_REASON_OFFSET` (1000)
/// plus the alert description.
const ALERT_REASON_OFFSET: i32 = 1000;

/// How many received handshake datagrams are remembered to recognise
/// retransmissions: a handshake has a handful of flights of a few datagrams.
const SEEN_LIMIT: usize = 64;

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DtlsState {
    /// The handshake is in progress.
    Handshaking,
    /// The handshake completed and the peer is authenticated; application
    /// data flows.
    Connected,
    /// Closed by either side with close_notify (RFC 5246 §7.2.1).
    Closed,
    /// Failed; the reason came as [`DtlsEvent::Failed`].
    Failed,
}

/// What the connection tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtlsEvent {
    /// The handshake completed and the peer's certificate matches its SDP
    /// fingerprint.
    Connected {
        /// SRTP keys, if a profile was negotiated (RFC 5764 §4.2).
        srtp: Option<SrtpKeyingMaterial>,
        /// The fingerprint that was verified.
        remote_fingerprint: Fingerprint,
        /// The negotiated cipher suite, in OpenSSL's name.
        cipher_suite: String,
    },
    /// Application data from the peer (for WebRTC: one SCTP packet).
    ApplicationData(Bytes),
    /// The peer sent close_notify.
    Closed,
    /// The connection failed (handshake error, fatal alert, timeout,
    /// fingerprint mismatch).
    Failed(DtlsError),
}

/// SRTP master keys and salts exported from the handshake (RFC 5764 §4.2):
/// `client_write_SRTP_master_key | server_write_SRTP_master_key |
/// client_write_SRTP_master_salt | server_write_SRTP_master_salt`.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyingMaterial {
    /// The negotiated profile.
    pub profile: SrtpProfile,
    /// Our role: the client's keys protect what the client sends.
    pub role: Role,
    /// Key for what the client sends.
    pub client_write_key: Vec<u8>,
    /// Key for what the server sends.
    pub server_write_key: Vec<u8>,
    /// Salt for what the client sends.
    pub client_write_salt: Vec<u8>,
    /// Salt for what the server sends.
    pub server_write_salt: Vec<u8>,
}

impl SrtpKeyingMaterial {
    /// Splits the exporter output by the profile's lengths (RFC 5764 §4.2).
    fn split(profile: SrtpProfile, role: Role, material: &[u8]) -> Option<Self> {
        let (k, s) = (profile.key_len(), profile.salt_len());
        if material.len() != 2 * (k + s) {
            return None;
        }
        let (client_write_key, rest) = material.split_at(k);
        let (server_write_key, rest) = rest.split_at(k);
        let (client_write_salt, server_write_salt) = rest.split_at(s);
        Some(Self {
            profile,
            role,
            client_write_key: client_write_key.to_vec(),
            server_write_key: server_write_key.to_vec(),
            client_write_salt: client_write_salt.to_vec(),
            server_write_salt: server_write_salt.to_vec(),
        })
    }

    /// Key and salt protecting what we send.
    pub fn local(&self) -> (&[u8], &[u8]) {
        match self.role {
            Role::Client => (&self.client_write_key, &self.client_write_salt),
            Role::Server => (&self.server_write_key, &self.server_write_salt),
        }
    }

    /// Key and salt protecting what the peer sends.
    pub fn remote(&self) -> (&[u8], &[u8]) {
        match self.role {
            Role::Client => (&self.server_write_key, &self.server_write_salt),
            Role::Server => (&self.client_write_key, &self.client_write_salt),
        }
    }
}

impl fmt::Debug for SrtpKeyingMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("SrtpKeyingMaterial")
            .field("profile", &self.profile)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The connection's timers, in a table indexed by [`Timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Resend the last flight (RFC 6347 §4.2.4).
    Retransmit = 0,
    /// Give up on the handshake.
    HandshakeDeadline = 1,
}

#[derive(Debug, Default)]
struct Timers([Option<Instant>; 2]);

impl Timers {
    fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }
    fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }
    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| t <= now)
    }
    fn clear(&mut self) {
        self.0 = [None; 2];
    }
    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

/// A DTLS 1.2 connection (RFC 6347) for WebRTC, sans-IO.
///
/// Feed it received datagrams ([`Dtls::handle_input`]) and timeouts
/// ([`Dtls::handle_timeout`]); after each call drain
/// [`Dtls::poll_transmit`] and [`Dtls::poll_event`], and wake it at
/// [`Dtls::poll_timeout`]. It never reads a clock.
///
/// # Retransmission
/// OpenSSL's own DTLS timer reads the wall clock, and the `openssl` crate
/// has no safe way to drive or replace it. So this type keeps each flight
/// OpenSSL writes and resends it itself, on the caller's clock, doubling
/// from [`DtlsConfig::initial_retransmit`] up to
/// [`DtlsConfig::max_retransmit`] (RFC 6347 §4.2.4.1). Resent epoch-0
/// records get fresh sequence numbers (they are unprotected, so we can
/// renumber them), otherwise the peer's replay window would drop a record
/// its handshake layer had discarded; the epoch-1 Finished is resent as it
/// is. A peer resending its flight (recognised by content, ignoring
/// epoch-0 sequence numbers) makes us resend ours at once (RFC 6347
/// §4.2.4). The side that sends the last flight (the
/// server, in a full handshake) keeps it after completing and resends it
/// whenever a handshake record from the peer arrives (RFC 6347 §4.2.4),
/// since OpenSSL drops those copies as replays or as an old epoch.
/// OpenSSL's wall-clock timer may still fire inside a call if a flight is
/// unanswered for a second of real time; that adds one duplicate flight and
/// is harmless.
pub struct Dtls {
    /// OpenSSL's connection; dropped (with the ~90 KB of handshake state
    /// it holds) once our record layer takes over, its pipe kept in
    /// `pipe_alone`.
    stream: Option<SslStream<DatagramPipe>>,
    /// The datagram pipe once `stream` is gone (an empty placeholder
    /// before).
    pipe_alone: DatagramPipe,
    role: Role,
    state: DtlsState,
    remote_fingerprint: Fingerprint,
    /// The certificate fingerprint the verify callback saw when it did not
    /// match (set once, from inside OpenSSL's callback).
    mismatch: Arc<OnceLock<Fingerprint>>,
    config: Limits,
    /// The flight to resend on [`Timer::Retransmit`].
    flight: Vec<Bytes>,
    /// The current retransmission timeout.
    rto: Duration,
    timers: Timers,
    /// Our last handshake flight after connecting, kept to answer the peer's
    /// retransmissions until the peer proves it connected too.
    final_flight: Vec<Bytes>,
    /// When we last resent a flight because the peer resent its own.
    last_replay: Option<Instant>,
    /// Hashes of the handshake datagrams received, to recognise the peer
    /// resending a flight (bounded by [`SEEN_LIMIT`]).
    seen: VecDeque<u64>,
    events: VecDeque<DtlsEvent>,
    read_buf: Box<[u8]>,
    /// Whether to take the record layer over from OpenSSL once connected.
    own_record_layer: bool,
    /// Epoch-1 records the peer sent during the handshake (its Finished),
    /// to check our derived keys on (bounded by [`EPOCH1_KEPT`]).
    peer_epoch1: Vec<Vec<u8>>,
    /// Our record layer, once the handshake is done and its keys proved.
    pub(crate) protection: Option<RecordProtection>,
}

/// How many of the peer's handshake-time epoch-1 records are kept.
const EPOCH1_KEPT: usize = 8;

/// The settings the connection needs after setup.
#[derive(Debug, Clone, Copy)]
struct Limits {
    initial_retransmit: Duration,
    max_retransmit: Duration,
    handshake_timeout: Duration,
    require_extended_master_secret: bool,
    transmit_queue_limit: usize,
    event_queue_limit: usize,
}

impl fmt::Debug for Dtls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dtls")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("remote_fingerprint", &self.remote_fingerprint)
            .field("rto", &self.rto)
            .finish_non_exhaustive()
    }
}

impl Dtls {
    /// A connection in `role` that will accept only a peer certificate
    /// hashing to `remote_fingerprint` (from the remote SDP). A client
    /// queues its ClientHello at once.
    pub fn new(
        config: DtlsConfig,
        role: Role,
        remote_fingerprint: Fingerprint,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        crate::check_fingerprint(&remote_fingerprint)?;
        let mtu = u32::try_from(config.mtu).map_err(|_| DtlsError::Config("MTU too large"))?;
        let ssl_err = |e: openssl::error::ErrorStack| DtlsError::Ssl(e.to_string());

        let ctx = config
            .certificate
            .context(config.cipher_list, &config.srtp_profiles, || {
                build_context(&config)
            })?;

        let mut ssl = openssl::ssl::Ssl::new(&ctx).map_err(ssl_err)?;
        ssl.set_mtu(mtu)
            .map_err(|_| DtlsError::Config("MTU below what OpenSSL can fragment to"))?;
        let mismatch = Arc::new(OnceLock::new());
        let seen = Arc::clone(&mismatch);
        let expected = remote_fingerprint.clone();
        // RFC 8827 §6.5 / RFC 8122 §5: the certificate is self-signed and
        // authenticated only by its fingerprint, so chain errors are ignored
        // and the leaf's hash decides. Failing here (not after the
        // handshake) makes OpenSSL send a bad_certificate alert and never
        // derive keys with an impostor.
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_preverified, ctx| {
                if ctx.error_depth() != 0 {
                    return true;
                }
                let Some(der) = ctx.current_cert().and_then(|c| c.to_der().ok()) else {
                    return false;
                };
                match crate::fingerprint_of_der(expected.hash.clone(), &der) {
                    Ok(actual) if actual == expected => true,
                    Ok(actual) => {
                        let _ = seen.set(actual);
                        ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
                        false
                    }
                    Err(_) => false,
                }
            },
        );
        match role {
            Role::Client => ssl.set_connect_state(),
            Role::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, DatagramPipe::new(config.mtu)).map_err(ssl_err)?;

        let limits = Limits {
            initial_retransmit: config.initial_retransmit,
            max_retransmit: config.max_retransmit.max(config.initial_retransmit),
            handshake_timeout: config.handshake_timeout,
            require_extended_master_secret: config.require_extended_master_secret,
            transmit_queue_limit: config.transmit_queue_limit.max(1),
            event_queue_limit: config.event_queue_limit.max(1),
        };
        let mut dtls = Self {
            stream: Some(stream),
            pipe_alone: DatagramPipe::new(0),
            role,
            state: DtlsState::Handshaking,
            remote_fingerprint,
            mismatch,
            config: limits,
            flight: Vec::new(),
            rto: limits.initial_retransmit,
            timers: Timers::default(),
            final_flight: Vec::new(),
            last_replay: None,
            seen: VecDeque::new(),
            events: VecDeque::new(),
            read_buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            own_record_layer: config.own_record_layer,
            peer_epoch1: Vec::new(),
            protection: None,
        };
        dtls.timers
            .set(Timer::HandshakeDeadline, now + limits.handshake_timeout);
        if role == Role::Client {
            dtls.drive_handshake(now);
            if let DtlsState::Failed = dtls.state {
                return Err(dtls.failure().unwrap_or(DtlsError::Handshake(
                    "the ClientHello could not be written".into(),
                )));
            }
        }
        Ok(dtls)
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the connection is.
    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// The fingerprint the peer's certificate must have.
    pub fn remote_fingerprint(&self) -> &Fingerprint {
        &self.remote_fingerprint
    }

    /// Whether application data goes through realtimer's record layer
    /// ([`DtlsConfig::own_record_layer`]) rather than OpenSSL's.
    pub fn uses_own_record_layer(&self) -> bool {
        self.protection.is_some()
    }

    /// Hands in a datagram from the peer.
    ///
    /// `Err` means the datagram was refused ([`DtlsError::NotDtls`],
    /// [`DtlsError::DatagramTooLarge`], [`DtlsError::ReceiveQueueFull`],
    /// [`DtlsError::Closed`]) and nothing changed, or the connection failed
    /// because of it (the same error also comes as [`DtlsEvent::Failed`]).
    /// Records OpenSSL cannot authenticate or parse are dropped silently,
    /// as RFC 6347 §4.1.2.7 asks.
    pub fn handle_input(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DtlsError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(DtlsError::DatagramTooLarge {
                len: datagram.len(),
                max: MAX_DATAGRAM,
            });
        }
        if !record::looks_like_dtls(datagram) {
            return Err(DtlsError::NotDtls(datagram.first().copied().unwrap_or(0)));
        }
        if self.events.len() >= self.config.event_queue_limit {
            return Err(DtlsError::ReceiveQueueFull);
        }
        match self.state {
            DtlsState::Closed | DtlsState::Failed => return Err(DtlsError::Closed),
            DtlsState::Handshaking => {
                self.keep_epoch1_records(datagram);
                let resent = self.seen_before(datagram);
                self.pipe().push_incoming(Bytes::copy_from_slice(datagram));
                let mark = self.pipe().mark();
                self.drive_handshake(now);
                // RFC 6347 §4.2.4: a peer resending its flight has not
                // received ours; resend it now rather than at our timer.
                // OpenSSL drops the byte-identical copy as a replay and
                // would not notice.
                if resent && self.state == DtlsState::Handshaking && self.pipe().mark() == mark {
                    let flight = self.flight.clone();
                    self.replay(now, &flight);
                }
            }
            DtlsState::Connected => {
                if !self.final_flight.is_empty() && record::has_handshake_record(datagram) {
                    let flight = self.final_flight.clone();
                    self.replay(now, &flight);
                }
                if self.protection.is_some() {
                    self.receive_protected(datagram);
                } else {
                    self.pipe().push_incoming(Bytes::copy_from_slice(datagram));
                    self.read_application_data();
                }
            }
        }
        self.pipe().close_datagram();
        match self.state {
            DtlsState::Failed => Err(self.failure().unwrap_or(DtlsError::Closed)),
            _ => Ok(()),
        }
    }

    /// Handles the time returned by [`Dtls::poll_timeout`]: resends the
    /// last flight, or fails the handshake after
    /// [`DtlsConfig::handshake_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != DtlsState::Handshaking {
            return;
        }
        if self.timers.is_due(Timer::HandshakeDeadline, now) {
            debug!(role = ?self.role, "DTLS handshake timed out");
            self.fail(DtlsError::HandshakeTimeout(self.config.handshake_timeout));
            return;
        }
        if self.timers.is_due(Timer::Retransmit, now) {
            debug!(role = ?self.role, rto = ?self.rto, datagrams = self.flight.len(), "DTLS flight retransmission");
            for datagram in self.flight.clone() {
                self.queue_transmit(datagram);
            }
            // The peer's resend crossing ours needs no second answer.
            self.last_replay = Some(now);
            // RFC 6347 §4.2.4.1: double the timer on each retransmission.
            self.rto = (self.rto * 2).min(self.config.max_retransmit);
            self.timers.set(Timer::Retransmit, now + self.rto);
        }
    }

    /// The next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.pipe().pop_outgoing()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// When [`Dtls::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            DtlsState::Handshaking => self.timers.next(),
            _ => None,
        }
    }

    /// Sends application data (for WebRTC: one SCTP packet) in one record,
    /// which becomes one datagram. The caller sizes it to the path MTU
    /// (less 29–37 bytes of record overhead, by cipher suite).
    pub fn send(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        match self.state {
            DtlsState::Connected => {}
            DtlsState::Handshaking => return Err(DtlsError::NotConnected),
            DtlsState::Closed | DtlsState::Failed => return Err(DtlsError::Closed),
        }
        if data.len() > MAX_APPLICATION_DATA {
            return Err(DtlsError::MessageTooLarge {
                len: data.len(),
                max: MAX_APPLICATION_DATA,
            });
        }
        if self.pipe().outgoing_len() >= self.config.transmit_queue_limit {
            return Err(DtlsError::TransmitQueueFull);
        }
        if data.is_empty() {
            // OpenSSL refuses zero-length writes; there is nothing to carry.
            return Ok(());
        }
        if self.protection.is_some() {
            return self.send_protected(protection::APPLICATION_DATA, data);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(DtlsError::Closed);
        };
        let result = stream.ssl_write(data);
        self.pipe().close_datagram();
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = DtlsError::Record(describe(&e));
                self.fail(error.clone());
                Err(error)
            }
        }
    }

    /// Sends close_notify (RFC 5246 §7.2.1) and closes. Idempotent. A
    /// handshake in progress is abandoned without an alert.
    pub fn close(&mut self) {
        if matches!(self.state, DtlsState::Closed | DtlsState::Failed) {
            return;
        }
        if self.state == DtlsState::Connected {
            self.send_close_notify();
        }
        debug!(role = ?self.role, "DTLS closed locally");
        self.state = DtlsState::Closed;
        self.release();
    }

    fn pipe(&mut self) -> &mut DatagramPipe {
        match &mut self.stream {
            Some(stream) => stream.get_mut(),
            None => &mut self.pipe_alone,
        }
    }

    /// OpenSSL's connection, while it exists.
    fn ssl(&self) -> Result<&openssl::ssl::SslRef, DtlsError> {
        self.stream
            .as_ref()
            .map(SslStream::ssl)
            .ok_or(DtlsError::Closed)
    }

    /// Sends close_notify through OpenSSL, if it still has the connection.
    fn openssl_shutdown(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.shutdown();
        }
    }

    fn queue_transmit(&mut self, datagram: Bytes) {
        // A caller that does not drain transmits loses retransmissions, not
        // memory; the next timer resends.
        if self.pipe().outgoing_len() < self.config.transmit_queue_limit {
            self.pipe().push_retransmission(&datagram);
        }
    }

    /// Lets OpenSSL take the handshake as far as the input allows.
    fn drive_handshake(&mut self, now: Instant) {
        let mark = self.pipe().mark();
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let result = stream.do_handshake();
        self.pipe().close_datagram();
        let written = self.pipe().written_since(mark);
        match result {
            Ok(()) => {
                // The flight that completed the handshake (the server's
                // ChangeCipherSpec + Finished) is the one the peer may still
                // need resent.
                self.final_flight = written;
                self.on_handshake_complete();
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                if !written.is_empty() {
                    // A new flight: it replaces the old one, and the timer
                    // restarts from its initial value (RFC 6347 §4.2.4).
                    self.flight = written;
                    self.rto = self.config.initial_retransmit;
                    self.timers.set(Timer::Retransmit, now + self.rto);
                }
            }
            Err(e) => {
                let error = self.handshake_error(&e);
                debug!(role = ?self.role, %error, "DTLS handshake failed");
                self.fail(error);
            }
        }
    }

    fn on_handshake_complete(&mut self) {
        self.flight.clear();
        self.seen = VecDeque::new();
        self.timers.clear();
        if let Err(error) = self.check_peer() {
            // The peer believes it is connected; tell it otherwise.
            self.openssl_shutdown();
            self.fail(error);
            return;
        }
        let srtp = match self.export_srtp() {
            Ok(srtp) => srtp,
            Err(error) => {
                self.fail(error);
                return;
            }
        };
        let cipher_suite = self
            .ssl()
            .ok()
            .and_then(|ssl| ssl.current_cipher())
            .map(|c| c.name().to_owned())
            .unwrap_or_default();
        debug!(role = ?self.role, %cipher_suite, "DTLS connected");
        self.state = DtlsState::Connected;
        self.events.push_back(DtlsEvent::Connected {
            srtp,
            remote_fingerprint: self.remote_fingerprint.clone(),
            cipher_suite,
        });
        // Application data may have come in the same datagram as Finished.
        self.read_application_data();
        if self.state == DtlsState::Connected && self.own_record_layer {
            self.take_over_record_layer();
        }
    }

    /// Switches application data to [`RecordProtection`] if its keys
    /// authenticate both Finished records; otherwise OpenSSL keeps the
    /// record layer (slower, equally correct).
    fn take_over_record_layer(&mut self) {
        let ours = self.pipe().take_epoch1_written();
        let theirs = std::mem::take(&mut self.peer_epoch1);
        let derived = match self.ssl() {
            Ok(ssl) => RecordProtection::derive(ssl, self.role, &ours, &theirs),
            Err(_) => return,
        };
        match derived {
            Ok(protection) => {
                debug!(role = ?self.role, ?protection, "own record layer for application data");
                self.protection = Some(protection);
                // OpenSSL's part is over: keep its pipe (datagrams still to
                // send), free the rest, and the read buffer only it used.
                if let Some(mut stream) = self.stream.take() {
                    // The placeholder goes with the stream, at once.
                    self.pipe_alone = std::mem::replace(stream.get_mut(), DatagramPipe::new(0));
                    self.pipe_alone.clear_incoming();
                }
                self.read_buf = Box::default();
            }
            Err(reason) => {
                debug!(role = ?self.role, ?reason, "OpenSSL keeps the record layer");
            }
        }
    }

    /// Remembers the epoch-1 records of a handshake datagram.
    fn keep_epoch1_records(&mut self, datagram: &[u8]) {
        if !self.own_record_layer || self.peer_epoch1.len() >= EPOCH1_KEPT {
            return;
        }
        if record::has_epoch1_record(datagram) {
            self.peer_epoch1.push(datagram.to_vec());
        }
    }

    /// Seals one record and queues it as a datagram of its own.
    fn send_protected(&mut self, content_type: u8, data: &[u8]) -> Result<(), DtlsError> {
        let Some(protection) = self.protection.as_mut() else {
            return Err(DtlsError::Closed);
        };
        let mut record = Vec::with_capacity(data.len() + protection.overhead());
        match protection.seal(content_type, data, &mut record) {
            Ok(()) => {
                self.pipe().push_datagram(Bytes::from(record));
                Ok(())
            }
            Err(e) => {
                let error = DtlsError::Record(format!("{e:?}"));
                self.fail(error.clone());
                Err(error)
            }
        }
    }

    /// close_notify (RFC 5246 §7.2.1), through whichever record layer is
    /// in use.
    fn send_close_notify(&mut self) {
        if self.protection.is_some() {
            // Level warning (1), description close_notify (0).
            let _ = self.send_protected(protection::ALERT, &[1, 0]);
        } else {
            self.openssl_shutdown();
            self.pipe().close_datagram();
        }
    }

    /// Opens the records of a datagram with our record layer. Records that
    /// are replayed, forged or of another epoch are dropped silently
    /// (RFC 6347 §4.1.2.7); handshake records were answered by the caller.
    fn receive_protected(&mut self, datagram: &[u8]) {
        let Some(protection) = self.protection.as_mut() else {
            return;
        };
        let mut alert = None;
        for record in ProtectedRecord::iter(datagram) {
            if !matches!(
                record.content_type,
                protection::APPLICATION_DATA | protection::ALERT
            ) {
                continue;
            }
            let Some(plaintext) = protection.open(&record) else {
                continue;
            };
            if record.content_type == protection::ALERT {
                alert = Some(plaintext);
                break;
            }
            // The peer sends application data only once it has our
            // Finished: the final flight arrived.
            self.final_flight.clear();
            self.events
                .push_back(DtlsEvent::ApplicationData(Bytes::from(plaintext)));
        }
        match alert.as_deref() {
            // RFC 5246 §7.2.1: answer close_notify with our own.
            Some([_, 0]) => {
                debug!(role = ?self.role, "DTLS close_notify received");
                self.send_close_notify();
                self.state = DtlsState::Closed;
                self.events.push_back(DtlsEvent::Closed);
                self.release();
            }
            // RFC 5246 §7.2: a fatal alert ends the connection.
            Some([2, description]) => self.fail(DtlsError::AlertReceived {
                description: *description,
            }),
            // Warnings (or a malformed alert that authenticated) change
            // nothing.
            _ => {}
        }
    }

    /// Checks what the verify callback already enforced, once more on the
    /// finished session, and that the extended master secret was used.
    fn check_peer(&self) -> Result<(), DtlsError> {
        let ssl = self.ssl()?;
        let cert = ssl.peer_certificate().ok_or(DtlsError::NoPeerCertificate)?;
        let der = cert.to_der().map_err(|e| DtlsError::Ssl(e.to_string()))?;
        let actual = crate::fingerprint_of_der(self.remote_fingerprint.hash.clone(), &der)?;
        if actual != self.remote_fingerprint {
            return Err(DtlsError::FingerprintMismatch {
                expected: self.remote_fingerprint.clone(),
                actual: Some(actual),
            });
        }
        if self.config.require_extended_master_secret && ssl.extms_support() != Some(true) {
            return Err(DtlsError::NoExtendedMasterSecret);
        }
        Ok(())
    }

    /// RFC 5764 §4.2: 2 × (key + salt) bytes from the exporter, split in
    /// the order client key, server key, client salt, server salt.
    fn export_srtp(&self) -> Result<Option<SrtpKeyingMaterial>, DtlsError> {
        let ssl = self.ssl()?;
        let Some(selected) = ssl.selected_srtp_profile() else {
            return Ok(None);
        };
        let id = u16::try_from(selected.id().as_raw()).ok();
        let Some(profile) = id.and_then(SrtpProfile::from_id) else {
            return Err(DtlsError::Handshake(format!(
                "the peer chose SRTP profile {}, which we did not offer",
                selected.name()
            )));
        };
        let mut material = vec![0; 2 * (profile.key_len() + profile.salt_len())];
        ssl.export_keying_material(&mut material, SRTP_EXPORTER_LABEL, None)
            .map_err(|e| DtlsError::Ssl(e.to_string()))?;
        Ok(SrtpKeyingMaterial::split(profile, self.role, &material))
    }

    /// Reads every record OpenSSL can decrypt now.
    fn read_application_data(&mut self) {
        while self.state == DtlsState::Connected {
            let Some(stream) = self.stream.as_mut() else {
                break;
            };
            match stream.ssl_read(&mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    // The peer sends application data only once it has our
                    // Finished: the final flight arrived.
                    self.final_flight.clear();
                    let data = Bytes::copy_from_slice(&self.read_buf[..n]);
                    self.events.push_back(DtlsEvent::ApplicationData(data));
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    debug!(role = ?self.role, "DTLS close_notify received");
                    // Answer with our own close_notify (RFC 5246 §7.2.1).
                    self.send_close_notify();
                    self.state = DtlsState::Closed;
                    self.events.push_back(DtlsEvent::Closed);
                    self.release();
                }
                Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => break,
                Err(e) => {
                    let error = match received_alert(&e) {
                        Some(description) => DtlsError::AlertReceived { description },
                        None => DtlsError::Record(describe(&e)),
                    };
                    self.fail(error);
                }
            }
        }
    }

    /// Resends `flight` because the peer resent its own.
    fn replay(&mut self, now: Instant, flight: &[Bytes]) {
        // Several datagrams of one resent flight arrive together: answer
        // once per half initial timeout.
        let quiet = self.config.initial_retransmit / 2;
        if flight.is_empty()
            || self
                .last_replay
                .is_some_and(|t| now.saturating_duration_since(t) < quiet)
        {
            return;
        }
        self.last_replay = Some(now);
        if self.state == DtlsState::Handshaking {
            // We just resent the flight: the timer starts over.
            self.timers.set(Timer::Retransmit, now + self.rto);
        }
        debug!(role = ?self.role, datagrams = flight.len(), "peer resent its flight: resending ours");
        for datagram in flight {
            self.queue_transmit(datagram.clone());
        }
    }

    /// Whether this handshake datagram came before (and remembers it).
    fn seen_before(&mut self, datagram: &[u8]) -> bool {
        let hash = record::retransmission_key(datagram);
        if self.seen.contains(&hash) {
            return true;
        }
        if self.seen.len() >= SEEN_LIMIT {
            self.seen.pop_front();
        }
        self.seen.push_back(hash);
        false
    }

    fn handshake_error(&self, e: &openssl::ssl::Error) -> DtlsError {
        if let Some(actual) = self.mismatch.get() {
            return DtlsError::FingerprintMismatch {
                expected: self.remote_fingerprint.clone(),
                actual: Some(actual.clone()),
            };
        }
        if let Some(description) = received_alert(e) {
            return DtlsError::AlertReceived { description };
        }
        DtlsError::Handshake(describe(e))
    }

    /// The error of the queued [`DtlsEvent::Failed`], if any.
    fn failure(&self) -> Option<DtlsError> {
        self.events.iter().rev().find_map(|e| match e {
            DtlsEvent::Failed(error) => Some(error.clone()),
            _ => None,
        })
    }

    fn fail(&mut self, error: DtlsError) {
        self.state = DtlsState::Failed;
        self.events.push_back(DtlsEvent::Failed(error));
        self.release();
    }

    /// Frees what a closed connection no longer needs. Datagrams already
    /// queued (an alert, close_notify) stay for the caller to send.
    fn release(&mut self) {
        self.timers.clear();
        self.flight = Vec::new();
        self.final_flight = Vec::new();
        self.seen = VecDeque::new();
        self.pipe().clear_incoming();
    }
}

/// [`DtlsConfig::prepare`]: the certificate's cached context for `config`.
pub(crate) fn prepare(config: &DtlsConfig) -> Result<(), DtlsError> {
    config
        .certificate
        .context(config.cipher_list, &config.srtp_profiles, || {
            build_context(config)
        })
        .map(drop)
}

/// An OpenSSL context for `config`: DTLS 1.2 only, browser suites and
/// groups, our certificate, no tickets or renegotiation, `use_srtp`.
fn build_context(config: &DtlsConfig) -> Result<SslContext, DtlsError> {
    let ssl_err = |e: openssl::error::ErrorStack| DtlsError::Ssl(e.to_string());
    let mut ctx = SslContext::builder(SslMethod::dtls()).map_err(ssl_err)?;
    ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))
        .map_err(ssl_err)?;
    ctx.set_max_proto_version(Some(SslVersion::DTLS1_2))
        .map_err(ssl_err)?;
    ctx.set_cipher_list(config.cipher_list).map_err(ssl_err)?;
    ctx.set_groups_list(GROUPS).map_err(ssl_err)?;
    ctx.set_certificate(&config.certificate.cert)
        .map_err(ssl_err)?;
    ctx.set_private_key(&config.certificate.key)
        .map_err(ssl_err)?;
    ctx.check_private_key().map_err(ssl_err)?;
    // NO_QUERY_MTU: our BIO has no path MTU to report; the MTU is ours.
    // No renegotiation and no tickets: WebRTC uses neither, and tickets
    // only make flights longer.
    ctx.set_options(
        SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION | SslOptions::NO_TICKET,
    );
    ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
    if !config.srtp_profiles.is_empty() {
        let names: Vec<&str> = config
            .srtp_profiles
            .iter()
            .map(|p| p.openssl_name())
            .collect();
        ctx.set_tlsext_use_srtp(&names.join(":")).map_err(ssl_err)?;
    }
    Ok(ctx.build())
}

/// The alert description of a fatal alert the peer sent, if that is what
/// the error is.
fn received_alert(e: &openssl::ssl::Error) -> Option<u8> {
    e.ssl_error()?.errors().iter().find_map(|err| {
        let reason = err.reason_code() - ALERT_REASON_OFFSET;
        u8::try_from(reason).ok()
    })
}

/// OpenSSL's reason for an error, in its words.
fn describe(e: &openssl::ssl::Error) -> String {
    match e.ssl_error() {
        Some(stack) => stack
            .errors()
            .iter()
            .map(|err| err.reason().unwrap_or("unknown reason").to_owned())
            .collect::<Vec<_>>()
            .join("; "),
        None => e.to_string(),
    }
}
