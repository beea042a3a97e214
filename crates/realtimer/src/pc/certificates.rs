//! Fresh certificates made ahead of time.
//!
//! A PeerConnection without a supplied certificate gets one of its own, as
//! in browsers. Generating it (an ECDSA P-256 key, a self-signed X.509)
//! and preparing OpenSSL's context for it cost about half a millisecond,
//! a fifth of a loopback connection's setup. So a small pool is kept
//! filled by a background thread, started a little after a certificate is
//! taken: `PeerConnection::new` takes a ready one, or makes one itself
//! when the pool is empty. Each connection still
//! gets a certificate no other connection uses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use realtimer_dtls::{Certificate, DtlsConfig};
use tracing::debug;

use crate::{OperationError, RtcError};

/// Certificates kept ready.
const POOL_SIZE: usize = 4;
/// A pooled certificate older than this is made again (they are valid for
/// 30 days from their making).
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The refill waits this long first, so that it does not compete for the
/// CPU with the setup of the connection that just took a certificate.
const REFILL_DELAY: Duration = Duration::from_millis(50);

static POOL: Mutex<Vec<(Instant, Certificate)>> = Mutex::new(Vec::new());
static REFILLING: AtomicBool = AtomicBool::new(false);

/// A certificate no other connection has, ready for the data channel DTLS
/// settings; the pool is topped up in the background.
pub(super) fn fresh() -> Result<Certificate, RtcError> {
    let pooled = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.retain(|(made, _)| made.elapsed() < MAX_AGE);
        pool.pop()
    };
    refill();
    match pooled {
        Some((_, certificate)) => Ok(certificate),
        None => make(),
    }
}

/// A new certificate with its OpenSSL context prepared for the settings
/// the core's DTLS uses (no SRTP for data channels).
fn make() -> Result<Certificate, RtcError> {
    #[allow(clippy::disallowed_methods)] // certificate validity needs the wall clock
    let wall = SystemTime::now();
    let certificate = Certificate::generate(wall).map_err(OperationError::Certificate)?;
    DtlsConfig::new(certificate.clone())
        .with_srtp_profiles(realtimer_proto::SRTP_PROFILES.to_vec())
        .prepare()
        .map_err(OperationError::Certificate)?;
    Ok(certificate)
}

/// Starts one background thread filling the pool, unless one runs.
fn refill() {
    if REFILLING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("realtimer-certificates".into())
        .spawn(|| {
            std::thread::sleep(REFILL_DELAY);
            loop {
                let missing =
                    POOL_SIZE.saturating_sub(POOL.lock().unwrap_or_else(|e| e.into_inner()).len());
                if missing == 0 {
                    break;
                }
                match make() {
                    #[allow(clippy::disallowed_methods)] // the pool's own age clock
                    Ok(certificate) => POOL
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((Instant::now(), certificate)),
                    Err(e) => {
                        debug!("background certificate: {e}");
                        break;
                    }
                }
            }
            REFILLING.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        REFILLING.store(false, Ordering::Release);
    }
}
