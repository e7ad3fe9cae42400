//! [`Stats`]: what the layer has been doing, as cheap counters and a snapshot.
//!
//! Counters are sharded per thread (cache-line padded), so counting a cache hit on one core
//! does not bounce a cache line with the other cores; a snapshot sums the shards. A thread owns
//! its shard while it lives (up to [`OWNED`] threads at once), so it counts without a locked
//! instruction; threads beyond those share a few shards and count there with atomic adds.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::rejection::LineAuthError;

/// Shards a thread can own outright: one bit each in an [`Owners`].
const OWNED: usize = 64;

/// Shards for threads beyond [`OWNED`], shared round-robin.
const SHARED: usize = 8;

/// Shards in all: the owned ones first, then the shared ones.
const SHARDS: usize = OWNED + SHARED;

/// How many [`Event`]s are counted: a shard holds their counts first, at `event as usize`.
const EVENT_COUNT: usize = 13;
/// How many refusal reasons are counted, after the events.
const REASON_COUNT: usize = 8;
/// Buckets of the latency histogram, after the reasons: one per bound and one past the last.
const LATENCY_BUCKETS: usize = UpstreamLatency::BOUNDS_MS.len() + 1;
/// Where the latency histogram's buckets start in a shard; its sum follows them.
const LATENCY_AT: usize = EVENT_COUNT + REASON_COUNT;
/// Where the latency histogram's sum, in microseconds, is counted.
const LATENCY_SUM_AT: usize = LATENCY_AT + LATENCY_BUCKETS;
/// Counts in a shard.
const COUNTED: usize = LATENCY_SUM_AT + 1;

/// One shard: everything counted, side by side, so a thread counting touches its own lines only.
struct Shard([AtomicU64; COUNTED]);

impl Default for Shard {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// Where the current thread counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A shard only this thread writes: it counts with a plain load and store. An atomic add
    /// would be a locked instruction on x86, which waits for the thread's pending stores to
    /// drain: measurable on a cache hit, whose request was just moved about in memory.
    Owned(usize),
    /// One of the [`SHARED`] shards, counted with atomic adds.
    Shared(usize),
}

/// Which owned shards are taken. A thread claims the lowest free one when it first counts and
/// frees it when its thread-locals are destroyed, normally as it exits, so the shards go round
/// however many threads come and go. A thread whose thread-locals are never destroyed keeps its
/// shard: if all 64 were kept so, every thread would count on the shared ones, correctly but
/// with atomic adds.
///
/// Every write to `taken` is a read-modify-write, so each claim reads from the release sequence
/// of the last release of its bit: a plain store to it would break the hand-over.
struct Owners {
    taken: AtomicU64,
    next_shared: AtomicUsize,
}

impl Owners {
    const fn new() -> Self {
        Self {
            taken: AtomicU64::new(0),
            next_shared: AtomicUsize::new(0),
        }
    }

    fn claim(&self) -> Slot {
        let mut taken = self.taken.load(Ordering::Relaxed);
        while taken != u64::MAX {
            let free = (!taken).trailing_zeros();
            // Acquire: pairs with the previous owner's release, so this thread's first load
            // of each count sees that owner's last store.
            match self.taken.compare_exchange_weak(
                taken,
                taken | 1 << free,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Slot::Owned(free as usize),
                Err(now) => taken = now,
            }
        }
        Slot::Shared(self.next_shared.fetch_add(1, Ordering::Relaxed) % SHARED)
    }

    fn release(&self, slot: Slot) {
        if let Slot::Owned(i) = slot {
            self.taken.fetch_and(!(1 << i), Ordering::Release);
        }
    }
}

static OWNERS: Owners = Owners::new();

/// A thread's claim on its slot, given back when the thread's locals are destroyed.
struct Claim(Slot);

impl Drop for Claim {
    fn drop(&mut self) {
        OWNERS.release(self.0);
    }
}

