//! The verdict on one token: cache → single flight → LINE (or the ID-token check) → verdict.
//!
//! - [`policy`]: the channel, scope and expiry checks, applied to every verdict, fresh or cached.
//! - [`flight`]: one verification per token that requests join, bounded, aware of callers who
//!   left, and of forgets that happen while it is in the air (a request after one starts a newer
//!   verification).
//! - [`source`]: LINE's access-token check and the local ID-token check.
//! - [`revocation`]: tokens signed out here, refused until they expire.
//! - [`revoke_retry`]: a logout's revoke at LINE, retried in the background when LINE failed it.
//! - `fixed_tokens` (feature `testing`): the test kit's tokens, never sent to LINE.
//!
//! The other replicas are reached through [`Fleet`](crate::fleet::Fleet): asked before LINE,
//! told after it, and heard through notices this module applies.
//!
//! A cache hit is decided synchronously by [`Verifier::decide`]. A miss starts (or joins) one
//! verification task per token: it runs on its own, so a caller hanging up cannot cancel the
//! verification the other callers wait on, and every waiter receives the same verdict.

#[cfg(feature = "testing")]
mod fixed_tokens;
mod flight;
mod policy;
mod revocation;
mod revoke_retry;
mod source;

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::cache::{Cached, RefusedCache, VerifiedCache};
use crate::client::LineClient;
use crate::clock::{self, Instant};
use crate::config::{LineAuthConfig, Secret};
use crate::fleet::{Asked, Claim, Fleet, Invalidation, Learnt, Notice, SharedVerdict, Since};
use crate::id_token::IdTokenVerifier;
use crate::log_throttle::LogThrottle;
use crate::rejection::{InvalidReason, LineAuthError, UpstreamError};
use crate::stats::{Counters, Event, Stats};
use crate::token::{check_charset, AccessToken, CacheKey, TokenDigest, TokenIds};
use crate::user::LineUser;

use flight::{FlightId, Flights, Joined, Permits};
pub(crate) use flight::{PendingVerdict, Verdict};
use policy::{time_left, Policy};
use revocation::Revocations;
use revoke_retry::{Revoke, RevokeRetries};
use source::{Budget, Verified};

/// How long an access token lives at most (<https://developers.line.biz/en/reference/line-login/#issue-access-token>: 30 days): a signed-out token whose
/// expiry is not known here is refused for that long.
const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How much later than LINE's `expires_in` says a token may expire: it is whole seconds, rounded
/// down.
const EXPIRES_IN_ROUNDING: Duration = Duration::from_secs(1);

/// A token to forget or sign out: in hand (a handle's call, so both its forms are known), or
/// named by another replica, by digest alone.
#[derive(Clone, Copy)]
enum Named {
    InHand(TokenIds),
    ByDigest(TokenDigest),
}

impl Named {
    fn digest(self) -> TokenDigest {
        match self {
            Self::InHand(token) => token.digest,
            Self::ByDigest(digest) => digest,
        }
    }
}

/// What to do with a request, decided without waiting.
pub(crate) enum Decision {
    /// The token is verified (from the cache).
    Allow(LineUser),
    /// The token is refused.
    Reject(LineAuthError),
    /// LINE must be asked; the verdict arrives through this future.
    Pending(PendingVerdict),
}

/// Shared by every clone of a layer and its services.
pub(crate) struct Verifier {
    policy: Policy,
    upstream_timeout: Duration,
    max_ttl: Duration,
    cache: VerifiedCache,
    refused: RefusedCache,
    stale_if_error: bool,
    permits: Permits,
    flights: Flights,
    revocations: Revocations,
    client: LineClient,
    channel_secret: Option<Secret>,
    /// Set when the layer takes ID tokens instead of access tokens.
    id_tokens: Option<IdTokenVerifier>,
    /// The other replicas, through Redis; nothing without it.
    fleet: Fleet,
    pub(crate) counters: Counters,
    /// An access-token verifier required to find `email`, which LINE never lists in an access
    /// token's scope: warned of once, when a layer first wraps a service.
    warn_of_email: std::sync::atomic::AtomicBool,
    /// The warnings a run of requests can repeat, each said at most once a second.
    warnings: Warnings,
    /// Logouts whose revoke LINE failed, waiting to try it again.
    revoke_retries: RevokeRetries,
    /// The test kit's fixed tokens.
    #[cfg(feature = "testing")]
    fixed_tokens: fixed_tokens::FixedTokens,
    /// Its number among the verifiers of this process: see [`Verifier::count_refused_inside`].
    number: u64,
}

/// The verifiers the layers of this process share, by number: a response future finds its
/// layer's counters here for a refusal made inside the layer, holding only the number, as a
/// reference to the verifier would cost every request an atomic increment and decrement. Few
/// (one per layer built), and looked up only for such a refusal.
static NUMBERED: std::sync::Mutex<Vec<(u64, Weak<Verifier>)>> = std::sync::Mutex::new(Vec::new());

/// The number the next verifier takes: never reused, so a future outliving its layer finds
/// nothing rather than another layer's counters.
static NEXT_NUMBER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn numbered_list() -> std::sync::MutexGuard<'static, Vec<(u64, Weak<Verifier>)>> {
    // A push or a retain cannot leave the list half-changed: a poisoned lock is taken as is.
    NUMBERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The throttles of the warnings an outage or a flood of new tokens would repeat per request.
struct Warnings {
    full: LogThrottle,
    unavailable: LogThrottle,
    stale: LogThrottle,
    /// A logout whose revoke LINE failed or refused.
    revoke: LogThrottle,
}

/// Where a verdict came from, which decides whether the fleet is told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// LINE answered.
    Line,
    /// Checked here, with no call to LINE (an ID token).
    Local,
    /// Another replica's verdict, read from the shared cache.
    Shared,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Self::Line => "line",
            Self::Local => "local",
            Self::Shared => "shared",
        }
    }
}

/// What the bearer credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A LINE Login access token, verified with LINE.
    AccessToken,
    /// A LINE ID token, verified locally.
    IdToken,
}

impl Verifier {
    /// A verifier for a layer, numbered so that its layer's response futures can count the
    /// refusals made inside it ([`count_refused_inside`](Self::count_refused_inside)).
    pub(crate) fn numbered(config: &LineAuthConfig, credential: Credential) -> Arc<Self> {
        let verifier = Arc::new(Self::new(config, credential));
        let mut numbered = numbered_list();
        numbered.retain(|(_, verifier)| verifier.strong_count() > 0);
        numbered.push((verifier.number, Arc::downgrade(&verifier)));
        verifier
    }

