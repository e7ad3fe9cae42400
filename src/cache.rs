//! The verified-token store and the refused-token store: each bounded on its own. Verified tokens
//! are keyed by [`CacheKey`] (a keyed PRF of the token, cheap on every hit), refused ones by
//! [`TokenDigest`] (they are looked up on the miss path, where the digest is computed anyway). A
//! verified token is never trusted past its own expiry or the maximum TTL; a refused one is
//! refused without LINE for a short TTL.
//!
//! The verified store is a [`Table`] of its own, laid out so a hit over many tokens reads few
//! lines (see its module); the refused store is `quick_cache` (S3-FIFO eviction). In both a
//! lookup is one sharded read with no allocation, and the bound holds without a background task.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::UnitWeighter;

use crate::clock::{self, Instant};
use crate::rejection::LineAuthError;
use crate::token::{CacheKey, DigestHashBuilder, TokenDigest, TokenIds};
use crate::user::LineUser;

mod table;

use table::Table;

/// Slots reserved up front, so a generous bound costs no memory until it is used.
const PREALLOCATED_ENTRIES: usize = 4096;

/// What the layer's checks need of a verified token, kept in the cache entry itself so a hit
/// re-checks it without reaching into the user's data (which, with many tokens, is a cache miss
/// away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Index of the token's channel among the configured channels; `u16::MAX` if none.
    pub(crate) channel: u16,
    /// Bit `i` set: the token carries the layer's required scope `i`.
    pub(crate) scopes: u32,
}

/// A verified token as remembered. Times are [`clock::millis`], to keep entries small.
#[derive(Clone)]
pub(crate) struct CachedToken {
    user: LineUser,
    grant: Grant,
    /// When the token itself expires, per LINE's `expires_in` counted from the verify call.
    token_expires: u64,
    /// When this verdict must be asked of LINE again: the token's expiry or the maximum TTL.
    fresh_until: u64,
}

/// What the store knows about a token.
pub(crate) enum Cached {
    /// Verified and still fresh.
    Fresh(LineUser, Grant),
    /// Verified before, but the token's own expiry has passed.
    Expired,
    /// Nothing usable: ask LINE.
    Unknown,
}

/// Which cache key each digest stands for, for the fleet's invalidations: another replica names
/// a token by its SHA-256 digest only, and this process's [`CacheKey`] of it cannot be derived
/// from that. Kept only when the layer shares a fleet; its hits never touch it.
///
/// The invariant: **every key in the store has its digest here.** It holds because
///
/// - every insertion into the store goes through [`VerifiedCache::insert_entry`], which records
///   the digest first, and does both under this lock;
/// - a digest leaves the index only under this lock, either with its store entry
///   ([`VerifiedCache::remove_digest`], [`VerifiedCache::remove`]), or when pruning finds its
///   key gone from the store, which no insertion can race (they hold the lock).
///
/// Removals from the store alone (eviction, a user's sign-out) leave a digest behind whose key
/// is gone: harmless, since a digest and a key are both functions of the token, so the pair
/// stays true; removing it later removes nothing, or the same token's newer entry, as it should.
/// Such leftovers are pruned when the index reaches twice the store's size (plus some slack), so
/// it stays within about twice the store, and the scan is paid once per that many insertions, on
/// the miss path.
type DigestIndex = Mutex<HashMap<TokenDigest, CacheKey, DigestHashBuilder>>;

/// Leftover digests tolerated beyond twice the store's size before the index is pruned.
const INDEX_SLACK: usize = 1024;

pub(crate) struct VerifiedCache {
    entries: Table<CachedToken>,
    /// `Some` when invalidations can arrive by digest alone (a fleet is configured).
    index: Option<DigestIndex>,
    max_ttl: Duration,
    /// Stale-if-error: how long past `fresh_until` an entry is kept as a fallback.
    stale_grace: Option<Duration>,
}