/// This thread's slot, claimed on first use.
#[inline]
fn slot() -> Slot {
    thread_local! {
        static CLAIM: Claim = Claim(OWNERS.claim());
    }
    // Counting while the thread's locals are being destroyed, the claim perhaps already given
    // back: a shared shard.
    CLAIM.try_with(|claim| claim.0).unwrap_or(Slot::Shared(0))
}

/// Why requests were refused, by count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Rejections {
    /// No token (401).
    pub missing_token: u64,
    /// Another `Authorization` scheme (401).
    pub unsupported_scheme: u64,
    /// Malformed credentials (400).
    pub malformed: u64,
    /// Invalid, expired or revoked tokens (401).
    pub invalid_token: u64,
    /// Tokens of another channel (401).
    pub foreign_channel: u64,
    /// Missing scopes (403).
    pub insufficient_scope: u64,
    /// LINE unreachable (503).
    pub unavailable: u64,
    /// Cookie-authenticated state changes from another site (403).
    pub cross_site: u64,
}

/// How long verifications took to reach a verdict: a histogram in milliseconds, one sample per
/// verification with LINE (or the local ID-token check), a wait for a turn at LINE included.
/// Cache hits, coalesced waits and verdicts read from the shared cache add none.
///
/// As JSON (`serde`), e.g. in the example server's `GET /stats`:
/// `{"bounds_ms":[5,10,…,10000],"counts":[0,2,…,0],"count":2,"sum_ms":14}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UpstreamLatency {
    /// The buckets' upper bounds in milliseconds, inclusive: [`Self::BOUNDS_MS`].
    pub bounds_ms: [u64; 11],
    /// Verifications per bucket: `counts[i]` took more than `bounds_ms[i - 1]` (or nothing)
    /// and at most `bounds_ms[i]`; the last bucket counts those over the last bound.
    pub counts: [u64; 12],
    /// Verifications timed: the sum of `counts`.
    pub count: u64,
    /// Their total time in milliseconds (summed in microseconds, then rounded down).
    pub sum_ms: u64,
}

impl UpstreamLatency {
    /// The buckets' upper bounds, in milliseconds: from a loopback LINE's few milliseconds to
    /// ten seconds, past the default upstream timeout (3 s) for raised ones. Part of the API:
    /// changing them would be a breaking change.
    pub const BOUNDS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];
}

// The buckets are read in order: each bound above the one before.
const _: () = {
    let bounds = UpstreamLatency::BOUNDS_MS;
    let mut i = 1;
    while i < bounds.len() {
        assert!(bounds[i - 1] < bounds[i]);
        i += 1;
    }
};

impl Default for UpstreamLatency {
    fn default() -> Self {
        Self {
            bounds_ms: Self::BOUNDS_MS,
            counts: [0; LATENCY_BUCKETS],
            count: 0,
            sum_ms: 0,
        }
    }
}

