//! The tests' signaling loops, one rule for all: a relayed JSON message
//! goes to a [`PeerSession`]; a description it cannot apply fails the
//! test, a candidate it cannot add is printed (a peer may trickle
//! candidates of an address family or interface we do not use).

use realtimer_signaling::{Handled, PeerSession, SessionMessage};
use serde_json::Value;

/// Applies `message` (any relayed JSON) to `session`; `None` when it is
/// not an offer, answer, candidate or bye (a test's own message).
pub async fn apply(session: &PeerSession, message: &Value) -> Option<Handled> {
    let message = SessionMessage::from_value(message)?;
    let is_candidate = matches!(message, SessionMessage::Candidate { .. });
    match session.handle(message).await {
        Ok(handled) => Some(handled),
        Err(e) if is_candidate => {
            println!("addIceCandidate: {e}");
            Some(Handled::Applied)
        }
        Err(e) => panic!("the other side's description: {e}"),
    }
}
