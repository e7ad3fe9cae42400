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

/// How far [`coarse_millis`] is trusted to be from the true time: a deadline nearer than this
/// is decided on the precise clock.
pub(crate) const COARSE_MARGIN_MILLIS: u64 = 1_000;

/// Now as [`millis`], cheaply and approximately, for the cache hit: whether an entry is fresh by
/// more than [`COARSE_MARGIN_MILLIS`]. Nothing nearer a deadline may be decided on it.
///
/// On Linux this is the kernel's coarse monotonic clock, the clock `Instant` reads as of the
/// last timer tick (~5 ns, against ~30 ns for `Instant::now()` on the VM of `BENCHMARKS.md`,
/// where a whole hit costs ~250 ns). It is behind by up to a tick (a few ms), more if the
/// timekeeping CPU stalls, hence the margin. Elsewhere, or if the kernel refuses the coarse
/// clock, it is the precise clock.
#[inline]
pub(crate) fn coarse_millis() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(millis) = coarse::millis() {
        return millis;
    }
    millis(now())
}

fn base() -> Instant {
    origin().instant
}

/// The clock's base, and on Linux the kernel's monotonic clock read just before it.
struct Origin {
    instant: Instant,
    #[cfg(target_os = "linux")]
    monotonic_nanos: Option<u64>,
}

fn origin() -> &'static Origin {
    static ORIGIN: OnceLock<Origin> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        // The kernel's reading first: coarse readings counted from it then run ahead of `millis`
        // by the time until the base's own reading, which is the safe direction (an entry goes
        // to the precise clock sooner). A preemption in between would make that lead long, so
        // the pair is read again (a few times at most) until the two readings are close.
        #[cfg(target_os = "linux")]
        for attempt in 1..=3 {
            let monotonic_nanos = coarse::monotonic_nanos();
            let instant = Instant::now();
            let close = match (monotonic_nanos, coarse::monotonic_nanos()) {
                (Some(before), Some(after)) => after.saturating_sub(before) < 100_000,
                _ => true,
            };
            if close || attempt == 3 {
                return Origin {
                    instant,
                    monotonic_nanos,
                };
            }
        }
        Origin {
            instant: Instant::now(),
            #[cfg(target_os = "linux")]
            monotonic_nanos: None,
        }
    })
}

#[cfg(target_os = "linux")]
mod coarse {
    // rustix's libc backend: through glibc's vDSO handling, which valgrind understands (its raw
    // backend's own vDSO lookup crashes under valgrind, bytecodealliance/rustix#1559).
    use rustix::time::{clock_gettime_dynamic, ClockId, DynamicClockId, Timespec};

    /// `CLOCK_MONOTONIC` (what `Instant` reads on Linux) in nanoseconds.
    pub(super) fn monotonic_nanos() -> Option<u64> {
        read(ClockId::Monotonic)
    }

    /// The coarse clock as milliseconds since the base; `None` if the kernel refuses it.
    #[inline]
    pub(super) fn millis() -> Option<u64> {
        let origin = super::origin().monotonic_nanos?;
        let now = read(ClockId::MonotonicCoarse)?;
        Some(now.saturating_sub(origin) / 1_000_000)
    }

    #[inline]
    fn read(clock: ClockId) -> Option<u64> {
        clock_gettime_dynamic(DynamicClockId::Known(clock))
            .ok()
            .map(nanos)
    }

    #[inline]
    fn nanos(at: Timespec) -> u64 {
        let seconds = u64::try_from(at.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(at.tv_nsec).unwrap_or(0);
        seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
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

    /// The hit's cheap clock is the kernel's coarse one on Linux, not the precise fallback (which
    /// would answer the same, ~25 ns slower per hit).
    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_the_coarse_clock_is_the_kernels() {
        assert!(
            origin().monotonic_nanos.is_some(),
            "the base has its kernel reading"
        );
        assert!(coarse::millis().is_some());
    }

    #[test]
    fn the_coarse_clock_stays_well_within_its_margin_of_the_precise_one() {
        // Past the first tick after the base, so readings are not all zero.
        std::thread::sleep(Duration::from_millis(20));
        let within = |reading: u64, before: u64, after: u64| {
            // A tick behind at most, in practice; the margin is a hundred times that.
            assert!(
                reading + COARSE_MARGIN_MILLIS / 10 >= before,
                "{reading} far behind {before}"
            );
            // Ahead only by the time between the two readings of the base, microseconds.
            assert!(reading <= after + 1, "{reading} ahead of {after}");
        };
        for _ in 0..1000 {
            let before = millis(now());
            let reading = coarse_millis();
            within(reading, before, millis(now()));
        }
        // And it moves with the precise clock.
        let start = millis(now());
        std::thread::sleep(Duration::from_millis(200));
        let before = millis(now());
        let reading = coarse_millis();
        within(reading, before, millis(now()));
        assert!(
            reading >= start + 150,
            "{reading} did not move from {start}"
        );
    }
}
