//! The one source of time for expiry decisions. Monotonic, so wall-clock jumps cannot stretch or
//! cut a token's lifetime; the cache takes `now` as an argument, so tests need no sleeping.

use std::sync::OnceLock;

pub(crate) use std::time::Instant;

/// Now, for expiry decisions.
#[inline]
pub(crate) fn now() -> Instant {
    // Fix the base before the first reading, so no reading precedes it.
    let _ = base();
    Instant::now()
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `at` as whole milliseconds since the clock's base, rounded down: the compact form (half a
/// `std::time::Instant`) that cache entries keep. Rounding down makes deadlines err early.
#[inline]
pub(crate) fn millis(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base()).as_millis()).unwrap_or(u64::MAX)
}

/// The instant `millis` ([`millis`]) stands for.
#[inline]
pub(crate) fn from_millis(millis: u64) -> Instant {
    base() + std::time::Duration::from_millis(millis)
}
