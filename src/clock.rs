//! The one source of time for expiry decisions. Monotonic, so wall-clock jumps cannot stretch or
//! cut a token's lifetime; the cache takes `now` as an argument, so tests need no sleeping.

pub(crate) use std::time::Instant;

/// Now, for expiry decisions.
#[inline]
pub(crate) fn now() -> Instant {
    Instant::now()
}
