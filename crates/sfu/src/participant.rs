//! One participant: its connection, what it publishes and what it
//! receives.

use std::time::Instant;

use realtimer_proto::{ChannelRef, Codec, MediaKind, MediaRef, Rtc};

use crate::meter::BitrateMeter;
use crate::rewrite::StreamRewriter;
use crate::{ParticipantId, TrackId};

/// A participant's peer connection to the server and its part in the room.
#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) rtc: Rtc,
    pub(crate) room: String,
    /// The tracks it sends us.
    pub(crate) published: Vec<Published>,
    /// The other participants' tracks we send it, by our transceiver.
    pub(crate) subscriptions: Vec<(TrackId, MediaRef)>,
    /// It receives the others' tracks.
    pub(crate) subscribes: bool,
    /// It takes our offers. A WHEP viewer does not (WHEP has no way to
    /// send it one): the room's tracks reach it on [`Slot`]s, the
    /// transceivers its own offer asked to receive on.
    pub(crate) renegotiates: bool,
    /// A viewer's transceivers, each sending one of the room's tracks or
    /// free for the next one of its kind.
    pub(crate) slots: Vec<Slot>,
    /// The first data channel it opened: room messages go there.
    pub(crate) room_channel: Option<ChannelRef>,
    /// What it sends us, all tracks together (the publisher limit).
    pub(crate) meter: BitrateMeter,
    /// Over [`crate::Limits::bitrate_per_publisher`]: its video is held.
    pub(crate) over_limit: bool,
    /// The send-side estimate towards it (bit/s), once known.
    pub(crate) estimate: Option<u64>,
    /// In the transmit queue ([`crate::Sfu::poll_transmit`]).
    pub(crate) dirty: bool,
    /// The instant its timer is in the timer heap for.
    pub(crate) scheduled: Option<Instant>,
}

/// A transceiver of a viewer that cannot renegotiate: its offer's, kept
/// sending whatever track of its kind the room has.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) kind: MediaKind,
    pub(crate) media: MediaRef,
    /// The track it carries now.
    pub(crate) track: Option<TrackId>,
    /// The rewriting of the last track it carried, continued by the next
    /// so the viewer sees one stream (RFC 7667 §3.7).
    pub(crate) rewriter: Option<StreamRewriter>,
}

/// A track a participant publishes and where it goes.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) media: MediaRef,
    pub(crate) kind: MediaKind,
    pub(crate) codecs: Vec<Codec>,
    /// Held by its publisher (mute): nothing is forwarded.
    pub(crate) muted: bool,
    pub(crate) forwards: Vec<Forward>,
    pub(crate) meter: BitrateMeter,
    /// When we last asked the publisher for a keyframe.
    pub(crate) keyframe_requested: Option<Instant>,
    /// The audio level (RFC 6464) of the packet about to be forwarded,
    /// passed on to the subscribers with it.
    pub(crate) audio_level: Option<realtimer_proto::AudioLevel>,
    /// Its simulcast layers (RFC 8853), the publisher's order (lowest
    /// first); empty without simulcast.
    pub(crate) layers: Vec<Layer>,
}

/// One simulcast layer of a published track.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) rid: String,
    /// Its SSRC, once a packet named the rid.
    pub(crate) ssrc: Option<u32>,
    pub(crate) meter: BitrateMeter,
    /// When its last packet came (a layer the publisher paused stops).
    pub(crate) last_packet: Option<Instant>,
}

/// One subscriber of a published track.
#[derive(Debug)]
pub(crate) struct Forward {
    pub(crate) subscriber: ParticipantId,
    /// Our transceiver on the subscriber's connection.
    pub(crate) media: MediaRef,
    pub(crate) rewriter: StreamRewriter,
    /// Video starts (and resumes) on a keyframe only.
    pub(crate) waiting_keyframe: bool,
    /// Publisher payload type to the subscriber's, learned per codec.
    pub(crate) payload_types: Vec<(u8, Option<u8>)>,
    /// Held because the subscriber's estimate cannot carry it too.
    pub(crate) held: bool,
    /// When `held` last changed (holding and releasing are rate-limited).
    pub(crate) held_changed: Option<Instant>,
    /// Simulcast: the layer forwarded now (`None`: none yet).
    pub(crate) layer: Option<usize>,
    /// Simulcast: the layer wanted; the switch happens on its keyframe.
    pub(crate) target: Option<usize>,
    /// When `target` last went up (up-switches are rate-limited).
    pub(crate) target_raised: Option<Instant>,
}

impl Participant {
    pub(crate) fn new(rtc: Rtc, room: String) -> Participant {
        Participant {
            rtc,
            room,
            published: Vec::new(),
            subscriptions: Vec::new(),
            subscribes: true,
            renegotiates: true,
            slots: Vec::new(),
            room_channel: None,
            meter: BitrateMeter::default(),
            over_limit: false,
            estimate: None,
            dirty: false,
            scheduled: None,
        }
    }
}
