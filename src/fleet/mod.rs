//! The fleet: what this replica learns from, and tells, the other replicas of the service.
//!
//! The verifier talks to the fleet only through [`Fleet`]: it asks for a shared verdict,
//! shares its own, and hands over invalidations to publish. What the other replicas publish
//! comes back as [`Notice`]s on a channel the verifier reads; the fleet never calls into the
//! verifier. Without the `redis` feature, or with no Redis configured, [`Fleet`] does nothing
//! and answers "nothing known", so the verifier has no `cfg` of its own.

// Without Redis the verifier's paths for shared verdicts and notices still compile, and are
// never taken: what only Redis constructs is unused then.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

#[cfg(feature = "redis")]
mod outbox;
#[cfg(feature = "redis")]
mod shared_cache;

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::clock::Instant;
use crate::config::LineAuthConfig;
use crate::rejection::InvalidReason;
use crate::stats::{Counters, Event};
use crate::token::TokenDigest;
use crate::user::LineUser;

#[cfg(feature = "redis")]
pub(crate) use shared_cache::{RedisSettings, SigningKeys};

/// Something every replica must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// One token, to be verified again.
    Token(TokenDigest),
    /// One token LINE refused: every replica drops its verdict (kept for stale-if-error
    /// included), and the refusal, shared and remembered, stands.
    Refused(TokenDigest),
    /// One token signed out: refused fleet-wide from now on, for this long, which `logout` (its
    /// only source) makes at least the cache's maximum TTL.
    Revoked(TokenDigest, Duration),
    /// Every token of one user.
    User(Box<str>),
    /// Everything.
    All,
}

/// What another replica (or this one, earlier) concluded about a token.
pub(crate) enum SharedVerdict {
    /// Verified, for this user, trusted until `fresh_until`.
    Verified {
        user: LineUser,
        fresh_until: SystemTime,
    },
    /// Refused by LINE.
    Refused(InvalidReason),
}

/// What the fleet tells the verifier, in the order each of its tasks saw it (the subscriber and
/// the courier both tell; no notice restores trust, so their order does not matter).
#[derive(Debug)]
pub(crate) enum Notice {
    /// A replica (this one included) published an invalidation.
    Invalidated(Invalidation),
    /// The subscription was down for a while, or first came up after a verification went on
    /// without it, or more tokens were verified without their sign-outs read than are
    /// remembered: an invalidation may have been missed, so nothing verified before, or under
    /// way, can be trusted without asking again.
    MayHaveMissed,
    /// A token verified without its sign-out record read (Redis failed, or was left alone
    /// after a failure) was signed out, as Redis now says, for this long yet: as if this
    /// replica had heard the sign-out.
    SignedOut(TokenDigest, Duration),
    /// Something the fleet's background tasks did, for the layer's counters.
    Counted(Event),
}

/// How many notices may wait for the verifier before the subscription waits in turn.
const NOTICE_BACKLOG: usize = 1024;

/// When a verification began, by the fleet's clock: a forget after that takes back what the
/// verification shares. Unknown when the fleet could not tell.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Since(#[cfg(feature = "redis")] Option<shared_cache::RedisTime>);

/// Who asks LINE about a token, as far as the read that found nothing could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This replica claimed it with the read.
    Ours,
    /// Another replica holds the claim: wait for its verdict.
    Theirs,
    /// Not tried (something was stored, or scripts are refused): claim separately if needed.
    NotTried,
    /// Redis was not read: left alone after a failure, or failing now. Nothing is claimed
    /// either, so that a failed read costs no second timeout for a claim, even where the
    /// failure paused nothing (a call begun before Redis use resumed).
    NotRead,
}

/// What a verification asks the fleet before asking LINE.
pub(crate) enum Asked {
    /// The fleet knows: a verdict another replica shared.
    Known(SharedVerdict),
    /// Nobody else is asking: this replica asks LINE (and shares the answer).
    AskLine,
}

/// What a verification learnt, to share with the fleet.
pub(crate) enum Learnt {
    /// LINE verified the token; the verdict holds until the instant given.
    Verified(LineUser, Instant),
    /// LINE refused the token, for a reason that holds on every replica.
    Refused(InvalidReason),
    /// Nothing to share (LINE unreachable, or a refusal that depends on this replica's own
    /// requirements): the replicas waiting on this one ask LINE themselves.
    Nothing,
}

/// This replica's link to the fleet: Redis when configured, nothing otherwise.
#[derive(Default)]
pub(crate) struct Fleet {
    #[cfg(feature = "redis")]
    shared: Option<shared_cache::SharedCache>,
}

impl Fleet {
    pub(crate) fn new(config: &LineAuthConfig) -> Self {
        #[cfg(not(feature = "redis"))]
        let _ = config;
        Self {
            #[cfg(feature = "redis")]
            shared: config.redis.clone().map(|settings| {
                shared_cache::SharedCache::new(
                    settings,
                    config.cache_max_ttl,
                    config.negative_cache_ttl,
                    config.upstream_timeout,
                )
            }),
        }
    }

