//! Replay protection (RFC 3711 §3.3.2): a sliding window of the packet
//! indices received and authenticated.

/// RFC 3711 §3.3.2 asks for at least 64; libsrtp's default is 128 and
/// Chromium uses 1024 so retransmissions (NACK) arriving late are accepted.
pub const REPLAY_WINDOW: u64 = 1024;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Why a packet index is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Received before.
    Duplicate,
    /// Older than the window reaches.
    TooOld,
}

/// The indices seen within [`REPLAY_WINDOW`] of the highest one, as a
/// ring of bits indexed by `index % REPLAY_WINDOW`.
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    /// The highest index accepted.
    top: u64,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// A window whose first accepted index is `index`.
    pub(crate) fn new(index: u64) -> Self {
        let mut window = Self {
            top: index,
            bits: [0; WORDS],
        };
        window.set(index);
        window
    }

    fn bit(index: u64) -> (usize, u64) {
        let slot = index % REPLAY_WINDOW;
        ((slot / 64) as usize, 1 << (slot % 64))
    }

    fn set(&mut self, index: u64) {
        let (word, mask) = Self::bit(index);
        self.bits[word] |= mask;
    }

    /// Checks `index` before authenticating the packet.
    pub(crate) fn check(&self, index: u64) -> Result<(), Replay> {
        if index > self.top {
            return Ok(());
        }
        if self.top - index >= REPLAY_WINDOW {
            return Err(Replay::TooOld);
        }
        let (word, mask) = Self::bit(index);
        if self.bits[word] & mask != 0 {
            Err(Replay::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records `index` once the packet is authenticated (after [`check`]).
    ///
    /// [`check`]: Self::check
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.top {
            // Slide: forget the slots the window leaves.
            if index - self.top >= REPLAY_WINDOW {
                self.bits = [0; WORDS];
            } else {
                for i in self.top + 1..index {
                    let (word, mask) = Self::bit(i);
                    self.bits[word] &= !mask;
                }
                let (word, mask) = Self::bit(index);
                self.bits[word] &= !mask;
            }
            self.top = index;
        }
        self.set(index);
    }

    /// The highest index accepted.
    pub(crate) fn top(&self) -> u64 {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_old_packets_are_refused() {
        let mut w = ReplayWindow::new(5000);
        assert_eq!(w.check(5000), Err(Replay::Duplicate));
        assert_eq!(w.check(5001), Ok(()));
        // Late but within the window: accepted once.
        assert_eq!(w.check(4000), Ok(()));
        w.accept(4000);
        assert_eq!(w.check(4000), Err(Replay::Duplicate));
        assert_eq!(w.check(5000 - REPLAY_WINDOW), Err(Replay::TooOld));
        // Sliding forward forgets the slots left behind, so they do not
        // alias newer indices.
        w.accept(5000 + REPLAY_WINDOW - 1);
        assert_eq!(w.check(5000 + REPLAY_WINDOW - 2), Ok(()));
        assert_eq!(w.check(4000 + REPLAY_WINDOW), Ok(()));
        assert_eq!(w.check(4000), Err(Replay::TooOld));
        assert_eq!(w.check(5000), Err(Replay::Duplicate));
        // A jump past the whole window clears it.
        w.accept(100_000);
        assert_eq!(w.check(100_000 - 1), Ok(()));
        assert_eq!(w.check(100_000), Err(Replay::Duplicate));
        assert_eq!(w.top(), 100_000);
    }
}