/// A snapshot of the layer's counters since it was built.
///
/// With the `metrics` feature the same counters go to the `metrics` facade:
/// `line_auth_events_total{event}`, where `event` is a field's name in the singular (`cache_hit`,
/// `negative_hit`, `miss`, `coalesced`, `verified`, `refused`, `unavailable`, `served_stale`,
/// `shared_hit`, `shared_miss`, `shared_error`, `invalidation_published`,
/// `invalidation_received`), and `line_auth_rejections_total{reason}`, where `reason` is a
/// field of [`Rejections`] (`missing_token`, `unsupported_scheme`, `malformed`, `invalid_token`,
/// `foreign_channel`, `insufficient_scope`, `unavailable`, `cross_site`). Beside them,
/// `line_auth_upstream_seconds{outcome}` (`verified`, `refused`, `unavailable`: LINE's answer,
/// even where the layer then refuses a token LINE vouched for) is a histogram of each
/// verification's time to its verdict, a wait for a turn at LINE included (verdicts read from
/// the shared cache are not recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests let through from the verified cache.
    pub cache_hits: u64,
    /// Requests refused from the caches, without asking LINE: a token LINE refused before (the
    /// refused-token cache), or a verified one known to have expired.
    pub negative_hits: u64,
    /// Requests that started a verification.
    pub misses: u64,
    /// Requests that joined a verification already under way.
    pub coalesced: u64,
    /// Verifications that ended with a verified token.
    pub verified: u64,
    /// Verifications that ended refused: by LINE (or the local ID-token check, or the shared
    /// cache), or, LINE having vouched for the token, because it was signed out or expired
    /// before the verdict landed. (Where LINE could not answer, such a refusal counts under
    /// `unavailable`.)
    pub refused: u64,
    /// Verifications that could not reach LINE.
    pub unavailable: u64,
    /// Of those, the ones answered from a stale entry (stale-if-error).
    pub served_stale: u64,
    /// Verifications answered by the shared cache on Redis (feature `redis`), verified or
    /// refused, with no call to LINE.
    pub shared_hits: u64,
    /// Verifications the shared cache could not answer, which went on to LINE.
    pub shared_misses: u64,
    /// Redis calls that failed or timed out; each one is followed by a second without Redis,
    /// unless it began before a lost subscription came back.
    pub shared_errors: u64,
    /// Invalidations (forget, logout) this replica published to the fleet.
    pub invalidations_published: u64,
    /// Invalidations this replica received from the fleet (its own included).
    pub invalidations_received: u64,
    /// Refusals by reason, each request once (a coalesced wait too): those the layer answered,
    /// and those made inside it, by [`RequireScopesLayer`](crate::RequireScopesLayer), the
    /// [`LineUser`](crate::LineUser) extractor or a handler returning a
    /// [`LineAuthError`](crate::LineAuthError), as they pass back through it.
    pub rejections: Rejections,
    /// Each verification's time to its verdict.
    pub upstream_latency: UpstreamLatency,
    /// Verified tokens held now.
    pub verified_entries: u64,
    /// Refused tokens held now.
    pub refused_entries: u64,
}

/// The live counters behind [`Stats`].
pub(crate) struct Counters {
    /// `metrics` handles, registered once when the layer is built, so counting allocates and
    /// looks up nothing per request. Install the recorder before building the layer.
    #[cfg(feature = "metrics")]
    exported: Exported,
    shards: Box<[CachePadded<Shard>]>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            exported: Exported::default(),
            shards: (0..SHARDS).map(|_| CachePadded::default()).collect(),
        }
    }
}

#[cfg(feature = "metrics")]
struct Exported {
    events: [metrics::Counter; EVENTS.len()],
    rejections: [metrics::Counter; REASONS.len()],
}

#[cfg(feature = "metrics")]
const EVENTS: [&str; EVENT_COUNT] = [
    "cache_hit",
    "negative_hit",
    "miss",
    "coalesced",
    "verified",
    "refused",
    "unavailable",
    "served_stale",
    "shared_hit",
    "shared_miss",
    "shared_error",
    "invalidation_published",
    "invalidation_received",
];

#[cfg(feature = "metrics")]
const REASONS: [&str; REASON_COUNT] = [
    "missing_token",
    "unsupported_scheme",
    "malformed",
    "invalid_token",
    "foreign_channel",
    "insufficient_scope",
    "unavailable",
    "cross_site",
];

#[cfg(feature = "metrics")]
impl Default for Exported {
    fn default() -> Self {
        Self {
            events: EVENTS
                .map(|event| metrics::counter!("line_auth_events_total", "event" => event)),
            rejections: REASONS
                .map(|reason| metrics::counter!("line_auth_rejections_total", "reason" => reason)),
        }
    }
}

/// What happened to one request or one verification, for counting (in `EVENTS` order).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    CacheHit,
    NegativeHit,
    Miss,
    Coalesced,
    Verified,
    Refused,
    Unavailable,
    ServedStale,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    SharedHit,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    SharedMiss,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    SharedError,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    InvalidationPublished,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    InvalidationReceived,
}

