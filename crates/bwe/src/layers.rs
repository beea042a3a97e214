//! Which simulcast layers (RFC 8853) fit a bitrate: for a sender, how
//! to split its target among its layers and which to pause; for a
//! forwarding unit, which one of a publisher's layers to forward to a
//! subscriber. Layers are given lowest first (Chromium's order of rids).

/// A layer is started only when the bitrate left for it covers this
/// share of its maximum (libwebrtc starts a VP8 layer at about its
/// minimum bitrate, a quarter to a third of its maximum): below it, it
/// would encode at a quality no better than the layer beneath.
pub const LAYER_START_SHARE: f64 = 0.3;

/// A sender's split of `target` bits per second among its layers, whose
/// most useful bitrates are `max_bitrates` (lowest layer first): each
/// layer in turn gets up to its maximum while what is left covers
/// [`LAYER_START_SHARE`] of it; the first layer that does not fit and all
/// above it are paused (`None`). The lowest layer always runs, with what
/// there is, so the receiver never loses the picture while the estimate
/// is low. What no layer can use stays unallocated.
///
/// ```
/// use realtimer_bwe::allocate_layers;
/// let max = [150_000, 500_000, 1_500_000];
/// assert_eq!(allocate_layers(100_000, &max), vec![Some(100_000), None, None]);
/// assert_eq!(allocate_layers(400_000, &max), vec![Some(150_000), Some(250_000), None]);
/// assert_eq!(
///     allocate_layers(1_200_000, &max),
///     vec![Some(150_000), Some(500_000), Some(550_000)]
/// );
/// // 350 kbit/s left is under 30% of the top layer's 1.5 Mbit/s: paused.
/// assert_eq!(allocate_layers(1_000_000, &max)[2], None);
/// ```
pub fn allocate_layers(target: u64, max_bitrates: &[u64]) -> Vec<Option<u64>> {
    let mut left = target;
    let mut paused = false;
    max_bitrates
        .iter()
        .enumerate()
        .map(|(i, &max)| {
            let start = (max as f64 * LAYER_START_SHARE) as u64;
            if paused || (i > 0 && left < start) {
                paused = true;
                return None;
            }
            let given = left.min(max);
            left -= given;
            Some(given)
        })
        .collect()
}

/// The layer a forwarding unit sends a subscriber whose target is
/// `target` bits per second, from the layers' measured bitrates
/// (`rates`, lowest first; 0 for a layer not arriving): the highest
/// arriving layer that fits the target, else the lowest arriving one
/// (a picture at too high a rate beats none; the subscriber's estimator
/// then holds it down). `None` when no layer arrives.
///
/// ```
/// use realtimer_bwe::pick_layer;
/// let rates = [120_000, 450_000, 1_400_000];
/// assert_eq!(pick_layer(2_000_000, &rates), Some(2));
/// assert_eq!(pick_layer(600_000, &rates), Some(1));
/// assert_eq!(pick_layer(50_000, &rates), Some(0));
/// // The top layer paused by its sender: the middle one.
/// assert_eq!(pick_layer(2_000_000, &[120_000, 450_000, 0]), Some(1));
/// assert_eq!(pick_layer(2_000_000, &[0, 0, 0]), None);
/// ```
pub fn pick_layer(target: u64, rates: &[u64]) -> Option<usize> {
    let arriving = || rates.iter().enumerate().filter(|(_, r)| **r > 0);
    arriving()
        .filter(|(_, r)| **r <= target)
        .map(|(i, _)| i)
        .next_back()
        .or_else(|| arriving().map(|(i, _)| i).next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_never_exceeds_the_target_and_pauses_from_the_top() {
        let max = [150_000, 500_000, 1_500_000];
        for target in (0..3_000_000).step_by(7_919) {
            let got = allocate_layers(target, &max);
            let sum: u64 = got.iter().flatten().sum();
            assert!(sum <= target, "{target}: {got:?}");
            assert!(got[0].is_some(), "{target}: the lowest runs");
            // Once a layer is paused, every higher one is.
            let first_paused = got.iter().position(Option::is_none).unwrap_or(got.len());
            assert!(got[first_paused..].iter().all(Option::is_none), "{got:?}");
            for (g, m) in got.iter().zip(max) {
                assert!(g.is_none_or(|g| g <= m));
            }
        }
        // Enough for all: each at its maximum.
        assert_eq!(
            allocate_layers(5_000_000, &max),
            vec![Some(150_000), Some(500_000), Some(1_500_000)]
        );
        // The top layer starts once 30% of its maximum is left.
        assert_eq!(allocate_layers(650_000 + 449_999, &max)[2], None);
        assert_eq!(allocate_layers(650_000 + 450_000, &max)[2], Some(450_000));
        assert!(allocate_layers(1_000_000, &[]).is_empty());
    }

    #[test]
    fn picking_prefers_the_highest_layer_that_fits() {
        assert_eq!(pick_layer(0, &[100, 200]), Some(0));
        assert_eq!(pick_layer(200, &[100, 200]), Some(1));
        assert_eq!(pick_layer(199, &[100, 200]), Some(0));
        assert_eq!(pick_layer(1000, &[0, 200]), Some(1));
        assert_eq!(pick_layer(1000, &[]), None);
    }
}
