//! [`Stats`]: what the layer has been doing, as cheap counters and a snapshot.
//!
//! Counters are sharded per thread (cache-line padded), so counting a cache hit on one core
//! does not bounce a cache line with the other cores; a snapshot sums the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::rejection::LineAuthError;

const SHARDS: usize = 16;

/// A counter whose increments from different threads land on different cache lines.
struct Counter([CachePadded<AtomicU64>; SHARDS]);

impl Default for Counter {
    fn default() -> Self {
        Self(std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))))
    }
}

impl Counter {
    #[inline]
    fn add(&self, n: u64) {
        self.0[shard()].fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|shard| shard.load(Ordering::Relaxed))
            .sum()
    }
}

/// This thread's shard, assigned round-robin on first use.
#[inline]
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
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

/// A snapshot of the layer's counters since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests answered from the verified cache.
    pub cache_hits: u64,
    /// Requests answered from the refused cache (a token LINE refused before).
    pub negative_hits: u64,
    /// Requests that started a verification.
    pub misses: u64,
    /// Requests that joined a verification already under way.
    pub coalesced: u64,
    /// Verifications that ended with a verified token.
    pub verified: u64,
    /// Verifications LINE (or the local ID-token check) refused.
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
    /// Redis calls that failed or timed out; each one is followed by a second without Redis.
    pub shared_errors: u64,
    /// Invalidations (forget, logout) this replica published to the fleet.
    pub invalidations_published: u64,
    /// Invalidations this replica received from the fleet (its own included).
    pub invalidations_received: u64,
    /// Refusals by reason.
    pub rejections: Rejections,
    /// Verified tokens held now.
    pub verified_entries: u64,
    /// Refused tokens held now.
    pub refused_entries: u64,
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    /// `metrics` handles, registered once when the layer is built, so counting allocates and
    /// looks up nothing per request. Install the recorder before building the layer.
    #[cfg(feature = "metrics")]
    exported: Exported,
    cache_hits: Counter,
    negative_hits: Counter,
    misses: Counter,
    coalesced: Counter,
    verified: Counter,
    refused: Counter,
    unavailable: Counter,
    served_stale: Counter,
    shared_hits: Counter,
    shared_misses: Counter,
    shared_errors: Counter,
    invalidations_published: Counter,
    invalidations_received: Counter,
    missing_token: Counter,
    unsupported_scheme: Counter,
    malformed: Counter,
    invalid_token: Counter,
    foreign_channel: Counter,
    insufficient_scope: Counter,
    rejected_unavailable: Counter,
    rejected_cross_site: Counter,
}

#[cfg(feature = "metrics")]
struct Exported {
    events: [metrics::Counter; EVENTS.len()],
    rejections: [metrics::Counter; REASONS.len()],
}

#[cfg(feature = "metrics")]
const EVENTS: [&str; 13] = [
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
const REASONS: [&str; 8] = [
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

impl Counters {
    #[inline]
    pub(crate) fn record(&self, event: Event) {
        let counter = match event {
            Event::CacheHit => &self.cache_hits,
            Event::NegativeHit => &self.negative_hits,
            Event::Miss => &self.misses,
            Event::Coalesced => &self.coalesced,
            Event::Verified => &self.verified,
            Event::Refused => &self.refused,
            Event::Unavailable => &self.unavailable,
            Event::ServedStale => &self.served_stale,
            Event::SharedHit => &self.shared_hits,
            Event::SharedMiss => &self.shared_misses,
            Event::SharedError => &self.shared_errors,
            Event::InvalidationPublished => &self.invalidations_published,
            Event::InvalidationReceived => &self.invalidations_received,
        };
        counter.add(1);
        #[cfg(feature = "metrics")]
        self.exported.events[event as usize].increment(1);
    }

    /// Counts `n` requests refused with `error`.
    pub(crate) fn reject(&self, error: &LineAuthError, n: u64) {
        // The index follows REASONS.
        let (counter, _index) = match error {
            LineAuthError::MissingToken => (&self.missing_token, 0),
            LineAuthError::UnsupportedScheme => (&self.unsupported_scheme, 1),
            LineAuthError::Malformed(_) => (&self.malformed, 2),
            LineAuthError::InvalidToken(_) => (&self.invalid_token, 3),
            LineAuthError::ForeignChannel => (&self.foreign_channel, 4),
            LineAuthError::InsufficientScope { .. } => (&self.insufficient_scope, 5),
            LineAuthError::Unavailable(_) => (&self.rejected_unavailable, 6),
            LineAuthError::CrossSiteRequest => (&self.rejected_cross_site, 7),
        };
        counter.add(n);
        #[cfg(feature = "metrics")]
        self.exported.rejections[_index].increment(n);
    }

    pub(crate) fn snapshot(&self, verified_entries: u64, refused_entries: u64) -> Stats {
        Stats {
            cache_hits: self.cache_hits.get(),
            negative_hits: self.negative_hits.get(),
            misses: self.misses.get(),
            coalesced: self.coalesced.get(),
            verified: self.verified.get(),
            refused: self.refused.get(),
            unavailable: self.unavailable.get(),
            served_stale: self.served_stale.get(),
            shared_hits: self.shared_hits.get(),
            shared_misses: self.shared_misses.get(),
            shared_errors: self.shared_errors.get(),
            invalidations_published: self.invalidations_published.get(),
            invalidations_received: self.invalidations_received.get(),
            rejections: Rejections {
                missing_token: self.missing_token.get(),
                unsupported_scheme: self.unsupported_scheme.get(),
                malformed: self.malformed.get(),
                invalid_token: self.invalid_token.get(),
                foreign_channel: self.foreign_channel.get(),
                insufficient_scope: self.insufficient_scope.get(),
                unavailable: self.rejected_unavailable.get(),
                cross_site: self.rejected_cross_site.get(),
            },
            verified_entries,
            refused_entries,
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

    #[test]
    fn threads_count_on_shards_of_their_own() {
        let of_a_new_thread = || std::thread::spawn(shard).join().unwrap();
        // Round-robin: consecutive threads differ (another test's threads taking exactly a
        // multiple of SHARDS in between is the only way they could not).
        assert_ne!(of_a_new_thread(), of_a_new_thread());
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