const _: () = assert!(Event::InvalidationReceived as usize + 1 == EVENT_COUNT);
const _: () = assert!(Reason::CrossSite as usize + 1 == REASON_COUNT);

/// Why a request was refused, for counting (in `REASONS` order).
#[derive(Debug, Clone, Copy)]
enum Reason {
    MissingToken,
    UnsupportedScheme,
    Malformed,
    InvalidToken,
    ForeignChannel,
    InsufficientScope,
    Unavailable,
    CrossSite,
}

impl Reason {
    fn of(error: &LineAuthError) -> Self {
        match error {
            LineAuthError::MissingToken => Self::MissingToken,
            LineAuthError::UnsupportedScheme => Self::UnsupportedScheme,
            LineAuthError::Malformed(_) => Self::Malformed,
            LineAuthError::InvalidToken(_) => Self::InvalidToken,
            LineAuthError::ForeignChannel => Self::ForeignChannel,
            LineAuthError::InsufficientScope { .. } => Self::InsufficientScope,
            LineAuthError::Unavailable(_) => Self::Unavailable,
            LineAuthError::CrossSiteRequest => Self::CrossSite,
        }
    }
}

impl Counters {
    /// Adds `n` to the count at `index` ([`Event`]s first, then refusal reasons).
    #[inline]
    fn add(&self, index: usize, n: u64) {
        self.add_at(slot(), index, n);
    }

