//! Revocation records: a token signed out here stays refused until it expires, whatever LINE
//! answers to the revoke, and whenever it answers.
//!
//! A record is checked before a request joins or starts a verification, and again when a
//! verification lands (under the flights' lock, before its verdict is kept, and before its
//! waiters are answered), so a verdict in flight cannot bring a signed-out token back. The cache
//! hit path never reads it: signing out removes the cached verdict after writing the record.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::clock::Instant;
use crate::token::{DigestHashBuilder, TokenDigest};

/// Tokens signed out, each until its expiry.
#[derive(Default)]
pub(crate) struct Revocations {
    records: Mutex<Records>,
}

#[derive(Default)]
struct Records {
    until: HashMap<TokenDigest, Instant, DigestHashBuilder>,
    /// Expired records are swept when the map grows past this, so memory follows the number of
    /// tokens still alive, not of logouts ever.
    sweep_at: usize,
}

/// Records kept before the first sweep.
const FIRST_SWEEP: usize = 1024;

impl Revocations {
    /// Refuses `digest` until `until`. A later expiry than one already recorded wins.
    pub(crate) fn revoke(&self, digest: TokenDigest, until: Instant, now: Instant) {
        let mut records = self.lock();
        let entry = records.until.entry(digest).or_insert(until);
        *entry = (*entry).max(until);
        if records.until.len() >= records.sweep_at.max(FIRST_SWEEP) {
            records.until.retain(|_, until| *until > now);
            records.sweep_at = records.until.len() * 2;
        }
    }

    /// Whether `digest` is signed out at `now`.
    pub(crate) fn is_revoked(&self, digest: &TokenDigest, now: Instant) -> bool {
        self.lock()
            .until
            .get(digest)
            .is_some_and(|until| *until > now)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().until.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock;

    #[test]
    fn a_record_refuses_until_its_expiry_and_a_later_one_wins() {
        let revocations = Revocations::default();
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        assert!(!revocations.is_revoked(&digest, t0));

        revocations.revoke(digest, t0 + Duration::from_secs(10), t0);
        revocations.revoke(digest, t0 + Duration::from_secs(5), t0);

        assert!(revocations.is_revoked(&digest, t0 + Duration::from_secs(9)));
        assert!(!revocations.is_revoked(&digest, t0 + Duration::from_secs(10)));
        assert!(!revocations.is_revoked(&TokenDigest::of("u"), t0));
    }

    #[test]
    fn expired_records_are_swept_as_the_map_grows() {
        let revocations = Revocations::default();
        let t0 = clock::now();
        for i in 0..FIRST_SWEEP - 1 {
            revocations.revoke(
                TokenDigest::of(&i.to_string()),
                t0 + Duration::from_secs(1),
                t0,
            );
        }
        let later = t0 + Duration::from_secs(2);
        revocations.revoke(
            TokenDigest::of("late"),
            later + Duration::from_secs(1),
            later,
        );
        assert_eq!(revocations.len(), 1, "only the live record is kept");
    }
}