    /// Whether there are other replicas to hear from and tell.
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.shared.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Starts listening to the fleet on `runtime`, once. The first call returns the channel on
    /// which the fleet's notices arrive; every later call, and a layer with no fleet, `None`.
    pub(crate) fn start(&self, runtime: &tokio::runtime::Handle) -> Option<mpsc::Receiver<Notice>> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let (notices, receiver) = mpsc::channel(NOTICE_BACKLOG);
            return shared.start(runtime, notices).then_some(receiver);
        }
        #[cfg(not(feature = "redis"))]
        let _ = (runtime, NOTICE_BACKLOG);
        None
    }

    /// Tells the other replicas without waiting: the invalidation waits in an outbox until
    /// Redis takes it.
    pub(crate) fn tell_later(&self, invalidation: Invalidation) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            shared.invalidate_later(invalidation);
        }
        #[cfg(not(feature = "redis"))]
        let _ = invalidation;
    }

    /// Tells the other replicas now if Redis answers, otherwise as soon as it does.
    pub(crate) async fn tell(&self, invalidation: Invalidation, counters: &Counters) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            shared.invalidate(invalidation, counters).await;
        }
        #[cfg(not(feature = "redis"))]
        let _ = (invalidation, counters);
    }

    /// Whether `digest` was signed out on any replica.
    pub(crate) async fn signed_out(&self, digest: &TokenDigest, counters: &Counters) -> bool {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.signed_out(digest, counters).await;
        }
        #[cfg(not(feature = "redis"))]
        let _ = (digest, counters);
        false
    }

    /// The fleet's verdict on a token, if one was shared, and when the asking began. When none
    /// is, the same round trip may claim the asking of LINE for this replica, for at most `hold`.
    pub(crate) async fn lookup(
        &self,
        digest: &TokenDigest,
        hold: Duration,
        counters: &Counters,
    ) -> (Option<SharedVerdict>, Since, Claim) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let (verdict, read_at, claim) = shared.lookup(digest, hold, counters).await;
            return (verdict, Since(read_at), claim);
        }
        #[cfg(not(feature = "redis"))]
        let _ = (digest, hold, counters);
        (None, Since::default(), Claim::NotTried)
    }

    /// Waits until `wait_until` for the verdict of the replica that holds the claim.
    pub(crate) async fn wait_for_verdict(
        &self,
        digest: &TokenDigest,
        wait_until: Instant,
        counters: &Counters,
    ) -> Asked {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return match shared.wait_for_verdict(digest, wait_until, counters).await {
                Some(verdict) => Asked::Known(verdict),
                None => Asked::AskLine,
            };
        }
        #[cfg(not(feature = "redis"))]
        let _ = (digest, wait_until, counters);
        Asked::AskLine
    }

    /// Claims the asking of LINE for the fleet, for at most `hold`; when another replica holds
    /// the claim, waits until `wait_until` for its verdict, and when one was shared since the
    /// read, takes it. [`Asked::AskLine`] whenever the fleet cannot answer.
    pub(crate) async fn claim_or_wait(
        &self,
        digest: &TokenDigest,
        hold: Duration,
        wait_until: Instant,
        counters: &Counters,
    ) -> Asked {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return match shared.claim(digest, hold, counters).await {
                shared_cache::Claimed::Ours => Asked::AskLine,
                shared_cache::Claimed::Known(verdict) => Asked::Known(verdict),
                shared_cache::Claimed::Theirs => {
                    match shared.wait_for_verdict(digest, wait_until, counters).await {
                        Some(verdict) => Asked::Known(verdict),
                        None => Asked::AskLine,
                    }
                }
            };
        }
        #[cfg(not(feature = "redis"))]
        let _ = (digest, hold, wait_until, counters);
        Asked::AskLine
    }

    /// Shares what this replica learnt from LINE, unless a forget since `since` takes it back;
    /// with nothing learnt, ends this replica's claim so the waiting replicas ask LINE.
    pub(crate) async fn share(
        &self,
        digest: &TokenDigest,
        learnt: Learnt,
        since: Since,
        counters: &Counters,
    ) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            match learnt {
                Learnt::Verified(user, fresh_until) => {
                    let fresh_until_wall = SystemTime::now()
                        + fresh_until.saturating_duration_since(crate::clock::now());
                    shared
                        .store_verified(digest, &user, fresh_until_wall, since.0, counters)
                        .await;
                }
                Learnt::Refused(reason) => shared.store_refused(digest, reason, counters).await,
                Learnt::Nothing => shared.release(digest, counters).await,
            }
        }
        #[cfg(not(feature = "redis"))]
        let _ = (digest, learnt, since, counters);
    }
}