    #[inline]
    fn add_at(&self, slot: Slot, index: usize, n: u64) {
        match slot {
            Slot::Owned(i) => {
                // Only this thread writes here, so no update is lost between load and store.
                let count = &self.shards[i].0[index];
                count.store(
                    count.load(Ordering::Relaxed).wrapping_add(n),
                    Ordering::Relaxed,
                );
            }
            Slot::Shared(i) => {
                self.shards[OWNED + i].0[index].fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn total(&self, index: usize) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.0[index].load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    #[inline]
    pub(crate) fn record(&self, event: Event) {
        self.add(event as usize, 1);
        #[cfg(feature = "metrics")]
        self.exported.events[event as usize].increment(1);
    }

    /// Counts one verification's time to its verdict in the latency histogram.
    pub(crate) fn record_latency(&self, elapsed: std::time::Duration) {
        let bucket = UpstreamLatency::BOUNDS_MS
            .iter()
            .position(|&bound| elapsed <= std::time::Duration::from_millis(bound))
            .unwrap_or(LATENCY_BUCKETS - 1);
        let slot = slot();
        self.add_at(slot, LATENCY_AT + bucket, 1);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.add_at(slot, LATENCY_SUM_AT, micros);
    }

    /// Counts `n` requests refused with `error`.
    pub(crate) fn reject(&self, error: &LineAuthError, n: u64) {
        let reason = Reason::of(error);
        self.add(EVENT_COUNT + reason as usize, n);
        #[cfg(feature = "metrics")]
        self.exported.rejections[reason as usize].increment(n);
    }

    pub(crate) fn snapshot(&self, verified_entries: u64, refused_entries: u64) -> Stats {
        let event = |event: Event| self.total(event as usize);
        let reason = |reason: Reason| self.total(EVENT_COUNT + reason as usize);
        Stats {
            cache_hits: event(Event::CacheHit),
            negative_hits: event(Event::NegativeHit),
            misses: event(Event::Miss),
            coalesced: event(Event::Coalesced),
            verified: event(Event::Verified),
            refused: event(Event::Refused),
            unavailable: event(Event::Unavailable),
            served_stale: event(Event::ServedStale),
            shared_hits: event(Event::SharedHit),
            shared_misses: event(Event::SharedMiss),
            shared_errors: event(Event::SharedError),
            invalidations_published: event(Event::InvalidationPublished),
            invalidations_received: event(Event::InvalidationReceived),
            rejections: Rejections {
                missing_token: reason(Reason::MissingToken),
                unsupported_scheme: reason(Reason::UnsupportedScheme),
                malformed: reason(Reason::Malformed),
                invalid_token: reason(Reason::InvalidToken),
                foreign_channel: reason(Reason::ForeignChannel),
                insufficient_scope: reason(Reason::InsufficientScope),
                unavailable: reason(Reason::Unavailable),
                cross_site: reason(Reason::CrossSite),
            },
            upstream_latency: self.latency(),
            verified_entries,
            refused_entries,
        }
    }

    fn latency(&self) -> UpstreamLatency {
        let counts: [u64; LATENCY_BUCKETS] =
            std::array::from_fn(|bucket| self.total(LATENCY_AT + bucket));
        UpstreamLatency {
            counts,
            count: counts.iter().fold(0, |sum, &count| sum.wrapping_add(count)),
            sum_ms: self.total(LATENCY_SUM_AT) / 1_000,
            ..UpstreamLatency::default()
        }
    }
}

/// Records how long one verification took with LINE (feature `metrics`).
#[cfg(feature = "metrics")]
pub(crate) fn record_upstream_latency(outcome: &'static str, seconds: f64) {
    metrics::histogram!("line_auth_upstream_seconds", "outcome" => outcome).record(seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that fill the process's owned shards or need them free, so that they do
    /// not run at once under `cargo test` (nextest runs each test in a process of its own).
    static GLOBAL_SHARDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn global_shards() -> std::sync::MutexGuard<'static, ()> {
        GLOBAL_SHARDS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A time falls in the first bucket whose bound it does not pass, one over the last bound
    /// in the bucket past it, and the sum keeps what rounding each to milliseconds would lose.
    #[test]
    fn a_verifications_time_falls_in_the_first_bucket_that_bounds_it() {
        let counters = Counters::default();
        for millis in [5, 6, 10_000, 10_001, 3_600_000] {
            counters.record_latency(std::time::Duration::from_millis(millis));
        }
        counters.record_latency(std::time::Duration::from_micros(500));
        counters.record_latency(std::time::Duration::from_micros(700));

        let latency = counters.latency();
        assert_eq!(latency.bounds_ms, UpstreamLatency::BOUNDS_MS);
        assert_eq!(latency.counts, [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(latency.count, 7);
        assert_eq!(latency.sum_ms, 5 + 6 + 10_000 + 10_001 + 3_600_000 + 1);
    }

    #[test]
    fn threads_own_the_lowest_free_shard_until_they_give_it_back() {
        let owners = Owners::new();
        let slots: Vec<Slot> = (0..3).map(|_| owners.claim()).collect();
        assert_eq!(slots, [Slot::Owned(0), Slot::Owned(1), Slot::Owned(2)]);
        owners.release(Slot::Owned(1));
        assert_eq!(owners.claim(), Slot::Owned(1));
        assert_eq!(owners.claim(), Slot::Owned(3));
    }

    #[test]
    fn threads_beyond_the_owned_shards_share_the_rest() {
        let owners = Owners::new();
        for i in 0..OWNED {
            assert_eq!(owners.claim(), Slot::Owned(i));
        }
        let shared: Vec<Slot> = (0..SHARED + 1).map(|_| owners.claim()).collect();
        assert_eq!(shared[0], Slot::Shared(0));
        assert_eq!(shared[SHARED - 1], Slot::Shared(SHARED - 1));
        assert_eq!(shared[SHARED], Slot::Shared(0));
        owners.release(Slot::Shared(0));
        owners.release(Slot::Owned(5));
        assert_eq!(owners.claim(), Slot::Owned(5));
    }

    #[test]
    fn a_thread_gives_its_shard_back_when_it_exits() {
        let _global = global_shards();
        // More threads than there are owned shards, one after another: each finds one free.
        for _ in 0..2 * OWNED {
            let slot = std::thread::spawn(slot).join().unwrap();
            assert!(matches!(slot, Slot::Owned(_)), "{slot:?}");
        }
    }

    #[test]
    fn each_slot_counts_on_its_own_shard() {
        let counters = Counters::default();
        let slots = (0..OWNED)
            .map(Slot::Owned)
            .chain((0..SHARED).map(Slot::Shared));
        for (shard, slot) in slots.enumerate() {
            counters.add_at(slot, Event::Verified as usize, 1);
            assert_eq!(
                counters.shards[shard].0[Event::Verified as usize].load(Ordering::Relaxed),
                1,
                "{slot:?}"
            );
        }
        assert_eq!(counters.snapshot(0, 0).verified, SHARDS as u64);
    }

    #[test]
    fn threads_alive_at_once_never_own_one_shard() {
        let _global = global_shards();
        for _ in 0..10 {
            let barrier = std::sync::Barrier::new(8);
            // Explicit joins: a scope's own join returns before a thread's locals are destroyed,
            // that is before it gives its shard back.
            let slots: Vec<Slot> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            // All claim at once, and hold on until everyone has.
                            barrier.wait();
                            let slot = slot();
                            barrier.wait();
                            slot
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let owned: Vec<usize> = slots
                .iter()
                .filter_map(|slot| match slot {
                    Slot::Owned(i) => Some(*i),
                    Slot::Shared(_) => None,
                })
                .collect();
            let distinct: std::collections::HashSet<_> = owned.iter().collect();
            assert_eq!(
                distinct.len(),
                owned.len(),
                "two live threads own one shard"
            );
        }
    }

    #[test]
    fn a_shard_handed_over_keeps_its_counts() {
        let _global = global_shards();
        let counters = Counters::default();
        let mut handed_over = 0;
        let mut previous = None;
        for n in 1..=20 {
            let counters = &counters;
            let slot = std::thread::scope(|scope| {
                let thread = scope.spawn(move || {
                    counters.reject(&LineAuthError::MissingToken, n);
                    slot()
                });
                // Joined: the thread's locals, its claim among them, are gone.
                thread.join().unwrap()
            });
            handed_over += usize::from(previous == Some(slot));
            previous = Some(slot);
        }
        // The lowest free shard: the one just given back, unless another test's thread took it.
        assert!(handed_over >= 10, "{handed_over} hand-overs in 20 threads");
        assert_eq!(
            counters.snapshot(0, 0).rejections.missing_token,
            (1..=20).sum::<u64>()
        );
    }

    #[test]
    fn threads_sharing_a_shard_lose_no_count() {
        const ROUNDS: u64 = 1_000_000;
        let counters = Counters::default();
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    barrier.wait();
                    for _ in 0..ROUNDS {
                        counters.add_at(Slot::Shared(0), Event::Miss as usize, 1);
                    }
                });
            }
        });
        assert_eq!(counters.snapshot(0, 0).misses, 2 * ROUNDS);
    }

    #[test]
    fn counts_add_up_with_more_threads_than_owned_shards() {
        const ROUNDS: u64 = 1000;
        let _global = global_shards();
        let counters = Counters::default();
        let threads = OWNED + 2 * SHARED;
        let barrier = std::sync::Barrier::new(threads);
        let slots: Vec<Slot> = std::thread::scope(|scope| {
            let running: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        for _ in 0..ROUNDS {
                            counters.record(Event::Miss);
                        }
                        // All alive at once: some counted on shared shards, several to a shard.
                        barrier.wait();
                        slot()
                    })
                })
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(slots.iter().any(|slot| matches!(slot, Slot::Shared(_))));
        assert_eq!(counters.snapshot(0, 0).misses, threads as u64 * ROUNDS);
    }

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = Counters::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counters.record(Event::CacheHit);
                    }
                });
            }
        });
        counters.reject(&LineAuthError::ForeignChannel, 3);
        let stats = counters.snapshot(5, 7);
        assert_eq!(stats.cache_hits, 8000);
        assert_eq!(stats.rejections.foreign_channel, 3);
        assert_eq!((stats.verified_entries, stats.refused_entries), (5, 7));
    }
}