    /// This verifier's number (see [`numbered`](Self::numbered)).
    #[inline]
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Counts a refusal made inside the layer of the verifier numbered `number` (by
    /// `RequireScopesLayer`, an extractor, a handler returning the error), if it still lives.
    pub(crate) fn count_refused_inside(number: u64, error: &LineAuthError) {
        let verifier = numbered_list()
            .iter()
            .find(|(numbered, _)| *numbered == number)
            .and_then(|(_, verifier)| verifier.upgrade());
        if let Some(verifier) = verifier {
            verifier.counters.reject(error, 1);
        }
    }

    pub(crate) fn new(config: &LineAuthConfig, credential: Credential) -> Self {
        let fleet = Fleet::new(config);
        Self {
            policy: Policy::new(config),
            upstream_timeout: config.upstream_timeout,
            max_ttl: config.cache_max_ttl,
            cache: VerifiedCache::new(
                config.cache_max_entries,
                config.cache_max_ttl,
                config.stale_if_error,
                // Other replicas name tokens by digest alone.
                fleet.is_shared(),
            ),
            refused: RefusedCache::new(
                config.negative_cache_max_entries,
                config.negative_cache_ttl,
            ),
            stale_if_error: config.stale_if_error.is_some(),
            permits: Permits::new(config.max_concurrent_verifications),
            flights: Flights::new(config.max_pending_verifications),
            revocations: Revocations::default(),
            client: LineClient::new(config),
            channel_secret: config.channel_secret.clone(),
            id_tokens: (credential == Credential::IdToken).then(|| IdTokenVerifier::new(config)),
            fleet,
            counters: Counters::default(),
            warn_of_email: std::sync::atomic::AtomicBool::new(
                credential == Credential::AccessToken
                    && config
                        .required_scopes
                        .iter()
                        .any(|scope| &**scope == "email"),
            ),
            warnings: Warnings {
                full: LogThrottle::new(),
                unavailable: LogThrottle::new(),
                stale: LogThrottle::new(),
                revoke: LogThrottle::new(),
            },
            revoke_retries: RevokeRetries::default(),
            #[cfg(feature = "testing")]
            fixed_tokens: Default::default(),
            number: NEXT_NUMBER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Warns, once, of a configuration no token can meet. Called where a layer wraps a service:
    /// `LineAuthLayer::new` builds an access-token verifier that `id_tokens` may then replace.
    pub(crate) fn warn_of_unmeetable_scopes(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        // A load first: under `route_layer` this runs for every request.
        if self.warn_of_email.load(Relaxed) && self.warn_of_email.swap(false, Relaxed) {
            tracing::warn!(
                "`email` is a required scope, but LINE never lists it in an access token's \
                 scope: every access token will be refused 403. Require it of ID tokens \
                 (`LineAuthLayer::id_tokens`) instead"
            );
        }
    }

    /// Starts listening for the fleet's notices, if there is a fleet and a runtime. They are
    /// applied by a task of their own, which holds no more than a weak reference: the layer's
    /// last clone going away ends the fleet's tasks, then this one.
    pub(crate) fn start_sharing(self: &Arc<Self>) {
        if !self.fleet.is_shared() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(notices) = self.fleet.start(&runtime) {
            runtime.spawn(apply_notices(Arc::downgrade(self), notices));
        }
    }

    /// Test kit: trusts `token` as `user` until the user's expiry, without LINE.
    #[cfg(feature = "testing")]
    pub(crate) fn accept_fixed_token(&self, token: &str, user: LineUser) {
        let token = TokenIds::of(token);
        self.fixed_tokens.trust(token.key, user.clone());
        let _ = self.cache_fixed(token, user);
    }

    /// Caches a fixed token as verified until its user's expiry: the verdict on it.
    #[cfg(feature = "testing")]
    fn cache_fixed(&self, token: TokenIds, user: LineUser) -> Verdict {
        let Ok(remaining) = user
            .expires_at()
            .duration_since(std::time::SystemTime::now())
        else {
            return Err(LineAuthError::InvalidToken(InvalidReason::Expired));
        };
        let grant = self
            .policy
            .grant_of(user.channel_id(), |scope| user.has_scope(scope));
        self.cache
            .insert_until(token, user.clone(), grant, clock::now() + remaining);
        self.policy.check_grant(grant).map(|()| user)
    }

    /// The verdict on a fixed token the cache no longer holds, if `token` is one: never LINE's.
    /// It is cached while the map is held, so a sign-out (which marks the map, then drops the
    /// cache entry) cannot come between the look-up and the caching.
    #[cfg(feature = "testing")]
    fn fixed_verdict(&self, token: TokenIds) -> Option<Verdict> {
        use fixed_tokens::Fixed;
        self.fixed_tokens.decide(&token.key, |fixed| match fixed {
            Fixed::No => None,
            Fixed::Trusted(user) => Some(self.cache_fixed(token, user)),
            Fixed::SignedOut => Some(Err(LineAuthError::InvalidToken(InvalidReason::Revoked))),
        })
    }

    /// Forgets one token, here and fleet-wide: its next request asks LINE again.
    pub(crate) fn forget(&self, token: &str) {
        let canonical = self.canonical(token);
        let token = TokenIds::of(canonical.as_deref().unwrap_or(token));
        self.forget_locally(Named::InHand(token));
        self.fleet.tell_later(Invalidation::Token(token.digest));
    }

    /// Forgets every cached token of one user, here and fleet-wide.
    pub(crate) fn forget_user(&self, user_id: &str) {
        self.forget_user_locally(user_id);
        self.fleet.tell_later(Invalidation::User(user_id.into()));
    }

    /// Forgets everything, here and fleet-wide. Sign-outs stay in force.
    pub(crate) fn clear(&self) {
        self.clear_locally();
        self.fleet.tell_later(Invalidation::All);
    }

    // Each forget marks the flights first, then empties the caches: a flight landing in between
    // has either kept its verdict already (and it is removed) or sees the mark.
    fn forget_locally(&self, token: Named) {
        let digest = token.digest();
        self.flights.forget(&digest);
        match token {
            Named::InHand(token) => {
                self.cache.remove(&token);
            }
            // The cache's digest index finds the entry (kept whenever there is a fleet).
            Named::ByDigest(digest) => self.cache.remove_digest(&digest),
        }
        self.refused.remove(&digest);
    }

    fn forget_user_locally(&self, user_id: &str) {
        self.flights.forget_user(user_id);
        self.cache.remove_user(user_id);
    }

    fn clear_locally(&self) {
        self.flights.forget_all();
        self.cache.clear();
        self.refused.clear();
    }

    /// Refuses `token` here from now until `until`, and drops what was known of it.
    fn revoke_locally(&self, token: Named, until: Instant) {
        let now = clock::now();
        let digest = token.digest();
        self.revocations.revoke(digest, until, now);
        self.forget_locally(token);
        self.refused.insert(
            digest,
            &LineAuthError::InvalidToken(InvalidReason::Revoked),
            now,
        );
    }

    /// Applies what the fleet tells.
    fn apply(&self, notice: Notice) {
        match notice {
            Notice::Invalidated(invalidation) => self.apply_invalidation(&invalidation),
            Notice::MayHaveMissed => self.clear_locally(),
            Notice::SignedOut(digest, lasting) => {
                // No token outlives LINE's 30 days, whatever Redis holds.
                let lasting = lasting.min(ACCESS_TOKEN_LIFETIME);
                self.revoke_locally(Named::ByDigest(digest), clock::now() + lasting);
            }
            Notice::Counted(event) => self.counters.record(event),
        }
    }

    /// Applies an invalidation another replica (or this one) published.
    fn apply_invalidation(&self, invalidation: &Invalidation) {
        self.counters.record(Event::InvalidationReceived);
        match invalidation {
            Invalidation::Token(digest) => self.forget_locally(Named::ByDigest(*digest)),
            Invalidation::Refused(digest) => {
                // As a forget, but a refusal already remembered here stays. (A verification
                // of it under way here keeps nothing, a refusal included: it asks again.)
                self.flights.forget(digest);
                self.cache.remove_digest(digest);
            }
            Invalidation::Revoked(digest, lasting) => {
                // No token outlives LINE's 30 days, whatever a message says.
                let lasting = (*lasting).min(ACCESS_TOKEN_LIFETIME);
                self.revoke_locally(Named::ByDigest(*digest), clock::now() + lasting);
            }
            Invalidation::User(user_id) => self.forget_user_locally(user_id),
            Invalidation::All => self.clear_locally(),
        }
    }

    /// Signs `token` out: from this call on it is refused here (and, through the shared cache,
    /// on every replica) until it expires, whatever LINE answers. Then it is revoked at LINE
    /// (`POST /oauth2/v2.1/revoke`) in a task of its own, which runs to completion even if the
    /// caller goes away; the result says whether LINE revoked it. ID tokens cannot be revoked at
    /// LINE: for them the refusal here is the whole of it.
    pub(crate) async fn logout(self: &Arc<Self>, token: &str) -> Result<(), LineAuthError> {
        let canonical = self.canonical(token);
        let token = canonical.as_deref().unwrap_or(token);
        let ids = TokenIds::of(token);
        let now = clock::now();
        // The cached expiry errs early: LINE's `expires_in`, whole seconds, counted from when
        // the verify call was made, whose answer may have taken up to the timeout. The refusal
        // errs late by as much, or the token would come back in its last seconds at LINE.
        let until = self
            .cache
            .token_expiry(&ids.key)
            .map(|expiry| {
                let slack = self.upstream_timeout.saturating_add(EXPIRES_IN_ROUNDING);
                expiry.checked_add(slack).unwrap_or(expiry)
            })
            .unwrap_or(now + ACCESS_TOKEN_LIFETIME)
            .max(now + self.max_ttl);
        let channel_id = self
            .cache
            .channel_of(&ids.key)
            .and_then(|index| self.policy.channel(index))
            .or(self.policy.only_channel())
            .map(str::to_owned);
        // Marked before the cache entry goes: a request caching the fixed token meanwhile
        // finishes first, and its entry goes too.
        #[cfg(feature = "testing")]
        let fixed = self.fixed_tokens.sign_out(&ids.key);
        self.revoke_locally(Named::InHand(ids), until);
        #[cfg(feature = "testing")]
        if fixed {
            // The test kit's token: LINE never issued it, so it is not asked to revoke it.
            return Ok(());
        }

        let signed_out = SignOut {
            digest: ids.digest,
            token: AccessToken::new(token),
            channel_id,
            lasting: until.saturating_duration_since(now),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return signed_out.run(self).await;
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let verifier = Arc::clone(self);
        runtime.spawn(async move {
            let _ = sender.send(signed_out.run(&verifier).await);
        });
        receiver
            .await
            .unwrap_or(Err(revoke_failed(LineAuthError::Unavailable(
                UpstreamError::Abandoned,
            ))))
    }

    /// The form an ID-token layer names `token` by, when it is not the token as given: an ES256
    /// signature with a high `s` has a twin that verifies as well, and both must be one token to
    /// the caches, the flights and the revocation records, or a signed-out ID token would come
    /// back as its twin. Access tokens are opaque to this layer and named as given.
    fn canonical(&self, token: &str) -> Option<String> {
        self.id_tokens
            .as_ref()
            .and_then(|_| crate::id_token::jws::low_s_form(token))
    }

    /// Decides from the cache, or starts (or joins) the verification of `token`: its bytes as
    /// found, within [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) but with the charset unchecked.
    ///
    /// A hit costs the token's [`CacheKey`] and one probe of the verified-token cache; for an
    /// access token, the charset check and the SHA-256 digest are made only when that probe
    /// finds nothing usable (why a hit needs no check: [`check_charset`]). An ID token is
    /// checked first.
    #[inline]
    pub(crate) fn decide(self: &Arc<Self>, token: &[u8]) -> Decision {
        if self.id_tokens.is_some() {
            // Only an ID token with a high-`s` signature is renamed (one allocation), which
            // takes reading it, so ID tokens are checked first; access tokens go on as given.
            let token = match check_charset(token) {
                Ok(token) => token,
                Err(malformed) => return self.refuse(malformed),
            };
            if let Some(canonical) = self.canonical(token) {
                return self.decide_named(canonical.as_bytes());
            }
        }
        self.decide_named(token)
    }

    #[inline]
    fn decide_named(self: &Arc<Self>, token: &[u8]) -> Decision {
        let key = CacheKey::of(token);
        match self.verified_verdict(self.cache.get_now(&key)) {
            Some(verdict) => self.settled(verdict, token),
            None => self.decide_unknown(token, key),
        }
    }

    /// The miss path of [`decide_named`](Self::decide_named): the token is checked, then
    /// refused from the refused-token cache or verified.
    fn decide_unknown(self: &Arc<Self>, token: &[u8], key: CacheKey) -> Decision {
        let token = match check_charset(token) {
            Ok(token) => token,
            Err(malformed) => return self.refuse(malformed),
        };
        let token_ids = TokenIds {
            key,
            digest: TokenDigest::of(token),
        };
        match self.refused.get(&token_ids.digest, clock::now()) {
            Some(error) => self.settled(Err(error), token.as_bytes()),
            None => self.verify_once(token, token_ids),
        }
    }

    /// The decision on a verdict the caches held for `token`, counted.
    #[inline]
    fn settled(&self, verdict: Verdict, token: &[u8]) -> Decision {
        // A load and a compare on a hit while no subscriber takes TRACE from any target; where
        // one takes it from other targets only, a look at this callsite's cached interest too.
        if tracing::enabled!(tracing::Level::TRACE) {
            trace_settled(&verdict, token);
        }
        self.count_settled(&verdict);
        match verdict {
            Ok(user) => Decision::Allow(user),
            Err(error) => Decision::Reject(error),
        }
    }

    /// Counts a verdict the caches held: a hit, or a negative hit and its refusal.
    #[inline]
    fn count_settled(&self, verdict: &Verdict) {
        match verdict {
            Ok(_) => self.counters.record(Event::CacheHit),
            Err(error) => {
                self.counters.record(Event::NegativeHit);
                self.counters.reject(error, 1);
            }
        }
    }

    /// The counters, with the caches' current sizes.
    pub(crate) fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.cache.len() as u64, self.refused.len() as u64)
    }

    /// The verdict the verified-token cache holds: verified (re-checked) or expired.
    #[inline]
    fn verified_verdict(&self, cached: Cached) -> Option<Verdict> {
        match cached {
            Cached::Fresh(user, grant) => Some(self.policy.check_grant(grant).map(|()| user)),
            Cached::Expired => Some(Err(LineAuthError::InvalidToken(InvalidReason::Expired))),
            Cached::Unknown => None,
        }
    }

    /// Lands a flight LINE gave no verdict for: its waiters, and the stale verdict that stands
    /// in (stale-if-error), if any.
    fn land_without_verdict(
        &self,
        flight: FlightId,
        token_ids: &TokenIds,
        cause: &UpstreamError,
    ) -> (flight::Waiters, Option<(LineUser, crate::cache::Grant)>) {
        // The user of the entry that may stand in: a forget of that user records it before the
        // entry goes, and landing with the user is what reads that record.
        let candidate = self
            .stale_if_error
            .then(|| self.cache.stale(&token_ids.key, clock::now()))
            .flatten();
        let (waiters, kept) = self.flights.land(
            flight,
            candidate.as_ref().map(|(user, _)| user.user_id()),
            || {},
        );
        (waiters, self.stand_in(token_ids, kept, cause, clock::now()))
    }

    /// The stale verdict that stands in for one LINE could not give (stale-if-error), if any:
    /// only where LINE failed, and only for a flight still wanted when it landed (`kept`) and a
    /// token not signed out by now. A forget (of the token, its user or everything), a sign-out
    /// or the fleet's refusal marks the flight, or records the user, before the cache entry goes,
    /// so either check closes the window between the two.
    fn stand_in(
        &self,
        token_ids: &TokenIds,
        kept: bool,
        cause: &UpstreamError,
        now: Instant,
    ) -> Option<(LineUser, crate::cache::Grant)> {
        (self.stale_if_error
            && kept
            && line_failed(cause)
            && !self.revocations.is_revoked(&token_ids.digest, now))
        .then(|| self.cache.stale(&token_ids.key, now))
        .flatten()
    }

    /// The verdict the caches hold: verified (re-checked), expired, or refused before.
    fn cached_verdict(&self, token: &TokenIds) -> Option<Verdict> {
        let now = clock::now();
        self.verified_verdict(self.cache.get(&token.key, now))
            .or_else(|| self.refused.get(&token.digest, now).map(Err))
    }

    /// What is settled about a token without asking anyone: the caches, or a sign-out.
    fn settled_verdict(&self, token: &TokenIds, now: Instant) -> Option<Verdict> {
        if self.revocations.is_revoked(&token.digest, now) {
            return Some(Err(LineAuthError::InvalidToken(InvalidReason::Revoked)));
        }
        self.cached_verdict(token)
    }

    /// Joins the verification of this token already under way, or starts one.
    fn verify_once(self: &Arc<Self>, token: &str, token_ids: TokenIds) -> Decision {
        let digest = token_ids.digest;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("LineAuthLayer needs a Tokio runtime to verify tokens");
            return self.refuse(LineAuthError::Unavailable(UpstreamError::Abandoned));
        };
        let now = clock::now();
        // A re-check of a token verified before is not queued behind first-time tokens; its user
        // is known, so only a forget of that user keeps later requests off its flight.
        let verified_as = self.cache.user_of(&token_ids.key);
        let known = verified_as.is_some();
        // A verdict settled here (a flight landed since the lookup in `decide_named`) came from
        // the caches after all, and is counted so.
        let settled = || {
            let verdict = self.settled_verdict(&token_ids, now)?;
            self.count_settled(&verdict);
            Some(verdict)
        };
        if self.revocations.is_revoked(&digest, now) {
            // Signed out: never joins a flight that began before the sign-out.
            return self.refuse(LineAuthError::InvalidToken(InvalidReason::Revoked));
        }
        #[cfg(feature = "testing")]
        if let Some(verdict) = self.fixed_verdict(token_ids) {
            return self.settled(verdict, token.as_bytes());
        }
        let (pending, flight) = match self.flights.join(digest, now, verified_as, settled) {
            Joined::Waiting(pending) => {
                let token = digest.short_hex();
                tracing::trace_span!("line_auth.verify", %token, cache = "coalesced")
                    .in_scope(|| tracing::trace!("joining a verification under way"));
                self.counters.record(Event::Coalesced);
                return Decision::Pending(pending);
            }
            Joined::Settled(pending) => return Decision::Pending(pending),
            Joined::Full => {
                if let Some(left_out) = self.warnings.full.admit() {
                    tracing::warn!(
                        left_out,
                        "too many verifications pending; refusing a new one"
                    );
                }
                return self.refuse(LineAuthError::Unavailable(UpstreamError::Busy));
            }
            Joined::Started(pending, flight) => (pending, flight),
        };
        self.counters.record(Event::Miss);
        self.start_sharing();

        let task = VerificationTask {
            verifier: Arc::clone(self),
            token: token_ids,
            flight,
            known,
            finished: false,
        };
        let token = AccessToken::new(token);
        let span = tracing::debug_span!(
            "line_auth.verify",
            token = %digest.short_hex(),
            credential = if self.id_tokens.is_some() { "id_token" } else { "access_token" },
            cache = "miss",
            outcome = tracing::field::Empty,
            upstream_status = tracing::field::Empty,
            line_request_id = tracing::field::Empty,
            source = tracing::field::Empty,
            user_endpoint = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
            waiters = tracing::field::Empty,
        );
        runtime.spawn(task.run(token).instrument(span));
        Decision::Pending(pending)
    }

    fn refuse(&self, error: LineAuthError) -> Decision {
        self.counters.reject(&error, 1);
        Decision::Reject(error)
    }

    /// The verdict on a token not in the caches: an ID token verified locally, or an access
    /// token verified by another replica (the shared cache) or with LINE.
    async fn resolve(
        &self,
        flight: FlightId,
        token: &AccessToken,
        known: bool,
    ) -> (Result<Verified, LineAuthError>, Origin, Since) {
        let digest = &flight.digest();
        let mut since = Since::default();
        if let Some(id_tokens) = &self.id_tokens {
            // Signed out on another replica: the one thing about an ID token only Redis knows.
            if self.fleet.signed_out(digest, &self.counters).await {
                let revoked = LineAuthError::InvalidToken(InvalidReason::Revoked);
                return (Err(revoked), Origin::Shared, since);
            }
            let verified = source::check_id_token(id_tokens, &self.policy, token).await;
            return (verified, Origin::Local, since);
        }
        // One budget for the whole request, however much of it the fleet takes.
        let deadline = clock::now() + self.upstream_timeout;
        if self.fleet.is_shared() {
            match self.ask_fleet(digest, &mut since).await {
                Some(verdict) => {
                    self.counters.record(Event::SharedHit);
                    return (verdict, Origin::Shared, since);
                }
                None => self.counters.record(Event::SharedMiss),
            }
        }
        let fair_try = Budget::fair_try(self.client.attempt_timeout(), self.upstream_timeout);
        let verified = source::ask_line(
            &self.client,
            &self.policy,
            &self.permits,
            token,
            known,
            Budget { deadline, fair_try },
            || self.flights.wanted_or_end(flight),
        )
        .await;
        (verified, Origin::Line, since)
    }

    /// The fleet's verdict on the token: shared already, or being reached by another replica,
    /// which is waited for (at most half the upstream budget, so this replica can still ask LINE
    /// itself if that replica got nowhere). `None`: this replica asks LINE.
    async fn ask_fleet(
        &self,
        digest: &TokenDigest,
        since: &mut Since,
    ) -> Option<Result<Verified, LineAuthError>> {
        let wait_until = clock::now() + self.upstream_timeout / 2;
        let (verdict, read_at, claim) = self
            .fleet
            .lookup(digest, self.upstream_timeout, &self.counters)
            .await;
        // A forget after this moment (by Redis's clock) takes back what this verification shares.
        *since = read_at;
        if let Some(verdict) = verdict {
            if let Some(verdict) = self.judge_shared(verdict) {
                return Some(verdict);
            }
        }
        let asked = match claim {
            Claim::Ours | Claim::NotRead => Asked::AskLine,
            Claim::Theirs => {
                self.fleet
                    .wait_for_verdict(digest, wait_until, &self.counters)
                    .await
            }
            Claim::NotTried => {
                self.fleet
                    .claim_or_wait(digest, self.upstream_timeout, wait_until, &self.counters)
                    .await
            }
        };
        match asked {
            Asked::Known(verdict) => self.judge_shared(verdict),
            Asked::AskLine => None,
        }
    }

    /// Another replica's verdict, held to this layer's channels and scopes; `None` if it has
    /// run out meanwhile.
    fn judge_shared(&self, verdict: SharedVerdict) -> Option<Result<Verified, LineAuthError>> {
        let (user, fresh_until) = match verdict {
            SharedVerdict::Refused(reason) => {
                return Some(Err(LineAuthError::InvalidToken(reason)))
            }
            SharedVerdict::Verified { user, fresh_until } => (user, fresh_until),
        };
        let now = clock::now();
        let token_expires = now + time_left(user.expires_at()).ok()?;
        let fresh_until = now + time_left(fresh_until).ok()?;
        let grant = self
            .policy
            .grant_of(user.channel_id(), |scope| user.has_scope(scope));
        Some(self.policy.check_grant(grant).map(|()| Verified {
            user,
            grant,
            verified_at: now,
            token_expires,
            fresh_until,
        }))
    }
}

/// A verdict the caches held for `token`, as a `line_auth.verify` span of its own at TRACE:
/// the hit path's counterpart of a verification's span, with the same prefix of the token's
/// SHA-256, computed only here. A token the caches hold was read as text before (a hit's is
/// the one verified), so its bytes are read as they are.
#[cold]
fn trace_settled(verdict: &Verdict, token: &[u8]) {
    let digest = TokenDigest::of(&String::from_utf8_lossy(token));
    let token = digest.short_hex();
    let span = match verdict {
        Ok(_) => tracing::trace_span!(
            "line_auth.verify",
            %token,
            cache = "hit",
            outcome = "verified"
        ),
        Err(error) => tracing::trace_span!(
            "line_auth.verify",
            %token,
            cache = "negative_hit",
            outcome = "refused",
            reason = %error
        ),
    };
    span.in_scope(|| tracing::trace!("decided from the cache"));
}

/// A sign-out's work after the local refusal: the fleet, then LINE.
struct SignOut {
    digest: TokenDigest,
    token: AccessToken,
    channel_id: Option<String>,
    /// How long the refusal stands.
    lasting: Duration,
}

impl SignOut {
    async fn run(self, verifier: &Verifier) -> Result<(), LineAuthError> {
        let revoked = Invalidation::Revoked(self.digest, self.lasting);
        verifier.fleet.tell(revoked, &verifier.counters).await;
        if verifier.id_tokens.is_some() {
            return Ok(());
        }
        let revoke = Revoke {
            token: self.token,
            channel_id: self.channel_id,
            client: verifier.client.clone(),
            secret: verifier.channel_secret.clone(),
            timeout: verifier.upstream_timeout,
        };
        let error = match revoke.once().await {
            Ok(()) => return Ok(()),
            Err(LineAuthError::Unavailable(cause)) if revoke_retry::worth_retrying(&cause) => {
                let asked = cause.line_asked_to_wait();
                let retried =
                    verifier
                        .revoke_retries
                        .retry(revoke, asked, clock::now(), self.lasting);
                LineAuthError::Unavailable(if retried {
                    UpstreamError::RevokeRetrying(Box::new(cause))
                } else {
                    UpstreamError::RevokeFailed(Box::new(cause))
                })
            }
            Err(error) => revoke_failed(error),
        };
        if let Some(left_out) = verifier.warnings.revoke.admit() {
            tracing::warn!(
                error = %error,
                left_out,
                "could not revoke the token at LINE; it stays refused here"
            );
        }
        Err(error)
    }
}

/// A sign-out's error, said as the revoke's failure where LINE could not be told: no verification
/// failed. LINE's refusal of the call (`RevokeRefused`) and the other refusals stay as they are.
fn revoke_failed(error: LineAuthError) -> LineAuthError {
    match error {
        LineAuthError::Unavailable(cause @ UpstreamError::RevokeRefused { .. }) => {
            LineAuthError::Unavailable(cause)
        }
        LineAuthError::Unavailable(cause) => {
            LineAuthError::Unavailable(UpstreamError::RevokeFailed(Box::new(cause)))
        }
        error => error,
    }
}

/// Shows an error with its causes, `a: b: c`. Safe for upstream errors: they carry no URL.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Whether LINE itself failed (so a stale verdict may stand in), rather than this layer's own
/// queue or a verification nobody waited for. A client error LINE does not document (a 400
/// without its OAuth body, a 404) is an answer about this request, maybe a refusal in another
/// shape, and a 3xx someone else's answer (LINE's API redirects nothing), as is any status
/// but 200 in the 2xx range: no stand-in for those. A 5xx or a 429 is LINE failing or busy; a
/// 407, 408, 421 or 425 a failure on the way to LINE (a proxy, a connection, too early a
/// retry), not an answer about the token.
fn line_failed(cause: &UpstreamError) -> bool {
    match cause {
        UpstreamError::Busy | UpstreamError::Abandoned => false,
        UpstreamError::Status { status, .. } => {
            status.is_server_error() || matches!(status.as_u16(), 407 | 408 | 421 | 425 | 429)
        }
        _ => true,
    }
}

/// Whether LINE answered a client error this layer does not read as a verdict, one that asks
/// for no retry later: perhaps a refusal in another shape (README, "stale-if-error").
fn maybe_refused(cause: &UpstreamError) -> bool {
    matches!(cause, UpstreamError::Status { status, .. } if status.is_client_error())
        && !line_failed(cause)
}

/// The one verification of a token, run as its own task.
struct VerificationTask {
    verifier: Arc<Verifier>,
    token: TokenIds,
    flight: FlightId,
    /// The token was verified here before: its re-check has a reserved share of LINE's turns.
    known: bool,
    finished: bool,
}

impl VerificationTask {
    async fn run(mut self, token: AccessToken) {
        let verifier = Arc::clone(&self.verifier);
        let token_ids = self.token;
        let digest = token_ids.digest;
        let started = clock::now();
        let flight = self.flight;
        let (last_answer, (resolved, origin, since)) =
            crate::line_api::with_last_answer(verifier.resolve(flight, &token, self.known)).await;
        let elapsed = started.elapsed();
        let span = tracing::Span::current();
        if let Some((status, request_id)) = last_answer {
            span.record("upstream_status", status);
            span.record("line_request_id", request_id.as_str());
        }
        span.record("elapsed_ms", elapsed.as_secs_f64() * 1000.0);
        span.record("source", origin.name());
        // Verdicts read from the shared cache took no verification here.
        if origin != Origin::Shared {
            verifier.counters.record_latency(elapsed);
            #[cfg(feature = "metrics")]
            crate::stats::record_upstream_latency(
                match &resolved {
                    Ok(_) => "verified",
                    Err(LineAuthError::Unavailable(_)) => "unavailable",
                    Err(_) => "refused",
                },
                elapsed.as_secs_f64(),
            );
        }
        let mut learnt = Learnt::Nothing;
        let (outcome, verdict, waiters) = match resolved {
            Ok(verified) => {
                let mut cached_until = None;
                let (waiters, _) =
                    verifier
                        .flights
                        .land(flight, Some(verified.user.user_id()), || {
                            if !verifier.revocations.is_revoked(&digest, clock::now()) {
                                // The deadline the cache applies (the token's expiry or the
                                // maximum TTL) is the one shared.
                                cached_until = verifier.cache.insert_until_fresh(
                                    token_ids,
                                    verified.user.clone(),
                                    verified.grant,
                                    verified.verified_at,
                                    verified.token_expires,
                                    verified.fresh_until,
                                );
                            }
                        });
                if let (Origin::Line, Some(fresh_until)) = (origin, cached_until) {
                    learnt = Learnt::Verified(verified.user.clone(), fresh_until);
                }
                let now = clock::now();
                let refusal = if verifier.revocations.is_revoked(&digest, now) {
                    // Signed out while LINE was being asked: no one waiting is let through.
                    Some(InvalidReason::Revoked)
                } else if verified.token_expires <= now {
                    // Expired while LINE was being asked (LINE vouched for its last seconds):
                    // refused, as the cache refuses the requests after this one. Nothing is
                    // shared, so the replicas waiting on this one's claim are let go at once.
                    learnt = Learnt::Nothing;
                    Some(InvalidReason::Expired)
                } else {
                    None
                };
                // Counted by the verdict given, not by LINE's answer.
                match refusal {
                    Some(reason) => {
                        verifier.counters.record(Event::Refused);
                        let refused = LineAuthError::InvalidToken(reason);
                        ("refused", Err(refused), waiters)
                    }
                    None => {
                        verifier.counters.record(Event::Verified);
                        tracing::debug!(outcome = "verified", "token verified");
                        ("verified", Ok(verified.user), waiters)
                    }
                }
            }
            Err(LineAuthError::Unavailable(cause)) => {
                verifier.counters.record(Event::Unavailable);
                let (waiters, stale) = verifier.land_without_verdict(flight, &token_ids, &cause);
                // LINE's answer is perhaps a refusal in a shape not read here: the entry that
                // stale-if-error declines to serve now must not be served at LINE's next outage
                // either, here or on the replicas holding it. Dropped after the waiters' answer
                // is read from it (expired, or retry later). A key-set fetch's client error
                // (an ID token's, `Origin::Local`) says nothing of the token.
                let drop_entry = origin == Origin::Line && maybe_refused(&cause);
                let answer = match stale {
                    Some((user, grant)) => {
                        verifier.counters.record(Event::ServedStale);
                        if let Some(left_out) = verifier.warnings.stale.admit() {
                            tracing::warn!(
                                outcome = "stale",
                                error = %ErrorChain(&cause),
                                left_out,
                                "LINE could not verify the token; accepting it as verified before"
                            );
                        }
                        let verdict = verifier.policy.check_grant(grant).map(|()| user);
                        ("stale", verdict, waiters)
                    }
                    // Signed out while LINE was being asked: known without LINE, as below.
                    None if verifier.revocations.is_revoked(&digest, clock::now()) => {
                        let revoked = LineAuthError::InvalidToken(InvalidReason::Revoked);
                        ("refused", Err(revoked), waiters)
                    }
                    // The token expired while LINE was being asked: known without LINE, and
                    // "retry later" would only earn a 401.
                    None if matches!(
                        verifier.cache.get(&token_ids.key, clock::now()),
                        Cached::Expired
                    ) =>
                    {
                        let expired = LineAuthError::InvalidToken(InvalidReason::Expired);
                        ("refused", Err(expired), waiters)
                    }
                    None => {
                        if let Some(left_out) = verifier.warnings.unavailable.admit() {
                            tracing::warn!(
                                outcome = "unavailable",
                                error = %ErrorChain(&cause),
                                left_out,
                                "LINE could not verify the token"
                            );
                        }
                        (
                            "unavailable",
                            Err(LineAuthError::Unavailable(cause)),
                            waiters,
                        )
                    }
                };
                if drop_entry && verifier.cache.remove(&token_ids) {
                    verifier.fleet.tell_later(Invalidation::Refused(digest));
                }
                answer
            }
            Err(refused) => {
                verifier.counters.record(Event::Refused);
                // A refusal ends any trust in the token at once, stale-if-error included.
                let held = verifier.cache.remove(&token_ids);
                // A local refusal costs no call to LINE, and an unknown key may be known soon:
                // only LINE's refusals are remembered.
                let remember = origin != Origin::Local;
                let (waiters, kept) = verifier.flights.land(flight, None, || {
                    if remember {
                        verifier.refused.insert(digest, &refused, clock::now());
                    }
                });
                // Other replicas may hold it (kept for their stale-if-error past the shared
                // refusal's short life): they are told to drop it when it was held here, or when
                // LINE refuses a token it may have verified before: revoked, expired (LINE ends
                // tokens early, when a LIFF app closes or a MINI App's consent widens, and a
                // replica holding one cannot tell), or in words not recognised here (LINE's texts
                // changed in 2026). Junk (not JWS, which LINE never verified) that this replica
                // did not hold costs the fleet nothing: it is the common refusal, anyone's to
                // send, and while Redis is away every message waits in an outbox whose overflow
                // makes every replica forget everything. A foreign channel or a missing scope is
                // this replica's own judgement. Told after landing, so this replica's own message
                // finds the refusal kept.
                let maybe_verified_before = matches!(
                    refused,
                    LineAuthError::InvalidToken(
                        InvalidReason::Revoked | InvalidReason::Expired | InvalidReason::Rejected
                    )
                );
                let tell_fleet = match origin {
                    Origin::Line => held || maybe_verified_before,
                    Origin::Shared => held,
                    Origin::Local => false,
                };
                if tell_fleet {
                    verifier.fleet.tell_later(Invalidation::Refused(digest));
                }
                if let (Origin::Line, LineAuthError::InvalidToken(reason), true) =
                    (origin, &refused, kept)
                {
                    learnt = Learnt::Refused(*reason);
                }
                tracing::debug!(outcome = "refused", reason = %refused, "token refused");
                ("refused", Err(refused), waiters)
            }
        };
        self.finished = true;
        span.record("outcome", outcome);
        span.record("waiters", waiters.len());
        tracing::debug!("verification finished");
        if let Err(error) = &verdict {
            // Callers who hung up were answered nothing: only those still waiting count.
            let answered = waiters.iter().filter(|waiter| !waiter.is_closed()).count();
            verifier.counters.reject(error, answered as u64);
        }
        for waiter in waiters {
            // A waiter whose caller hung up has dropped its receiver; nothing to do for it.
            let _ = waiter.send(verdict.clone());
        }
        // Only what LINE said is shared; and with nothing to share, the claim is let go.
        if origin == Origin::Line && verifier.fleet.is_shared() {
            verifier
                .fleet
                .share(&digest, learnt, since, &verifier.counters)
                .await;
        }
    }
}

/// Applies the fleet's notices as they arrive, for as long as the layer lives.
async fn apply_notices(verifier: Weak<Verifier>, mut notices: mpsc::Receiver<Notice>) {
    while let Some(notice) = notices.recv().await {
        let Some(verifier) = verifier.upgrade() else {
            return;
        };
        verifier.apply(notice);
    }
}

impl Drop for VerificationTask {
    /// A task dropped before its verdict (runtime shutting down, a panic) still ends its flight,
    /// and dropping the senders wakes every waiter with [`UpstreamError::Abandoned`].
    fn drop(&mut self) {
        if !self.finished {
            self.verifier.flights.abandon(self.flight);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_line_failing_lets_a_stale_verdict_stand_in() {
        assert!(line_failed(&UpstreamError::Timeout));
        assert!(line_failed(&UpstreamError::InvalidBody("junk")));
        assert!(!line_failed(&UpstreamError::Busy), "this layer's own queue");
        assert!(!line_failed(&UpstreamError::Abandoned), "nobody waited");
        let status = |status: u16| UpstreamError::Status {
            status: http::StatusCode::from_u16(status).unwrap(),
            retry_after: None,
        };
        assert!(line_failed(&status(503)));
        assert!(line_failed(&status(429)), "LINE busy");
        // Failures on the way to LINE, not answers about the token.
        for on_the_way in [407, 408, 421, 425] {
            assert!(line_failed(&status(on_the_way)), "{on_the_way}");
        }
        assert!(line_failed(&status(500)));
        assert!(!line_failed(&status(400)), "an answer about the request");
        assert!(!line_failed(&status(404)));
        assert!(!line_failed(&status(302)), "someone else's answer");
        assert!(!line_failed(&status(204)), "not LINE's answer either");
    }

    /// What drops a verified entry without being a refusal read as such: a client error that
    /// asks for no retry, not LINE failing, this layer's own queue or someone else's answer.
    #[test]
    fn a_client_error_asking_no_retry_may_be_a_refusal() {
        let status = |status: u16| UpstreamError::Status {
            status: http::StatusCode::from_u16(status).unwrap(),
            retry_after: None,
        };
        for maybe in [400, 401, 403, 404, 410] {
            assert!(maybe_refused(&status(maybe)), "{maybe}");
        }
        for not in [407, 408, 421, 425, 429, 500, 503, 302, 204] {
            assert!(!maybe_refused(&status(not)), "{not}");
        }
        assert!(!maybe_refused(&UpstreamError::Timeout));
        assert!(!maybe_refused(&UpstreamError::Busy));
        assert!(!maybe_refused(&UpstreamError::InvalidBody("junk")));
    }

    /// A numbered verifier is found by its number while it lives, and its entry goes once it is
    /// dropped and another is numbered: layers built and dropped over a process's life do not
    /// pile up.
    #[test]
    fn a_dropped_verifier_leaves_the_numbered_list_when_the_next_is_numbered() {
        let config = LineAuthConfig::builder().channel_id("1").build().unwrap();
        let listed = |number: u64| numbered_list().iter().any(|(listed, _)| *listed == number);
        let first = Verifier::numbered(&config, Credential::AccessToken);
        let first_number = first.number();
        assert!(listed(first_number));
        drop(first);
        let second = Verifier::numbered(&config, Credential::AccessToken);
        assert!(!listed(first_number), "pruned");
        assert!(listed(second.number()));
        assert_ne!(second.number(), first_number, "numbers are not reused");
    }

    /// A verifier with stale-if-error holding user `U0`'s token, stale but in its grace at the
    /// instant returned.
    fn verifier_holding_a_stale_token() -> (Verifier, TokenIds, Instant) {
        let config = LineAuthConfig::builder()
            .channel_id("1")
            .stale_if_error(Duration::from_secs(60))
            .build()
            .unwrap();
        let verifier = Verifier::new(&config, Credential::AccessToken);
        let user = LineUser::for_tests("U0");
        let grant = verifier.policy.grant_of("1", |scope| scope == "profile");
        let token = TokenIds::of("stale-token");
        let t0 = clock::now();
        let second = Duration::from_secs(1);
        verifier
            .cache
            .insert_until_fresh(token, user, grant, t0, t0 + 3600 * second, t0 + second);
        (verifier, token, t0 + 2 * second)
    }

    /// Issue 12: a stale verdict never stands in for a token signed out, forgotten or refused
    /// by the fleet while LINE was being asked, even in the instant between the flight being
    /// marked (or the sign-out recorded) and the cache entry going.
    #[test]
    fn a_stale_verdict_stands_in_only_for_a_kept_flight_of_a_token_not_signed_out() {
        let (verifier, token, later) = verifier_holding_a_stale_token();
        let (t0, second) = (clock::now(), Duration::from_secs(1));
        let failed = UpstreamError::Timeout;

        assert!(verifier.stand_in(&token, true, &failed, later).is_some());
        assert!(
            verifier
                .stand_in(&token, true, &UpstreamError::Busy, later)
                .is_none(),
            "this layer's own queue is not LINE failing"
        );
        assert!(
            verifier.stand_in(&token, false, &failed, later).is_none(),
            "a flight forgotten while in the air"
        );
        verifier
            .revocations
            .revoke(token.digest, t0 + 3600 * second, t0);
        assert!(
            verifier.stand_in(&token, true, &failed, later).is_none(),
            "signed out, the flight not marked yet"
        );
    }

    /// A forget of the user while LINE was being asked keeps the stale entry from standing in,
    /// even before the forget has emptied the cache (it records the user first).
    #[test]
    fn a_stale_verdict_never_stands_in_for_a_user_forgotten_during_the_flight() {
        let (verifier, token, later) = verifier_holding_a_stale_token();
        let Joined::Started(_pending, flight) =
            verifier
                .flights
                .join(token.digest, clock::now(), None, || None)
        else {
            panic!("a flight starts");
        };
        verifier.flights.forget_user("U0");

        let (_, stale) = verifier.land_without_verdict(flight, &token, &UpstreamError::Timeout);

        assert!(stale.is_none());
        assert!(verifier
            .stand_in(&token, true, &UpstreamError::Timeout, later)
            .is_some());
    }

    /// The log lines `build` writes at `warn` and above.
    fn warnings_of(build: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, build);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn requiring_email_of_access_tokens_is_warned_of_once_and_of_id_tokens_not() {
        use crate::LineAuthLayer;
        use tower_layer::Layer;
        // LINE never lists `email` in an access token's scope (fact sheet §3.1): every access
        // token would be refused 403, so the configuration is called out when the layer wraps a
        // service (`new` builds an access-token verifier that `id_tokens` then replaces).
        let config = LineAuthConfig::builder()
            .channel_id("1234567890")
            .required_scopes(["profile", "email"])
            .build()
            .unwrap();
        let access = LineAuthLayer::new(config.clone());
        let warned = warnings_of(|| drop(access.layer(())));
        assert!(warned.contains("email"), "{warned}");
        assert_eq!(warnings_of(|| drop(access.layer(()))), "", "once");
        let id_tokens = LineAuthLayer::new(config).id_tokens();
        assert_eq!(warnings_of(|| drop(id_tokens.layer(()))), "");
        let plain = LineAuthConfig::builder().channel_id("1").build().unwrap();
        assert_eq!(
            warnings_of(|| drop(LineAuthLayer::new(plain).layer(()))),
            ""
        );
    }
}
