//! The verified-token store: bounded, keyed by [`TokenDigest`], and never trusted past the
//! token's own expiry or the configured maximum TTL.
//!
//! Built on `quick_cache` (S3-FIFO eviction): a lookup is one sharded read with no allocation, and
//! the bound holds without a background task.

use std::time::Duration;

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::UnitWeighter;

use crate::clock::Instant;
use crate::token::{DigestHashBuilder, TokenDigest};
use crate::user::LineUser;

/// Slots reserved up front, so a generous bound costs no memory until it is used.
const PREALLOCATED_ENTRIES: usize = 4096;

/// A verified token as remembered.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub(crate) user: LineUser,
    /// When the token itself expires, per LINE's `expires_in` counted from the verify call.
    pub(crate) token_expires: Instant,
    /// When this verdict must be asked of LINE again: the token's expiry or the maximum TTL.
    pub(crate) fresh_until: Instant,
}

/// What the store knows about a token.
pub(crate) enum Cached {
    /// Verified and still fresh.
    Fresh(LineUser),
    /// Verified before, but the token's own expiry has passed.
    Expired,
    /// Nothing usable: ask LINE.
    Unknown,
}

pub(crate) struct VerifiedCache {
    entries: Cache<TokenDigest, CachedToken, UnitWeighter, DigestHashBuilder>,
    max_ttl: Duration,
}

impl VerifiedCache {
    pub(crate) fn new(max_entries: usize, max_ttl: Duration) -> Self {
        Self {
            entries: Cache::with(
                // Preallocate modestly; the table grows up to the bound as tokens arrive.
                max_entries.min(PREALLOCATED_ENTRIES),
                max_entries as u64,
                UnitWeighter,
                DigestHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
            max_ttl,
        }
    }

    pub(crate) fn get(&self, digest: &TokenDigest, now: Instant) -> Cached {
        let Some(entry) = self.entries.get(digest) else {
            return Cached::Unknown;
        };
        if now < entry.fresh_until {
            Cached::Fresh(entry.user)
        } else if now >= entry.token_expires {
            // An expired token never becomes valid again: keep answering locally until evicted.
            Cached::Expired
        } else {
            self.entries.remove(digest);
            Cached::Unknown
        }
    }

    /// Remembers a verified token. `verified_at` is when the verify call was made, so the expiry
    /// errs early rather than late.
    pub(crate) fn insert(
        &self,
        digest: TokenDigest,
        user: LineUser,
        verified_at: Instant,
        expires_in: Duration,
    ) {
        let token_expires = verified_at + expires_in;
        let fresh_until = token_expires.min(verified_at + self.max_ttl);
        if fresh_until <= verified_at {
            return;
        }
        self.entries.insert(
            digest,
            CachedToken {
                user,
                token_expires,
                fresh_until,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Profile, TokenVerification};
    use std::time::SystemTime;

    fn user() -> LineUser {
        let verification = TokenVerification {
            scope: Some("profile".into()),
            client_id: "1".into(),
            expires_in: 60,
        };
        let profile = Profile {
            user_id: "U0".into(),
            display_name: "Brown".into(),
            picture_url: None,
            status_message: None,
        };
        LineUser::new(profile, &verification, SystemTime::now())
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn entry_is_fresh_until_the_max_ttl_then_asked_again() {
        let cache = VerifiedCache::new(10, 5 * SECOND);
        let digest = TokenDigest::of("t");
        let t0 = Instant::now();
        cache.insert(digest, user(), t0, 60 * SECOND);
        assert!(matches!(
            cache.get(&digest, t0 + 4 * SECOND),
            Cached::Fresh(_)
        ));
        assert!(matches!(
            cache.get(&digest, t0 + 5 * SECOND),
            Cached::Unknown
        ));
        assert_eq!(cache.len(), 0, "a stale entry is dropped");
    }

    #[test]
    fn entry_never_outlives_the_token() {
        let cache = VerifiedCache::new(10, 300 * SECOND);
        let digest = TokenDigest::of("t");
        let t0 = Instant::now();
        cache.insert(digest, user(), t0, 2 * SECOND);
        assert!(matches!(cache.get(&digest, t0 + SECOND), Cached::Fresh(_)));
        assert!(matches!(
            cache.get(&digest, t0 + 2 * SECOND),
            Cached::Expired
        ));
        assert!(
            matches!(cache.get(&digest, t0 + 3 * SECOND), Cached::Expired),
            "expiry is remembered"
        );
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = VerifiedCache::new(10, Duration::ZERO);
        let digest = TokenDigest::of("t");
        let t0 = Instant::now();
        cache.insert(digest, user(), t0, 60 * SECOND);
        assert!(matches!(cache.get(&digest, t0), Cached::Unknown));
    }

    #[test]
    fn table_grows_past_the_preallocation_up_to_the_bound() {
        let cache = VerifiedCache::new(3 * PREALLOCATED_ENTRIES, 300 * SECOND);
        let t0 = Instant::now();
        for i in 0..2 * PREALLOCATED_ENTRIES {
            cache.insert(TokenDigest::of(&i.to_string()), user(), t0, 60 * SECOND);
        }
        assert!(
            cache.len() > PREALLOCATED_ENTRIES * 3 / 2,
            "{} entries",
            cache.len()
        );
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = VerifiedCache::new(100, 300 * SECOND);
        let t0 = Instant::now();
        for i in 0..1_000 {
            cache.insert(TokenDigest::of(&i.to_string()), user(), t0, 60 * SECOND);
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
    }
}
