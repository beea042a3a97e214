//! What the SFU load generator and the flood bench share beyond their
//! clients: the clock and the environment knobs.

use std::time::Instant;

/// The generator's clock.
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// The environment variable `name` parsed, or `default` when it is unset
/// or does not parse.
pub(crate) fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