impl VerifiedCache {
    /// `by_digest`: invalidations will name tokens by their digest alone (a fleet), so keep
    /// the index that makes [`remove_digest`](Self::remove_digest) exact.
    pub(crate) fn new(
        max_entries: usize,
        max_ttl: Duration,
        stale_grace: Option<Duration>,
        by_digest: bool,
    ) -> Self {
        Self {
            entries: Table::new(max_entries, PREALLOCATED_ENTRIES),
            index: by_digest.then(DigestIndex::default),
            max_ttl,
            stale_grace,
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: &CacheKey, now: Instant) -> Cached {
        match self.entries.get(key) {
            Some(entry) => Self::judge(entry, clock::millis(now)),
            None => Cached::Unknown,
        }
    }

    /// [`get`](Self::get) now, for the hit path: an entry fresh by more than the coarse clock's
    /// margin is decided on that clock (a few ns); one nearer its end, on the precise clock.
    /// Every `fresh_until` is at most the token's expiry, so that is never passed either.
    #[inline]
    pub(crate) fn get_now(&self, key: &CacheKey) -> Cached {
        let Some(entry) = self.entries.get(key) else {
            return Cached::Unknown;
        };
        if clock::coarse_millis().saturating_add(clock::COARSE_MARGIN_MILLIS) < entry.fresh_until {
            return Cached::Fresh(entry.user, entry.grant);
        }
        Self::judge(entry, clock::millis(clock::now()))
    }

    /// What `entry` says at `now` (in [`clock::millis`]).
    #[inline]
    fn judge(entry: CachedToken, now: u64) -> Cached {
        if now < entry.fresh_until {
            Cached::Fresh(entry.user, entry.grant)
        } else if now >= entry.token_expires {
            // An expired token never becomes valid again: keep answering locally until evicted.
            Cached::Expired
        } else {
            // Stale: LINE is asked again, and its answer replaces or removes the entry (or the
            // bound evicts it). Until then the entry says the token was verified here before,
            // so its re-check is not queued behind first-time tokens, and it can be served
            // under stale-if-error.
            Cached::Unknown
        }
    }

    /// Stale-if-error: the user behind a verified token whose entry is stale, but within the
    /// grace, and whose own expiry has not passed.
    pub(crate) fn stale(&self, key: &CacheKey, now: Instant) -> Option<(LineUser, Grant)> {
        let now = clock::millis(now);
        let entry = self.entries.get(key)?;
        (now < entry.token_expires && self.within_grace(&entry, now))
            .then_some((entry.user, entry.grant))
    }

    fn within_grace(&self, entry: &CachedToken, now: u64) -> bool {
        self.stale_grace.is_some_and(|grace| {
            let grace = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
            now < entry.fresh_until.saturating_add(grace)
        })
    }

    /// Remembers a verified token. `verified_at` is when the verify call was made, so the expiry
    /// errs early rather than late.
    #[cfg(test)]
    pub(crate) fn insert(
        &self,
        token: TokenIds,
        user: LineUser,
        grant: Grant,
        verified_at: Instant,
        expires_in: Duration,
    ) {
        self.insert_until_fresh(
            token,
            user,
            grant,
            verified_at,
            verified_at + expires_in,
            verified_at + self.max_ttl,
        );
    }

    /// Remembers a verified token until `fresh_until`, capped by its own expiry and the maximum
    /// TTL counted from `now` (a verdict another replica shared keeps that replica's deadline).
    /// Returns the deadline applied, or `None` if the verdict is already stale and was not kept.
    pub(crate) fn insert_until_fresh(
        &self,
        token: TokenIds,
        user: LineUser,
        grant: Grant,
        now: Instant,
        token_expires: Instant,
        fresh_until: Instant,
    ) -> Option<Instant> {
        let fresh_until = fresh_until.min(token_expires).min(now + self.max_ttl);
        if fresh_until <= now {
            return None;
        }
        self.insert_entry(
            token,
            CachedToken {
                user,
                grant,
                token_expires: clock::millis(token_expires),
                fresh_until: clock::millis(fresh_until),
            },
        );
        Some(fresh_until)
    }

    /// The one way into the store: with an index, the digest is recorded first, under its lock
    /// (see [`DigestIndex`]).
    fn insert_entry(&self, token: TokenIds, entry: CachedToken) {
        let TokenIds { key, digest } = token;
        let Some(index) = &self.index else {
            self.entries.insert(key, entry);
            return;
        };
        let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
        if index.len() >= 2 * self.entries.len() + INDEX_SLACK {
            // Pruned before this digest goes in, whose entry is not in the store yet.
            index.retain(|_, key| self.entries.peek(key).is_some());
        }
        index.insert(digest, key);
        self.entries.insert(key, entry);
    }

    /// The channel index of a cached token, fresh or not (for revoking it at LINE).
    pub(crate) fn channel_of(&self, key: &CacheKey) -> Option<u16> {
        self.entries.peek(key).map(|entry| entry.grant.channel)
    }

    /// The user of a cached token, fresh or not: a token verified here before.
    pub(crate) fn user_of(&self, key: &CacheKey) -> Option<LineUser> {
        self.entries.peek(key).map(|entry| entry.user)
    }

    /// When a cached token expires, fresh or not (for how long a sign-out must stand).
    pub(crate) fn token_expiry(&self, key: &CacheKey) -> Option<Instant> {
        self.entries
            .peek(key)
            .map(|entry| clock::from_millis(entry.token_expires))
    }

    /// Drops a token whose key and digest are both known (it was in hand); whether it was held.
    pub(crate) fn remove(&self, token: &TokenIds) -> bool {
        match &self.index {
            Some(index) => {
                let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
                index.remove(&token.digest);
                self.entries.remove(&token.key)
            }
            None => self.entries.remove(&token.key),
        }
    }

    /// Drops a token known only by its digest (another replica's invalidation), through the
    /// index. Without one (no fleet, so this is never called) it errs on the safe side and
    /// drops everything.
    pub(crate) fn remove_digest(&self, digest: &TokenDigest) {
        match &self.index {
            Some(index) => {
                let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(key) = index.remove(digest) {
                    self.entries.remove(&key);
                }
            }
            None => {
                debug_assert!(false, "an invalidation by digest needs the digest index");
                self.clear();
            }
        }
    }

    /// Drops every token of `user_id`: a scan, for the rare sign-out-everywhere.
    pub(crate) fn remove_user(&self, user_id: &str) {
        self.entries
            .retain(|_, entry| entry.user.user_id() != user_id);
    }

    pub(crate) fn clear(&self) {
        match &self.index {
            Some(index) => {
                let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
                self.entries.clear();
                index.clear();
            }
            None => self.entries.clear(),
        }
    }

    /// Trusts a token until `token_expires`, regardless of the maximum TTL (the test kit's fixed
    /// tokens). Capacity still applies.
    #[cfg(feature = "testing")]
    pub(crate) fn insert_until(
        &self,
        token: TokenIds,
        user: LineUser,
        grant: Grant,
        token_expires: Instant,
    ) {
        let token_expires = clock::millis(token_expires);
        self.insert_entry(
            token,
            CachedToken {
                user,
                grant,
                token_expires,
                fresh_until: token_expires,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    fn index_len(&self) -> usize {
        self.index
            .as_ref()
            .map_or(0, |index| index.lock().unwrap().len())
    }
}

/// A token LINE refused, and until when ([`clock::millis`]) that stands.
#[derive(Clone)]
struct Refused {
    error: LineAuthError,
    until: u64,
}

/// Tokens LINE refused, remembered for a short TTL so repeated junk costs LINE nothing.
pub(crate) struct RefusedCache {
    entries: RefusedStore,
    ttl: Duration,
}

type RefusedStore = Cache<
    TokenDigest,
    Refused,
    UnitWeighter,
    DigestHashBuilder,
    DefaultLifecycle<TokenDigest, Refused>,
>;

impl RefusedCache {
    pub(crate) fn new(max_entries: usize, ttl: Duration) -> Self {
        let store = |bound: u64| {
            Cache::with(
                // Preallocate modestly; the table grows up to the bound as tokens arrive.
                max_entries.min(PREALLOCATED_ENTRIES),
                bound,
                UnitWeighter,
                DigestHashBuilder::default(),
                DefaultLifecycle::default(),
            )
        };
        let bound = max_entries as u64;
        let mut entries = store(bound);
        // `quick_cache` gives each shard its share rounded up, so the shards together may hold
        // up to one entry per shard more than asked. Rounding the bound down to a multiple of the
        // shard count (set by the preallocation, not the bound) keeps it a bound.
        if entries.capacity() > bound {
            let shards = entries.num_shards() as u64;
            entries = store((bound / shards * shards).max(1));
        }
        Self { entries, ttl }
    }

    pub(crate) fn get(&self, digest: &TokenDigest, now: Instant) -> Option<LineAuthError> {
        let refused = self.entries.get(digest)?;
        if clock::millis(now) < refused.until {
            Some(refused.error)
        } else {
            self.remove_expired(digest, now);
            None
        }
    }

    /// Removes `digest`'s refusal if it has expired by `now`: checked under the shard's lock, so
    /// a newer refusal put there since it was read (another request's, a sign-out's) stays.
    fn remove_expired(&self, digest: &TokenDigest, now: Instant) {
        let now = clock::millis(now);
        self.entries
            .remove_if(digest, |refused| now >= refused.until);
    }

    pub(crate) fn remove(&self, digest: &TokenDigest) {
        self.entries.remove(digest);
    }

    pub(crate) fn clear(&self) {
        self.entries.clear();
    }

    /// Remembers LINE's refusal. An outage is not a refusal and is never remembered.
    pub(crate) fn insert(&self, digest: TokenDigest, error: &LineAuthError, now: Instant) {
        if self.ttl.is_zero() || matches!(error, LineAuthError::Unavailable(_)) {
            return;
        }
        let refused = Refused {
            error: error.clone(),
            until: clock::millis(now + self.ttl),
        };
        self.entries.insert(digest, refused);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> LineUser {
        LineUser::for_tests("U0")
    }

    const SECOND: Duration = Duration::from_secs(1);
    const GRANT: Grant = Grant {
        channel: 0,
        scopes: 1,
    };
    use crate::clock;

    #[test]
    fn entry_is_fresh_until_the_max_ttl_then_asked_again() {
        let cache = VerifiedCache::new(10, 5 * SECOND, None, false);
        let digest = TokenIds::of("t");
        let t0 = clock::now();
        cache.insert(digest, user(), GRANT, t0, 60 * SECOND);
        assert!(matches!(
            cache.get(&digest.key, t0 + 4 * SECOND),
            Cached::Fresh(_, GRANT)
        ));
        assert!(matches!(
            cache.get(&digest.key, t0 + 5 * SECOND),
            Cached::Unknown
        ));
        // Kept until LINE's answer replaces it: the token is known, for its re-check's turn.
        assert!(
            cache.user_of(&digest.key).is_some(),
            "a stale entry is kept"
        );
    }

    #[test]
    fn the_hit_path_decides_an_entry_at_its_end_on_the_precise_clock() {
        // The coarse clock lags by up to a tick: at the moment the entry ends, it would often
        // still read "before", and serve the entry a few ms late.
        let cache = VerifiedCache::new(10, 300 * SECOND, None, false);
        for i in 0..20 {
            let digest = TokenIds::of(&format!("t{i}"));
            let t0 = clock::now();
            cache.insert(digest, user(), GRANT, t0, Duration::from_millis(30));
            let ends = clock::millis(t0 + Duration::from_millis(30));
            let before_its_end = cache.get_now(&digest.key);
            // Unless this thread was held up past the end itself.
            if clock::millis(clock::now()) < ends {
                assert!(matches!(before_its_end, Cached::Fresh(..)));
            }
            while clock::millis(clock::now()) < ends {
                std::hint::spin_loop();
            }
            assert!(
                matches!(cache.get_now(&digest.key), Cached::Expired),
                "served at its end"
            );
        }
    }

    #[test]
    fn entry_never_outlives_the_token() {
        let cache = VerifiedCache::new(10, 300 * SECOND, None, false);
        let digest = TokenIds::of("t");
        let t0 = clock::now();
        cache.insert(digest, user(), GRANT, t0, 2 * SECOND);
        assert!(matches!(
            cache.get(&digest.key, t0 + SECOND),
            Cached::Fresh(..)
        ));
        assert!(matches!(
            cache.get(&digest.key, t0 + 2 * SECOND),
            Cached::Expired
        ));
        assert!(
            matches!(cache.get(&digest.key, t0 + 3 * SECOND), Cached::Expired),
            "expiry is remembered"
        );
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = VerifiedCache::new(10, Duration::ZERO, None, false);
        let digest = TokenIds::of("t");
        let t0 = clock::now();
        cache.insert(digest, user(), GRANT, t0, 60 * SECOND);
        assert!(matches!(cache.get(&digest.key, t0), Cached::Unknown));
    }

    #[test]
    fn table_grows_past_the_preallocation_up_to_the_bound() {
        let cache = VerifiedCache::new(3 * PREALLOCATED_ENTRIES, 300 * SECOND, None, false);
        let t0 = clock::now();
        for i in 0..2 * PREALLOCATED_ENTRIES {
            cache.insert(TokenIds::of(&i.to_string()), user(), GRANT, t0, 60 * SECOND);
        }
        assert!(
            cache.len() > PREALLOCATED_ENTRIES * 3 / 2,
            "{} entries",
            cache.len()
        );
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = VerifiedCache::new(100, 300 * SECOND, None, false);
        let t0 = clock::now();
        for i in 0..1_000 {
            cache.insert(TokenIds::of(&i.to_string()), user(), GRANT, t0, 60 * SECOND);
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
    }

    #[test]
    fn stale_entry_is_kept_for_the_grace_only_while_the_token_lives() {
        let cache = VerifiedCache::new(10, 5 * SECOND, Some(10 * SECOND), false);
        let digest = TokenIds::of("t");
        let t0 = clock::now();
        cache.insert(digest, user(), GRANT, t0, 12 * SECOND);
        assert!(matches!(
            cache.get(&digest.key, t0 + 6 * SECOND),
            Cached::Unknown
        ));
        assert!(
            cache.stale(&digest.key, t0 + 6 * SECOND).is_some(),
            "stale within the grace"
        );
        assert!(
            cache.stale(&digest.key, t0 + 12 * SECOND).is_none(),
            "never past the token's expiry"
        );
        let long_lived = TokenIds::of("long");
        cache.insert(long_lived, user(), GRANT, t0, 60 * SECOND);
        assert!(cache.stale(&long_lived.key, t0 + 14 * SECOND).is_some());
        assert!(matches!(
            cache.get(&long_lived.key, t0 + 15 * SECOND),
            Cached::Unknown
        ));
        assert!(
            cache.stale(&long_lived.key, t0 + 15 * SECOND).is_none(),
            "never past the grace"
        );
    }

    #[test]
    fn without_stale_if_error_a_stale_entry_is_never_served_stale() {
        let cache = VerifiedCache::new(10, 5 * SECOND, None, false);
        let digest = TokenIds::of("t");
        let t0 = clock::now();
        cache.insert(digest, user(), GRANT, t0, 60 * SECOND);
        assert!(matches!(
            cache.get(&digest.key, t0 + 6 * SECOND),
            Cached::Unknown
        ));
        assert!(cache.stale(&digest.key, t0 + 6 * SECOND).is_none());
    }

    #[test]
    fn refusal_is_remembered_for_its_ttl_but_outages_never() {
        use crate::rejection::{InvalidReason, UpstreamError};
        let refused = RefusedCache::new(10, 30 * SECOND);
        let (bad, down) = (TokenDigest::of("bad"), TokenDigest::of("down"));
        let t0 = clock::now();
        refused.insert(
            bad,
            &LineAuthError::InvalidToken(InvalidReason::Revoked),
            t0,
        );
        refused.insert(
            down,
            &LineAuthError::Unavailable(UpstreamError::Timeout),
            t0,
        );
        assert!(matches!(
            refused.get(&bad, t0 + 29 * SECOND),
            Some(LineAuthError::InvalidToken(InvalidReason::Revoked))
        ));
        assert!(refused.get(&bad, t0 + 30 * SECOND).is_none());
        assert!(refused.get(&down, t0).is_none());
    }

    /// A request that read an expired refusal removes that one only: a newer refusal of the same
    /// token, put there meanwhile (by another request's verification, or a sign-out), stays.
    #[test]
    fn removing_an_expired_refusal_keeps_a_newer_one() {
        use crate::rejection::InvalidReason;
        let refused = RefusedCache::new(10, 30 * SECOND);
        let bad = TokenDigest::of("bad");
        let t0 = clock::now();
        let revoked = LineAuthError::InvalidToken(InvalidReason::Revoked);
        refused.insert(bad, &revoked, t0);
        let read_at = t0 + 31 * SECOND;
        // The first request read it expired; another refused the token again meanwhile.
        refused.insert(bad, &revoked, t0 + 30 * SECOND);

        refused.remove_expired(&bad, read_at);

        assert!(
            refused.get(&bad, read_at).is_some(),
            "the newer refusal stays"
        );
        refused.remove_expired(&bad, t0 + 60 * SECOND);
        assert_eq!(refused.len(), 0, "an expired one goes");
    }

    #[test]
    fn refused_store_is_bounded_on_its_own() {
        let refused = RefusedCache::new(100, 30 * SECOND);
        let verified = VerifiedCache::new(100, 300 * SECOND, None, false);
        let t0 = clock::now();
        let good = TokenIds::of("good");
        verified.insert(good, user(), GRANT, t0, 60 * SECOND);
        for i in 0..10_000 {
            refused.insert(
                TokenDigest::of(&format!("junk{i}")),
                &LineAuthError::ForeignChannel,
                t0,
            );
        }
        assert!(refused.len() <= 100, "{} entries", refused.len());
        assert!(
            matches!(verified.get(&good.key, t0), Cached::Fresh(..)),
            "junk does not evict good entries"
        );
    }

    /// The bound is exact however it divides among the store's shards: `quick_cache` rounds each
    /// shard's share up, which alone would let 1,001 grow to 1,008.
    #[test]
    fn refused_store_holds_no_more_than_its_bound() {
        let t0 = clock::now();
        for bound in [33, 65, 1_001, 4_099] {
            let refused = RefusedCache::new(bound, 30 * SECOND);
            for i in 0..bound * 4 {
                refused.insert(
                    TokenDigest::of(&format!("junk{i}")),
                    &LineAuthError::ForeignChannel,
                    t0,
                );
            }
            let held = refused.len();
            assert!(held <= bound, "bound {bound}: {held} entries");
            assert!(held > bound * 9 / 10, "bound {bound}: only {held} entries");
        }
    }

    /// Heap bytes per entry of each store, measured by counting allocations: the figures behind
    /// the memory bound in BENCHMARKS.md (the verified store's users are shared here, so this is
    /// the store's own cost; the user's data adds its profile strings plus about 80 bytes).
    #[test]
    fn each_store_costs_a_bounded_number_of_bytes_per_entry() {
        const N: usize = 100_000;
        let tokens: Vec<TokenIds> = (0..N).map(|i| TokenIds::of(&i.to_string())).collect();
        let shared_user = user();
        let t0 = clock::now();

        let mut verified = None;
        let verified_bytes = allocation_counter::measure(|| {
            let cache = VerifiedCache::new(N, 300 * SECOND, None, false);
            for token in &tokens {
                cache.insert(*token, shared_user.clone(), GRANT, t0, 60 * SECOND);
            }
            verified = Some(cache);
        })
        .bytes_current as usize
            / N;

        let mut refused = None;
        let refused_bytes = allocation_counter::measure(|| {
            let cache = RefusedCache::new(N, 30 * SECOND);
            for token in &tokens {
                cache.insert(token.digest, &LineAuthError::ForeignChannel, t0);
            }
            refused = Some(cache);
        })
        .bytes_current as usize
            / N;

        println!(
            "verified store: {verified_bytes} B/entry; refused store: {refused_bytes} B/entry"
        );
        assert!(
            verified_bytes <= 160,
            "verified store: {verified_bytes} B/entry"
        );
        assert!(
            refused_bytes <= 160,
            "refused store: {refused_bytes} B/entry"
        );
        assert!(verified.is_some_and(|cache| cache.len() > N / 2));
        assert!(refused.is_some_and(|cache| cache.len() > N / 2));
    }

    #[test]
    fn a_cached_tokens_channel_and_expiry_are_known_fresh_or_stale() {
        let cache = VerifiedCache::new(10, SECOND, Some(60 * SECOND), false);
        let digest = TokenIds::of("t");
        let t0 = clock::now();
        let grant = Grant {
            channel: 3,
            scopes: 1,
        };
        cache.insert(digest, user(), grant, t0, 60 * SECOND);
        assert_eq!(cache.channel_of(&digest.key), Some(3));
        let expiry = cache.token_expiry(&digest.key).unwrap();
        assert!(expiry > t0 + 59 * SECOND && expiry <= t0 + 60 * SECOND);
        assert_eq!(cache.channel_of(&TokenIds::of("u").key), None);
        assert_eq!(cache.token_expiry(&TokenIds::of("u").key), None);
    }

    #[test]
    fn a_refusal_can_be_removed_before_its_ttl() {
        let refused = RefusedCache::new(10, 30 * SECOND);
        let digest = TokenDigest::of("t");
        let t0 = clock::now();
        refused.insert(
            digest,
            &LineAuthError::InvalidToken(crate::rejection::InvalidReason::Revoked),
            t0,
        );
        assert!(refused.get(&digest, t0).is_some());
        refused.remove(&digest);
        assert!(refused.get(&digest, t0).is_none());
    }

    #[test]
    fn with_a_fleet_a_token_named_by_its_digest_alone_is_removed() {
        let cache = VerifiedCache::new(10, 300 * SECOND, None, true);
        let (token, other) = (TokenIds::of("t"), TokenIds::of("u"));
        let t0 = clock::now();
        cache.insert(token, user(), GRANT, t0, 60 * SECOND);
        cache.insert(other, user(), GRANT, t0, 60 * SECOND);
        cache.remove_digest(&token.digest);
        assert!(matches!(cache.get(&token.key, t0), Cached::Unknown));
        assert!(matches!(cache.get(&other.key, t0), Cached::Fresh(..)));
        // Removed again, or never cached: nothing happens.
        cache.remove_digest(&token.digest);
        cache.remove_digest(&TokenIds::of("never").digest);
        assert!(matches!(cache.get(&other.key, t0), Cached::Fresh(..)));
    }

    #[test]
    fn the_digest_index_covers_every_entry_through_evictions_and_stays_bounded() {
        const CAPACITY: usize = 200;
        let cache = VerifiedCache::new(CAPACITY, 300 * SECOND, None, true);
        let t0 = clock::now();
        let tokens: Vec<TokenIds> = (0..20_000)
            .map(|i| TokenIds::of(&format!("token{i}")))
            .collect();
        for token in &tokens {
            cache.insert(*token, user(), GRANT, t0, 60 * SECOND);
        }
        assert!(
            cache.index_len() <= 2 * cache.len() + INDEX_SLACK + 1,
            "index {} for {} entries",
            cache.index_len(),
            cache.len()
        );
        let cached: Vec<&TokenIds> = tokens
            .iter()
            .filter(|token| matches!(cache.get(&token.key, t0), Cached::Fresh(..)))
            .collect();
        assert!(cached.len() > CAPACITY / 2, "{} cached", cached.len());
        for token in cached {
            cache.remove_digest(&token.digest);
            assert!(matches!(cache.get(&token.key, t0), Cached::Unknown));
        }
        assert_eq!(cache.len(), 0, "every entry was reachable by its digest");
    }
}
