//! How many of a command's lines become run progress: every line while it prints a few,
//! at most [`PER_SECOND`] a second and [`MAX_LINES`] in all when it prints many, so a
//! chatty training loop cannot flood the run's history. What is held back is counted and
//! said.

use std::time::{Duration, Instant};

/// Lines passed on per second, at most.
pub const PER_SECOND: u32 = 20;
/// Lines passed on per command, at most.
pub const MAX_LINES: u32 = 2000;

/// Counts lines and decides which to pass on.
#[derive(Debug)]
pub struct Throttle {
    window: Instant,
    in_window: u32,
    passed: u32,
    held: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            window: Instant::now(),
            in_window: 0,
            passed: 0,
            held: 0,
        }
    }
}

impl Throttle {
    /// Whether the next line may pass at `now`.
    pub fn admit(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.in_window = 0;
        }
        if self.in_window >= PER_SECOND || self.passed >= MAX_LINES {
            self.held += 1;
            return false;
        }
        self.in_window += 1;
        self.passed += 1;
        true
    }

    /// Lines held back so far.
    pub fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests;
