//! At most one warning a second of one kind. A warning that a request or a verification can cause
//! (LINE down, a full queue, a forged shared entry) would otherwise cost a log line per request
//! in an outage or a flood, and the log would become the bottleneck.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock;

/// "Nothing said yet": the clock counts from its first reading, so a first warning may come
/// within its first second, and 0 is a time like any other.
const NEVER: u64 = u64::MAX;

/// The throttle of one kind of warning.
pub(crate) struct LogThrottle {
    /// When it was last said, in [`clock::millis`].
    last: AtomicU64,
    /// How many were left out since.
    left_out: AtomicU64,
}

impl LogThrottle {
    pub(crate) const fn new() -> Self {
        Self {
            last: AtomicU64::new(NEVER),
            left_out: AtomicU64::new(0),
        }
    }

    /// `Some(left_out)` when the warning is to be said now, with how many were left out since
    /// the last time; `None` when it is left out.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(clock::millis(clock::now()))
    }

    /// [`admit`](Self::admit) at `now`: at most once a second, by one caller of those racing
    /// for it.
    fn admit_at(&self, now: u64) -> Option<u64> {
        let previous = self.last.load(Ordering::Relaxed);
        let due = previous == NEVER || now >= previous.saturating_add(1000);
        if due
            && self
                .last
                .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.left_out.swap(0, Ordering::Relaxed))
        } else {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_said_at_most_once_a_second_the_first_at_once() {
        let throttle = LogThrottle::new();
        assert_eq!(
            throttle.admit_at(0),
            Some(0),
            "the first, in the clock's first second"
        );
        assert_eq!(throttle.admit_at(999), None);
        assert_eq!(throttle.admit_at(1000), Some(1), "one was left out");
        assert_eq!(throttle.admit_at(1000), None, "once at one instant");
        assert_eq!(throttle.admit_at(1999), None);
        assert_eq!(throttle.admit_at(1999), None);
        assert_eq!(throttle.admit_at(5000), Some(3), "the count starts again");
        assert_eq!(throttle.admit_at(6000), Some(0));
    }
}
