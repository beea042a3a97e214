//! Seeds: one number replays a whole run.

/// The environment variable [`seed_from_env_or`] reads.
pub const SEED_ENV: &str = "NETSIM_SEED";

/// The seed in `NETSIM_SEED` (decimal, or hexadecimal with `0x`), else
/// `default`. Tests pass the result to [`crate::Network::new`], so a seed
/// printed by a failing run replays it:
/// `NETSIM_SEED=1234 cargo nextest run -p … the_test`.
///
/// Panics if the variable is set but is not a number: a mistyped seed would
/// otherwise silently run another test than the one meant.
pub fn seed_from_env_or(default: u64) -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(value) => parse_seed(&value).unwrap_or_else(|| {
            panic!("{SEED_ENV}={value:?} is not a u64 (decimal, or hex with 0x)")
        }),
        Err(_) => default,
    }
}

fn parse_seed(value: &str) -> Option<u64> {
    let value = value.trim();
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seed;

    #[test]
    fn parses_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a\n"), Some(42));
        assert_eq!(parse_seed("forty-two"), None);
    }
}
