//! The phases of a connection as enums, so that a state that cannot exist
//! cannot be written (no "DTLS running and failed to start", no held
//! candidates without gathering).

use std::collections::VecDeque;

use bytes::Bytes;
use realtimer_dtls::Dtls;
use realtimer_ice::IceCredentials;

use crate::event::RtcEvent;

/// The connection's life; `Closed` is final (W3C webrtc-pc §4.4.1.6
/// close: nothing runs afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// The descriptions do not both say who does what yet.
    Negotiating,
    /// Both descriptions are set (RFC 8829 §5.10, §5.11): DTLS may start,
    /// server side at once, client side once ICE has a pair.
    TransportStarted,
    /// `close` was called.
    Closed,
}

/// Where DTLS is (RFC 5763 §5, RFC 8842).
#[derive(Debug)]
pub(super) enum DtlsPhase {
    /// Not started yet: DTLS datagrams that came first wait here (at most
    /// [`crate::RtcConfig::max_early_dtls`], oldest dropped first).
    Waiting(VecDeque<Bytes>),
    /// The handshake runs, or ran: its own state says how it ended.
    Running(Box<Dtls>),
    /// DTLS refused our certificate or settings: the connection is failed.
    CouldNotStart,
}

impl DtlsPhase {
    /// The DTLS connection, once started.
    pub(super) fn running(&self) -> Option<&Dtls> {
        match self {
            DtlsPhase::Running(d) => Some(d),
            _ => None,
        }
    }

    /// The DTLS connection, once started.
    pub(super) fn running_mut(&mut self) -> Option<&mut Dtls> {
        match self {
            DtlsPhase::Running(d) => Some(d),
            _ => None,
        }
    }
}

/// Candidate gathering (RFC 8445 §5.1.1), which setLocalDescription
/// starts, or earlier [`crate::Rtc::prefetch_candidates`]
/// (`iceCandidatePoolSize`, W3C webrtc-pc §4.4.1.1).
#[derive(Debug)]
pub(super) enum Gathering {
    /// Nothing gathered yet.
    NotStarted,
    /// Gathering before setLocalDescription: the candidates and gathering
    /// states wait here, invisible, until it comes.
    Prefetching(Vec<RtcEvent>),
    /// Gathering, events delivered as they come.
    Started,
}

/// `restartIce()` was called (W3C webrtc-pc §4.4.1.6) and no applied local
/// offer carried new credentials yet.
#[derive(Debug, Default)]
pub(super) struct RestartRequest {
    /// The new credentials written into offers since (the same for every
    /// offer until one is applied, when they go to the ICE agent).
    pub(super) offered: Option<IceCredentials>,
}
