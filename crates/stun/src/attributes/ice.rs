//! The attributes ICE adds to Binding requests (RFC 8445 §7.1.1, §16.1).

use super::{
    exact, flag_attribute, integer_attribute, AttributeType, DecodeAttribute, EncodeAttribute,
};
use crate::error::AttributeError;
use crate::message::TransactionId;

integer_attribute!(
    /// PRIORITY: the priority a peer-reflexive candidate learned from this
    /// check would have (RFC 8445 §7.1.1).
    Priority(u32), PRIORITY
);
integer_attribute!(
    /// ICE-CONTROLLED: the sender is controlled; the value is its tie-breaker
    /// (RFC 8445 §7.1.3).
    IceControlled(u64), ICE_CONTROLLED
);
integer_attribute!(
    /// ICE-CONTROLLING: the sender is controlling; the value is its
    /// tie-breaker (RFC 8445 §7.1.3).
    IceControlling(u64), ICE_CONTROLLING
);
flag_attribute!(
    /// USE-CANDIDATE: the controlling agent nominates this pair (RFC 8445 §7.1.2).
    UseCandidate, USE_CANDIDATE
);
