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

/// Now, as [`millis`], for the cache hit's freshness check, never earlier than the true time:
/// a verdict ends at most a few milliseconds early, never late.
///
/// On Linux this reads the kernel's coarse monotonic clock (about 5 ns, against about 30 ns for
/// `Instant::now()` on the VM of `BENCHMARKS.md`, where the hit costs ~250 ns in all): the same
/// clock as `Instant`, as of the last timer tick, so it lags by up to a tick. Two ticks are
/// added to make up for that.
#[inline]
pub(crate) fn now_millis() -> u64 {
    #[cfg(target_os = "linux")]
    {
        coarse::now_millis()
    }
    #[cfg(not(target_os = "linux"))]
    {
        millis(now())
    }
}

fn base() -> Instant {
    origin().instant
}

/// The clock's base, and on Linux the same moment as the kernel's monotonic clock read it.
struct Origin {
    instant: Instant,
    #[cfg(target_os = "linux")]
    coarse: coarse::Origin,
}

fn origin() -> &'static Origin {
    static ORIGIN: OnceLock<Origin> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        // Read before the base, so the base is never earlier than the kernel's reading of it,
        // and coarse readings counted from that reading are never behind `millis`.
        #[cfg(target_os = "linux")]
        let coarse = coarse::Origin::now();
        Origin {
            instant: Instant::now(),
            #[cfg(target_os = "linux")]
            coarse,
        }
    })
}

#[cfg(target_os = "linux")]
mod coarse {
    use rustix::time::{clock_getres, clock_gettime, ClockId, Timespec};

    pub(super) struct Origin {
        /// `CLOCK_MONOTONIC` (what `Instant` reads on Linux) at the base, in nanoseconds.
        monotonic_nanos: u64,
        /// How far a coarse reading may lag the true time: two of its ticks.
        lag_nanos: u64,
    }

    impl Origin {
        pub(super) fn now() -> Self {
            let tick = nanos(clock_getres(ClockId::MonotonicCoarse));
            Self {
                monotonic_nanos: nanos(clock_gettime(ClockId::Monotonic)),
                // A kernel without the coarse clock answers 0: then no lag, and no resolution
                // worth the name either; a millisecond covers the rounding below.
                lag_nanos: tick.saturating_mul(2).max(1_000_000),
            }
        }
    }

    fn nanos(at: Timespec) -> u64 {
        let seconds = u64::try_from(at.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(at.tv_nsec).unwrap_or(0);
        seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
    }

    #[inline]
    pub(super) fn now_millis() -> u64 {
        let origin = &super::origin().coarse;
        let now = nanos(clock_gettime(ClockId::MonotonicCoarse)).saturating_add(origin.lag_nanos);
        // Rounded up, where `millis` rounds deadlines down: both err early.
        now.saturating_sub(origin.monotonic_nanos)
            .div_ceil(1_000_000)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn now_millis_is_never_behind_the_clock_nor_far_ahead() {
        for _ in 0..1000 {
            let before = millis(now());
            let reading = now_millis();
            let after = millis(now());
            assert!(reading >= before, "{reading} behind {before}");
            // Ahead by at most the lag made up for (two ticks of at most 10 ms) and rounding.
            assert!(reading <= after + 25, "{reading} far ahead of {after}");
        }
        // And it moves: after a sleep it is not behind where the precise clock went.
        let start = millis(now());
        std::thread::sleep(Duration::from_millis(30));
        assert!(now_millis() >= start + 30);
    }
}
