//! Replay protection: generation + per-link sequence window.
//!
//! Every daemon start uses a larger generation (see `generation.rs`); within
//! a generation the sender numbers heartbeats 1, 2, 3... and sends each one
//! on every medium. Per node we remember the generation and the highest
//! sequence seen; per link, a 64-entry bitmap window. A heartbeat is fresh if
//! its generation is newer, or it is the same generation, not older than the
//! window behind the node's highest sequence, and not yet seen on that link.
//! Only authenticated heartbeats are checked (so forgeries cannot move the
//! window).

/// Window size (sequence numbers) per link.
pub const WINDOW: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// New heartbeat. `restarted`: the generation increased (peer restart).
    Fresh { restarted: bool },
    /// Already seen on this link (a network duplicate).
    Duplicate,
    /// Older than the window: a replay.
    Replay,
    /// Generation older than the one we know: a replay of a previous life.
    OldGeneration,
}

#[derive(Clone, Copy, Debug, Default)]
struct LinkWindow {
    highest: u64,
    /// Bit i set: `highest - i` seen.
    bits: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ReplayGuard {
    generation: Option<u64>,
    highest: u64,
    links: Vec<LinkWindow>,
}

impl ReplayGuard {
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Checks (and on success records) `seq` of `generation` on `link`.
    pub fn check(&mut self, link: usize, generation: u64, seq: u64) -> ReplayVerdict {
        let mut restarted = false;
        match self.generation {
            Some(g) if generation < g => return ReplayVerdict::OldGeneration,
            Some(g) if generation == g => {}
            known => {
                restarted = known.is_some();
                self.generation = Some(generation);
                self.highest = 0;
                self.links.clear();
            }
        }
        if self.links.len() <= link {
            self.links.resize(link + 1, LinkWindow::default());
        }
        if seq < self.highest && self.highest - seq >= WINDOW {
            return ReplayVerdict::Replay;
        }
        let w = &mut self.links[link];
        if seq > w.highest {
            let shift = seq - w.highest;
            w.bits = if shift >= 64 { 0 } else { w.bits << shift };
            w.bits |= 1;
            w.highest = seq;
        } else {
            let back = w.highest - seq;
            if back >= WINDOW {
                return ReplayVerdict::Replay;
            }
            if w.bits & (1 << back) != 0 {
                return ReplayVerdict::Duplicate;
            }
            w.bits |= 1 << back;
        }
        self.highest = self.highest.max(seq);
        ReplayVerdict::Fresh { restarted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplayVerdict::*;

    #[test]
    fn sequence_table() {
        // (link, generation, seq, expected)
        let steps: &[(usize, u64, u64, ReplayVerdict)] = &[
            (0, 5, 1, Fresh { restarted: false }),
            (0, 5, 2, Fresh { restarted: false }),
            (0, 5, 2, Duplicate),
            (1, 5, 2, Fresh { restarted: false }), // same seq on another medium
            (1, 5, 2, Duplicate),
            (0, 5, 4, Fresh { restarted: false }),
            (0, 5, 3, Fresh { restarted: false }), // reordered, inside window
            (0, 5, 3, Duplicate),
            (0, 5, 100, Fresh { restarted: false }),
            (0, 5, 36, Replay),                     // 100 - 36 >= 64
            (0, 5, 37, Fresh { restarted: false }), // 63 back: inside the window
            (1, 5, 30, Replay),                     // older than the node's window, on any link
            (1, 5, 40, Fresh { restarted: false }), // lost on link 1 earlier, still fresh
            (0, 4, 1000, OldGeneration),
            (0, 6, 1, Fresh { restarted: true }), // restart: windows reset
            (1, 6, 1, Fresh { restarted: false }),
            (0, 5, 101, OldGeneration),
        ];
        let mut g = ReplayGuard::default();
        for (i, (link, gen, seq, want)) in steps.iter().enumerate() {
            assert_eq!(
                g.check(*link, *gen, *seq),
                *want,
                "step {i}: link {link} gen {gen} seq {seq}"
            );
        }
        assert_eq!(g.generation(), Some(6));
    }

    #[test]
    fn huge_jumps_do_not_overflow() {
        let mut g = ReplayGuard::default();
        assert_eq!(g.check(0, 1, u64::MAX - 1), Fresh { restarted: false });
        assert_eq!(g.check(0, 1, u64::MAX), Fresh { restarted: false });
        assert_eq!(g.check(0, 1, 5), Replay);
        assert_eq!(g.check(0, 1, u64::MAX), Duplicate);
    }
}
