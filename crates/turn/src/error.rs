//! Why a TURN request was refused, and the error code each cause answers with.

use realtimer_stun::attributes::ErrorCode;

/// Why the server refused a request. Each variant maps to one STUN error
/// code ([`RequestError::code`]); `Display` says what went wrong in words
/// (the response's reason phrase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    // Authentication (RFC 8489 §9.2.4).
    /// No MESSAGE-INTEGRITY: the client is asked for credentials (401).
    #[error("Unauthorized")]
    Unauthenticated,
    /// MESSAGE-INTEGRITY without USERNAME, REALM or NONCE (400).
    #[error("Missing USERNAME, REALM or NONCE")]
    MissingAuthAttributes,
    /// The nonce expired or is not ours (438): retry with the new one.
    #[error("Stale Nonce")]
    StaleNonce,
    /// No such user (401).
    #[error("Unauthorized")]
    UnknownUser,
    /// A REST username whose expiry time has passed (401).
    #[error("Unauthorized: credential expired")]
    CredentialExpired,
    /// MESSAGE-INTEGRITY does not match: wrong password (401).
    #[error("Unauthorized")]
    IntegrityMismatch,
    /// A signed request from an address that failed authentication too often
    /// lately ([`crate::AuthThrottleLimits`]): refused without checking the
    /// password (401, like a wrong one), so a guesser learns nothing.
    #[error("Unauthorized")]
    Throttled,
    /// Another user's allocation (441, RFC 8656 §5).
    #[error("Wrong Credentials")]
    WrongCredentials,

    // Request contents.
    /// An attribute is malformed or a required one is missing (400).
    #[error("Bad Request")]
    BadRequest,
    /// Comprehension-required attributes this server does not know (420).
    #[error("Unknown Attribute")]
    UnknownAttributes,
    /// Not a method this server offers (400).
    #[error("Bad Request: method not served")]
    UnsupportedMethod,
    /// REQUESTED-TRANSPORT is neither UDP nor, on a TCP or TLS
    /// connection, TCP (442, RFC 6062 §5.1).
    #[error("Unsupported Transport Protocol")]
    UnsupportedTransport,
    /// The requested family has no relay address here (440).
    #[error("Address Family not Supported")]
    AddressFamilyNotSupported,
    /// A peer or requested family differs from the relay's family (443).
    #[error("Peer Address Family Mismatch")]
    PeerAddressFamilyMismatch,
    /// CHANNEL-NUMBER outside 0x4000..=0x7FFF, or the channel or peer is
    /// already bound to another (400, RFC 8656 §12.2).
    #[error("Bad Request: channel number invalid or in use")]
    BadChannel,

    // Allocations (RFC 8656 §7).
    /// Allocate on a 5-tuple that has one, or another request on one
    /// that has none (437).
    #[error("Allocation Mismatch")]
    AllocationMismatch,
    /// The peer address is refused by policy (403, RFC 8656 §21.3).
    #[error("Forbidden: peer address not allowed")]
    ForbiddenPeer,
    /// The user has as many allocations as allowed (486).
    #[error("Allocation Quota Reached")]
    UserQuota,
    /// The client's IP address has as many allocations as allowed (486).
    #[error("Allocation Quota Reached")]
    SourceQuota,
    /// The server has as many allocations as allowed (486).
    #[error("Allocation Quota Reached")]
    TotalQuota,
    /// No relay port could be bound, or a reservation was asked for (508).
    #[error("Insufficient Capacity")]
    InsufficientCapacity,
    /// Too many permissions on the allocation (508).
    #[error("Insufficient Capacity: too many permissions")]
    PermissionLimit,
    /// Too many channels on the allocation (508).
    #[error("Insufficient Capacity: too many channels")]
    ChannelLimit,

    // TCP allocations (RFC 6062 §5).
    /// A connection to this peer is already being made or open on the
    /// allocation (446, §5.2).
    #[error("Connection Already Exists")]
    ConnectionExists,
    /// The TCP connection to the peer failed or timed out (447, §5.2).
    #[error("Connection Timeout or Failure")]
    ConnectionFailed,
    /// Too many peer connections on the allocation (508).
    #[error("Insufficient Capacity: too many connections")]
    ConnectionLimit,
    /// ConnectionBind names no connection waiting for one, or arrived on a
    /// connection that is not a fresh TCP or TLS one (400, §5.4).
    #[error("Bad Request: no such connection to bind")]
    BadConnection,
}

impl RequestError {
    /// The STUN error code this cause answers with.
    pub fn code(self) -> u16 {
        use RequestError::*;
        match self {
            Unauthenticated | UnknownUser | CredentialExpired | IntegrityMismatch | Throttled => {
                ErrorCode::UNAUTHENTICATED
            }
            MissingAuthAttributes | BadRequest | UnsupportedMethod | BadChannel | BadConnection => {
                ErrorCode::BAD_REQUEST
            }
            StaleNonce => ErrorCode::STALE_NONCE,
            WrongCredentials => ErrorCode::WRONG_CREDENTIALS,
            UnknownAttributes => ErrorCode::UNKNOWN_ATTRIBUTE,
            UnsupportedTransport => ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL,
            AddressFamilyNotSupported => ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED,
            PeerAddressFamilyMismatch => ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH,
            AllocationMismatch => ErrorCode::ALLOCATION_MISMATCH,
            ForbiddenPeer => ErrorCode::FORBIDDEN,
            UserQuota | SourceQuota | TotalQuota => ErrorCode::ALLOCATION_QUOTA_REACHED,
            InsufficientCapacity | PermissionLimit | ChannelLimit | ConnectionLimit => {
                ErrorCode::INSUFFICIENT_CAPACITY
            }
            ConnectionExists => ErrorCode::CONNECTION_ALREADY_EXISTS,
            ConnectionFailed => ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE,
        }
    }

    /// True for the causes that are answered with REALM and a fresh NONCE
    /// so the client can (re)try its credentials.
    pub fn asks_for_credentials(self) -> bool {
        matches!(
            self,
            RequestError::Unauthenticated
                | RequestError::UnknownUser
                | RequestError::CredentialExpired
                | RequestError::IntegrityMismatch
                | RequestError::Throttled
                | RequestError::StaleNonce
        )
    }

    /// True when a signed request's credentials are wrong (no such user, a
    /// wrong password, an expired REST credential): what a password guesser
    /// causes, counted by the server's throttle. A stale nonce is not.
    pub fn is_credential_failure(self) -> bool {
        matches!(
            self,
            RequestError::UnknownUser
                | RequestError::CredentialExpired
                | RequestError::IntegrityMismatch
        )
    }
}
